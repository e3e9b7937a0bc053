package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/flagstream/flags/rules"
)

// entry is one flag or segment as the server serves it.
type entry struct {
	raw     json.RawMessage // served: compact, with "version" set by the server
	src     json.RawMessage // the source bytes raw was made from
	sum     [32]byte        // hash of the canonical content, "version" left out
	version int64           // the per-flag (per-segment) version served
}

// newEntry makes the served form of src at the given per-object version.
func newEntry(src json.RawMessage, version int64) *entry {
	return &entry{raw: withVersion(src, version), src: src, sum: contentSum(src), version: version}
}

// update is one patch in the making: nil entries delete.
type update struct {
	flags, segments map[string]*entry
}

func (u *update) empty() bool { return len(u.flags) == 0 && len(u.segments) == 0 }

func (u *update) set(kind Kind, key string, e *entry) {
	m := &u.flags
	if kind == KindSegment {
		m = &u.segments
	}
	if *m == nil {
		*m = map[string]*entry{}
	}
	(*m)[key] = e
}

// Publish replaces the content the server serves with doc. The difference
// from what is served is published as one patch, at the next version, with
// the per-flag "version" of every changed flag and segment bumped; doc's own
// version numbers are ignored (the server owns them, SPEC §1). A doc that
// changes nothing publishes nothing. Publish does not write to the Store: with
// a FileStore, the next change on disk is diffed against what Publish served.
// The server keeps doc's raw values: do not modify doc afterwards.
func (s *Server) Publish(doc *rules.Document) error {
	if doc == nil {
		return fmt.Errorf("flags: publish: nil document")
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	_, err := s.replace(doc, "publish")
	return err
}

// reload loads the store's content and publishes what changed.
func (s *Server) reload(ctx context.Context) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	doc, err := s.store.Load(ctx)
	if err != nil {
		s.log.Error("flags: store: reload failed; still serving the last good content", "err", err)
		return
	}
	if _, err := s.replace(doc, "reload"); err != nil {
		s.log.Error("flags: store: change not published; still serving the last good content", "err", err)
	}
}

// replace diffs doc against the served content and commits the difference.
// It reports whether a patch was published. writeMu must be held.
func (s *Server) replace(doc *rules.Document, why string) (bool, error) {
	var u update
	s.diffKind(KindFlag, doc.Flags, &u)
	s.diffKind(KindSegment, doc.Segments, &u)
	if u.empty() {
		return false, nil
	}
	v, err := s.commit(u)
	if err != nil {
		return false, err
	}
	s.log.Info("flags: published", "cause", why, "version", v, "flags", len(u.flags), "segments", len(u.segments))
	return true, nil
}

func (s *Server) diffKind(kind Kind, next map[string]json.RawMessage, u *update) {
	served := s.entries(kind)
	for key, raw := range next {
		if raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			s.log.Warn("flags: null "+string(kind)+" ignored", "key", key)
			continue
		}
		e := served[key]
		if e != nil && bytes.Equal(e.src, raw) {
			continue
		}
		if e != nil && e.sum == contentSum(raw) {
			e.src = raw // same content, other bytes: compare bytes next time
			continue
		}
		u.set(kind, key, newEntry(raw, s.nextVersion(kind, key, e, raw)))
	}
	for key := range served {
		if raw, ok := next[key]; !ok || raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			u.set(kind, key, nil)
		}
	}
}

func (s *Server) entries(kind Kind) map[string]*entry {
	if kind == KindSegment {
		return s.segments
	}
	return s.flags
}

// nextVersion is the per-object version a changed flag or segment is
// published with: one more than served, or (new key) one more than when it
// was deleted, or what its source says.
func (s *Server) nextVersion(kind Kind, key string, e *entry, src json.RawMessage) int64 {
	if e != nil {
		return e.version + 1
	}
	v := objectVersion(src)
	if t, ok := s.tombs[string(kind)+"/"+key]; ok && t+1 > v {
		v = t + 1
	}
	if v < 1 { // a key that appears is a change from nothing (version 0)
		v = 1
	}
	return v
}

// prepared is a patch ready to be published: everything that can fail has.
type prepared struct {
	u    update
	st   *state
	snap *rules.Snapshot
	data []byte // the patch event's data
}

// commit publishes u as one patch at the next version. writeMu must be held.
func (s *Server) commit(u update) (int64, error) {
	p, err := s.prepare(u)
	if err != nil {
		return 0, err
	}
	s.apply(p)
	return p.st.version, nil
}

