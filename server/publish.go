package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// entry is one flag or segment as the server serves it.
type entry struct {
	raw     json.RawMessage // served: compact, with "version" set by the server
	src     json.RawMessage // the source bytes raw was made from
	version int64           // the per-flag (per-segment) version served

	// sum is contentSum(src), computed when first compared (see sum):
	// a replica publishing another's change of megabytes never compares
	// most of it, and hashing it held up the change.
	sum    [32]byte
	summed bool
}

// newEntry makes the served form of src at the given per-object version.
func newEntry(src json.RawMessage, version int64) *entry {
	return &entry{raw: withVersion(src, version), src: src, version: version}
}

// servedEntry is newEntry of raw at the per-object version it holds, raw
// being what a server published (a Ledger's change log): compacted and
// scanned once, rather than once for its version and again to set it.
func servedEntry(raw json.RawMessage) *entry {
	c := compact(raw)
	obj, err := scanObject(c, 0)
	if err != nil || obj.close != len(c)-1 {
		return newEntry(raw, objectVersion(raw))
	}
	var at []jsonMember
	for _, m := range obj.members {
		if m.key == "version" {
			at = append(at, m)
		}
	}
	if len(at) != 1 {
		return newEntry(raw, objectVersion(raw))
	}
	text := string(c[at[0].valStart:at[0].valEnd])
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil || v < 0 || strconv.FormatInt(v, 10) != text {
		return newEntry(raw, objectVersion(raw))
	}
	return &entry{raw: c, src: raw, version: v} // what withVersion(raw, v) makes
}

// contentSum is the hash of e's canonical content, "version" left out.
// writeMu must be held.
func (e *entry) contentSum() [32]byte {
	if !e.summed {
		e.sum, e.summed = contentSum(e.src), true
	}
	return e.sum
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
// changes nothing publishes nothing. Publish does not write doc to the
// Store: with a FileStore, the next change on disk is diffed against what
// Publish served. It records the change in the Store's audit log (action
// reload, actor ActorProgram) and fails, publishing nothing, when it cannot.
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
	if s.ledger != nil { // the store is every replica's source: through it
		res := s.storeWrite(context.Background(), writeOp{
			path:     "document",
			prepare:  func() (*prepared, adminResult) { return s.preparePush(doc, "") },
			replace:  true,
			meta:     auditMeta{actor: ActorProgram, action: ActionReload},
			logAttrs: []any{"action", ActionReload, "actor", ActorProgram},
		})
		if res.status != http.StatusOK {
			return fmt.Errorf("flags: publish: %s", res.msg)
		}
		return nil
	}
	_, err := s.replace(context.Background(), doc, ActorProgram)
	return err
}

// reload loads the store's content and publishes what changed.
func (s *Server) reload(ctx context.Context) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	_, _ = s.reloadLocked(ctx)
}

// reloadRetry is how often a reload that the store could not record (its
// audit log failed) is tried again, until it succeeds.
const reloadRetry = time.Second

// retryReloads tries again, every reloadRetry, a reload that failed because
// the store could not record it: the change it found may be published only
// once audited, and the store will not report it again. It returns when
// ctx is done.
func (s *Server) retryReloads(ctx context.Context) {
	everyTick(ctx, reloadRetry, func() {
		if s.reloadFailed.Load() {
			s.reload(ctx)
		}
	})
}

// reloadLocked is reload with writeMu held; it returns what it published.
// Failures are logged (and returned).
func (s *Server) reloadLocked(ctx context.Context) (update, error) {
	if s.ledger != nil {
		u, err := s.catchUp(ctx)
		s.reloadFailed.Store(err != nil)
		if err != nil {
			s.log.Error("flags: store: catching up failed; still serving the last good content", "err", err)
		}
		return u, err
	}
	doc, err := s.store.Load(ctx)
	if err != nil {
		s.log.Error("flags: store: reload failed; still serving the last good content", "err", err)
		return update{}, err
	}
	u, err := s.replace(ctx, doc, ActorFile)
	var we *storeWriteError
	s.reloadFailed.Store(errors.As(err, &we))
	if err != nil {
		s.log.Error("flags: store: change not published; still serving the last good content", "err", err)
	}
	return u, err
}

// storeWriteError is a change the Store failed to record.
type storeWriteError struct{ err error }

func (e *storeWriteError) Error() string {
	return "flags: store: recording the change: " + e.err.Error()
}
func (e *storeWriteError) Unwrap() error { return e.err }

