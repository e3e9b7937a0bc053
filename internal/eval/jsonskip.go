package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// skipValue checks one value at the given nesting level (as value) and
// moves past it without building it: ParseDocument skips every flag
// through it.
//
// Valid text goes through skimValue, a loop without recursion or closures
// (ParseDocument of 10,000 distinct flags took 3.9 ms instead of 5.0 when
// it came); anything it does not accept is read again by checkValue, which
// says what is wrong and where.
func (s *scanner) skipValue(level int) error {
	start := s.pos
	if s.skimValue(level) {
		return nil
	}
	s.pos = start
	return s.checkValue(level)
}

// checkValue is skipValue reading the value recursively, one method per
// kind of value: slower, and exact about what is wrong.
func (s *scanner) checkValue(level int) error {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of JSON input")
	}
	switch s.data[s.pos] {
	case '{':
		return s.elements(level, '}', "after object key:value pair", func() error {
			if _, err := s.objectKey(keySkip); err != nil {
				return err
			}
			return s.checkValue(level + 1)
		})
	case '[':
		return s.elements(level, ']', "after array element", func() error { return s.checkValue(level + 1) })
	case '"':
		return s.skipString()
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return s.skipNumber()
	}
	_, err := s.value(level)
	return err
}

// skimValue moves past the valid value at pos, at the given nesting level,
// and reports true; it reports false, with pos anywhere, for anything else.
// It holds the open objects and arrays in an array rather than on the call
// stack, and strings and the separators after them (most of a document)
// in this one loop; a string with an escape or a character beyond ASCII
// goes to skipString, a number to skipNumber.
func (s *scanner) skimValue(level int) bool {
	data, i := s.data, s.pos
	var closers [MaxNesting + 1]byte // the closing byte of each open object or array
	depth := 0                       // how many are open
	for {
		// A value starts at i (after spaces).
		i = spaceEnd(data, i)
		switch c := byteAt(data, i); c {
		case '"':
			if !s.skimString(&i) {
				return false
			}
		case '{', '[':
			opened, ok := s.skimOpen(&i, c, level+depth)
			if !ok {
				return false
			}
			if opened {
				closers[depth] = c + 2 // '}' is '{'+2, ']' is '['+2
				depth++
				continue // its first value
			}
		default:
			if i = s.skimScalar(i); i < 0 {
				return false
			}
		}
		// A value was read: a separator or closing bytes follow, unless it
		// was the whole value.
		for {
			if depth == 0 {
				s.pos = i
				return true
			}
			i = spaceEnd(data, i)
			c := byteAt(data, i)
			if c == ',' {
				i++
				if closers[depth-1] == '}' && !s.skimKey(&i) {
					return false
				}
				break // the next value
			}
			if c != closers[depth-1] {
				return false
			}
			i++
			depth--
		}
	}
}

// skimOpen moves *i past the '{' or '[' there, c, of an object or array at
// the given level: past its end too when it is empty (opened false), else
// up to its first value (opened true).
func (s *scanner) skimOpen(i *int, c byte, level int) (opened, ok bool) {
	if level > MaxNesting {
		return false, false
	}
	j := spaceEnd(s.data, *i+1)
	if j < len(s.data) && s.data[j] == c+2 {
		*i = j + 1
		return false, true
	}
	*i = j
	return true, c == '[' || s.skimKey(i)
}

// byteAt returns data[i], or 0 past its end (0 starts no JSON token).
func byteAt(data []byte, i int) byte {
	if i < len(data) {
		return data[i]
	}
	return 0
}

// skimScalar returns where the number, true, false or null at i ends, or -1.
func (s *scanner) skimScalar(i int) int {
	if c := byteAt(s.data, i); c == '-' || c >= '0' && c <= '9' {
		s.pos = i
		if s.skipNumber() != nil {
			return -1
		}
		return s.pos
	}
	if n := literalLen(s.data[i:]); n > 0 {
		return i + n
	}
	return -1
}

// literalLen is the length of the true, false or null data starts with,
// or 0.
func literalLen(data []byte) int {
	var lit string
	switch byteAt(data, 0) {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	case 'n':
		lit = "null"
	}
	if lit != "" && len(data) >= len(lit) && string(data[:len(lit)]) == lit {
		return len(lit)
	}
	return 0
}

// skimKey moves *i past an object key, the colon after it and the spaces
// around them, for skimValue.
func (s *scanner) skimKey(i *int) bool {
	j := spaceEnd(s.data, *i)
	if j >= len(s.data) || s.data[j] != '"' || !s.skimString(&j) {
		return false
	}
	j = spaceEnd(s.data, j)
	if j >= len(s.data) || s.data[j] != ':' {
		return false
	}
	*i = j + 1
	return true
}

