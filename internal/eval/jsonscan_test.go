package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

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
	`"\ud800\udc00"`, `"\udbff\udfff"`, `"\ud800\ud800\udc00"`, `"\ud800\n"`, `"\ud800\u0041"`, `"a\udfff"`,
	`{"\ud800":1}`, "{\"\xc3\":1}", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xc3\xa9\xe2\x82\xac\"",
	strings.Repeat("[", 64) + strings.Repeat("]", 64), strings.Repeat("[", 65) + strings.Repeat("]", 65),
	strings.Repeat(`{"a":`, 64) + "1" + strings.Repeat("}", 64), strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65),
	strings.Repeat("[", 64) + `{}` + strings.Repeat("]", 64), strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
}

// FuzzParseJSON holds parseJSON to encoding/json, but for the limits of
// SPEC §13 that encoding/json does not apply: parseJSON also rejects text
// nested deeper than MaxNesting (encoding/json: 10,000), invalid UTF-8 and
// lone surrogate escapes (encoding/json: replaced with U+FFFD). Those are
// told by nestingDepth and invalidText, written apart from the scanner.
func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := parseJSON(data)
		got := plain(tree)
		std := stdVerdictOf(t, data)
		checkParseJSONError(t, data, err, std)
		if err != nil {
			return
		}
		// reflect.DeepEqual first: cmp.Diff takes time exponential in the
		// depth of nested one-element arrays, and most inputs are equal.
		if !reflect.DeepEqual(std.value, got) {
			t.Fatalf("parseJSON(%q) differs from encoding/json (-want +got):\n%s", data, cmp.Diff(std.value, got))
		}
		if m, ok := std.value.(map[string]any); ok {
			checkSplitObject(t, data, m)
		}
	})
}

// stdVerdict is what encoding/json and SPEC §13's limits say of a text.
type stdVerdict struct {
	value   any   // encoding/json's decoding
	err     error // encoding/json's error
	ok      bool  // parseJSON must accept the text
	deep    bool  // valid for encoding/json but nested deeper than MaxNesting
	invalid bool  // valid for encoding/json but not UTF-8, or a lone surrogate escape
}

// stdVerdictOf decodes data with encoding/json, which must agree with
// json.Valid, and tells the limits apart with nestingDepth and invalidText.
func stdVerdictOf(t *testing.T, data []byte) stdVerdict {
	t.Helper()
	var v stdVerdict
	v.value, v.err = decodeStd(data)
	stdOK := v.err == nil && json.Valid(data)
	if v.err == nil != json.Valid(data) {
		t.Fatalf("encoding/json disagrees with itself on %q: Decode %v, Valid %v", data, v.err, json.Valid(data))
	}
	if stdOK {
		v.deep, v.invalid = nestingDepth(data) > MaxNesting, invalidText(data)
	}
	v.ok = stdOK && !v.deep && !v.invalid
	return v
}

// checkParseJSONError checks that parseJSON's error err on data is nil
// exactly when std accepts it, and says why when only one limit is hit.
func checkParseJSONError(t *testing.T, data []byte, err error, std stdVerdict) {
	t.Helper()
	if (err == nil) != std.ok {
		t.Fatalf("parseJSON(%q) error %v; want error %v (encoding/json %v, too deep %v, invalid text %v)",
			data, err, !std.ok, std.err, std.deep, std.invalid)
	}
	switch {
	case std.deep && !std.invalid && !errors.Is(err, ErrTooDeep):
		t.Fatalf("parseJSON(%q) error %v, want ErrTooDeep", data, err)
	case std.invalid && !std.deep && !errors.Is(err, ErrInvalidUTF8):
		t.Fatalf("parseJSON(%q) error %v, want ErrInvalidUTF8", data, err)
	}
}

// checkSplitObject checks that splitObject agrees with encoding/json's m
// on the object data: the same members with the same values.
func checkSplitObject(t *testing.T, data []byte, m map[string]any) {
	t.Helper()
	raw, _, err := splitObject(data, 1)
	if err != nil || len(raw) != len(m) {
		t.Fatalf("splitObject(%q) = %d members, %v; want %d", data, len(raw), err, len(m))
	}
	for k, r := range raw {
		v, err := decodeStd(r)
		if err != nil || !reflect.DeepEqual(v, m[k]) {
			t.Fatalf("splitObject(%q)[%q] = %s, want %v", data, k, r, m[k])
		}
	}
}

