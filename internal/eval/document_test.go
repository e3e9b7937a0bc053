package eval

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDocument(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		wantVersion int64
		wantFlags   []string
		wantSegs    []string
	}{
		{"empty object", `{}`, 0, nil, nil},
		{"version only", `{"version":17}`, 17, nil, nil},
		{"version zero", `{"version":0}`, 0, nil, nil},
		{"big version", `{"version":9223372036854775807}`, 9223372036854775807, nil, nil},
		{"flags and segments", `{"version":1,"flags":{"a":{},"b":{}},"segments":{"s":{}}}`, 1, []string{"a", "b"}, []string{"s"}},
		{"unknown top-level fields", `{"version":2,"meta":{"x":1},"env":"prod","flags":{}}`, 2, nil, nil},
		{"flag not an object is kept", `{"flags":{"a":1,"b":null,"c":[]}}`, 0, []string{"a", "b", "c"}, nil},
		{"whitespace", " \n\t{ \"version\" : 3 }\n", 3, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDocument([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseDocument(%s) = %v", tc.in, err)
			}
			if d.Version != tc.wantVersion {
				t.Errorf("Version = %d, want %d", d.Version, tc.wantVersion)
			}
			if d.Flags == nil || d.Segments == nil {
				t.Errorf("Flags or Segments nil: want empty maps")
			}
			if diff := cmp.Diff(tc.wantFlags, keys(d.Flags)); diff != "" {
				t.Errorf("flag keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSegs, keys(d.Segments)); diff != "" {
				t.Errorf("segment keys (-want +got):\n%s", diff)
			}
		})
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sortedStrings(out)
}

func TestParseDocumentInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the full error message
		bug  string // non-empty: a known bug, the subtest is skipped
	}{
		{"empty", ``, "flags: invalid document: line 1, column 1: unexpected end of JSON input", ""},
		{"not JSON", `{"flags":`, "flags: invalid document: line 1, column 10: unexpected end of JSON input", ""},
		{"syntax on line 3", "{\n\"version\": 1,\n\"flags\": {,}}", "flags: invalid document: line 3, column 11: invalid character ',' looking for beginning of object key string", "describeJSONError (rules/document.go) reports the column after the offending character: json.SyntaxError.Offset already counts it"},
		{"trailing data", `{} {}`, "flags: invalid document: line 1, column 4: invalid character '{' after top-level value", "describeJSONError (rules/document.go) reports the column after the offending character: json.SyntaxError.Offset already counts it"},
		{"array", `[]`, "flags: invalid document: top level: got an array, want an object", ""},
		{"string", `"flags"`, "flags: invalid document: top level: got a string, want an object", ""},
		{"number", `17`, "flags: invalid document: top level: got a number, want an object", ""},
		{"null", `null`, "flags: invalid document: top level is null, want an object", ""},
		{"flags array", `{"flags":[]}`, "flags: invalid document: flags: want an object", ""},
		{"flags null", `{"flags":null}`, "flags: invalid document: flags: got null, want an object", ""},
		{"segments null", `{"segments":null}`, "flags: invalid document: segments: got null, want an object", ""},
		{"version null", `{"version":null}`, "flags: invalid document: version: got null, want an integer", ""},
		{"flags string", `{"flags":"a"}`, "flags: invalid document: flags: want an object", ""},
		{"flags number", `{"flags":1}`, "flags: invalid document: flags: want an object", ""},
		{"segments array", `{"segments":[{}]}`, "flags: invalid document: segments: want an object", ""},
		{"segments bool", `{"segments":true}`, "flags: invalid document: segments: want an object", ""},
		{"version string", `{"version":"3"}`, "flags: invalid document: version: got a string, want an integer", ""},
		{"version fraction", `{"version":1.5}`, "flags: invalid document: version: 1.5 is not an integer >= 0", ""},
		{"version negative", `{"version":-1}`, "flags: invalid document: version: -1 is not an integer >= 0", ""},
		{"version too big", `{"version":9223372036854775808}`, "flags: invalid document: version: 9223372036854775808 is not an integer >= 0", ""},
		{"version bool", `{"version":true}`, "flags: invalid document: version: got a bool, want an integer", ""},
		{"version object", `{"version":{}}`, "flags: invalid document: version: got an object, want an integer", ""},
		{"version array", `{"version":[1]}`, "flags: invalid document: version: got an array, want an integer", ""},
		{"flag key twice", `{"flags":{"a":{"on":true},"b":{},"a":{"on":false}}}`, "flags: invalid document: flags.a: named twice; a document holds one flag per key", ""},
		{"flag key twice, escaped", `{"flags":{"on":{},"\u006fn":{}}}`, "flags: invalid document: flags.on: named twice; a document holds one flag per key", ""},
		{"invalid key twice", `{"flags":{"a b":{},"a b":{}}}`, `flags: invalid document: flags: "a b": named twice; a document holds one flag per key`, ""},
		{"flags twice", `{"flags":{"a":{}},"version":1,"flags":{"b":{}}}`, "flags: invalid document: flags: named twice at the top level; a document holds one", ""},
		{"version twice, escaped", `{"version":1,"\u0076ersion":2,"x":0,"x":1}`, "flags: invalid document: version: named twice at the top level; a document holds one", ""},
		{"segment key twice", `{"segments":{"s":{},"s":{}}}`, "flags: invalid document: segments.s: named twice; a document holds one segment per key", ""},
		{"both twice, and the version", `{"version":"1","flags":{"a":{},"a":{}},"segments":{"s":{},"s":{}}}`, "flags: invalid document: version: got a string, want an integer\nflags: invalid document: flags.a: named twice; a document holds one flag per key\nflags: invalid document: segments.s: named twice; a document holds one segment per key", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDocument([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseDocument(%q) = %+v, nil; want an error", tc.in, d)
			}
			if !errors.Is(err, ErrInvalidDocument) {
				t.Errorf("ParseDocument(%q) error %v does not match ErrInvalidDocument", tc.in, err)
			}
			if errors.Is(err, ErrMalformed) {
				t.Errorf("ParseDocument(%q) error %v matches ErrMalformed", tc.in, err)
			}
			if err.Error() != tc.want {
				t.Errorf("ParseDocument(%q) error\n got %q\nwant %q", tc.in, err.Error(), tc.want)
			}
		})
	}
}