// skimString moves *i past the string starting there, for skimValue.
func (s *scanner) skimString(i *int) bool {
	data := s.data
	j := *i + 1
	for j < len(data) && plainByte[data[j]] {
		j++
	}
	if j < len(data) && data[j] == '"' {
		*i = j + 1
		return true
	}
	s.pos = *i
	if s.skipString() != nil {
		return false
	}
	*i = s.pos
	return true
}

// spaceEnd returns where the JSON whitespace from i ends.
func spaceEnd(data []byte, i int) int {
	for i < len(data) && data[i] <= ' ' && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// next moves past the separator after a member or element: it reports more
// after a comma, and false after the closing byte.
func (s *scanner) next(closing byte, context string) (more bool, err error) {
	s.skipSpace()
	if s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ',':
			s.pos++
			return true, nil
		case closing:
			s.pos++
			return false, nil
		}
	}
	return false, s.unexpected(context)
}

// skipString validates a string without decoding it, UTF-8 included.
func (s *scanner) skipString() error {
	s.pos++
	for s.pos < len(s.data) {
		if plainByte[s.data[s.pos]] { // most bytes: one test
			s.pos++
			continue
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return nil
		case c == '\\':
			s.pos++
			if s.pos >= len(s.data) {
				return s.errorf("unexpected end of JSON input")
			}
			switch s.data[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				s.pos++
				r, ok := s.hex4()
				if !ok {
					return s.unexpected("in \\u hexadecimal character escape")
				}
				if utf16.IsSurrogate(r) {
					if _, err := s.surrogatePair(r, s.pos-6); err != nil {
						return err
					}
				}
			default:
				return s.unexpected("in string escape code")
			}
		case c < 0x20:
			return s.unexpected("in string literal")
		default: // c >= utf8.RuneSelf
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return s.badUTF8()
			}
			s.pos += size
		}
	}
	return s.errorf("unexpected end of JSON input")
}

// plainByte tells the bytes a JSON string holds as they are: ASCII but
// for the quote, the backslash and control characters.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// wholeObject is rawMembers of data, which must hold that object and
// nothing after it.
func (s *scanner) wholeObject(level int) (map[string]json.RawMessage, error) {
	m, err := s.rawMembers(level)
	if err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return nil, s.unexpected("after top-level value")
	}
	return m, nil
}

// rawMembers splits the object starting at pos, at the given nesting
// level, into its members' raw values (sub-slices of data), checking every
// value's syntax; errNotObject when pos is not at an object.
func (s *scanner) rawMembers(level int) (map[string]json.RawMessage, error) {
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return nil, errNotObject
	}
	return s.rawMembersAt(level)
}

// rawMembersAt is rawMembers of the object at pos.
//
// The members are gathered first and the map is built at its final size;
// the keys are decoded into one buffer and become substrings of one string:
// a document of thousands of flags then costs one allocation for its keys
// and none for growing its map. The members gathered are offsets, without
// pointers, in buffers used again by the next document: loading a large
// one allocates only what it keeps.
func (s *scanner) rawMembersAt(level int) (map[string]json.RawMessage, error) {
	if level > MaxNesting {
		return nil, s.tooDeep(level)
	}
	s.twice = ""
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return map[string]json.RawMessage{}, nil
	}
	buf := memberBuffers.Get().(*memberBuffer)
	defer memberBuffers.Put(buf)
	buf.members, buf.keys = buf.members[:0], buf.keys[:0]
	var second *secondHalf
	if s.split > 0 && len(s.data)-s.pos >= s.split {
		second = s.readSecondHalf(level)
	}
	for {
		more, err := s.member(level, buf)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		if second == nil {
			continue
		}
		if s.skipSpace(); s.pos < second.start {
			continue
		}
		if s.pos == second.start && second.join(s, buf) {
			break
		}
		second = nil // passed its start, or it failed: read on alone
	}
	members, keys := buf.members, buf.keys
	all := string(keys)
	out := make(map[string]json.RawMessage, len(members))
	from := 0
	for _, m := range members {
		out[all[from:m.keyEnd]] = json.RawMessage(s.data[m.start:m.end:m.end])
		from = m.keyEnd
	}
	if len(out) < len(members) {
		s.twice = firstRepeated(all, members)
	}
	return out, nil
}

