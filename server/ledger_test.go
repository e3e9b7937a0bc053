package server

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
)

// sharedLedger is what a database store shares between replicas, kept in
// memory: one version counter, an epoch, the content, a change log of the
// last keep commits and the audit table. Each replica reaches it through a
// ledgerView. It is the model the seam is written for: a PostgreSQL store
// does the same in transactions.
type sharedLedger struct {
	mu      sync.Mutex
	epoch   string
	version int64
	doc     *rules.Document
	log     []*Commit // the last keep commits
	keep    int
	audit   []AuditEntry
	views   []*ledgerView
	down    bool // unreachable: every call fails with ErrUnavailable

	renewals int // RenewEpoch's renewals: the epoch is db-(renewals+1)
}

func newSharedLedger(t *testing.T, doc string, keep int) *sharedLedger {
	d := mustParse(t, doc)
	return &sharedLedger{epoch: "db-1", version: d.Version, doc: d, keep: keep}
}

// view is one replica's connection to the ledger.
func (l *sharedLedger) view() *ledgerView {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := &ledgerView{l: l, notify: make(chan struct{}, 1)}
	l.views = append(l.views, v)
	return v
}

func (l *sharedLedger) setDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

// ledgerView is a Ledger (and a Pinger) over a sharedLedger.
type ledgerView struct {
	l      *sharedLedger
	notify chan struct{}
	muted  atomic.Bool // tests: not told of other replicas' commits
}

var (
	_ Ledger = (*ledgerView)(nil)
	_ Pinger = (*ledgerView)(nil)
)

func (v *ledgerView) Epoch(context.Context) (string, error) {
	v.l.mu.Lock()
	defer v.l.mu.Unlock()
	return v.l.epoch, nil
}

func (v *ledgerView) RenewEpoch(_ context.Context, old string) (string, error) {
	l := v.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == old {
		l.renewals++
		l.epoch = fmt.Sprintf("db-%d", l.renewals+1)
	}
	return l.epoch, nil
}

// restore puts the ledger back to an earlier backup of it: its version,
// content and change log, with the epoch it had (a restored database
// restores its state row).
func (l *sharedLedger) restore(b *sharedLedger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.version, l.doc, l.log, l.audit = b.version, b.doc, slices.Clone(b.log), slices.Clone(b.audit)
}

// backup copies the ledger's content.
func (l *sharedLedger) backup() *sharedLedger {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &sharedLedger{version: l.version, doc: l.doc, log: slices.Clone(l.log), audit: slices.Clone(l.audit)}
}

func (v *ledgerView) Load(context.Context) (*rules.Document, error) {
	v.l.mu.Lock()
	defer v.l.mu.Unlock()
	if v.l.down {
		return nil, fmt.Errorf("%w: connection refused", ErrUnavailable)
	}
	return &rules.Document{Version: v.l.version, Flags: maps.Clone(v.l.doc.Flags), Segments: maps.Clone(v.l.doc.Segments)}, nil
}

func (v *ledgerView) Watch(ctx context.Context, notify func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.notify:
			notify()
		}
	}
}

