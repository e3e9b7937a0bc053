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

// object is a decoded JSON object: its members in document order. Flag
// objects have a handful of members, so a slice scanned from the end (the
// last duplicate wins, as in encoding/json) is cheaper than a map.
// It is a pointer so that putting it in an interface does not allocate.
type object = *objNode

type objNode struct{ m []member }

// array is a decoded JSON array, a pointer for the same reason as object:
// a []any in an interface costs an allocation per array.
type array = *arrNode

type arrNode struct{ items []any }

// emptyArray is every empty array's node; trees are never written.
var emptyArray = &arrNode{items: []any{}}

type member struct {
	key string
	val any
}

// get returns the value of member name.
func (o *objNode) get(name string) (any, bool) {
	for i := len(o.m) - 1; i >= 0; i-- {
		if o.m[i].key == name {
			return o.m[i].val, true
		}
	}
	return nil, false
}

// val returns the value of member name, nil when absent.
func (o *objNode) val(name string) any {
	v, _ := o.get(name)
	return v
}

// arena hands out the memory of parse trees in chunks: compiling a document
// parses thousands of small objects and arrays, and one allocation per
// chunk instead of several per node is most of the parser's speed. Trees
// stay valid as long as they are referenced, until reset.
type arena struct {
	members []member  // chunk for objects' members
	nodes   []objNode // chunk for objects
	items   []any     // chunk for arrays' elements
	arrays  []arrNode // chunk for arrays
	mstack  []member  // members of the objects being parsed
	istack  []any     // elements of the arrays being parsed

	// strs holds the short strings already read, boxed: attribute names,
	// operators, values repeated across a document's flags. A repeated one
	// costs a lookup instead of two allocations, and compiled flags share
	// one copy of it.
	strs map[string]any
}

// Bounds of the arena's string cache: short strings are the ones that
// repeat, and a document of distinct values must not grow it without end.
const (
	cachedStringLen = 32
	cachedStrings   = 4096
)

// str returns the boxed string b holds, from the cache when it is short.
func (a *arena) str(b []byte) any {
	if a == nil || len(b) > cachedStringLen {
		return string(b)
	}
	if v, ok := a.strs[string(b)]; ok { // the compiler does not allocate for this conversion
		return v
	}
	s := string(b)
	var v any = s
	if len(a.strs) < cachedStrings {
		if a.strs == nil {
			a.strs = make(map[string]any)
		}
		a.strs[s] = v
	}
	return v
}

// reset makes the arena hand out its current chunks' memory again; the
// trees it handed out before must no longer be used. The chunks are not
// cleared: what they still point to is the previous tree's strings, soon
// overwritten, and clearing pointers costs write barriers while the GC runs.
func (a *arena) reset() {
	a.members, a.nodes, a.items, a.arrays = a.members[:0], a.nodes[:0], a.items[:0], a.arrays[:0]
}

// Chunks start small, so that compiling a patch of one flag stays cheap,
// and double up to arenaChunk for whole documents.
const (
	arenaFirstChunk = 16
	arenaChunk      = 512
)

func nextChunk(prev, need int) int {
	return max(need, min(arenaChunk, max(arenaFirstChunk, 2*prev)))
}

func (a *arena) object(ms []member) object {
	if cap(a.members)-len(a.members) < len(ms) {
		a.members = make([]member, 0, nextChunk(cap(a.members), len(ms)))
	}
	start := len(a.members)
	a.members = append(a.members, ms...)
	if len(a.nodes) == cap(a.nodes) {
		a.nodes = make([]objNode, 0, nextChunk(cap(a.nodes), 1))
	}
	a.nodes = append(a.nodes, objNode{m: a.members[start:len(a.members):len(a.members)]})
	return &a.nodes[len(a.nodes)-1]
}

func (a *arena) array(vs []any) array {
	if len(vs) == 0 {
		return emptyArray
	}
	if cap(a.items)-len(a.items) < len(vs) {
		a.items = make([]any, 0, nextChunk(cap(a.items), len(vs)))
	}
	start := len(a.items)
	a.items = append(a.items, vs...)
	if len(a.arrays) == cap(a.arrays) {
		a.arrays = make([]arrNode, 0, nextChunk(cap(a.arrays), 1))
	}
	a.arrays = append(a.arrays, arrNode{items: a.items[start:len(a.items):len(a.items)]})
	return &a.arrays[len(a.arrays)-1]
}

// plain converts a parsed tree to encoding/json's shapes (objects as
// maps), keeping json.Number.
func plain(v any) any {
	switch x := v.(type) {
	case object:
		m := make(map[string]any, len(x.m))
		for _, e := range x.m {
			m[e.key] = plain(e.val)
		}
		return m
	case array:
		out := make([]any, len(x.items))
		for i, e := range x.items {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// MaxNesting is how deep a JSON text may nest objects and arrays (SPEC §13),
// counted from its top: the top-level object of a document is level 1, its
// "flags" object level 2, a flag level 3. Deeper text is invalid. Real flags
// nest a handful of levels; the limit bounds the recursion of every parser
// that reads the text after us (encoding/json allows 10,000, and 10,000
// levels of a 40 KB request cost megabytes of trees and stack).
const MaxNesting = 64

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

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

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
	v, err := s.value(level)
	if err != nil {
		return nil, err
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
	clear((*stack)[base:]) // drop references for the GC
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