// replace diffs doc against the served content and publishes the
// difference, audited as a reload by actor; it returns it (empty: nothing
// was published). writeMu must be held.
func (s *Server) replace(ctx context.Context, doc *rules.Document, actor string) (update, error) {
	var u update
	if err := s.diffKind(KindFlag, doc.Flags, &u); err != nil {
		return u, err
	}
	if err := s.diffKind(KindSegment, doc.Segments, &u); err != nil {
		return u, err
	}
	if u.empty() {
		return u, nil
	}
	p, err := s.prepare(u)
	if err != nil {
		return update{}, err
	}
	c := &Commit{Version: p.st.version, Audit: s.auditEntries(u, p.st.version, auditMeta{actor: actor, action: ActionReload})}
	if err := s.store.Write(ctx, c); err != nil {
		return update{}, &storeWriteError{err}
	}
	s.apply(p)
	s.log.Info("flags: published", "cause", "reload", "actor", actor, "version", p.st.version, "flags", len(u.flags), "segments", len(u.segments))
	return u, nil
}

// diffKind adds to u the changes of one kind from what is served to next.
// A changed value that the document parser refuses (invalid UTF-8, nested
// too deep: SPEC §13) fails the whole change, naming the key.
func (s *Server) diffKind(kind Kind, next map[string]json.RawMessage, u *update) error {
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
		if e != nil && e.contentSum() == contentSum(raw) {
			e.src = raw // same content, other bytes: compare bytes next time
			continue
		}
		if err := parseMember(kind, raw); err != nil {
			return fmt.Errorf("%ss.%s: %w", kind, key, err)
		}
		v, err := s.nextVersion(kind, key, e, raw)
		if err != nil {
			return err
		}
		u.set(kind, key, newEntry(raw, v))
	}
	for key := range served {
		if raw, ok := next[key]; !ok || raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			u.set(kind, key, nil)
		}
	}
	return nil
}

