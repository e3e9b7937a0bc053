package eval

import (
	"encoding/json"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// skipValue checks one value at the given nesting level (as value) and
// moves past it without building it: ParseDocument skips every flag
// through it.
func (s *scanner) skipValue(level int) error {
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
			return s.skipValue(level + 1)
		})
	case '[':
		return s.elements(level, ']', "after array element", func() error { return s.skipValue(level + 1) })
	case '"':
		return s.skipString()
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return s.skipNumber()
	}
	_, err := s.value(level)
	return err
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
// and none for growing its map.
func (s *scanner) rawMembersAt(level int) (map[string]json.RawMessage, error) {
	if level > MaxNesting {
		return nil, s.tooDeep(level)
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return map[string]json.RawMessage{}, nil
	}
	type rawMember struct {
		keyEnd int // in keys; the key starts where the previous one ends
		raw    json.RawMessage
	}
	var members []rawMember
	var keys []byte
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return nil, s.unexpected("looking for beginning of object key string")
		}
		var err error
		if keys, err = s.appendStr(keys); err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return nil, s.unexpected("after object key")
		}
		s.pos++
		s.skipSpace()
		start := s.pos
		if err := s.skipValue(level + 1); err != nil {
			return nil, err
		}
		members = append(members, rawMember{len(keys), json.RawMessage(s.data[start:s.pos:s.pos])})
		more, err := s.next('}', "after object key:value pair")
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	all := string(keys)
	out := make(map[string]json.RawMessage, len(members))
	from := 0
	for _, m := range members {
		out[all[from:m.keyEnd]] = m.raw
		from = m.keyEnd
	}
	return out, nil
}

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
