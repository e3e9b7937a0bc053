package server

import (
	"encoding/json"
	"testing"

	"github.com/flagstream/flags/rules"
)

// withVersion keeps every member but "version", which it sets; contentSum
// does not see the difference.
func FuzzWithVersion(f *testing.F) {
	for _, seed := range []string{
		`{"version": 3, "on": true, "x": {"y": [1, 2.50, "<&>"]}}`,
		`{"on": true}`,
		`{"version": "abc"}`,
		`[1, 2]`,
		`null`,
		`"s"`,
		`{"a": 1, "a": 2}`,
	} {
		f.Add([]byte(seed), int64(7))
	}
	f.Fuzz(func(t *testing.T, raw []byte, v int64) {
		if !json.Valid(raw) {
			return
		}
		out := withVersion(raw, v)
		if !json.Valid(out) {
			t.Fatalf("withVersion(%s) = %s: not JSON", raw, out)
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return // not an object: returned compacted, unchanged
		}
		if got := objectVersion(out); v >= 0 && got != v {
			t.Errorf("objectVersion(withVersion(%s, %d)) = %d", raw, v, got)
		}
		if contentSum(raw) != contentSum(out) {
			t.Errorf("withVersion(%s) = %s changed the content", raw, out)
		}
	})
}

func TestEncodePatchShape(t *testing.T) {
	p := decodePatch(t, string(encodePatch(&rules.Patch{Version: 5, Flags: map[string]json.RawMessage{"b": nil, "a": json.RawMessage(`{"on":true}`)}})))
	if p.Version != 5 || string(p.Flags["b"]) != "null" || string(p.Flags["a"]) != `{"on":true}` || p.Segments == nil {
		t.Errorf("encodePatch = %+v", p)
	}
}