// nestingDepth returns how deep the valid JSON text data nests objects
// and arrays (0 for a scalar), as encoding/json's tokens tell it.
func nestingDepth(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// invalidText reports whether the valid JSON text data holds bytes that
// are not UTF-8 or a \u escape of a UTF-16 surrogate that is not half of
// a high-low pair.
func invalidText(data []byte) bool {
	if !utf8.Valid(data) {
		return true
	}
	high := false // the previous character of the string was a high half
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			if high {
				return true
			}
			continue
		}
		i++
		if data[i] != 'u' {
			if high {
				return true
			}
			continue
		}
		u, _ := strconv.ParseUint(string(data[i+1:i+5]), 16, 16)
		i += 4
		switch {
		case u >= 0xd800 && u < 0xdc00:
			if high {
				return true
			}
			high = true
		case u >= 0xdc00 && u < 0xe000:
			if !high {
				return true
			}
			high = false
		case high:
			return true
		}
	}
	return high
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

// FuzzSkimValue holds skimValue, the fast path of skipValue, to
// checkValue: the same verdict on every text at every nesting level, and
// the same end for the valid ones.
func FuzzSkimValue(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s), uint8(1))
	}
	f.Add([]byte(` {"a" : [ 1 , "x\u00e9" , true,false,null] } `), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, level uint8) {
		lvl := 1 + int(level)%(MaxNesting+1)
		skim := &scanner{data: data}
		ok := skim.skimValue(lvl)
		check := &scanner{data: data}
		err := check.checkValue(lvl)
		if ok != (err == nil) {
			t.Fatalf("skimValue(%q, level %d) = %v; checkValue: %v", data, lvl, ok, err)
		}
		if ok && skim.pos != check.pos {
			t.Fatalf("skimValue(%q, level %d) ends at %d; checkValue at %d", data, lvl, skim.pos, check.pos)
		}
	})
}

// TestArenaStringCache: a short string read again costs no allocation, and
// whatever shares its slot, every string read is the one the bytes hold.
func TestArenaStringCache(t *testing.T) {
	a := &arena{}
	email := []byte("email")
	a.str(email)
	if n := testing.AllocsPerRun(100, func() { a.str(email) }); n != 0 {
		t.Errorf("a cached string allocates %v times", n)
	}
	for i := range 5 * cachedStrings { // more strings than slots: slots are shared
		b := []byte("v" + strconv.Itoa(i))
		for range 2 {
			if got := a.str(b); got != string(b) {
				t.Fatalf("str(%q) = %v", b, got)
			}
		}
	}
	long := bytes.Repeat([]byte("x"), cachedStringLen+1)
	if got := a.str(long); got != string(long) {
		t.Fatalf("str of a long string = %v", got)
	}
}

// FuzzTree holds tree, the parser's loop for valid text, to value, its
// recursive reading: the same verdict at every nesting level, and for
// valid text the same tree and end.
func FuzzTree(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s), uint8(1))
	}
	f.Add([]byte(` {"on" : [ 1 , "x\u00e9" , true,false,null,{}, []] ,"a":{"b":{}}} `), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, level uint8) {
		lvl := 1 + int(level)%(MaxNesting+1)
		loop := &scanner{data: data, a: &arena{}}
		got, ok := loop.tree(lvl)
		rec := &scanner{data: data, a: &arena{}}
		want, err := rec.value(lvl)
		if ok != (err == nil) {
			t.Fatalf("tree(%q, level %d) ok %v; value: %v", data, lvl, ok, err)
		}
		if !ok {
			return
		}
		if loop.pos != rec.pos {
			t.Fatalf("tree(%q, level %d) ends at %d; value at %d", data, lvl, loop.pos, rec.pos)
		}
		if g, w := plain(got), plain(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("tree(%q) = %#v; value: %#v", data, g, w)
		}
	})
}
