package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeStd is what parseJSON must agree with: encoding/json with UseNumber.
func decodeStd(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

var jsonSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `-1.5e+10`, `1E-2`, `"a"`, `" x "`,
	`{"a":[1,2,{"b":null}],"c":"\u00e9\ud83d\ude00\n\t\"\\\/"}`,
	`"\ud800"`, `"\udc00\ud800x"`, "\"\xff\xfe\"", "\"\u2028\"", `{"a":1,"a":2}`,
	`01`, `1.`, `.5`, `-`, `1e`, `+1`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `"\x"`, "\"\x01\"", `[`, `{"a":`,
	`tru`, `nulll`, `[] []`, ` { "flags" : { "x" : { "on" : true } } } `, `"\u12"`, `"\uZZZZ"`,
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := parseJSON(data)
		got := plain(tree)
		want, stdErr := decodeStd(data)
		if (err == nil) != (stdErr == nil) || (err == nil) != json.Valid(data) {
			t.Fatalf("parseJSON(%q) error %v, encoding/json %v, Valid %v", data, err, stdErr, json.Valid(data))
		}
		if err != nil {
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("parseJSON(%q) differs from encoding/json (-want +got):\n%s", data, diff)
		}
		// splitObject agrees on objects.
		if m, ok := want.(map[string]any); ok {
			raw, _, err := splitObject(data)
			if err != nil || len(raw) != len(m) {
				t.Fatalf("splitObject(%q) = %d members, %v; want %d", data, len(raw), err, len(m))
			}
			for k, r := range raw {
				v, err := decodeStd(r)
				if err != nil || !cmp.Equal(v, m[k]) {
					t.Fatalf("splitObject(%q)[%q] = %s, want %v", data, k, r, m[k])
				}
			}
		}
	})
}

func TestParseJSONErrorsHavePositions(t *testing.T) {
	for in, want := range map[string]string{
		"{\n  \"a\": tru }": "line 2, column 11: invalid character ' ' in literal true",
		`[1,]`:              "line 1, column 4: invalid character ']' looking for beginning of value",
		`{"a" 1}`:           "line 1, column 6: invalid character '1' after object key",
		`"abc`:              "line 1, column 5: unexpected end of JSON input",
	} {
		_, err := parseJSON([]byte(in))
		if err == nil || err.Error() != want {
			t.Errorf("parseJSON(%q) error %v, want %q", in, err, want)
		}
	}
}