// parseMembers is parseMember for every flag and segment of doc, in one pass
// of the parser; when that fails, it names the first value at fault.
func parseMembers(doc *rules.Document) error {
	n := 64
	for _, m := range []map[string]json.RawMessage{doc.Flags, doc.Segments} {
		for _, raw := range m {
			n += len(raw) + 16
		}
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for _, kind := range []Kind{KindFlag, KindSegment} {
		m := doc.Flags
		if kind == KindSegment {
			m = doc.Segments
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, kind...)
		b = append(b, `s":{`...)
		i := 0
		for _, raw := range m { // the keys do not matter, but a key twice is refused: k0, k1, …
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `"k`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `":`...)
			b = append(b, raw...)
			i++
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	_, err := rules.ParseDocument(b)
	if err == nil {
		return nil
	}
	for _, kind := range []Kind{KindFlag, KindSegment} {
		m := doc.Flags
		if kind == KindSegment {
			m = doc.Segments
		}
		for _, key := range slices.Sorted(maps.Keys(m)) {
			if err := parseMember(kind, m[key]); err != nil {
				return fmt.Errorf("%ss.%s: %w", kind, key, err)
			}
		}
	}
	return err
}

// parseMember reads raw, a flag or segment, with the document parser as it
// stands in a document (at its third level of nesting), so that nothing is
// served that a document could not hold: not JSON, invalid UTF-8, nested
// too deep (SPEC §13). The error wraps rules.ErrInvalidDocument.
// memberOffset is where parseMember's document holds the member: the
// offset of an error in it, less this, is the offset in the member.
func memberOffset(kind Kind) int { return len(`{"`) + len(kind) + len(`s":{"k":`) }

func parseMember(kind Kind, raw []byte) error {
	doc := make([]byte, 0, len(raw)+len(`{"segments":{"k":}}`))
	doc = append(doc, `{"`...)
	doc = append(doc, kind...)
	doc = append(doc, `s":{"k":`...)
	doc = append(doc, raw...)
	doc = append(doc, "}}"...)
	_, err := rules.ParseDocument(doc)
	return err
}

func (s *Server) entries(kind Kind) map[string]*entry {
	if kind == KindSegment {
		return s.segments
	}
	return s.flags
}

// nextVersion is the per-object version a changed flag or segment is
// published with: one more than served, or (new key) one more than when it
// was deleted (while the replay window remembers that), or what its source
// says. A version that cannot grow any more is ErrVersionExhausted: it never
// wraps.
func (s *Server) nextVersion(kind Kind, key string, e *entry, src json.RawMessage) (int64, error) {
	if e != nil {
		if e.version == math.MaxInt64 {
			return 0, fmt.Errorf("%w: %ss.%s is at version %d", ErrVersionExhausted, kind, key, e.version)
		}
		return e.version + 1, nil
	}
	v := objectVersion(src)
	if t, ok := s.tombs[tombKey(kind, key)]; ok {
		if t.version == math.MaxInt64 {
			return 0, fmt.Errorf("%w: %ss.%s was deleted at version %d", ErrVersionExhausted, kind, key, t.version)
		}
		v = max(v, t.version+1)
	}
	return max(v, 1), nil // a key that appears is a change from nothing (version 0)
}

// tomb remembers the per-object version of a deleted key, so that a key
// added again continues from it, for as long as the patch that deleted it
// is in the replay ring (SPEC §13: memory does not grow with the number of
// changes).
type tomb struct {
	version int64 // per-object version when deleted
	at      int64 // the snapshot version of the patch that deleted it
}

// tombRef is a tombstone in deletion order, for pruning.
type tombRef struct {
	key string
	at  int64
}

func tombKey(kind Kind, key string) string { return string(kind) + "/" + key }

// pruneTombs forgets the tombstones of patches older than floor, the oldest
// version in the replay ring. writeMu must be held.
func (s *Server) pruneTombs(floor int64) {
	n := 0
	for n < len(s.tombOrder) && s.tombOrder[n].at < floor {
		r := s.tombOrder[n]
		if t, ok := s.tombs[r.key]; ok && t.at == r.at {
			delete(s.tombs, r.key)
		}
		s.tombOrder[n] = tombRef{}
		n++
	}
	s.tombOrder = s.tombOrder[n:]
	if n > 0 && cap(s.tombOrder) > 64 && len(s.tombOrder) < cap(s.tombOrder)/4 {
		s.tombOrder = append([]tombRef(nil), s.tombOrder...)
	}
}

// prepared is a patch ready to be published: everything that can fail has.
type prepared struct {
	u    update
	st   *state
	snap *eval.Snapshot
	data []byte // the patch event's data
}

// versionLeft fails with ErrVersionExhausted when the snapshot version
// cannot grow any more.
func (s *Server) versionLeft() error {
	if v := s.cur.Load().version; v == math.MaxInt64 {
		return fmt.Errorf("%w: the snapshot is at version %d; restart the server from a document of a lower version (a new epoch)",
			ErrVersionExhausted, v)
	}
	return nil
}

// prepare builds the document and the patch event of u at the next
// version, checking sizes. writeMu must be held.
func (s *Server) prepare(u update) (*prepared, error) {
	if err := s.versionLeft(); err != nil {
		return nil, err
	}
	return s.prepareAt(u, s.cur.Load().version+1)
}

// prepareAt is prepare at the given version (a Ledger's, after a gap).
func (s *Server) prepareAt(u update, version int64) (*prepared, error) {
	cur := s.cur.Load()
	patch := &rules.Patch{Version: version, Flags: rawMap(u.flags), Segments: rawMap(u.segments)}
	doc := cur.doc.Apply(patch)
	st, err := s.newState(doc, cur.epoch)
	if err != nil {
		return nil, err
	}
	data := encodePatch(patch)
	if int64(len(data)) > s.opts.MaxDocumentBytes {
		return nil, fmt.Errorf("%w: patch of %d bytes, limit %d", ErrTooLarge, len(data), s.opts.MaxDocumentBytes)
	}
	return &prepared{u: u, st: st, snap: eval.CompileFrom(s.snap, doc), data: data}, nil
}

// apply makes p the served content and sends its patch to every stream.
// writeMu must be held.
func (s *Server) apply(p *prepared) {
	start := time.Now()
	defer func() { s.stats.published(time.Since(start)) }()
	s.applyEntries(KindFlag, p.u.flags, p.st.version)
	s.applyEntries(KindSegment, p.u.segments, p.st.version)
	s.snap = p.snap
	s.logProblems(p.snap, p.u)
	ev := &event{version: p.st.version, wire: patchWire(p.st.epoch, p.st.version, p.data)}
	s.mu.Lock()
	s.cur.Store(p.st)
	s.remember(ev)
	s.broadcast(ev)
	floor := p.st.version + 1 // the ring is empty: a patch larger than ReplayBytes
	if len(s.ring) > 0 {
		floor = s.ring[0].version
	}
	s.mu.Unlock()
	s.pruneTombs(floor)
}

func (s *Server) applyEntries(kind Kind, changes map[string]*entry, at int64) {
	m := s.entries(kind)
	for key, e := range changes {
		tk := tombKey(kind, key)
		if e == nil {
			if old := m[key]; old != nil {
				s.tombs[tk] = tomb{version: old.version, at: at}
				s.tombOrder = append(s.tombOrder, tombRef{tk, at})
			}
			delete(m, key)
			continue
		}
		delete(s.tombs, tk)
		m[key] = e
	}
}

// logProblems reports the problems of the flags and segments u changed: they
// are served as malformed (SPEC §1), which the operator should hear about.
// So are the prerequisite flags and segments they name and snap lacks:
// valid, but most often a misspelt key.
func (s *Server) logProblems(snap *eval.Snapshot, u update) {
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
	for _, key := range slices.Sorted(maps.Keys(u.flags)) {
		s.logDangling(snap.DanglingReferencesOf("flag", key))
	}
	for _, key := range slices.Sorted(maps.Keys(u.segments)) {
		s.logDangling(snap.DanglingReferencesOf("segment", key))
	}
}

// logDangling reports keys that flags or segments name and the document
// lacks (see eval.DanglingReference).
func (s *Server) logDangling(refs []*eval.DanglingReference) {
	for _, d := range refs {
		s.log.Warn("flags: "+d.Kind+" names a "+d.Missing+" the document lacks", "key", d.Key, "field", d.Field, "missing", d.Name)
	}
}

// newState encodes doc for readers and checks its size.
func (s *Server) newState(doc *rules.Document, epoch string) (*state, error) {
	body, err := doc.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("flags: encode document: %w", err)
	}
	if int64(len(body)) > s.opts.MaxDocumentBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), s.opts.MaxDocumentBytes)
	}
	id := epoch + ":" + strconv.FormatInt(doc.Version, 10)
	return &state{epoch: epoch, version: doc.Version, doc: doc, body: body, id: id, etag: `"` + id + `"`}, nil
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
	b.Grow(64 + eval.RawMapSize(p.Flags) + eval.RawMapSize(p.Segments)) // once, not doubling through megabytes
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
func contentSum(raw json.RawMessage) [32]byte { return contentSumWithout(raw) }

