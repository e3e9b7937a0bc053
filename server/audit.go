package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/flagstream/flags/rules"
)

// Action says what made an audited change (SPEC §10).
type Action string

// The actions of AuditEntry.
const (
	ActionPut    Action = "put"    // admin PUT
	ActionPatch  Action = "patch"  // admin PATCH
	ActionDelete Action = "delete" // admin DELETE
	ActionPush   Action = "push"   // PUT /v1/admin/document
	ActionReload Action = "reload" // content the store changed by other means, or Server.Publish
	ActionGuard  Action = "guard"  // a guarded rollout rolled back (SPEC §9)
)

// The actors the server names itself in the audit log; the others are the
// names of the tokens of the requests (TokenName, AdminTokenName, the names
// of Options.Tokens).
const (
	// ActorFile is the actor of a reload: content that changed in the
	// store by other means than the server (a file edited by hand or by a
	// deployment, another replica's write to a shared file).
	ActorFile = "file"
	// ActorProgram is the actor of Server.Publish: the embedding program.
	ActorProgram = "program"
	// ActorGuard is the actor of a guarded rollout's rollback (SPEC §9).
	ActorGuard = "guard"
)

// Limits of the audit API.
const (
	// DefaultAuditLimit is how many entries GET /v1/admin/audit answers
	// when its request names no limit.
	DefaultAuditLimit = 100
	// MaxAuditLimit is the most entries one answer holds; a larger limit
	// is cut to it.
	MaxAuditLimit = 1000
	// MaxCommentBytes bounds the X-Flags-Comment of a request.
	MaxCommentBytes = 1024
)

