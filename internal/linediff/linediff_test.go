package linediff

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want string
	}{
		{"", "x", "+ x"},
		{"x", "", "- x"},
		{"a|b|c", "a|c", "  a|- b|  c"},
		{"1|2|3|4|5|6|7|8|9|10", "1|2|3|4|X|6|7|8|9|10", "...|  2|  3|  4|- 5|+ X|  6|  7|  8|..."},
		{"a|b", "a|b", ""},
	} {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "|")
		}
		var got []string
		for _, l := range Diff(split(tc.a), split(tc.b), 3) {
			if l.Op == '.' {
				got = append(got, "...")
				continue
			}
			got = append(got, string(l.Op)+" "+l.Text)
		}
		if g := strings.Join(got, "|"); g != tc.want {
			t.Errorf("Diff(%q, %q) = %q, want %q", tc.a, tc.b, g, tc.want)
		}
	}
	if got := JSONLines([]byte(`{"a":[1]}`)); strings.Join(got, "|") != `{|  "a": [|    1|  ]|}` {
		t.Errorf("JSONLines = %q", got)
	}
	if JSONLines([]byte(" null ")) != nil || JSONLines(nil) != nil {
		t.Error("null has lines")
	}
}
