package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// ErrInvalidDocument reports a document rejected whole: it is not JSON, or its
// top level has the wrong shape (SPEC §1). Problems inside one flag or segment
// never produce it; they make only that flag or segment malformed.
var ErrInvalidDocument = errors.New("flags: invalid document")

// Document is a flag document as it travels: the snapshot version and the raw
// JSON of every flag and segment. Keeping the raw bytes lets a server republish
// fields it does not know (forward compatibility) and lets compilation reuse the
// work done for flags whose bytes did not change.
//
// A Document is immutable once built; Apply returns a new one.
type Document struct {
	Version  int64                      `json:"version"`  // the snapshot version, above the previous one
	Flags    map[string]json.RawMessage `json:"flags"`    // each flag's JSON by key, kept as written
	Segments map[string]json.RawMessage `json:"segments"` // each segment's JSON by key, kept as written
}

// Patch is the data of a patch stream event: the new snapshot version and the
// flags and segments that changed. A nil (JSON null) entry deletes the key.
type Patch struct {
	Version  int64                      `json:"version"`            // the snapshot version, above the previous one
	Flags    map[string]json.RawMessage `json:"flags,omitempty"`    // the changed flags by key; a nil entry deletes the flag
	Segments map[string]json.RawMessage `json:"segments,omitempty"` // the changed segments by key; a nil entry deletes the segment
}

// ParseDocument decodes a document. It fails, wrapping ErrInvalidDocument, only
// when data is not JSON, its top level has the wrong shape, or it names a
// flag or segment key, or a top-level member, twice.
//
// It reads the document in one pass: the members of flags and segments are
// split while the top level is checked, rather than checked once as part of
// the top level and split again.
func ParseDocument(data []byte) (*Document, error) {
	return parseDocument(data, splitSize)
}

// parseDocument is ParseDocument reading the second half of an object of
// split bytes or more on another goroutine (0: never).
func parseDocument(data []byte, split int) (*Document, error) {
	// One copy, so that the raw flags (sub-slices) never alias the caller's
	// buffer, which it may reuse.
	data = bytes.Clone(data)
	s := &scanner{data: data, split: split}
	s.skipSpace()
	if s.pos >= len(data) || data[s.pos] != '{' {
		_, kind, err := splitObject(data, 1) // not an object: say what it is
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
		}
		if kind == "null" {
			return nil, fmt.Errorf("%w: top level is null, want an object", ErrInvalidDocument)
		}
		return nil, fmt.Errorf("%w: top level: got %s, want an object", ErrInvalidDocument, kind)
	}
	top, err := s.topLevel()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	s.skipSpace()
	if s.pos != len(data) {
		return nil, fmt.Errorf("%w: %v", ErrInvalidDocument, s.unexpected("after top-level value"))
	}
	doc := &Document{}
	var errV, errF, errS error
	// A member written null is not an integer or an object (SPEC §1): the
	// document is invalid, as with any other wrong type. (Absent is fine.)
	if errV = nullMember("version", top.version, "an integer"); errV == nil {
		doc.Version, errV = parseVersion(top.version)
	}
	if errF = nullMember("flags", top.flagsRaw, "an object"); errF == nil {
		doc.Flags, errF = documentMembers("flags", top.flagsRaw, top.flags, top.flagsTwice)
	}
	if errS = nullMember("segments", top.segmentsRaw, "an object"); errS == nil {
		doc.Segments, errS = documentMembers("segments", top.segmentsRaw, top.segments, top.segmentsTwice)
	}
	if err := errors.Join(topTwice(top.twice), errV, errF, errS); err != nil {
		return nil, err // every one wrong, not only the first (a push lists each)
	}
	return doc, nil
}

// nullMember is the error of a top-level member of a document written as
// null, where want is required; nil when it is absent or not null.
func nullMember(field string, raw json.RawMessage, want string) error {
	if raw != nil && isNull(raw) {
		return fmt.Errorf("%w: %s: got null, want %s", ErrInvalidDocument, field, want)
	}
	return nil
}

// topLevel is what a document's top-level object holds: the raw version,
// flags and segments, the members of the last two split while they were
// read.
type topLevel struct {
	version, flagsRaw, segmentsRaw json.RawMessage
	flags, segments                map[string]json.RawMessage
	flagsTwice, segmentsTwice      error  // a key named twice in flags, in segments (see namedTwice)
	twice                          string // the first of version, flags and segments named twice, "" when none
	seen                           [3]bool
}