// AuditEntry is one change to one flag or segment, as the audit log keeps it
// (SPEC §10): the snapshot version it was published as (every key of one
// change shares it), when, by whom (a token's name, or ActorFile,
// ActorProgram, ActorGuard), how, and the object before and after as served
// (null when absent), with the comment of the request.
type AuditEntry struct {
	Version int64           `json:"version"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Action  Action          `json:"action"`
	Kind    Kind            `json:"kind"`
	Key     string          `json:"key"`
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
	Comment string          `json:"comment"`
}

// AuditQuery selects audit entries.
type AuditQuery struct {
	// Kind and Key, when set, keep the entries of that kind and key only.
	Kind Kind
	Key  string
	// Since keeps the entries of a version greater than Since.
	Since int64
	// Limit is the most entries to return, 1 to MaxAuditLimit.
	Limit int
	// After is the Next of a previous page: the answer continues where
	// that one stopped. Empty: from the oldest entry the store keeps.
	After string
}

// AuditPage is a page of the audit log: entries in the order they were
// written (version order), and, when there may be more, the cursor that
// continues after them (AuditQuery.After).
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    string       `json:"next,omitempty"`
}

// AuditPager fills an AuditPage for a Store's Audit, from the entries the
// query selects, in log order. A page holds at most the query's limit and
// never ends inside a change (its entries share a version) unless that
// change alone has more entries than the limit: a client that pages by
// since, the last version it saw, as SPEC §10 describes, then misses none
// of a push's entries; one that pages with Next misses none at all.
type AuditPager struct {
	limit   int
	page    AuditPage
	cursors []string // cursors[i] continues from page.Entries[i]
}

// NewAuditPager starts a page for q.
func NewAuditPager(q AuditQuery) *AuditPager {
	return &AuditPager{limit: q.limit()}
}

// Add offers e, an entry q selects, found at cursor (an After that continues
// from e). It reports whether the page takes more: when it does not, the
// caller stops reading, and e (with the entries of its change already
// taken, when the page has room for a whole change before them) is left
// to the next page.
func (p *AuditPager) Add(e AuditEntry, cursor string) bool {
	n := len(p.page.Entries)
	if n < p.limit {
		p.page.Entries = append(p.page.Entries, e)
		p.cursors = append(p.cursors, cursor)
		return true
	}
	i := n
	for i > 0 && p.page.Entries[i-1].Version == e.Version {
		i--
	}
	if i > 0 && i < n { // the limit falls inside e's change: it starts the next page
		p.page.Next = p.cursors[i]
		p.page.Entries = p.page.Entries[:i]
		return false
	}
	p.page.Next = cursor
	return false
}

// Stop ends the page at cursor, where the caller stops reading for a bound
// of its own.
func (p *AuditPager) Stop(cursor string) { p.page.Next = cursor }

// Page returns the page.
func (p *AuditPager) Page() *AuditPage {
	if p.page.Entries == nil {
		p.page.Entries = []AuditEntry{}
	}
	return &p.page
}

// ErrBadCursor reports an AuditQuery.After that the store did not hand out.
var ErrBadCursor = errors.New("flags: not an audit cursor of this store")

// offsetCursor reads a cursor of the audit logs and event logs of this
// package, which are all offsets (an index, a byte offset): "" is the
// start, 0. ok is false for anything but a non-negative integer; whether
// the offset is within the log is for the caller to say.
func offsetCursor(cursor string) (n int64, ok bool) {
	if cursor == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(cursor, 10, 64)
	return n, err == nil && n >= 0
}

// auditMeta is who made a change, how and why.
type auditMeta struct {
	actor   string
	action  Action
	comment string
}

// auditEntries lists the entries of u, published as version: one per key,
// flags then segments, by key; before is what is served now. writeMu must
// be held, and u not yet applied.
func (s *Server) auditEntries(u update, version int64, m auditMeta) []AuditEntry {
	at := time.Now().UTC()
	out := make([]AuditEntry, 0, len(u.flags)+len(u.segments))
	for _, kind := range []Kind{KindFlag, KindSegment} {
		changes := u.flags
		if kind == KindSegment {
			changes = u.segments
		}
		served := s.entries(kind)
		for _, key := range slices.Sorted(maps.Keys(changes)) {
			e := AuditEntry{Version: version, At: at, Actor: m.actor, Action: m.action, Kind: kind, Key: key, Comment: m.comment}
			if old := served[key]; old != nil {
				e.Before = old.raw
			}
			if now := changes[key]; now != nil {
				e.After = now.raw
			}
			out = append(out, e)
		}
	}
	return out
}

// readComment reads the X-Flags-Comment of r: at most MaxCommentBytes of
// UTF-8 text without control characters.
func readComment(r *http.Request) (string, error) {
	c := r.Header.Get("X-Flags-Comment")
	switch {
	case len(c) > MaxCommentBytes:
		return "", fmt.Errorf("X-Flags-Comment: %d bytes, at most %d", len(c), MaxCommentBytes)
	case !utf8.ValidString(c):
		return "", errors.New("X-Flags-Comment: not UTF-8")
	}
	for _, ch := range c {
		if unicode.IsControl(ch) {
			return "", errors.New("X-Flags-Comment: holds a control character")
		}
	}
	return c, nil
}

// handleAudit serves GET /v1/admin/audit?key=K&kind=flag|segment&since=V&
// limit=N&after=CURSOR: {"entries":[...],"next":CURSOR}, next present when
// there may be more (pass it as after, with the same other parameters).
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	if !s.adminOn(w) {
		return
	}
	if _, ok := s.authorize(w, r, RoleOperator); !ok {
		return
	}
	q, err := parseAuditQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "flags: audit: "+err.Error(), nil)
		return
	}
	page, err := s.store.Audit(r.Context(), q)
	switch {
	case errors.Is(err, ErrBadCursor):
		writeError(w, http.StatusBadRequest, "flags: audit: after: "+err.Error(), nil)
		return
	case errors.Is(err, ErrUnavailable): // as for admin writes: worth a retry
		s.writeStoreDown(w, "audit", err)
		return
	case err != nil:
		s.log.Error("flags: audit: reading the store failed", "err", err)
		writeError(w, http.StatusInternalServerError, "flags: audit: "+err.Error(), nil)
		return
	}
	if page.Entries == nil {
		page.Entries = []AuditEntry{}
	}
	body, err := marshalNoEscape(page)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "flags: audit: "+err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// parseAuditQuery reads the parameters of GET /v1/admin/audit.
func parseAuditQuery(r *http.Request) (AuditQuery, error) {
	v := r.URL.Query()
	q := AuditQuery{Key: v.Get("key"), Kind: Kind(v.Get("kind")), After: v.Get("after"), Limit: DefaultAuditLimit}
	if q.Key != "" && !rules.ValidKey(q.Key) {
		return q, fmt.Errorf("key %q: want 1-%d characters of A-Z a-z 0-9 . _ -", q.Key, rules.MaxKeyLength)
	}
	if q.Kind != "" && q.Kind != KindFlag && q.Kind != KindSegment {
		return q, fmt.Errorf("kind %q: want flag or segment", q.Kind)
	}
	if s := v.Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return q, fmt.Errorf("since %q: want a version, an integer >= 0", s)
		}
		q.Since = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return q, fmt.Errorf("limit %q: want an integer >= 1 (at most %d are answered)", s, MaxAuditLimit)
		}
		q.Limit = min(n, MaxAuditLimit)
	}
	return q, nil
}

// matches reports whether e is selected by q's kind, key and since.
func (q *AuditQuery) matches(kind Kind, key string, version int64) bool {
	return version > q.Since && (q.Kind == "" || q.Kind == kind) && (q.Key == "" || q.Key == key)
}

// limit is q.Limit within 1 and MaxAuditLimit (DefaultAuditLimit when 0).
func (q *AuditQuery) limit() int {
	if q.Limit <= 0 {
		return DefaultAuditLimit
	}
	return min(q.Limit, MaxAuditLimit)
}
