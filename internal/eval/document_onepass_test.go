package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parseDocumentTwoPass is ParseDocument as it was before it read documents
// in one pass: the top level split and checked, then flags and segments
// split again. FuzzParseDocumentOnePass holds the two to the same answers.
func parseDocumentTwoPass(data []byte) (*Document, error) {
	top, kind, err := splitObject(data, 1)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidDocument, err)
	}
	if kind == "null" {
		return nil, fmt.Errorf("%w: top level is null, want an object", ErrInvalidDocument)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: top level: got %s, want an object", ErrInvalidDocument, kind)
	}
	doc := &Document{}
	var errV, errF, errS error
	if errV = nullMember("version", top["version"], "an integer"); errV == nil {
		doc.Version, errV = parseVersion(top["version"])
	}
	if errF = nullMember("flags", top["flags"], "an object"); errF == nil {
		doc.Flags, errF = parseRawMap("flags", top["flags"], false)
	}
	if errS = nullMember("segments", top["segments"], "an object"); errS == nil {
		doc.Segments, errS = parseRawMap("segments", top["segments"], false)
	}
	if err := errors.Join(topTwice(topLevelTwice(data)), errV, errF, errS); err != nil {
		return nil, err
	}
	return doc, nil
}

// topLevelTwice is the first of version, flags and segments that the
// top-level object in data (valid JSON) names twice, read with
// encoding/json; "" when none.
func topLevelTwice(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return ""
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		if name, _ := k.(string); name == "version" || name == "flags" || name == "segments" {
			if seen[name] {
				return name
			}
			seen[name] = true
		}
	}
	return ""
}