// Write is the transaction: the change, its audit entries and the
// counter's step, only if the version proposed is the counter's next.
func (v *ledgerView) Write(_ context.Context, c *Commit) error {
	l := v.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return fmt.Errorf("%w: connection refused", ErrUnavailable)
	}
	if c.Version != l.version+1 {
		return fmt.Errorf("%w: the store is at version %d", ErrStale, l.version)
	}
	if len(c.Changes) == 0 {
		return fmt.Errorf("a ledger commit without changes at version %d", c.Version)
	}
	l.doc = l.doc.Apply(commitPatch(c))
	l.version = c.Version
	l.log = append(l.log, &Commit{Version: c.Version, Changes: c.Changes})
	if len(l.log) > l.keep {
		l.log = l.log[len(l.log)-l.keep:]
	}
	l.audit = append(l.audit, c.Audit...)
	for _, o := range l.views { // NOTIFY
		if o != v && !o.muted.Load() {
			select {
			case o.notify <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

func (v *ledgerView) Changes(_ context.Context, after int64, limit int) ([]*Commit, error) {
	l := v.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, fmt.Errorf("%w: connection refused", ErrUnavailable)
	}
	if after > l.version {
		return nil, fmt.Errorf("%w: at %d, below %d", ErrHistoryReset, l.version, after)
	}
	if after == l.version {
		return nil, nil
	}
	if len(l.log) == 0 || l.log[0].Version > after+1 {
		return nil, fmt.Errorf("%w: %d", ErrHistoryGone, after+1)
	}
	var out []*Commit
	for _, c := range l.log {
		if c.Version > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (v *ledgerView) Audit(_ context.Context, q AuditQuery) (*AuditPage, error) {
	l := v.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, fmt.Errorf("%w: connection refused", ErrUnavailable)
	}
	from := 0
	if q.After != "" {
		n, err := strconv.Atoi(q.After)
		if err != nil || n < 0 || n > len(l.audit) {
			return nil, fmt.Errorf("%w: %q", ErrBadCursor, q.After)
		}
		from = n
	}
	p := NewAuditPager(q)
	for i := from; i < len(l.audit); i++ {
		if e := l.audit[i]; q.matches(e.Kind, e.Key, e.Version) && !p.Add(e, strconv.Itoa(i)) {
			break
		}
	}
	return p.Page(), nil
}

func (v *ledgerView) Ping(context.Context) error {
	v.l.mu.Lock()
	defer v.l.mu.Unlock()
	if v.l.down {
		return fmt.Errorf("%w: connection refused", ErrUnavailable)
	}
	return nil
}

// ledgerReplica is one server over the ledger, on 127.0.0.1.
func ledgerReplica(t *testing.T, l *sharedLedger) (*Server, *ledgerView, string) {
	t.Helper()
	v := l.view()
	srv, err := New(v, Options{AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	return srv, v, serve(t, srv).URL
}

// TestLedgerReplicasAgree: over a store that owns the versions, a change
// accepted by one replica is published by every replica at the same
// version, with the same epoch, and audited once.
func TestLedgerReplicasAgree(t *testing.T) {
	l := newSharedLedger(t, baseDoc, 100)
	a, _, urlA := ledgerReplica(t, l)
	b, _, urlB := ledgerReplica(t, l)
	if a.Epoch() != "db-1" || b.Epoch() != "db-1" {
		t.Fatalf("epochs %q and %q, want the store's db-1", a.Epoch(), b.Epoch())
	}
	cb := openStream(t, urlB, "", "")
	if ev := cb.next(t); ev.ID != "db-1:17" {
		t.Fatalf("B's snapshot id %s, want db-1:17", ev.ID)
	}
	resp, body := do(t, "PUT", urlA+"/v1/admin/flags/x", adminToken, `{"variations": [true], "fallthrough": {"variation": 0}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT on A = %d %s", resp.StatusCode, body)
	}
	ev, p := cb.nextPatch(t)
	if ev.ID != "db-1:18" || p.Flags["x"] == nil || string(p.Flags["x"]) != string(a.Document().Flags["x"]) {
		t.Fatalf("B published %s %s, want A's change at db-1:18", ev.ID, ev.Data)
	}
	// B writes next; A's If-Match, read from B, holds.
	resp, _ = do(t, "GET", urlB+"/v1/admin/flags/x", adminToken, "")
	tag := resp.Header.Get("ETag")
	resp, body = do(t, "PATCH", urlB+"/v1/admin/flags/x", adminToken, `{"on": true}`, "Content-Type", mergePatchType, "If-Match", tag)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH on B = %d %s", resp.StatusCode, body)
	}
	waitVersion(t, a, 19)
	if string(a.Document().Flags["x"]) != string(b.Document().Flags["x"]) {
		t.Errorf("A serves %s, B %s", a.Document().Flags["x"], b.Document().Flags["x"])
	}
	// A stale If-Match on A, after B's write: 412, whichever replica.
	if resp, body := do(t, "PATCH", urlA+"/v1/admin/flags/x", adminToken, `{"on": false}`, "Content-Type", mergePatchType, "If-Match", tag); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("a stale If-Match on the other replica = %d %s, want 412", resp.StatusCode, body)
	}
	if n := len(l.audit); n != 2 {
		t.Errorf("%d audit entries for 2 changes, want 2 (each audited once, by its writer)", n)
	}
	for _, u := range []string{urlA, urlB} {
		if p := auditPage(t, u, adminToken, "key=x"); len(p.Entries) != 2 || p.Entries[1].Version != 19 {
			t.Errorf("audit through %s: %+v, want both entries", u, p.Entries)
		}
	}
}

// waitVersion waits for srv to serve version v.
func waitVersion(t *testing.T, srv *Server, v int64) {
	t.Helper()
	if !testkit.Await(waitLimit, time.Millisecond, func() bool { return srv.Version() == v }) {
		t.Fatalf("version %d, want %d", srv.Version(), v)
	}
}

// TestLedgerWritesAcrossReplicasGapless: read-modify-write increments sent
// to two replicas at once, each retrying on 412: none is lost, and the
// versions are gapless — every version from 18 on is one commit.
func TestLedgerWritesAcrossReplicasGapless(t *testing.T) {
	l := newSharedLedger(t, `{"version": 17, "flags": {"hot": {"version": 1, "n": 0, "variations": [true], "fallthrough": {"variation": 0}}}}`, 1000)
	a, _, urlA := ledgerReplica(t, l)
	b, _, urlB := ledgerReplica(t, l)
	const perReplica, workers = 100, 4
	var wg sync.WaitGroup
	for w := range 2 * workers {
		base := urlA
		if w%2 == 1 {
			base = urlB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perReplica / workers {
				for {
					req, _ := http.NewRequest("GET", base+"/v1/admin/flags/hot", nil)
					req.Header.Set("Authorization", "Bearer "+adminToken)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					var f struct{ N int }
					err = json.NewDecoder(resp.Body).Decode(&f)
					resp.Body.Close()
					if err != nil {
						t.Error(err)
						return
					}
					req, _ = http.NewRequest("PATCH", base+"/v1/admin/flags/hot", strings.NewReader(fmt.Sprintf(`{"n": %d}`, f.N+1)))
					req.Header.Set("Authorization", "Bearer "+adminToken)
					req.Header.Set("Content-Type", mergePatchType)
					req.Header.Set("If-Match", resp.Header.Get("ETag"))
					resp, err = http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
					if resp.StatusCode != http.StatusPreconditionFailed {
						t.Errorf("PATCH = %d", resp.StatusCode)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	const total = 2 * perReplica
	waitVersion(t, a, 17+total)
	waitVersion(t, b, 17+total)
	var f struct{ N int }
	if err := json.Unmarshal(l.doc.Flags["hot"], &f); err != nil || f.N != total {
		t.Errorf("n = %d (%v) after %d increments", f.N, err, total)
	}
	for i, e := range l.audit {
		if e.Version != int64(18+i) {
			t.Fatalf("audit entry %d at version %d, want %d: versions are not gapless", i, e.Version, 18+i)
		}
	}
	if string(a.Document().Flags["hot"]) != string(b.Document().Flags["hot"]) {
		t.Errorf("replicas differ: %s and %s", a.Document().Flags["hot"], b.Document().Flags["hot"])
	}
}

// TestLedgerFailoverReplaysFromLog: a client that fails over to a replica
// started after the changes it missed, with its Last-Event-ID, is replayed
// those changes from the store's change log, not sent a snapshot.
func TestLedgerFailoverReplaysFromLog(t *testing.T) {
	l := newSharedLedger(t, baseDoc, 100)
	_, _, urlA := ledgerReplica(t, l)
	for i := range 3 {
		body := fmt.Sprintf(`{"variations": [%d], "fallthrough": {"variation": 0}}`, i)
		if resp, answer := do(t, "PUT", urlA+"/v1/admin/flags/x", adminToken, body); resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT = %d %s", resp.StatusCode, answer)
		}
	}
	c, _, urlC := ledgerReplica(t, l) // its ring is empty: it loaded version 20
	if c.Version() != 20 {
		t.Fatalf("C at %d, want 20", c.Version())
	}
	s := openStream(t, urlC, "", "db-1:18")
	for _, want := range []string{"db-1:19", "db-1:20"} {
		if ev, _ := s.nextPatch(t); ev.ID != want {
			t.Fatalf("replayed %s, want %s", ev.ID, want)
		}
	}
	// Then the live changes, made through A, published by C.
	if resp, answer := do(t, "DELETE", urlA+"/v1/admin/flags/x", adminToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d %s", resp.StatusCode, answer)
	}
	if ev, p := s.nextPatch(t); ev.ID != "db-1:21" || string(p.Flags["x"]) != "null" {
		t.Errorf("then %s %s, want the delete at db-1:21", ev.ID, ev.Data)
	}
	// Out of the log's reach, or another epoch: a snapshot.
	for _, last := range []string{"db-0:18", "db-1:99", "db-1:x"} {
		if ev := openStream(t, urlC, "", last).next(t); ev.Name != "snapshot" {
			t.Errorf("Last-Event-ID %s: %s, want a snapshot", last, ev.Name)
		}
	}
}

// TestLedgerHistoryGone: a replica that missed more commits than the
// change log keeps loads the whole content and publishes it at the
// store's version.
func TestLedgerHistoryGone(t *testing.T) {
	l := newSharedLedger(t, baseDoc, 2)
	a, _, urlA := ledgerReplica(t, l)
	b, viewB, _ := ledgerReplica(t, l)
	viewB.muted.Store(true)
	for i := range 5 {
		body := fmt.Sprintf(`{"variations": [%d], "fallthrough": {"variation": 0}}`, i)
		if resp, answer := do(t, "PUT", urlA+"/v1/admin/flags/k"+strconv.Itoa(i), adminToken, body); resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT = %d %s", resp.StatusCode, answer)
		}
	}
	if resp, answer := do(t, "DELETE", urlA+"/v1/admin/flags/banner-text", adminToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d %s", resp.StatusCode, answer)
	}
	if b.Version() != 17 {
		t.Fatalf("B at %d before it is told, want 17", b.Version())
	}
	viewB.muted.Store(false)
	viewB.notify <- struct{}{}
	waitVersion(t, b, 23)
	sameContent(t, b.Document(), a.Document())
	for k, raw := range a.Document().Flags {
		if objectVersion(raw) != objectVersion(b.Document().Flags[k]) {
			t.Errorf("flag %s at version %d on A, %d on B", k, objectVersion(raw), objectVersion(b.Document().Flags[k]))
		}
	}
}

// TestLedgerUnavailable: while the store cannot be reached, admin writes
// answer 503 with Retry-After and /readyz 503, reads and streams go on;
// when it is back, a replica catches up without being told.
func TestLedgerUnavailable(t *testing.T) {
	l := newSharedLedger(t, baseDoc, 100)
	a, _, urlA := ledgerReplica(t, l)
	viewB := l.view()
	logger, logs := newLogSink()
	b, err := New(viewB, Options{AdminToken: adminToken, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	urlB := serve(t, b).URL
	cb := openStream(t, urlB, "", "")
	cb.next(t)
	l.setDown(true)
	resp, body := do(t, "PUT", urlA+"/v1/admin/flags/x", adminToken, `{"variations": [true], "fallthrough": {"variation": 0}}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("PUT with the store down = %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	if resp, body := do(t, "GET", urlA+"/readyz", "", ""); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
		t.Errorf("/readyz with the store down = %d %q, want 503", resp.StatusCode, body)
	}
	// The store's error names its host, database and user: the log has
	// it, no answer does.
	for _, req := range [][3]string{{"PUT", "/v1/admin/flags/x", `{"variations": [true], "fallthrough": {"variation": 0}}`}, {"GET", "/readyz", ""}, {"GET", "/v1/admin/audit", ""}} {
		if _, body := do(t, req[0], urlA+req[1], adminToken, req[2]); strings.Contains(body, "connection refused") {
			t.Errorf("%s %s with the store down shows its error: %s", req[0], req[1], body)
		}
	}
	if resp, _ := do(t, "GET", urlB+"/v1/flags", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("reads with the store down = %d, want 200", resp.StatusCode)
	}
	if resp, body := do(t, "GET", urlA+"/v1/admin/audit", adminToken, ""); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET /v1/admin/audit with the store down = %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	// B is told of a change while the store is down: its catch-up fails,
	// and is tried again once the store answers.
	viewB.notify <- struct{}{}
	awaitLog(t, logs, "catching up failed", "unavailable")
	l.setDown(false)
	viewB.muted.Store(true) // B is not told of this one: its retry finds it
	if resp, body := do(t, "PUT", urlA+"/v1/admin/flags/x", adminToken, `{"variations": [true], "fallthrough": {"variation": 0}}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT with the store back = %d %s", resp.StatusCode, body)
	}
	if ev, _ := cb.nextPatch(t); ev.ID != "db-1:18" {
		t.Errorf("B published %s, want db-1:18", ev.ID)
	}
	if a.Version() != 18 || b.Version() != 18 {
		t.Errorf("versions %d and %d, want 18", a.Version(), b.Version())
	}
}

// TestLedgerPublish: Publish on a replica writes through the store, so the
// other replicas publish it too.
func TestLedgerPublish(t *testing.T) {
	l := newSharedLedger(t, baseDoc, 100)
	a, _, _ := ledgerReplica(t, l)
	b, _, _ := ledgerReplica(t, l)
	if err := a.Publish(mustParse(t, pushedDoc)); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, b, 18)
	sameContent(t, b.Document(), mustParse(t, pushedDoc))
	if len(l.audit) != 4 || l.audit[0].Actor != ActorProgram || l.audit[0].Action != ActionReload {
		t.Errorf("audit %+v, want 4 entries by program", l.audit)
	}
	if _, err := New(l.view(), Options{Epoch: "mine"}); err == nil {
		t.Error("New over a Ledger with Options.Epoch set: no error")
	}
}

// TestLedgerHistoryReset: a store restored from a backup goes back to an
// older version. A replica that runs through the restore finds it, serves
// the store's content under a new epoch and ends its streams; another
// replica takes the same epoch at its next catch-up; writes go on from the
// restored version; and a client of the lost history that resumes with
// its Last-Event-ID is sent a snapshot, never the new history's patches on
// top of content the store no longer has.
func TestLedgerHistoryReset(t *testing.T) {
	l := newSharedLedger(t, baseDoc, 100) // version 17
	a, _, urlA := ledgerReplica(t, l)
	b, viewB, urlB := ledgerReplica(t, l)
	saved := l.backup()
	for i := range 3 { // versions 18 to 20: the history the restore loses
		body := fmt.Sprintf(`{"variations": ["lost-%d"], "fallthrough": {"variation": 0}}`, i)
		if resp, answer := do(t, "PUT", urlA+"/v1/admin/flags/lost", adminToken, body); resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT = %d %s", resp.StatusCode, answer)
		}
	}
	waitVersion(t, b, 20)
	cb := openStream(t, urlB, "", "db-1:20") // resumed: nothing to send
	l.restore(saved)
	viewB.notify <- struct{}{} // what B's poll of the counter does
	if !testkit.Await(waitLimit, time.Millisecond, func() bool { return b.Epoch() != "db-1" }) {
		t.Fatalf("B still serves epoch %s at version %d after the store went back to 17", b.Epoch(), b.Version())
	}
	epoch := b.Epoch()
	if b.Version() != 17 || b.Document().Flags["lost"] != nil {
		t.Errorf("B serves version %d with flag lost %s, want the store's 17 without it", b.Version(), b.Document().Flags["lost"])
	}
	for ev := range cb.events { // B ended the stream of the old epoch
		if ev.Comment == "" {
			t.Errorf("the old epoch's stream was sent %s %s, want its end", ev.Name, ev.ID)
		}
	}
	// A, still at 20, proposes 21: stale, it catches up, finds the new
	// epoch, and writes at 18.
	resp, answer := do(t, "PUT", urlA+"/v1/admin/flags/next", adminToken, `{"variations": [true], "fallthrough": {"variation": 0}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT through A after the restore = %d %s", resp.StatusCode, answer)
	}
	if a.Epoch() != epoch || a.Version() != 18 || a.Document().Flags["lost"] != nil {
		t.Errorf("A serves epoch %s version %d (flag lost %s), want %s, 18, no flag lost", a.Epoch(), a.Version(), a.Document().Flags["lost"], epoch)
	}
	waitVersion(t, b, 18)
	l.mu.Lock()
	renewals := l.renewals
	l.mu.Unlock()
	if renewals != 1 {
		t.Errorf("the epoch was renewed %d times, want once", renewals)
	}
	// A client that saw 18 of the lost history.
	if ev := openStream(t, urlB, "", "db-1:18").next(t); ev.Name != "snapshot" || ev.ID != epoch+":18" {
		t.Errorf("a client of the lost history resuming at db-1:18 was sent %s %s, want a snapshot %s:18", ev.Name, ev.ID, epoch)
	}
	if resp, _ := do(t, "GET", urlA+"/v1/flags", "", ""); resp.Header.Get("ETag") != `"`+epoch+`:18"` {
		t.Errorf("ETag %s, want %q", resp.Header.Get("ETag"), epoch+":18")
	}
}

// TestServedEntryIsNewEntry: an entry made from what a server published
// (a change log's value) is the entry newEntry made it from.
func TestServedEntryIsNewEntry(t *testing.T) {
	for _, src := range []string{`{"on": true, "variations": [1]}`, `{"version": 3, "on": true}`, `{"on":true,"version":7,"x":{"version":1}}`, `{}`} {
		for _, v := range []int64{0, 1, 12} {
			want := newEntry(json.RawMessage(src), v)
			if got := servedEntry(want.raw); string(got.raw) != string(want.raw) || got.version != v {
				t.Errorf("%s at %d: %s at %d, want %s", src, v, got.raw, got.version, want.raw)
			}
		}
	}
}

// BenchmarkCatchUpLargeChange is a replica publishing another's push of
// 5,000 flags of 2 KB (10 MB): SPEC §10 gives every replica 500 ms.
func BenchmarkCatchUpLargeChange(b *testing.B) {
	l := newSharedLedger(&testing.T{}, baseDoc, 100)
	a, err := New(l.view(), Options{AdminToken: adminToken})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	view := l.view()
	view.muted.Store(true)
	r, err := New(view, Options{AdminToken: adminToken})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	filler := strings.Repeat("x", 1900)
	for i := range b.N {
		b.StopTimer()
		doc := &rules.Document{Flags: map[string]json.RawMessage{}}
		for k := range 5000 {
			doc.Flags[fmt.Sprintf("big%05d", k)] = json.RawMessage(fmt.Sprintf(`{"on": true, "variations": ["%s", "b"], "fallthrough": {"variation": 0}, "description": "%d"}`, filler, i))
		}
		if err := a.Publish(doc); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		r.writeMu.Lock()
		_, err := r.catchUp(context.Background())
		r.writeMu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
}