// contentSumWithout is contentSum leaving out the members drop too.
func contentSumWithout(raw json.RawMessage, drop ...string) [32]byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return sha256.Sum256(raw)
	}
	if m, ok := v.(map[string]any); ok {
		delete(m, "version")
		for _, k := range drop {
			delete(m, k)
		}
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return sha256.Sum256(raw)
	}
	return sha256.Sum256(b)
}

// withVersion returns raw, compacted, with its "version" member set to v:
// in place when it has one (every duplicate too), else first. Every other
// member is kept as it is and where it is (unknown fields included), so a
// flag read with GET, changed and written back keeps its members' order in
// the file. A value that is not an object (a malformed flag) is returned
// compacted, unchanged.
func withVersion(raw json.RawMessage, v int64) json.RawMessage {
	c := compact(raw)
	obj, err := scanObject(c, 0)
	if err != nil || obj.close != len(c)-1 {
		return c
	}
	num := strconv.AppendInt(nil, v, 10)
	out := make([]byte, 0, len(c)+len(`"version":,`)+len(num))
	out = append(out, '{')
	found := false
	for _, m := range obj.members {
		if m.key == "version" {
			found = true
		}
	}
	if !found {
		out = append(out, `"version":`...)
		out = append(out, num...)
		if len(obj.members) > 0 {
			out = append(out, ',')
		}
	}
	from := 1
	for _, m := range obj.members {
		if m.key != "version" {
			continue
		}
		out = append(out, c[from:m.valStart]...)
		out = append(out, num...)
		from = m.valEnd
	}
	return append(out, c[from:]...)
}

// objectVersion reads a flag's or segment's "version" member: 0 when absent
// or not an integer >= 0.
func objectVersion(raw json.RawMessage) int64 {
	// The member named exactly "version": encoding/json would match keys
	// case-insensitively, so an unknown "versiOn" could stand for it.
	c := compact(raw)
	obj, err := scanObject(c, 0)
	if err != nil {
		return 0
	}
	var n int64
	for _, m := range obj.members {
		if m.key != "version" {
			continue
		}
		v, err := strconv.ParseInt(string(c[m.valStart:m.valEnd]), 10, 64)
		if err != nil || v < 0 {
			v = 0
		}
		n = v // the last one, as a JSON reader keeps
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