func TestParsePatch(t *testing.T) {
	t.Run("changes and deletions", checkPatchChangesAndDeletions)
	p, err := ParsePatch([]byte(`{"version":0}`))
	if err != nil || len(p.Flags) != 0 || len(p.Segments) != 0 {
		t.Errorf("ParsePatch(version only) = %+v, %v", p, err)
	}

	invalid := map[string]string{
		``:                                "flags: invalid document: patch: line 1, column 1: unexpected end of JSON input",
		`null`:                            "flags: invalid document: patch is null",
		`[]`:                              "flags: invalid document: patch: top level: got an array, want an object",
		`{}`:                              "flags: invalid document: patch: version: missing",
		`{"flags":{}}`:                    "flags: invalid document: patch: version: missing",
		`{"version":-1}`:                  "flags: invalid document: version: -1 is not an integer >= 0",
		`{"version":"2"}`:                 "flags: invalid document: version: got a string, want an integer",
		`{"version":2,"flags":[]}`:        "flags: invalid document: flags: want an object",
		`{"version":2,"segments":"x"}`:    "flags: invalid document: segments: want an object",
		`{"version":2,"flags":{"a":{}}`:   "flags: invalid document: patch: line 1, column 30: unexpected end of JSON input",
		`{"version":2.5,"flags":{"a":1}}`: "flags: invalid document: version: 2.5 is not an integer >= 0",
		`{"version":2,"flags":{"a":null,"a":{}}}`:  "flags: invalid document: flags.a: named twice; a document holds one flag per key",
		`{"version":2,"segments":{"s":{},"s":{}}}`: "flags: invalid document: segments.s: named twice; a document holds one segment per key",
	}
	for in, want := range invalid {
		p, err := ParsePatch([]byte(in))
		if err == nil {
			t.Errorf("ParsePatch(%q) = %+v, nil; want an error", in, p)
			continue
		}
		if !errors.Is(err, ErrInvalidDocument) || err.Error() != want {
			t.Errorf("ParsePatch(%q) error\n got %q\nwant %q (wrapping ErrInvalidDocument)", in, err, want)
		}
	}
}

// checkPatchChangesAndDeletions checks a patch that changes and deletes
// flags and segments: a deletion is a member present with a nil value,
// and an unknown top-level member is ignored.
func checkPatchChangesAndDeletions(t *testing.T) {
	p, err := ParsePatch([]byte(`{"version":5,"flags":{"a":{"on":true},"gone":null},"segments":{"s":null,"t":{}},"extra":1}`))
	if err != nil {
		t.Fatalf("ParsePatch: %v", err)
	}
	if p.Version != 5 {
		t.Errorf("Version = %d, want 5", p.Version)
	}
	if v, ok := p.Flags["gone"]; !ok || v != nil {
		t.Errorf("Flags[gone] = %q, %v; want nil, present (a deletion)", v, ok)
	}
	if v, ok := p.Segments["s"]; !ok || v != nil {
		t.Errorf("Segments[s] = %q, %v; want nil, present", v, ok)
	}
	if string(p.Flags["a"]) != `{"on":true}` || string(p.Segments["t"]) != `{}` {
		t.Errorf("Flags[a] = %s, Segments[t] = %s", p.Flags["a"], p.Segments["t"])
	}
}

