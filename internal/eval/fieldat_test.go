package eval

import (
	"strings"
	"testing"
)

// TestFieldAt: the field named is the one holding the offset, at every
// depth, in arrays and objects, with escaped quotes in strings.
func TestFieldAt(t *testing.T) {
	doc := `{"on":true,"variations":["a","X"],"rules":[{"id":"q\"x","clauses":[{"attribute":"email","values":["Y"]}]}],"fallthrough":{"variation":0}}`
	for _, tc := range []struct{ at, want string }{
		{"X", "variations[1]"},
		{"Y", "rules[0].clauses[0].values[0]"},
		{`q\"x`, "rules[0].id"},
		{"true", "on"},
		{"0}", "fallthrough.variation"},
	} {
		off := strings.Index(doc, tc.at)
		if got := FieldAt([]byte(doc), off); got != tc.want {
			t.Errorf("FieldAt(%q) = %q, want %q", tc.at, got, tc.want)
		}
	}
	if got := FieldAt([]byte(doc), strings.Index(doc, `"variations"`)+2); got != "" {
		t.Errorf("FieldAt(in a key) = %q, want the object itself", got)
	}
	if got := FieldAt([]byte(doc), 0); got != "" {
		t.Errorf("FieldAt(0) = %q, want the object itself", got)
	}
}

// TestErrorOffsetNamesTheField: a string that is not UTF-8 and a value
// nested too deep are refused with an offset that FieldAt turns into the
// field's path.
func TestErrorOffsetNamesTheField(t *testing.T) {
	for _, tc := range []struct{ member, want string }{
		{`{"on":true,"variations":["` + "\xff" + `"]}`, "variations[0]"},
		{`{"variations":[1],"tags":["\ud800"]}`, "tags[0]"},
		{`{"x":` + strings.Repeat("[", 62) + strings.Repeat("]", 62) + `}`, "x" + strings.Repeat("[0]", 61)},
	} {
		prefix := `{"flags":{"k":`
		_, err := ParseDocument([]byte(prefix + tc.member + `}}`))
		off, ok := ErrorOffset(err)
		if !ok {
			t.Fatalf("%q: error %v has no offset", tc.member, err)
		}
		if got := FieldAt([]byte(tc.member), off-len(prefix)); got != tc.want {
			t.Errorf("%q: field %q, want %q (error %v)", tc.member, got, tc.want, err)
		}
	}
}