// prepare builds the document and the patch event of u, checking sizes.
// writeMu must be held.
func (s *Server) prepare(u update) (*prepared, error) {
	cur := s.cur.Load()
	patch := &rules.Patch{Version: cur.version + 1, Flags: rawMap(u.flags), Segments: rawMap(u.segments)}
	doc := cur.doc.Apply(patch)
	st, err := s.newState(doc)
	if err != nil {
		return nil, err
	}
	data := encodePatch(patch)
	if int64(len(data)) > s.opts.MaxDocumentBytes {
		return nil, fmt.Errorf("%w: patch of %d bytes, limit %d", ErrTooLarge, len(data), s.opts.MaxDocumentBytes)
	}
	return &prepared{u: u, st: st, snap: rules.CompileFrom(s.snap, doc), data: data}, nil
}

// apply makes p the served content and sends its patch to every stream.
// writeMu must be held.
func (s *Server) apply(p *prepared) {
	s.applyEntries(KindFlag, p.u.flags)
	s.applyEntries(KindSegment, p.u.segments)
	s.snap = p.snap
	s.logProblems(p.snap, p.u)
	ev := &event{version: p.st.version, wire: patchWire(s.epoch, p.st.version, p.data)}
	s.mu.Lock()
	s.cur.Store(p.st)
	s.remember(ev)
	s.broadcast(ev)
	s.mu.Unlock()
}

func (s *Server) applyEntries(kind Kind, changes map[string]*entry) {
	m := s.entries(kind)
	for key, e := range changes {
		if e == nil {
			if old := m[key]; old != nil {
				s.tombs[string(kind)+"/"+key] = old.version
			}
			delete(m, key)
			continue
		}
		delete(s.tombs, string(kind)+"/"+key)
		m[key] = e
	}
}

// logProblems reports the problems of the flags and segments u changed: they
// are served as malformed (SPEC §1), which the operator should hear about.
func (s *Server) logProblems(snap *rules.Snapshot, u update) {
	for _, p := range snap.Problems() {
		var changed bool
		if p.Kind == string(KindSegment) {
			_, changed = u.segments[p.Key]
		} else {
			_, changed = u.flags[p.Key]
		}
		if changed {
			s.log.Warn("flags: serving malformed "+p.Kind, "key", p.Key, "problem", p.Error())
		}
	}
}

// newState encodes doc for readers and checks its size.
func (s *Server) newState(doc *rules.Document) (*state, error) {
	body, err := doc.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("flags: encode document: %w", err)
	}
	if int64(len(body)) > s.opts.MaxDocumentBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), s.opts.MaxDocumentBytes)
	}
	id := s.epoch + ":" + strconv.FormatInt(doc.Version, 10)
	return &state{version: doc.Version, doc: doc, body: body, id: id, etag: `"` + id + `"`}, nil
}

func rawMap(m map[string]*entry) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, e := range m {
		if e == nil {
			out[k] = nil
		} else {
			out[k] = e.raw
		}
	}
	return out
}

// encodePatch writes the data of a patch event, keys sorted, deletes as null;
// both members are always present.
func encodePatch(p *rules.Patch) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"version":%d,"flags":`, p.Version)
	writeMembers(&b, p.Flags)
	b.WriteString(`,"segments":`)
	writeMembers(&b, p.Segments)
	b.WriteByte('}')
	return b.Bytes()
}

func writeMembers(b *bytes.Buffer, m map[string]json.RawMessage) {
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k) // a string always encodes
		b.Write(kb)
		b.WriteByte(':')
		if m[k] == nil {
			b.WriteString("null")
		} else {
			b.Write(m[k])
		}
	}
	b.WriteByte('}')
}

// contentSum hashes what a flag or segment means, leaving out its "version"
// member and its formatting, so a file rewritten with another layout or
// version number is not a change.
func contentSum(raw json.RawMessage) [32]byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return sha256.Sum256(raw)
	}
	if m, ok := v.(map[string]any); ok {
		delete(m, "version")
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return sha256.Sum256(raw)
	}
	return sha256.Sum256(b)
}

// withVersion returns raw, compacted, with its "version" member set to v.
// Every other member is kept as it is (unknown fields included). A value that
// is not an object (a malformed flag) is returned compacted, unchanged.
func withVersion(raw json.RawMessage, v int64) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return compact(raw)
	}
	m["version"] = json.RawMessage(strconv.FormatInt(v, 10))
	b, err := marshalNoEscape(m)
	if err != nil {
		return compact(raw)
	}
	return b
}

// objectVersion reads a flag's or segment's "version" member: 0 when absent
// or not an integer >= 0.
func objectVersion(raw json.RawMessage) int64 {
	var m struct {
		Version json.RawMessage `json:"version"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Version == nil {
		return 0
	}
	n, err := strconv.ParseInt(string(m.Version), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// marshalNoEscape is json.Marshal without HTML escaping and newline.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