// keep records the top-level member k, raw, and its members (flags and
// segments, with the namedTwice error twice); the last of a name wins.
func (top *topLevel) keep(k string, raw json.RawMessage, members map[string]json.RawMessage, twice error) {
	if i := slices.Index(topMembers, k); i >= 0 {
		if top.seen[i] && top.twice == "" {
			top.twice = k
		}
		top.seen[i] = true
	}
	switch k {
	case "version":
		top.version = raw
	case "flags":
		top.flagsRaw, top.flags, top.flagsTwice = raw, members, twice
	case "segments":
		top.segmentsRaw, top.segments, top.segmentsTwice = raw, members, twice
	}
}

// topLevel reads the members of the top-level object, whose '{' is at
// s.pos. Of a member named twice it keeps the last, as encoding/json does,
// and notes the name in twice (a document naming version, flags or
// segments twice is invalid; other members are not read).
func (s *scanner) topLevel() (topLevel, error) {
	var top topLevel
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return top, nil
	}
	for {
		k, err := s.objectKey(keyDecode)
		if err != nil {
			return top, err
		}
		s.skipSpace()
		start := s.pos
		var members map[string]json.RawMessage
		s.twice = ""
		if (k == "flags" || k == "segments") && s.pos < len(s.data) && s.data[s.pos] == '{' {
			members, err = s.rawMembersAt(2)
		} else {
			err = s.skipValue(2)
		}
		if err != nil {
			return top, err
		}
		top.keep(k, json.RawMessage(s.data[start:s.pos:s.pos]), members, s.namedTwice(k))
		more, err := s.next('}', "after object key:value pair")
		if err != nil {
			return top, err
		}
		if !more {
			return top, nil
		}
	}
}

// NamedTwice returns the first member name that the JSON object obj holds
// twice among its own members (not nested ones), or "" when none does or
// obj is not an object. Readers of other JSON files (a tokens file) refuse
// such objects as documents do.
func NamedTwice(obj []byte) string {
	s := &scanner{data: obj}
	if _, err := s.wholeObject(1); err != nil {
		return ""
	}
	return s.twice
}

// topMembers are the members of a document's top level that SPEC §1
// defines.
var topMembers = []string{"version", "flags", "segments"}

// topTwice is the error of a document whose top level names member twice
// (nil when member is ""): the first would be dropped unseen.
func topTwice(member string) error {
	if member == "" {
		return nil
	}
	return fmt.Errorf("%w: %s: named twice at the top level; a document holds one", ErrInvalidDocument, member)
}

// namedTwice refuses the flags or segments object (field) just read when it
// names a key twice. Which one would be served is anybody's guess: JSON
// leaves a duplicate's meaning to each reader (encoding/json keeps the
// last, other SDKs the first or neither), and the person who wrote it meant
// one of them. The folder store refuses a key two files define likewise.
func (s *scanner) namedTwice(field string) error {
	if s.twice == "" {
		return nil
	}
	what := "flag"
	if field == "segments" {
		what = "segment"
	}
	at := field + "." + s.twice
	if !ValidKey(s.twice) {
		at = fmt.Sprintf("%s: %q", field, s.twice)
	}
	return fmt.Errorf("%s: named twice; a document holds one %s per key", at, what)
}

// documentMembers is parseRawMap for a document whose flags or segments
// member, raw, was split into members while it was read (nil when it is
// not an object), twice the namedTwice error found then.
func documentMembers(field string, raw json.RawMessage, members map[string]json.RawMessage, twice error) (map[string]json.RawMessage, error) {
	if twice != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, twice)
	}
	if members != nil {
		return members, nil
	}
	return parseRawMap(field, raw, false)
}

// ParsePatch decodes the data of a patch event. Its top level must be an
// object with an integer version; flags and segments, when present, must be
// objects whose values are objects or null.
func ParsePatch(data []byte) (*Patch, error) {
	data = bytes.Clone(data)
	top, kind, err := splitObject(data, 1)
	if err != nil {
		return nil, fmt.Errorf("%w: patch: %w", ErrInvalidDocument, err)
	}
	if top == nil {
		if kind == "null" {
			return nil, fmt.Errorf("%w: patch is null", ErrInvalidDocument)
		}
		return nil, fmt.Errorf("%w: patch: top level: got %s, want an object", ErrInvalidDocument, kind)
	}
	if _, ok := top["version"]; !ok {
		return nil, fmt.Errorf("%w: patch: version: missing", ErrInvalidDocument)
	}
	p := &Patch{}
	if p.Version, err = parseVersion(top["version"]); err != nil {
		return nil, err
	}
	if p.Flags, err = parseRawMap("flags", top["flags"], true); err != nil {
		return nil, err
	}
	if p.Segments, err = parseRawMap("segments", top["segments"], true); err != nil {
		return nil, err
	}
	return p, nil
}

