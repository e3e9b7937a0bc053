package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small strict JSON parser (RFC 8259) for documents. encoding/json's
// decoding into interfaces was most of the cost of loading a document: this
// parser builds the same trees (objects as map[string]any, arrays as []any,
// numbers as json.Number) several times faster, and can split a document into
// raw per-flag slices without decoding them.

// MaxNesting is how deep a JSON text may nest objects and arrays (SPEC §13),
// counted from its top: the top-level object of a document is level 1, its
// "flags" object level 2, a flag level 3. Deeper text is invalid. Real flags
// nest a handful of levels; the limit bounds the recursion of every parser
// that reads the text after us (encoding/json allows 10,000, and 10,000
// levels of a 40 KB request cost megabytes of trees and stack).
const MaxNesting = 64

// TooDeepAt returns the offset of the first object or array of the JSON
// text data nested deeper than MaxNesting, or -1: the check of a context
// or a request body that encoding/json decodes (it allows 10,000 levels).
// It reads only brackets outside strings: data that is not JSON fails
// later, in decoding.
func TooDeepAt(data []byte) int {
	depth, inString := 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if depth++; depth > MaxNesting {
				return i
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return -1
}

// flagLevel is the nesting level of a flag or segment object in its
// document: {"flags": {"key": {...}}}.
const flagLevel = 3

// Errors a JSON text can fail with beyond its syntax (SPEC §13). They are
// wrapped by the errors of ParseDocument and ParsePatch and by the problem
// of a flag or segment compiled on its own.
var (
	// ErrTooDeep reports objects and arrays nested deeper than MaxNesting.
	ErrTooDeep = errors.New("objects and arrays nest deeper than 64 levels")
	// ErrInvalidUTF8 reports a string holding bytes that are not UTF-8 or a
	// \u escape of a lone UTF-16 surrogate: strings served must be UTF-8.
	ErrInvalidUTF8 = errors.New("string is not valid UTF-8")
)

// scanner reads one JSON text held in data.
type scanner struct {
	data []byte
	pos  int
	a    *arena

	// split is the size of text from which rawMembersAt reads the second
	// half of an object on another goroutine; 0: never.
	split int

	// twice is the first member name that the object rawMembersAt read
	// last holds more than once ("" when none): its map keeps the last.
	twice string
}

// syntaxError reports where parsing stopped, as line and column. err is
// the sentinel it wraps (ErrTooDeep, ErrInvalidUTF8), nil for plain syntax.
type syntaxError struct {
	msg        string
	line, col  int
	byteOffset int
	err        error
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.line, e.col, e.msg)
}

func (e *syntaxError) Unwrap() error { return e.err }

func (s *scanner) errorf(format string, args ...any) error {
	return s.fail(nil, format, args...)
}

// fail is errorf for an error that wraps sentinel.
func (s *scanner) fail(sentinel error, format string, args ...any) error {
	line, col := 1, 1
	for i := 0; i < s.pos && i < len(s.data); i++ {
		if s.data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &syntaxError{msg: fmt.Sprintf(format, args...), line: line, col: col, byteOffset: s.pos, err: sentinel}
}

// tooDeep is the error for an object or array at pos nested beyond
// MaxNesting; level is the level it would have.
func (s *scanner) tooDeep(level int) error {
	return s.fail(ErrTooDeep, "%v (this one would be level %d, counted from the top of the document)", ErrTooDeep, level)
}

func (s *scanner) skipSpace() { s.pos = spaceEnd(s.data, s.pos) }

// unexpected describes the byte at pos (or the end of input).
func (s *scanner) unexpected(context string) error {
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of JSON input")
	}
	return s.errorf("invalid character %q %s", s.data[s.pos], context)
}

// parseJSON decodes one complete JSON text into a tree: object, []any,
// string, json.Number, bool or nil.
func parseJSON(data []byte) (any, error) {
	return parseJSONIn(&arena{}, data, 1)
}

// parseJSONIn is parseJSON taking its memory from a, for a text whose top
// is at the given nesting level (1 for a text on its own, flagLevel for a
// flag or segment cut from a document).
func parseJSONIn(a *arena, data []byte, level int) (any, error) {
	a.mstack, a.istack = a.mstack[:0], a.istack[:0] // left over by a failed parse
	s := &scanner{data: data, a: a}
	v, ok := s.tree(level)
	if !ok { // read it again to say what is wrong
		a.mstack, a.istack = a.mstack[:0], a.istack[:0]
		a.dupNode, a.dupKey = nil, "" // the objects of the first reading are not the tree's
		s.pos = 0
		var err error
		if v, err = s.value(level); err != nil {
			return nil, err
		}
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return nil, s.unexpected("after top-level value")
	}
	return v, nil
}