func FuzzParseDocumentOnePass(f *testing.F) {
	addEvalDocuments(f)
	for _, s := range []string{``, `{"flags":`, "{\n\"version\": 1,\n\"flags\": {,}}", `{} {}`, `[]`, `null`, `17`,
		`{"flags":[]}`, `{"flags":{"a":{},"a":1}}`, `{"flags":{"a":{}},"flags":null}`, `{"flags":null,"flags":{"b":[]}}`,
		`{"segments":true}`, `{"version":"3"}`, `{"flags":{"\u00e9\\n":1,"x\ud800":2,"a\"b":3}}`, `{"flags":{"a":{"b":[[[]]]}}`,
		`{"version":1,"flags":{"a":1,"b":null},"segments":{"s":{}},"x":[1,{"flags":2}]}`, "{\"flags\":{\"a\x01\":1}}",
		`{"flags":{"a":1}`, `{"flags":{"a":1,}}`, `{"flags":{"a" 1}}`, `{"flags":{1:1}}`,
		// SPEC §13: nesting counted from the top, UTF-8 everywhere.
		`{"flags":{"a":` + nested(62) + `}}`, `{"flags":{"a":` + nested(63) + `}}`, `{"x":` + nested(64) + `}`,
		`{"flags":` + nested(64) + `}`, `{"segments":{"s":{"x":` + nested(62) + `}},"flags":{}}`,
		"{\"flags\":{\"a\xff\":1}}", "{\"flags\":{\"a\":\"\xed\xa0\x80\"}}", "{\"x\":\"\xc3\"}", `{"flags":{"a":"\udc00"}}`,
		`{"flags":{"\ud800":1}}`, `{"x":["\ud800\u0041"]}`, `{"flags":{"a":"\ud83d\ude00"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := parseDocumentTwoPass(data)
		got, gotErr := ParseDocument(data)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("ParseDocument(%q) error %v, two-pass %v", data, gotErr, wantErr)
		}
		// reflect.DeepEqual first: cmp.Diff walks a document by reflection
		// at every call, the most of an execution's time for a large one.
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("ParseDocument(%q) (-two-pass +one-pass):\n%s", data, cmp.Diff(want, got))
		}
		checkSplitReading(t, data, got, gotErr)
	})
}

// checkSplitReading checks that reading data with its flags and segments
// split in two halves, whatever its size, gives doc and err, the answer of
// reading them in one.
func checkSplitReading(t *testing.T, data []byte, doc *Document, err error) {
	t.Helper()
	split, splitErr := parseDocument(data, 1)
	if fmt.Sprint(splitErr) != fmt.Sprint(err) {
		t.Fatalf("parseDocument(%q) split: error %v, in one: %v", data, splitErr, err)
	}
	if !reflect.DeepEqual(split, doc) {
		t.Fatalf("parseDocument(%q) (-in one +split):\n%s", data, cmp.Diff(doc, split))
	}
}

// TestParseDocumentSplit: a large document read in two halves, one of them
// on another goroutine, reads as in one, when the second half's start is
// guessed right and when it is not (the pattern it looks for inside a
// string, an object past the middle that is not the flags), and fails with
// the same error wherever the document is wrong.
func TestParseDocumentSplit(t *testing.T) {
	flag := `{"on":true,"variations":[false,true],"fallthrough":{"variation":1},"description":"%s"}`
	doc := func(n int, sep string, desc func(i int) string, tail string) []byte {
		var b strings.Builder
		b.WriteString(`{"version":3,"flags":{`)
		for i := range n {
			if i > 0 {
				b.WriteString("," + sep)
			}
			fmt.Fprintf(&b, `"f%d":`+flag, i, desc(i))
		}
		b.WriteString("}" + tail + "}")
		return []byte(b.String())
	}
	plain := func(int) string { return "x" }
	tricky := func(int) string { return `a},` } // "a},", then the next member's quote: a wrong guess in every flag
	segments := `,"segments":{` + manySegments(2000) + `"t":{}}`
	cases := map[string][]byte{
		"compact":            doc(3000, "", plain, ""),
		"pretty":             doc(3000, "\n  ", plain, ""),
		"wrong guesses":      doc(3000, "", tricky, ""),
		"segments past half": doc(300, "", plain, segments),
	}
	for name, data := range cases {
		for _, broken := range []bool{false, true} {
			if broken {
				data = bytes.Clone(data)
				data[len(data)*3/4] = 0x01 // in the second half
			}
			want, wantErr := parseDocument(data, 0)
			if (wantErr != nil) != broken {
				t.Fatalf("%s, broken %v: %v", name, broken, wantErr)
			}
			checkSplitReading(t, data, want, wantErr)
			got, err := ParseDocument(data)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s, broken %v: ParseDocument differs from reading in one: %v, %v", name, broken, err, wantErr)
			}
		}
	}
}

// TestParseDocumentOwnsItsCopy: the Document never aliases the caller's
// buffer, which the caller may reuse, however large it is; an error in a
// large document is the one the two-pass reading reports.
func TestParseDocumentOwnsItsCopy(t *testing.T) {
	for _, n := range []int{10, 4000} {
		var b strings.Builder
		b.WriteString(`{"version":7,"flags":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"flag-%05d":{"on":true,"variations":[false,true],"fallthrough":{"variation":1},"description":"%s"}`, i, strings.Repeat("x", 40))
		}
		b.WriteString(`},"segments":{"s":{"included":["a"]}},"x":[1]}`)
		data := []byte(b.String())
		doc, err := ParseDocument(data)
		if err != nil {
			t.Fatalf("%d flags: %v", n, err)
		}
		want, _ := json.Marshal(doc)
		for i := range data {
			data[i] = ' ' // the caller reuses its buffer
		}
		if got, _ := json.Marshal(doc); string(got) != string(want) || doc.Version != 7 || len(doc.Flags) != n || doc.Segments["s"] == nil {
			t.Fatalf("%d flags: the document changed with the caller's buffer", n)
		}

		bad := []byte(b.String())
		bad[len(bad)/2] = '\x01' // inside some flag
		_, errOne := ParseDocument(bad)
		_, errTwo := parseDocumentTwoPass(bad)
		if errOne == nil || errOne.Error() != errTwo.Error() {
			t.Fatalf("%d flags, a control byte in the middle: %v, want %v", n, errOne, errTwo)
		}
	}
}

// manySegments is n segments s0, s1, … of one included key each, then a
// comma.
func manySegments(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"s%d":{"included":["a"]},`, i)
	}
	return b.String()
}
