package eval

import (
	"bytes"
	"hash/maphash"
)

// A flag's version changes at every write, and nothing else in its
// Definition depends on it: flags whose JSON differs only in the value of
// "version" share one Definition (see compiler.flag). versionOf finds that
// value without parsing the flag.

// versionSpan is where the value of a flag's top-level "version" member
// stands in its JSON (the last such member, which is the one the parser
// reads), and what it is. ok is false when the JSON has no such member, or
// holds anything but a plain integer literal there (0 or digits without a
// leading zero, within int64): the JSON is then compared whole.
type versionSpan struct {
	start, end int
	value      int64
	ok         bool
}

// versionOf finds the version in raw, a flag's JSON. It reads only the
// structure of the JSON (strings, brackets, separators); JSON it cannot
// follow gives ok false.
func versionOf(raw []byte) versionSpan {
	if v := versionAtEnd(raw); v.ok {
		return v
	}
	var v versionSpan
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return versionSpan{}
	}
	for i++; ; i++ {
		isVersion, start, end := topMember(raw, i)
		if end < 0 {
			return versionSpan{}
		}
		if isVersion { // the last one counts, as in the parser
			n, ok := plainInt(raw[start:end])
			v = versionSpan{start: start, end: end, value: n, ok: ok}
		}
		if i = skipWS(raw, end); i >= len(raw) {
			return versionSpan{}
		}
		if raw[i] == '}' {
			return v
		}
		if raw[i] != ',' {
			return versionSpan{}
		}
	}
}

// versionAtEnd finds the version where encoding/json, which writes an
// object's members in key order, puts it: last, as `,"version":12}` closing
// the JSON. The brace that ends the text closes the flag's object, so the
// member is a top-level one, and the last.
func versionAtEnd(raw []byte) versionSpan {
	end := len(raw) - 1
	if end < 0 || raw[end] != '}' {
		return versionSpan{}
	}
	start := end
	for start > 0 && raw[start-1] >= '0' && raw[start-1] <= '9' {
		start--
	}
	const name = `"version":`
	if k := start - len(name); k < 1 || string(raw[k:start]) != name || raw[k-1] != ',' && raw[k-1] != '{' {
		return versionSpan{}
	}
	n, ok := plainInt(raw[start:end])
	return versionSpan{start: start, end: end, value: n, ok: ok}
}

// topMember reads the object member whose key starts at i (after white
// space): whether its name is "version", and where its value starts and
// ends (end -1 when the JSON cannot be followed).
func topMember(raw []byte, i int) (isVersion bool, start, end int) {
	i = skipWS(raw, i)
	if i >= len(raw) || raw[i] != '"' {
		return false, 0, -1
	}
	keyStart := i + 1
	if i = endOfString(raw, i); i < 0 || bytes.IndexByte(raw[keyStart:i], '\\') >= 0 {
		return false, 0, -1 // an escaped name may spell "version": the parser judges it
	}
	isVersion = string(raw[keyStart:i-1]) == "version"
	if i = skipWS(raw, i); i >= len(raw) || raw[i] != ':' {
		return false, 0, -1
	}
	start = skipWS(raw, i+1)
	return isVersion, start, endOfValue(raw, start)
}

// hash hashes raw without its version's value, when v found it.
func (v versionSpan) hash(seed maphash.Seed, raw []byte) uint64 {
	if !v.ok {
		return maphash.Bytes(seed, raw)
	}
	var h maphash.Hash
	h.SetSeed(seed)
	h.Write(raw[:v.start])
	h.WriteByte(0) // no JSON text holds a NUL byte: the two parts stay apart
	h.Write(raw[v.end:])
	return h.Sum64()
}

// sameButVersion reports whether the flag JSON a and b (whose versionOf is
// vb) are the same but for their versions' values.
func sameButVersion(a, b []byte, vb versionSpan) bool {
	va := versionOf(a)
	if !va.ok || !vb.ok {
		return !va.ok && !vb.ok && bytes.Equal(a, b)
	}
	return bytes.Equal(a[:va.start], b[:vb.start]) && bytes.Equal(a[va.end:], b[vb.end:])
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index after the string whose opening quote is
// at i, or -1.
func endOfString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// endOfValue returns the index after the value starting at i, or -1. It
// follows strings and brackets only; the value's syntax is the parser's
// business.
func endOfValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = endOfString(b, i); i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// plainInt parses b when it is 0 or digits not starting with 0, within
// int64.
func plainInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 || b[0] == '0' && len(b) > 1 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