// value reads the value at pos; an object or array there is at the given
// nesting level, and its members are at level+1.
func (s *scanner) value(level int) (any, error) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return nil, s.errorf("unexpected end of JSON input")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(level)
	case c == '[':
		return s.array(level)
	case c == '"':
		return s.strValue()
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == 'n':
		return nil, s.literal("null")
	}
	return nil, s.unexpected("looking for beginning of value")
}

// object reads the object at pos, at the given nesting level.
func (s *scanner) object(level int) (any, error) {
	base := len(s.a.mstack) // nested objects push above it and pop back to it
	err := s.elements(level, '}', "after object key:value pair", func() error {
		k, err := s.objectKey(keyIntern)
		if err != nil {
			return err
		}
		v, err := s.value(level + 1)
		s.a.mstack = append(s.a.mstack, member{k, v})
		return err
	})
	if err != nil {
		return nil, err
	}
	return popTo(&s.a.mstack, base, s.a.object), nil
}

// array reads the array at pos, at the given nesting level.
func (s *scanner) array(level int) (any, error) {
	base := len(s.a.istack)
	err := s.elements(level, ']', "after array element", func() error {
		v, err := s.value(level + 1)
		s.a.istack = append(s.a.istack, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return popTo(&s.a.istack, base, s.a.array), nil
}

// popTo builds a value of what *stack holds above base, and pops it: the
// members of an object or elements of an array just read.
func popTo[T, V any](stack *[]T, base int, build func([]T) V) V {
	v := build((*stack)[base:])
	// Not cleared: what the stack still points to is this tree's values,
	// garbage with it (see arena.reset), and clearing pointers costs write
	// barriers while the GC runs.
	*stack = (*stack)[:base]
	return v
}

// elements moves past the '{' or '[' at pos, an object's or array's at the
// given nesting level, and calls read for each of its members or elements
// until the closing byte end. value builds what read reads, skipValue only
// checks it.
func (s *scanner) elements(level int, end byte, context string, read func() error) error {
	if level > MaxNesting {
		return s.tooDeep(level)
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == end {
		s.pos++
		return nil
	}
	for {
		if err := read(); err != nil {
			return err
		}
		more, err := s.next(end, context)
		if err != nil || !more {
			return err
		}
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
		s.pos += len(lit)
		return nil
	}
	for i := 0; i < len(lit); i++ {
		if s.pos >= len(s.data) || s.data[s.pos] != lit[i] {
			return s.unexpected("in literal " + lit)
		}
		s.pos++
	}
	return nil
}

// number reads a JSON number: an integer part, then an optional fraction
// and exponent.
func (s *scanner) number() (any, error) {
	start := s.pos
	if err := s.skipNumber(); err != nil {
		return nil, err
	}
	return s.numberValue(s.data[start:s.pos]), nil
}

// skipNumber moves past the number at pos, checking its syntax: skipValue
// checks numbers without building them (boxing one allocates twice).
func (s *scanner) skipNumber() error {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return s.unexpected("in numeric literal")
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.unexpected("after decimal point in numeric literal")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.unexpected("in exponent of numeric literal")
		}
	}
	return nil
}

// digits moves past the decimal digits at pos and returns how many.
func (s *scanner) digits() int {
	start := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

// smallNumbers holds "0" to "99" already in interfaces: variation indexes
// and the like are most of a document's numbers, and boxing a json.Number
// costs two allocations.
var smallNumbers = func() [100]any {
	var t [100]any
	for i := range t {
		t[i] = json.Number(strconv.Itoa(i))
	}
	return t
}()

func (s *scanner) numberValue(b []byte) any {
	switch {
	case len(b) == 1 && b[0] >= '0' && b[0] <= '9':
		return smallNumbers[b[0]-'0']
	case len(b) == 2 && b[0] >= '1' && b[0] <= '9' && b[1] >= '0' && b[1] <= '9':
		return smallNumbers[(b[0]-'0')*10+b[1]-'0']
	}
	return json.Number(b)
}

// How objectKey treats the key it reads.
const (
	keyIntern = iota // decode, returning document member names as constants
	keyDecode        // decode
	keySkip          // only check it
)

// objectKey reads an object key and the colon after it, leaving pos at the
// member's value.
func (s *scanner) objectKey(mode int) (string, error) {
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return "", s.unexpected("looking for beginning of object key string")
	}
	var k string
	var err error
	switch mode {
	case keyIntern:
		k, err = s.key()
	case keyDecode:
		k, err = s.str()
	default:
		err = s.skipString()
	}
	if err != nil {
		return "", err
	}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return "", s.unexpected("after object key")
	}
	s.pos++
	return k, nil
}

// key reads an object key. The member names of the document format are
// returned as constants, without allocating.
func (s *scanner) key() (string, error) {
	start := s.pos + 1
	for i := start; i < len(s.data) && i-start <= 16; i++ {
		c := s.data[i]
		if c == '"' {
			if k := knownKey(s.data[start:i]); k != "" {
				s.pos = i + 1
				return k, nil
			}
			break
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	return s.str()
}

// knownKey returns the interned name of a field SPEC §1 defines, or "":
// the names of b's length are compared with it, without allocating.
func knownKey(b []byte) string {
	if len(b) >= len(knownKeys) {
		return ""
	}
	for _, k := range knownKeys[len(b)] {
		if string(b) == k { // the compiler does not allocate for this conversion
			return k
		}
	}
	return ""
}

// knownKeys holds the member names of the document format by length.
var knownKeys = func() (byLen [16][]string) {
	for _, k := range []string{
		"version", "on", "variations", "offVariation", "prerequisites", "flag", "variation", "targets", "attribute", "values", "rules", "id", "description", "clauses", "op", "negate", "serve", "rollout", "fallthrough", "salt", "bucketBy", "experiment", "weight", "schedule", "at", "weights", "tags", "deprecated", "included", "excluded", "key",
	} {
		byLen[len(k)] = append(byLen[len(k)], k)
	}
	return byLen
}()

// str reads a string starting at the opening quote.
func (s *scanner) str() (string, error) {
	s.pos++ // opening quote
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			v := string(s.data[start:s.pos])
			s.pos++
			return v, nil
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return "", s.unexpected("in string literal")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", s.badUTF8()
			}
			s.pos += size
		default:
			s.pos++
		}
	}
	return "", s.errorf("unexpected end of JSON input")
}

