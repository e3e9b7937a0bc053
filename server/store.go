package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/flagstream/flags/rules"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrConflict is returned by a Store that refuses an admin write because
	// it would overwrite something else: the key is defined by another file,
	// the served file does not parse, or it changed on disk and has not been
	// loaded yet. The admin API answers it with 409.
	ErrConflict = errors.New("flags: conflict")
	// ErrClosed is returned by a Server after Close.
	ErrClosed = errors.New("flags: server closed")
	// ErrTooLarge reports a document larger than Options.MaxDocumentBytes
	// (or, from a FileStore, a file that would exceed its MaxFileBytes).
	ErrTooLarge = errors.New("flags: document too large")
	// ErrStale is returned by a Store's Write when its content changed by
	// other means (a hand edit) since the Server last loaded it. The
	// Server then loads that change, publishing it as a reload of its own,
	// and writes again on top of it, unless the change touched the key
	// being written: then it answers 409 rather than overwrite it.
	ErrStale = errors.New("flags: store changed since it was last loaded")
	// ErrVersionExhausted reports a version that cannot grow any more: the
	// snapshot version, or a flag's or segment's, is at math.MaxInt64.
	// Versions never wrap; the change is refused (409 for admin writes)
	// until the server is restarted from a document of a lower version.
	ErrVersionExhausted = errors.New("flags: version exhausted")
)

// Kind says whether a Change is about a flag or a segment. Its values are the
// ones of rules.Problem.Kind.
type Kind string

// The kinds of Change.
const (
	KindFlag    Kind = "flag"
	KindSegment Kind = "segment"
)

// Change is one flag or segment a Commit writes: set (Value non-nil) or
// delete (Value nil). Value is compact JSON that already carries the
// per-flag version the server publishes it with. BodyBytes is the size of
// the request body that asked for it (0: that of Value): a store that lays
// the value out (FileStore) grows its file by at most twice that (SPEC §13).
type Change struct {
	Kind      Kind
	Key       string
	Value     json.RawMessage
	BodyBytes int
}

// Commit is one change the Server publishes, handed to its Store to be made
// durable first.
type Commit struct {
	// Version is the snapshot version the change is published as: one more
	// than the version of the content the Server last loaded from the
	// store and published since. A store that keeps versions of its own (a
	// MemoryStore's document) records it.
	Version int64
	// Changes are the flags and segments to write, sorted by kind (flags
	// first) and key, at most one per key: one for an admin PUT, PATCH or
	// DELETE, every key that differs for a document push; none when the
	// Server publishes content the store already holds (a reload).
	Changes []Change
	// Replace is set for a document push: the changes make the store hold
	// exactly the pushed document. A store made of several files writes
	// each key in the file that defines it, where a single admin write of
	// a key another file defines is refused (ErrConflict).
	Replace bool
	// InPlace is set for a guard's rollback (SPEC §9): like a push, a store
	// made of several files writes the key in the file that defines it. The
	// server rewrites its own flag there; the refusal of a single admin
	// write of such a key is for people, who should edit that file.
	InPlace bool
	// Audit holds the change's audit entries, one per key changed, in the
	// order of Changes (SPEC §10). The store appends them to its audit log
	// durably, with the changes; they are there even when Changes is empty.
	Audit []AuditEntry
}

// changeBudget is what the file may grow by for c: twice its request body.
func changeBudget(c Change) int {
	if c.BodyBytes > 0 {
		return 2 * c.BodyBytes
	}
	return 2 * len(c.Value)
}

// Store is where a Server's content comes from and where its admin writes go.
// A Server calls the methods of its Store one at a time (never concurrently
// with each other), except Watch, which runs for the life of the Server.
type Store interface {
	// Load returns the store's current content. The Server calls it once at
	// New and again every time Watch notifies it; it diffs the result
	// against what it serves and publishes the difference as one patch. A
	// store that cannot read its source should log that and return its last
	// good content; an error makes New fail, and is logged later.
	Load(ctx context.Context) (*rules.Document, error)
	// Watch calls notify whenever the content may have changed by means
	// other than Write (a file edited), and returns when ctx is done. A
	// store whose content only changes through Write returns at ctx.Done.
	Watch(ctx context.Context, notify func())
	// Write makes c durable before it returns, its audit entries included:
	// all of it or, when it fails, none of it. It returns an error wrapping
	// ErrStale when its content changed since the last Load (the Server
	// loads it and calls Write again), ErrConflict when the change must
	// not be made now (answered 409), or ErrUnavailable when the store
	// cannot be reached (503). Deleting a key the store does not hold is
	// not an error.
	Write(ctx context.Context, c *Commit) error
	// Audit reads the audit log: the entries q selects, in the order they
	// were written, at most q.Limit of them. Unlike the other methods it
	// may be called at any time, concurrently with them. A store may keep
	// a bounded log (MemoryStore keeps the last MemoryAuditEntries).
	Audit(ctx context.Context, q AuditQuery) (*AuditPage, error)
}

// MemoryStore is a Store that keeps its document in memory: for tests and for
// programs that embed a Server and feed it with Server.Publish. Admin writes
// change it (and are lost when the process ends).
type MemoryStore struct {
	mu    sync.Mutex
	doc   *rules.Document
	audit []AuditEntry // the last MemoryAuditEntries, or up to twice that
	first int          // the number of entries dropped from audit's front
}

// MemoryAuditEntries is how many audit entries a MemoryStore keeps at least
// (at most twice that): the oldest go, so its memory does not grow with the
// number of changes.
const MemoryAuditEntries = 10000

// NewMemoryStore returns a store holding doc (an empty document when nil).
// The store keeps doc; do not modify it afterwards.
func NewMemoryStore(doc *rules.Document) *MemoryStore {
	if doc == nil {
		doc = &rules.Document{}
	}
	return &MemoryStore{doc: doc}
}

// Load returns the current document.
func (m *MemoryStore) Load(context.Context) (*rules.Document, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc, nil
}

// Watch returns when ctx is done: a MemoryStore changes only through Write.
func (m *MemoryStore) Watch(ctx context.Context, _ func()) { <-ctx.Done() }

// Write applies c to the document, at version c.Version.
func (m *MemoryStore) Write(_ context.Context, c *Commit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(c.Changes) > 0 {
		m.doc = m.doc.Apply(commitPatch(c))
	}
	m.audit = append(m.audit, c.Audit...)
	if len(m.audit) > 2*MemoryAuditEntries { // trimmed now and then: amortized
		drop := len(m.audit) - MemoryAuditEntries
		m.audit = append(m.audit[:0:0], m.audit[drop:]...)
		m.first += drop
	}
	return nil
}

// Audit reads the entries kept. Its cursors count entries since the store
// was made.
func (m *MemoryStore) Audit(_ context.Context, q AuditQuery) (*AuditPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := offsetCursor(q.After)
	if !ok || n > int64(m.first+len(m.audit)) {
		return nil, fmt.Errorf("%w: %q", ErrBadCursor, q.After)
	}
	from := max(int(n), m.first)
	p := NewAuditPager(q)
	for i := from - m.first; i < len(m.audit); i++ {
		if e := m.audit[i]; q.matches(e.Kind, e.Key, e.Version) && !p.Add(e, strconv.Itoa(m.first+i)) {
			break
		}
	}
	return p.Page(), nil
}

// conflictError is an ErrConflict with a reason.
func conflictError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}