func TestDocumentApply(t *testing.T) {
	base, err := ParseDocument([]byte(`{"version":3,"flags":{"a":{"v":1},"b":{"v":2}},"segments":{"s":{"v":3}}}`))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(base)
	p, err := ParsePatch([]byte(`{"version":4,"flags":{"a":null,"b":{"v":20},"c":{"v":30},"ghost":null},"segments":{"s":null,"t":{"v":4}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := base.Apply(p)
	want := `{"version":4,"flags":{"b":{"v":20},"c":{"v":30}},"segments":{"t":{"v":4}}}`
	if b, err := json.Marshal(got); err != nil || string(b) != want {
		t.Errorf("Apply = %s, %v\nwant %s", b, err, want)
	}
	if after, _ := json.Marshal(base); string(after) != string(before) {
		t.Errorf("Apply modified its receiver: %s, was %s", after, before)
	}

	// A patch's version is taken as is; Apply leaves protocol checks to the caller.
	if got := base.Apply(&Patch{Version: 1}); got.Version != 1 || len(got.Flags) != 2 {
		t.Errorf("Apply(empty patch v1) = version %d, %d flags", got.Version, len(got.Flags))
	}
	// Applying to a document with nil maps works.
	empty := &Document{}
	got = empty.Apply(&Patch{Version: 1, Flags: map[string]json.RawMessage{"a": json.RawMessage(`{}`), "b": nil}})
	if len(got.Flags) != 1 || got.Segments == nil {
		t.Errorf("Apply on empty document: flags %v, segments %v", got.Flags, got.Segments)
	}
	// A raw JSON null (not a Go nil) also deletes.
	got = base.Apply(&Patch{Version: 4, Flags: map[string]json.RawMessage{"a": json.RawMessage(" null ")}})
	if _, ok := got.Flags["a"]; ok {
		t.Errorf("Apply with raw null: flag a still present")
	}
	// The patched document compiles, and the deleted flag is gone.
	s := Compile(base.Apply(p))
	if s.Flag("a") != nil || s.Flag("c") == nil || s.Segment("s") != nil || s.Segment("t") == nil {
		t.Errorf("compiled patched document has the wrong keys")
	}
}

func TestDocumentMarshalJSON(t *testing.T) {
	in := `{ "segments": {"z": {"b": 1, "a": 2}, "a": {}},
		"flags": {"b": {"on": true, "future": [1, 2]}, "a": { }, "é-invalid": {"x":"\u00e9"}}, "version": 7, "meta": 1 }`
	d, err := ParseDocument([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	// Keys sorted, members compacted (not re-ordered), unknown flag fields kept,
	// unknown top-level fields dropped.
	want := `{"version":7,"flags":{"a":{},"b":{"on":true,"future":[1,2]},"é-invalid":{"x":"\u00e9"}},"segments":{"a":{},"z":{"b":1,"a":2}}}`
	if string(got) != want {
		t.Errorf("MarshalJSON =\n %s\nwant\n %s", got, want)
	}
	// Round trip: equal documents encode to equal bytes.
	d2, err := ParseDocument(got)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(d2)
	if string(again) != string(got) {
		t.Errorf("round trip changed the bytes:\n %s\n %s", got, again)
	}
	// Empty and nil-member documents.
	if b, _ := json.Marshal(&Document{}); string(b) != `{"version":0,"flags":{},"segments":{}}` {
		t.Errorf("empty document = %s", b)
	}
	if b, _ := json.Marshal(&Document{Flags: map[string]json.RawMessage{"a": nil}}); string(b) != `{"version":0,"flags":{"a":null},"segments":{}}` {
		t.Errorf("nil member = %s", b)
	}
	if _, err := json.Marshal(&Document{Flags: map[string]json.RawMessage{"a": json.RawMessage(`{`)}}); err == nil ||
		!strings.Contains(err.Error(), "flags: a:") {
		t.Errorf("invalid raw member: err = %v, want one naming the key", err)
	}
}

// TestCompileFromJSONWhitespace: the compiled result does not depend on how
// the document was formatted.
func TestCompileIndependentOfFormatting(t *testing.T) {
	pretty := `{
	  "flags": {
	    "a": {
	      "on": true, "variations": [ false, true ],
	      "rules": [ { "clauses": [ { "attribute": "x", "op": "in", "values": [ 1, {} ] } ], "serve": { "variation": 2 } } ],
	      "fallthrough": { "variation": 0 }
	    }
	  }
	}`
	d1, err := ParseDocument([]byte(pretty))
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(d1)
	d2, err := ParseDocument(compact)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := problemStrings(Compile(d1).Problems()), problemStrings(Compile(d2).Problems())
	if len(p1) != 2 {
		t.Errorf("problems = %q, want 2", p1)
	}
	if diff := cmp.Diff(p1, p2); diff != "" {
		t.Errorf("problems differ between pretty and compact (-pretty +compact):\n%s", diff)
	}
}

func TestNamedTwice(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1,"b":2}`:                "",
		`{"a":1,"b":{"c":1,"c":2}}`:    "", // nested members are the nested object's
		`{"a":1,"b":2,"a":3,"b":4}`:    "a",
		`{"role":"x","\u0072ole":"y"}`: "role",
		`[1,1]`:                        "",
		`{"a":1,"a":2`:                 "", // not JSON
		` {"k":[],"k":null} `:          "k",
	} {
		if got := NamedTwice([]byte(in)); got != want {
			t.Errorf("NamedTwice(%s) = %q, want %q", in, got, want)
		}
	}
}