func parseVersion(raw json.RawMessage) (int64, error) {
	if raw == nil || isNull(raw) {
		return 0, nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, fmt.Errorf("%w: version: %v", ErrInvalidDocument, err)
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%w: version: got %s, want an integer", ErrInvalidDocument, jsonKind(v))
	}
	i, err := n.Int64()
	if err != nil || i < 0 {
		return 0, fmt.Errorf("%w: version: %s is not an integer >= 0", ErrInvalidDocument, n)
	}
	return i, nil
}

// parseRawMap decodes an object of objects, the member field of a document
// or patch (nesting level 2). Null members are kept (as nil)
// only when allowNull is set (patches); in a document they make the flag
// malformed later, not the document invalid, so they are kept as the raw null.
func parseRawMap(field string, raw json.RawMessage, allowNull bool) (map[string]json.RawMessage, error) {
	if raw == nil || isNull(raw) {
		return map[string]json.RawMessage{}, nil
	}
	if first := firstByte(raw); first != '{' {
		return nil, fmt.Errorf("%w: %s: want an object", ErrInvalidDocument, field)
	}
	s := &scanner{data: raw}
	out, err := s.wholeObject(2) // a member of the top level
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidDocument, field, err)
	}
	if err := s.namedTwice(field); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	if allowNull {
		for k, v := range out {
			if isNull(v) {
				out[k] = nil
			}
		}
	}
	return out, nil
}

// Apply returns the document that results from applying p to d. It does not
// check p.Version; that is the caller's protocol decision.
func (d *Document) Apply(p *Patch) *Document {
	out := &Document{
		Version:  p.Version,
		Flags:    maps.Clone(d.Flags),
		Segments: maps.Clone(d.Segments),
	}
	if out.Flags == nil {
		out.Flags = map[string]json.RawMessage{}
	}
	if out.Segments == nil {
		out.Segments = map[string]json.RawMessage{}
	}
	applyRaw(out.Flags, p.Flags)
	applyRaw(out.Segments, p.Segments)
	return out
}

func applyRaw(dst, changes map[string]json.RawMessage) {
	for k, v := range changes {
		if v == nil || isNull(v) {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}

// MarshalJSON encodes the document with its keys sorted, so equal documents
// encode to equal bytes.
func (d *Document) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	// Sized once: growing a buffer of megabytes by doubling cost more than
	// the encoding (a 10 MB document took half a second on a busy machine).
	b.Grow(64 + RawMapSize(d.Flags) + RawMapSize(d.Segments))
	fmt.Fprintf(&b, `{"version":%d,"flags":`, d.Version)
	if err := writeRawMap(&b, d.Flags); err != nil {
		return nil, err
	}
	b.WriteString(`,"segments":`)
	if err := writeRawMap(&b, d.Segments); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// RawMapSize is about the bytes a JSON object of m's members takes (what
// writeRawMap writes, or the server's patch encoder): a capacity to grow a
// buffer to once, not a bound (keys are escaped, values compacted).
func RawMapSize(m map[string]json.RawMessage) int {
	n := 2
	for k, v := range m {
		n += len(k) + 4 + max(len(v), 4)
	}
	return n
}

func writeRawMap(b *bytes.Buffer, m map[string]json.RawMessage) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		v := m[k]
		if v == nil {
			b.WriteString("null")
			continue
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return fmt.Errorf("flags: %s: %w", k, err)
		}
		b.Write(c.Bytes())
	}
	b.WriteByte('}')
	return nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func firstByte(raw json.RawMessage) byte {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return 0
	}
	return t[0]
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case []any, array:
		return "an array"
	case map[string]any, object:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// splitObject splits a JSON text that is an object into its members' raw
// values; its top is at the given nesting level. For valid JSON that is not
// an object it returns a nil map and the kind of value ("null", "an array"...).
func splitObject(data []byte, level int) (map[string]json.RawMessage, string, error) {
	s := &scanner{data: data}
	s.skipSpace()
	if s.pos < len(data) && data[s.pos] == '{' {
		m, err := s.wholeObject(level)
		return m, "", err
	}
	v, err := parseJSONIn(&arena{}, data, level)
	if err != nil {
		return nil, "", err
	}
	if v == nil {
		return nil, "null", nil
	}
	return nil, jsonKind(v), nil
}
