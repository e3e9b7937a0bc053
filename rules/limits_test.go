package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The limits of SPEC §13 on JSON text: nesting and UTF-8.

// nested is n arrays, one in the other: n levels.
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// flagWithVariation is a well-formed flag whose one variation is v.
func flagWithVariation(v string) string {
	return `{"on":true,"variations":[` + v + `],"fallthrough":{"variation":0}}`
}

// compileOne compiles a document holding raw under key as a flag (or a
// segment), built without ParseDocument, as a server checks one admin
// write: the flag is checked on its own.
func compileOne(kind, key, raw string) *Snapshot {
	doc := &Document{Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	if kind == "segment" {
		doc.Segments[key] = json.RawMessage(raw)
	} else {
		doc.Flags[key] = json.RawMessage(raw)
	}
	return Compile(doc)
}

// oneProblem returns the problem of the flag or segment key, failing the
// test when it has none.
func oneProblem(t *testing.T, s *Snapshot, kind, key string) *Problem {
	t.Helper()
	var ps []*Problem
	if kind == "segment" {
		ps = s.Segment(key).Problems
	} else {
		ps = s.Flag(key).Problems
	}
	if len(ps) == 0 {
		t.Fatalf("%ss.%s: no problem, want one", kind, key)
	}
	return ps[0]
}

// TestDeepNestingRejected: the finding "JSON inflation" (a 40 KB admin PUT
// whose variation nests 9,990 levels deep). A JSON text nests at most 64
// levels counted from its top: a document's top-level object is level 1,
// "flags" 2, a flag 3, its "variations" 4, so a variation has 60 levels.
func TestDeepNestingRejected(t *testing.T) {
	docWith := func(variation string) string {
		return `{"version":1,"flags":{"deep":` + flagWithVariation(variation) + `}}`
	}
	for _, tc := range []struct {
		name string
		doc  string
		ok   bool
	}{
		{"variation at level 64", docWith(nested(60)), true},
		{"variation at level 65", docWith(nested(61)), false},
		{"the finding: 9,990 levels in 40 KB", docWith(nested(9990)), false},
		{"unknown top-level member at level 64", `{"x":` + nested(63) + `}`, true},
		{"unknown top-level member at level 65", `{"x":` + nested(64) + `}`, false},
		{"segment at level 65", `{"segments":{"s":{"included":[],"x":` + nested(62) + `}}}`, false},
		{"flags not an object, too deep", `{"flags":` + nested(64) + `}`, false},
		{"top level an array of 64", nested(64), false}, // invalid for its shape, not its depth
		{"top level an array of 65", nested(65), false},
		{"scalars do not count", `{"x":` + strings.Repeat(`{"a":`, 63) + `"s"` + strings.Repeat("}", 63) + `}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDocument([]byte(tc.doc))
			if tc.ok {
				if err != nil {
					t.Fatalf("ParseDocument: %v, want success", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidDocument) {
				t.Fatalf("ParseDocument error %v, want ErrInvalidDocument", err)
			}
			if tc.name != "top level an array of 64" && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("ParseDocument error %v, want ErrTooDeep", err)
			}
		})
	}

	t.Run("error names where", func(t *testing.T) {
		_, err := ParseDocument([]byte("{\n\"flags\":{\"deep\":" + flagWithVariation(nested(61)) + "}}"))
		const want = "flags: invalid document: line 2, column 102: objects and arrays nest deeper than 64 levels (this one would be level 65, counted from the top of the document)"
		if err == nil || err.Error() != want {
			t.Fatalf("ParseDocument error\n%v\nwant\n%s", err, want)
		}
	})

	t.Run("patch", func(t *testing.T) {
		for n, ok := range map[int]bool{60: true, 61: false} {
			_, err := ParsePatch([]byte(`{"version":2,"flags":{"deep":` + flagWithVariation(nested(n)) + `}}`))
			if (err == nil) != ok || !ok && !errors.Is(err, ErrTooDeep) {
				t.Errorf("ParsePatch of a variation of %d levels: %v, want ok %v", n, err, ok)
			}
		}
	})

	// A flag checked on its own (an admin write of its body, whose top
	// is level 1) counts its levels as in a document: one the document
	// could not hold is malformed, so it is refused and never served.
	t.Run("one flag or segment", func(t *testing.T) {
		for _, kind := range []string{"flag", "segment"} {
			raw := flagWithVariation(nested(60))
			if kind == "segment" {
				raw = `{"included":[],"x":` + nested(61) + `}`
			}
			if s := compileOne(kind, "deep", raw); s.Problems() != nil {
				t.Errorf("%s at level 64: %v, want no problem", kind, s.Problems())
			}
			raw = "[" + raw + "]" // one level more, and not an object: the depth is found first
			p := oneProblem(t, compileOne(kind, "deep", raw), kind, "deep")
			if !errors.Is(p, ErrTooDeep) || !errors.Is(p, ErrMalformed) || p.Path() != kind+"s.deep" {
				t.Errorf("%s one level deeper: problem %v, want %ss.deep wrapping ErrTooDeep", kind, p, kind)
			}
		}
		p := oneProblem(t, compileOne("flag", "deep", flagWithVariation(nested(9990))), "flag", "deep")
		if !errors.Is(p, ErrTooDeep) {
			t.Errorf("9,990 levels: %v, want ErrTooDeep", p)
		}
	})
}

// badStrings are JSON string literals that are not valid UTF-8 once
// decoded: invalid bytes, UTF-8 encodings of surrogates, and lone surrogate
// escapes (TestLoneSurrogateRejected).
var badUTF8Strings = []string{
	"\"\xff\"", "\"a\xfe\"", "\"\xc3\"", "\"\xc3(\"", "\"\xe2\x82\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
	"\"\xc0\xaf\"", "\"\\n\xff\"", // the second after an escape: decoded on the slow path
}

var loneSurrogates = []string{
	`"\ud800"`, `"\ud800x"`, `"x\udc00"`, `"\udc00\ud800"`, `"\ud800\ud800"`, `"\udbff\n"`, `"\ud800\u0041"`,
	`"\ud800\\udc00"`, `"\uDFFF"`, `"\ud800\udc00\udc00"`, `"\ud800\u"`,
}

// checkStringsRejected puts each string literal in every place a document,
// a patch and a flag compiled on its own can hold a string, and checks that
// each is rejected with want.
func checkStringsRejected(t *testing.T, literals []string, want error) {
	t.Helper()
	for _, lit := range literals {
		places := map[string]string{
			"variation":                 `{"flags":{"f":` + flagWithVariation(lit) + `}}`,
			"flag key":                  `{"flags":{` + lit + `:` + flagWithVariation("1") + `}}`,
			"unknown field of a flag":   `{"flags":{"f":{"x":` + lit + `}}}`,
			"unknown key of a flag":     `{"flags":{"f":{` + lit + `:1}}}`,
			"clause value":              `{"flags":{"f":{"rules":[{"clauses":[{"attribute":"a","op":"in","values":[` + lit + `]}]}]}}}`,
			"segment":                   `{"segments":{"s":{"included":[` + lit + `]}}}`,
			"unknown top-level member":  `{"meta":` + lit + `}`,
			"unknown top-level key":     `{` + lit + `:1}`,
			"deep in an unknown member": `{"meta":{"a":[1,{"b":` + lit + `}]}}`,
			"top-level string":          lit,
		}
		for place, doc := range places {
			if _, err := ParseDocument([]byte(doc)); !errors.Is(err, ErrInvalidDocument) || !errors.Is(err, want) {
				t.Errorf("ParseDocument with %q as %s: %v, want ErrInvalidDocument wrapping %v", lit, place, err, want)
			}
			if strings.HasPrefix(doc, `{"flags"`) {
				patch := `{"version":1,` + doc[1:]
				if _, err := ParsePatch([]byte(patch)); !errors.Is(err, ErrInvalidDocument) || !errors.Is(err, want) {
					t.Errorf("ParsePatch with %q as %s: %v, want ErrInvalidDocument wrapping %v", lit, place, err, want)
				}
			}
		}
		// One flag compiled on its own (an admin write): malformed.
		for place, raw := range map[string]string{
			"variation":               flagWithVariation(lit),
			"unknown field of a flag": `{"x":` + lit + `}`,
			"unknown key of a flag":   `{` + lit + `:1}`,
		} {
			p := oneProblem(t, compileOne("flag", "f", raw), "flag", "f")
			if !errors.Is(p, want) {
				t.Errorf("flag with %q as %s compiled alone: %v, want a problem wrapping %v", lit, place, p, want)
			}
		}
	}
}

// TestInvalidUTF8Rejected: the finding "Invalid UTF-8 and lone surrogates
// are served raw". Bytes that are not UTF-8, anywhere in a document, make
// it invalid: the server serves the raw bytes, unknown fields included.
func TestInvalidUTF8Rejected(t *testing.T) {
	checkStringsRejected(t, badUTF8Strings, ErrInvalidUTF8)

	_, err := ParseDocument([]byte("{\"flags\":{\"f\":{\"description\":\"ok\xff\"}}}"))
	const want = "flags: invalid document: line 1, column 33: string is not valid UTF-8: byte 0xff"
	if err == nil || err.Error() != want {
		t.Errorf("ParseDocument error\n%v\nwant\n%s", err, want)
	}

	// Valid UTF-8, U+FFFD itself included, is served as written.
	for _, v := range []string{`"é€😀"`, "\"\uFFFD\"", `"\ufffd"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\udbff\udfff"`} {
		doc, err := ParseDocument([]byte(`{"flags":{"f":` + flagWithVariation(v) + `}}`))
		if err != nil {
			t.Errorf("ParseDocument with variation %s: %v", v, err)
			continue
		}
		f := Compile(doc).Flag("f")
		if f.Err != nil {
			t.Errorf("variation %s: %v", v, f.Err)
			continue
		}
		var wantValue string
		if err := json.Unmarshal([]byte(v), &wantValue); err != nil {
			t.Fatal(err)
		}
		if got := f.Variations[0].Value; got != wantValue {
			t.Errorf("variation %s = %q, want %q", v, got, wantValue)
		}
	}
}

// TestLoneSurrogateRejected: the second half of "Invalid UTF-8 and lone
// surrogates are served raw". A \u escape of a UTF-16 surrogate must be
// the high half of a pair followed by the low half.
func TestLoneSurrogateRejected(t *testing.T) {
	checkStringsRejected(t, loneSurrogates, ErrInvalidUTF8)

	_, err := ParseDocument([]byte(`{"flags":{"f":{"x":"ab\ud800"}}}`))
	const want = `flags: invalid document: line 1, column 23: string is not valid UTF-8: lone surrogate \ud800`
	if err == nil || err.Error() != want {
		t.Errorf("ParseDocument error\n%v\nwant\n%s", err, want)
	}
	for i, lit := range []string{`"\ud83d\ude00"`, `"a\uD83D\uDE00b"`, `"\ud800\udc00\ud800\udc00"`} {
		if _, err := ParseDocument([]byte(fmt.Sprintf(`{"flags":{"f%d":{"x":%s}}}`, i, lit))); err != nil {
			t.Errorf("surrogate pair %s: %v", lit, err)
		}
	}
}