// firstRepeated returns the first of members' names (substrings of all)
// that an earlier member has. It runs only when there is one.
func firstRepeated(all string, members []rawMember) string {
	seen := make(map[string]bool, len(members))
	from := 0
	for _, m := range members {
		k := all[from:m.keyEnd]
		if seen[k] {
			return k
		}
		seen[k], from = true, m.keyEnd
	}
	return ""
}

// member reads the object member at pos, at the given level (that of the
// object), into b, and the comma or closing brace after it: more reports a
// comma.
func (s *scanner) member(level int, b *memberBuffer) (more bool, err error) {
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return false, s.unexpected("looking for beginning of object key string")
	}
	if b.keys, err = s.appendStr(b.keys); err != nil {
		return false, err
	}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return false, s.unexpected("after object key")
	}
	s.pos++
	s.skipSpace()
	start := s.pos
	if err := s.skipValue(level + 1); err != nil {
		return false, err
	}
	b.members = append(b.members, rawMember{len(b.keys), start, s.pos})
	return s.next('}', "after object key:value pair")
}

// splitSize is the size of text from which ParseDocument reads the second
// half of its flags (or segments) on another goroutine.
const splitSize = 256 << 10

// secondHalf is the second half of a large object, read on its own
// goroutine from start, a guess at where a member begins: the first key
// after the middle of the text that follows a '}' and a comma (the end of
// an object member, as a document's flags are). The guess may be wrong
// (that pattern inside a string): the reading is used only if the first
// half's reading, member by member, reaches start exactly; from there,
// JSON reads the same whatever came before.
type secondHalf struct {
	start int
	done  chan halfRead // one value, when the reading ends
}

type halfRead struct {
	buf *memberBuffer
	end int // where the object ends, past its '}'
	err error
}

// readSecondHalf starts reading the second half of the object being read
// at the given level, or returns nil when it finds no start to guess.
func (s *scanner) readSecondHalf(level int) *secondHalf {
	start := guessMemberStart(s.data, s.pos+(len(s.data)-s.pos)/2)
	if start < 0 {
		return nil
	}
	h := &secondHalf{start: start, done: make(chan halfRead, 1)}
	go func() {
		r := &scanner{data: s.data, pos: start}
		buf := memberBuffers.Get().(*memberBuffer)
		buf.members, buf.keys = buf.members[:0], buf.keys[:0]
		for {
			more, err := r.member(level, buf)
			if err != nil || !more {
				h.done <- halfRead{buf, r.pos, err}
				return
			}
		}
	}()
	return h
}

// join appends to b the second half's members, which s has reached the
// start of, and moves s past the object; false, with nothing done, when
// the second half failed (s then reads it again itself, and says what is
// wrong).
func (h *secondHalf) join(s *scanner, b *memberBuffer) bool {
	r := <-h.done
	defer memberBuffers.Put(r.buf)
	if r.err != nil {
		return false
	}
	base := len(b.keys)
	b.keys = append(b.keys, r.buf.keys...)
	for _, m := range r.buf.members {
		m.keyEnd += base
		b.members = append(b.members, m)
	}
	s.pos = r.end
	return true
}

// guessMemberStart returns the position of the first '"' from from that
// follows a '}' and a comma (with JSON spaces around them), or -1.
func guessMemberStart(data []byte, from int) int {
	for from < len(data) {
		i := bytes.IndexByte(data[from:], '}')
		if i < 0 {
			return -1
		}
		j := spaceEnd(data, from+i+1)
		if j < len(data) && data[j] == ',' {
			if k := spaceEnd(data, j+1); k < len(data) && data[k] == '"' {
				return k
			}
		}
		from += i + 1
	}
	return -1
}

// rawMember is where rawMembersAt found a member: its key ends at keyEnd
// in the keys buffer (it starts where the previous one ends), its value
// is data[start:end].
type rawMember struct{ keyEnd, start, end int }

// memberBuffer is rawMembersAt's scratch memory.
type memberBuffer struct {
	members []rawMember
	keys    []byte
}

var memberBuffers = sync.Pool{New: func() any { return new(memberBuffer) }}

// appendStr is str appending the decoded string to b.
func (s *scanner) appendStr(b []byte) ([]byte, error) {
	start := s.pos + 1
	for i := start; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.pos = i + 1
			return append(b, s.data[start:i]...), nil
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			v, err := s.str() // escapes, errors and non-ASCII
			return append(b, v...), err
		}
	}
	v, err := s.str()
	return append(b, v...), err
}

var errNotObject = errors.New("want an object")