// badUTF8 is the error for the byte at pos, which starts no UTF-8 encoding
// of a character (encoding/json would replace it with U+FFFD; SPEC §13
// rejects it, so that every string served is the one written).
func (s *scanner) badUTF8() error {
	return s.fail(ErrInvalidUTF8, "%v: byte 0x%02x", ErrInvalidUTF8, s.data[s.pos])
}

// surrogatePair completes the UTF-16 surrogate r read from the \u escape
// at start, with pos after it: a high half followed by the \u escape of a
// low half is one character, and pos moves past both; anything else is a
// lone surrogate, which no UTF-8 string can hold.
func (s *scanner) surrogatePair(r rune, start int) (rune, error) {
	if r < 0xdc00 && len(s.data)-s.pos >= 6 && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
		save := s.pos
		s.pos += 2
		if low, ok := s.hex4(); ok && low >= 0xdc00 && low <= 0xdfff {
			return utf16.DecodeRune(r, low), nil
		}
		s.pos = save
	}
	s.pos = start
	return 0, s.fail(ErrInvalidUTF8, "%v: lone surrogate \\u%04x", ErrInvalidUTF8, r)
}

// strSlow decodes a string with escapes from start.
func (s *scanner) strSlow(start int) (string, error) {
	buf := make([]byte, 0, s.pos-start+16)
	buf = append(buf, s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(buf), nil
		case c < 0x20:
			return "", s.unexpected("in string literal")
		case c == '\\':
			var err error
			if buf, err = s.escape(buf); err != nil {
				return "", err
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", s.badUTF8()
			}
			buf = append(buf, s.data[s.pos:s.pos+size]...)
			s.pos += size
		default:
			buf = append(buf, c)
			s.pos++
		}
	}
	return "", s.errorf("unexpected end of JSON input")
}

// escapes maps the byte after a backslash to the byte it stands for, for
// the escapes of one byte.
var escapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// escape decodes the escape at pos (its backslash) onto buf.
func (s *scanner) escape(buf []byte) ([]byte, error) {
	s.pos++
	if s.pos >= len(s.data) {
		return buf, s.errorf("unexpected end of JSON input")
	}
	e := s.data[s.pos]
	s.pos++
	if b := escapes[e]; b != 0 {
		return append(buf, b), nil
	}
	if e != 'u' {
		s.pos--
		return buf, s.unexpected("in string escape code")
	}
	r, ok := s.hex4()
	if !ok {
		return buf, s.unexpected("in \\u hexadecimal character escape")
	}
	if utf16.IsSurrogate(r) {
		var err error
		if r, err = s.surrogatePair(r, s.pos-6); err != nil {
			return buf, err
		}
	}
	return utf8.AppendRune(buf, r), nil
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.data)-s.pos < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.data[s.pos:s.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.pos += 4
	return rune(v), true
}

// strValue is str for a string value, boxed: a plain string (no escape,
// ASCII) comes through the arena's cache.
func (s *scanner) strValue() (any, error) {
	start := s.pos + 1
	for i := start; i < len(s.data); i++ {
		c := s.data[i]
		if c == '"' {
			s.pos = i + 1
			return s.a.str(s.data[start:i]), nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	v, err := s.str()
	return v, err
}
