package pgstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/pgtest"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/server/pgstore"
)

const flagBody = `{"on": true, "variations": ["a", "b", "c", "d", "e", "f", "g"], "fallthrough": {"variation": %d}}`

// put PUTs flag key through r with fallthrough variation v and checks 200.
func put(t testing.TB, r *replica, key string, v int) {
	t.Helper()
	resp, body := do(t, "PUT", r.url+"/v1/admin/flags/"+key, adminToken, fmt.Sprintf(flagBody, v))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s = %d %s", key, resp.StatusCode, body)
	}
}

// TestThreeReplicasAgree: a change accepted by any of three replicas on
// one database is published by all three at the same version, with the
// same epoch and the same ETag, and audited once.
func TestThreeReplicasAgree(t *testing.T) {
	db := pgtest.FreshDatabase(t, postgresURL(t))
	rs := []*replica{newReplica(t, db), newReplica(t, db), newReplica(t, db)}
	epoch := rs[0].srv.Epoch()
	if epoch == "" {
		t.Fatal("no epoch")
	}
	for i, r := range rs {
		if r.srv.Epoch() != epoch || r.srv.Version() != 0 {
			t.Fatalf("replica %d: epoch %q version %d, want %q and 0", i, r.srv.Epoch(), r.srv.Version(), epoch)
		}
	}
	// Six writes spread over the replicas: f0 ends at variation 4, f1 at 5.
	for i := range 6 {
		put(t, rs[i%3], fmt.Sprintf("f%d", i%2), i)
	}
	for _, r := range rs {
		waitVersion(t, r.srv, 6)
	}

	t.Run("same content and ETag everywhere", func(t *testing.T) {
		var etags []string
		for i, r := range rs {
			checkServesSixWrites(t, i, r)
			etags = append(etags, flagETag(t, i, r, "f1"))
		}
		if etags[0] == "" || etags[0] != etags[1] || etags[1] != etags[2] {
			t.Errorf("ETags %q, want one value everywhere", etags)
		}
	})
	t.Run("audit read on any replica", func(t *testing.T) { checkAuditOfSixPuts(t, rs[2]) })
	t.Run("audit paging and filters", func(t *testing.T) { checkAuditPagingOfF1(t, rs[0].store) })
}

// flagETag returns the ETag replica i answers for flag key.
func flagETag(t *testing.T, i int, r *replica, key string) string {
	t.Helper()
	resp, body := do(t, "GET", r.url+"/v1/admin/flags/"+key, adminToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("replica %d GET = %d %s", i, resp.StatusCode, body)
	}
	return resp.Header.Get("ETag")
}

// checkServesSixWrites checks that replica i serves TestThreeReplicasAgree's
// six writes: version 6, f0 at variation 4 and f1 at 5.
func checkServesSixWrites(t *testing.T, i int, r *replica) {
	t.Helper()
	resp, body := do(t, "GET", r.url+"/v1/flags", "", "")
	var doc struct {
		Version int64 `json:"version"`
		Flags   map[string]struct {
			Fallthrough struct{ Variation int } `json:"fallthrough"`
		} `json:"flags"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("replica %d GET /v1/flags = %d %s", i, resp.StatusCode, body)
	}
	if doc.Version != 6 || doc.Flags["f0"].Fallthrough.Variation != 4 || doc.Flags["f1"].Fallthrough.Variation != 5 {
		t.Errorf("replica %d serves %s", i, body)
	}
}

// checkAuditOfSixPuts checks the audit API of r after six PUTs of two keys:
// one entry per change, in version order, each with the value before it.
func checkAuditOfSixPuts(t *testing.T, r *replica) {
	t.Helper()
	resp, body := do(t, "GET", r.url+"/v1/admin/audit?limit=100", adminToken, "")
	var page server.AuditPage
	if err := json.Unmarshal([]byte(body), &page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET audit = %d %s", resp.StatusCode, body)
	}
	if len(page.Entries) != 6 {
		t.Fatalf("%d audit entries, want 6: %s", len(page.Entries), body)
	}
	for i, e := range page.Entries {
		if e.Version != int64(i+1) || e.Actor != "admin" || e.Action != server.ActionPut || e.After == nil {
			t.Errorf("audit entry %d: %+v", i, e)
		}
	}
	if string(page.Entries[0].Before) != "null" || string(page.Entries[2].Before) == "null" { // decoded from JSON: null is "null"
		t.Errorf("before: first %s, third %s; want null then the earlier value", page.Entries[0].Before, page.Entries[2].Before)
	}
}

// checkAuditPagingOfF1 pages through the audit of f1 (versions 2, 4, 6) two
// entries at a time through the store itself, and checks a bad cursor.
func checkAuditPagingOfF1(t *testing.T, st *pgstore.Store) {
	t.Helper()
	p, err := st.Audit(context.Background(), server.AuditQuery{Key: "f1", Limit: 2})
	if err != nil || len(p.Entries) != 2 || p.Next == "" || p.Entries[0].Version != 2 {
		t.Fatalf("Audit(key f1, limit 2) = %+v, %v", p, err)
	}
	p, err = st.Audit(context.Background(), server.AuditQuery{Key: "f1", Limit: 2, After: p.Next})
	if err != nil || len(p.Entries) != 1 || p.Next != "" || p.Entries[0].Version != 6 {
		t.Fatalf("Audit's second page = %+v, %v", p, err)
	}
	if _, err := st.Audit(context.Background(), server.AuditQuery{After: "x"}); !errors.Is(err, server.ErrBadCursor) {
		t.Errorf("Audit(After x) = %v, want ErrBadCursor", err)
	}
}

// TestConcurrentMigrations: replicas starting together on an empty
// database all come up, with one schema and one epoch.
func TestConcurrentMigrations(t *testing.T) {
	db := pgtest.FreshDatabase(t, postgresURL(t))
	const n = 8
	stores := make([]*pgstore.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = pgstore.Open(context.Background(), db, pgstore.Options{}) })
	}
	wg.Wait()
	epochs := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		e, err := stores[i].Epoch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		epochs[e] = true
		stores[i].Close()
	}
	if len(epochs) != 1 {
		t.Errorf("epochs %v, want one", epochs)
	}
}

// TestFailoverReplaysFromChangeLog: a client that streamed from replica A
// and reconnects to replica B with its Last-Event-ID gets only the patches
// it missed, from the store's change log, not a snapshot.
func TestFailoverReplaysFromChangeLog(t *testing.T) {
	db := pgtest.FreshDatabase(t, postgresURL(t))
	a := newReplica(t, db)
	put(t, a, "x", 0)
	s := openStream(t, a.url, "")
	snap := s.next(t)
	if snap.Name != "snapshot" || snap.ID != a.srv.Epoch()+":1" {
		t.Fatalf("first event %s %s, want the snapshot at 1", snap.Name, snap.ID)
	}
	s.cancel()
	for i := 1; i <= 3; i++ {
		put(t, a, "x", i%2)
	}
	b := newReplica(t, db) // started after the writes: its own ring is empty
	if b.srv.Version() != 4 {
		t.Fatalf("B at %d, want 4", b.srv.Version())
	}
	s = openStream(t, b.url, snap.ID)
	for v := 2; v <= 4; v++ {
		ev := s.next(t)
		if ev.Name != "patch" || ev.ID != fmt.Sprintf("%s:%d", a.srv.Epoch(), v) {
			t.Fatalf("replayed %s %s, want the patch of version %d", ev.Name, ev.ID, v)
		}
	}
	put(t, a, "y", 1) // live, through A, published by B
	if ev := s.next(t); ev.Name != "patch" || !strings.HasSuffix(ev.ID, ":5") || !strings.Contains(ev.Data, `"y"`) {
		t.Fatalf("then %s %s %s, want y's patch at 5", ev.Name, ev.ID, ev.Data)
	}
}

// TestConcurrentWritesAcrossReplicas: 1,000 concurrent PATCHes with
// If-Match through three replicas, 10 writers per key: per key exactly one
// writer of each version wins and the others get 412; versions stay
// gapless; the audit holds exactly one entry per accepted change.
func TestConcurrentWritesAcrossReplicas(t *testing.T) {
	db := pgtest.FreshDatabase(t, postgresURL(t))
	rs := []*replica{newReplica(t, db), newReplica(t, db), newReplica(t, db)}
	const keys = 100
	for k := range keys {
		put(t, rs[k%3], fmt.Sprintf("k%03d", k), 0)
	}
	for _, r := range rs {
		waitVersion(t, r.srv, keys)
	}
	ok, stale, other := patchAtVersionOne(t, rs, keys, 1000)
	if ok != keys || stale != 1000-keys || other != 0 {
		t.Fatalf("%d accepted, %d 412, %d other; want %d, %d, 0", ok, stale, other, keys, 1000-keys)
	}
	for _, r := range rs {
		waitVersion(t, r.srv, 2*keys)
	}
	for i, r := range rs {
		if v := r.srv.Version(); v != 2*keys {
			t.Errorf("replica %d at %d, want %d", i, v, 2*keys)
		}
	}
	checkChangeLogGapless(t, rs[0].store, 2*keys)
	checkAuditOnePatchPerKey(t, allAuditEntries(t, rs[1].store), keys)
}

// patchAtVersionOne sends n concurrent PATCHes with If-Match "1" through the
// replicas in turn, n/keys to each key k000…, and counts the answers: 200,
// 412 and any other (an error).
func patchAtVersionOne(t *testing.T, rs []*replica, keys, n int) (ok, stale, other int64) {
	t.Helper()
	var okN, staleN, otherN atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := rs[i%len(rs)]
			key := fmt.Sprintf("k%03d", i%keys)
			etag := `"1"` // every key is at its flag version 1: one writer per key wins
			resp, body := do(t, "PATCH", r.url+"/v1/admin/flags/"+key, adminToken,
				fmt.Sprintf(`{"description": "writer %d"}`, i),
				"If-Match", etag, "Content-Type", "application/merge-patch+json")
			switch resp.StatusCode {
			case http.StatusOK:
				okN.Add(1)
			case http.StatusPreconditionFailed:
				staleN.Add(1)
			default:
				otherN.Add(1)
				t.Errorf("PATCH %s = %d %s", key, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	return okN.Load(), staleN.Load(), otherN.Load()
}

// checkChangeLogGapless checks that the change log holds versions 1…n.
func checkChangeLogGapless(t *testing.T, st *pgstore.Store, n int) {
	t.Helper()
	changes, err := st.Changes(context.Background(), 0, 1000)
	if err != nil || len(changes) != n {
		t.Fatalf("change log: %d commits, %v; want %d", len(changes), err, n)
	}
	for i, c := range changes {
		if c.Version != int64(i+1) {
			t.Fatalf("change log position %d holds version %d: not gapless", i, c.Version)
		}
	}
}

// allAuditEntries reads the whole audit, page after page.
func allAuditEntries(t *testing.T, st *pgstore.Store) []server.AuditEntry {
	t.Helper()
	var entries []server.AuditEntry
	for after := ""; ; {
		p, err := st.Audit(context.Background(), server.AuditQuery{Limit: server.MaxAuditLimit, After: after})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, p.Entries...)
		if after = p.Next; after == "" {
			return entries
		}
	}
}

// checkAuditOnePatchPerKey checks an audit of keys PUTs then one accepted
// PATCH per key: 2×keys entries in version order, one PATCH of each key.
func checkAuditOnePatchPerKey(t *testing.T, entries []server.AuditEntry, keys int) {
	t.Helper()
	if len(entries) != 2*keys {
		t.Fatalf("%d audit entries, want %d", len(entries), 2*keys)
	}
	perKey := map[string]int{}
	for i, e := range entries {
		if e.Version != int64(i+1) {
			t.Fatalf("audit entry %d has version %d: out of order", i, e.Version)
		}
		if e.Action == server.ActionPatch {
			perKey[e.Key]++
		}
	}
	for k := range keys {
		if n := perKey[fmt.Sprintf("k%03d", k)]; n != 1 {
			t.Errorf("key k%03d: %d patches audited, want 1", k, n)
		}
	}
}

// TestChangeLogKeepsTheLast: older commits are pruned; a replica asking for
// them gets ErrHistoryGone, which makes the Server publish the whole
// content instead.
func TestChangeLogKeepsTheLast(t *testing.T) {
	db := pgtest.FreshDatabase(t, postgresURL(t))
	st := openStore(t, db, pgstore.Options{KeepChanges: 3})
	srv, err := server.New(st, server.Options{AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for v := int64(1); v <= 5; v++ {
		c := &server.Commit{Version: v, Changes: []server.Change{{Kind: server.KindFlag, Key: "x",
			Value: json.RawMessage(fmt.Sprintf(`{"version":%d,"on":true,"variations":[1],"fallthrough":{"variation":0}}`, v))}}}
		if err := st.Write(context.Background(), c); err != nil {
			t.Fatalf("Write %d: %v", v, err)
		}
	}
	if err := st.Write(context.Background(), &server.Commit{Version: 5, Changes: []server.Change{{Kind: server.KindFlag, Key: "x"}}}); !errors.Is(err, server.ErrStale) {
		t.Errorf("Write of a version already taken = %v, want ErrStale", err)
	}
	got, err := st.Changes(context.Background(), 2, 10)
	if err != nil || len(got) != 3 || got[0].Version != 3 || got[2].Version != 5 {
		t.Fatalf("Changes(2) = %v, %v; want 3..5", got, err)
	}
	if _, err := st.Changes(context.Background(), 1, 10); !errors.Is(err, server.ErrHistoryGone) {
		t.Errorf("Changes(1) = %v, want ErrHistoryGone", err)
	}
	if got, err := st.Changes(context.Background(), 5, 10); err != nil || len(got) != 0 {
		t.Errorf("Changes(5) = %v, %v; want nothing", got, err)
	}
	waitVersion(t, srv, 5) // the Server over it caught up (notification or poll)
}

// TestDatabaseKilledMidStream: the database is killed (pg_ctl stop -m
// immediate) while clients stream and writes go on. While it is down the
// replicas keep the streams open and serve their last snapshot, admin
// writes answer 503 and /readyz 503; no acknowledged write is lost, no
// write answered 503 appears, and both replicas catch up when it returns.
func TestDatabaseKilledMidStream(t *testing.T) {
	c := ownCluster(t)
	db := pgtest.FreshDatabase(t, c.url)
	a, b := newReplica(t, db), newReplica(t, db)
	replicas := map[string]*replica{"A": a, "B": b}
	put(t, a, "x", 0)
	waitVersion(t, b.srv, 1)
	sb := openStream(t, b.url, "")
	if ev := sb.next(t); ev.Name != "snapshot" {
		t.Fatalf("first event %s", ev.Name)
	}

	// Writers through both replicas, across the outage: every write
	// answered 200 must survive it.
	writers := startWriters(t, a, b)
	time.Sleep(100 * time.Millisecond)

	c.kill(t)
	checkDatabaseDown(t, a, replicas)

	c.start(t)
	awaitWritesAccepted(t, a)
	time.Sleep(100 * time.Millisecond)
	writers.stop()
	final, err := a.store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	writers.checkKept(t, final)
	// Both replicas serve exactly what the database holds, and B's
	// stream, open through the outage, got every version in order.
	for name, r := range replicas {
		checkServes(t, name, r, final)
	}
	for v := int64(2); v <= final.Version; v++ {
		ev := sb.next(t)
		if ev.Name != "patch" || !strings.HasSuffix(ev.ID, fmt.Sprintf(":%d", v)) {
			t.Fatalf("B's stream: %s %s, want the patch of version %d", ev.Name, ev.ID, v)
		}
	}
	for name, r := range replicas {
		awaitReady(t, name, r)
	}
	p, err := a.store.Audit(context.Background(), server.AuditQuery{Since: final.Version - 1, Limit: 10})
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Version != final.Version {
		t.Fatalf("audit of the last version: %+v, %v; want its one entry", p, err)
	}
}

// writers PUT new flags through replicas until stopped, and remember the
// keys of the writes answered 200.
type writers struct {
	acked sync.Map
	done  chan struct{}
	wg    sync.WaitGroup
}

// startWriters starts one writer per replica, writing w<replica>-<i>.
func startWriters(t *testing.T, rs ...*replica) *writers {
	ws := &writers{done: make(chan struct{})}
	for w, r := range rs {
		ws.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-ws.done:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				resp, _ := do(t, "PUT", r.url+"/v1/admin/flags/"+key, adminToken, fmt.Sprintf(flagBody, i%7))
				if resp.StatusCode == http.StatusOK {
					ws.acked.Store(key, true)
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	return ws
}

func (ws *writers) stop() {
	close(ws.done)
	ws.wg.Wait()
}

// checkKept checks that every acknowledged write is in final, and that the
// writers ran at all.
func (ws *writers) checkKept(t *testing.T, final *rules.Document) {
	t.Helper()
	n := 0
	ws.acked.Range(func(k, _ any) bool {
		if final.Flags[k.(string)] == nil {
			t.Errorf("write of %s was acknowledged and is lost", k)
		}
		n++
		return true
	})
	if n < 10 {
		t.Errorf("only %d writes acknowledged: the writers did not run", n)
	}
}

// checkDatabaseDown checks what the replicas do with the database down: a
// write through a answers 503 with Retry-After; each replica says it is not
// ready and still serves its last snapshot (x at variation 0).
func checkDatabaseDown(t *testing.T, a *replica, replicas map[string]*replica) {
	t.Helper()
	resp, body := do(t, "PUT", a.url+"/v1/admin/flags/x", adminToken, fmt.Sprintf(flagBody, 1))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("PUT with the database down = %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	for name, r := range replicas {
		if resp, _ := do(t, "GET", r.url+"/readyz", "", ""); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("replica %s /readyz = %d with the database down, want 503", name, resp.StatusCode)
		}
		resp, body := do(t, "GET", r.url+"/v1/flags", "", "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"variation":0`) {
			t.Errorf("replica %s /v1/flags = %d %s with the database down, want the last snapshot", name, resp.StatusCode, body)
		}
	}
}

// awaitWritesAccepted retries a PUT through a, answered 503 while its pool
// reconnects, until it is accepted.
func awaitWritesAccepted(t *testing.T, a *replica) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		resp, body := do(t, "PUT", a.url+"/v1/admin/flags/x", adminToken, fmt.Sprintf(flagBody, 2))
		if resp.StatusCode == http.StatusOK {
			return
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("PUT after the restart = %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkServes waits for replica name to reach final's version and checks
// that it serves exactly final's flags.
func checkServes(t *testing.T, name string, r *replica, final *rules.Document) {
	t.Helper()
	waitVersion(t, r.srv, final.Version)
	served := r.srv.Document()
	if len(served.Flags) != len(final.Flags) {
		t.Errorf("replica %s serves %d flags, the database holds %d", name, len(served.Flags), len(final.Flags))
	}
	for k, v := range final.Flags {
		if string(served.Flags[k]) != string(v) {
			t.Errorf("replica %s serves %s = %s, the database holds %s", name, k, served.Flags[k], v)
		}
	}
}

// awaitReady waits for replica name's /readyz to answer 200.
func awaitReady(t *testing.T, name string, r *replica) {
	t.Helper()
	var status int
	ready := func() bool {
		resp, _ := do(t, "GET", r.url+"/readyz", "", "")
		status = resp.StatusCode
		return status == http.StatusOK
	}
	if !testkit.Await(waitLimit, 50*time.Millisecond, ready) {
		t.Fatalf("replica %s /readyz = %d after the restart", name, status)
	}
}

// BenchmarkCrossReplicaPublish measures how long a change accepted by one
// replica takes to be published by another (LISTEN/NOTIFY), over 100
// writes per round, and reports the p50 and p95 (SPEC §10: within 500 ms).
func BenchmarkCrossReplicaPublish(b *testing.B) {
	db := pgtest.FreshDatabase(b, postgresURL(b))
	a, c := newReplica(b, db), newReplica(b, db)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range 100 {
			start := time.Now()
			put(b, a, "x", len(lat)%2)
			v := a.srv.Version()
			for c.srv.Version() < v {
				time.Sleep(200 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
}

// TestEventsAcrossReplicas: events posted to any replica are counted by
// every replica, once: a batch retried on another replica is a duplicate;
// a guard trips once, as one audited rollback, whichever replicas check it.
func TestEventsAcrossReplicas(t *testing.T) {
	db := pgtest.FreshDatabase(t, postgresURL(t))
	rs := []*replica{guardingReplica(t, db), guardingReplica(t, db)}
	resp, body := do(t, "PUT", rs[0].url+"/v1/admin/flags/checkout", adminToken, `{"on": true, "variations": ["old", "new"],
	  "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
	  "guard": {"metric": "errors", "better": "lower", "control": 0, "treatment": 1, "minUnits": 50}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	for _, r := range rs { // the other replica reports on the flag once it has it
		waitVersion(t, r.srv, 1)
	}
	// Below minUnits: nothing trips yet.
	if b := postTreatmentFailing(t, rs[0], "pg-batch-0000000001", 0, 40); !strings.Contains(b, `"accepted":`) {
		t.Fatalf("post: %s", b)
	}
	if b := postTreatmentFailing(t, rs[1], "pg-batch-0000000001", 0, 40); !strings.Contains(b, `"duplicate":true`) {
		t.Fatalf("the same batch through the other replica: %s, want a duplicate", b)
	}
	ra, _ := rs[0].srv.Experiment("checkout")
	rb, _ := rs[1].srv.Experiment("checkout")
	ja, _ := json.Marshal(ra)
	jb, _ := json.Marshal(rb)
	if string(ja) != string(jb) || ra.Units(0) != 20 || ra.Units(1) != 20 {
		t.Fatalf("replicas disagree or miscount:\n%s\n%s", ja, jb)
	}
	postTreatmentFailing(t, rs[1], "pg-batch-0000000002", 40, 200)
	for _, r := range rs {
		waitVersion(t, r.srv, 2)
	}
	time.Sleep(300 * time.Millisecond) // several more checks on both replicas
	if guards := guardRollbacks(t, rs[0].store, "checkout"); guards != 1 || rs[0].srv.Version() != 2 || rs[1].srv.Version() != 2 {
		t.Errorf("%d rollbacks audited, versions %d and %d; want one rollback at version 2", guards, rs[0].srv.Version(), rs[1].srv.Version())
	}
}

// guardingReplica is a replica whose guards check every 50 ms.
func guardingReplica(t *testing.T, db string) *replica {
	t.Helper()
	st := openStore(t, db, pgstore.Options{PollInterval: 500 * time.Millisecond})
	srv, err := server.New(st, server.Options{AdminToken: adminToken, GuardInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = srv.Close() })
	return &replica{srv: srv, store: st, url: ts.URL}
}

// postTreatmentFailing posts batch id through r: units u<from>…u<to-1>
// exposed to "checkout" alternately, the treatment always failing on
// "errors", the control 10 % of the time. It returns the answer's body.
func postTreatmentFailing(t *testing.T, r *replica, id string, from, to int) string {
	t.Helper()
	var evs []string
	for i := from; i < to; i++ {
		v := i % 2
		evs = append(evs, fmt.Sprintf(`{"kind":"exposure","at":100,"flag":"checkout","version":1,"variation":%d,"contextKey":"u%d","inRollout":true}`, v, i))
		if v == 1 || i%10 == 0 {
			evs = append(evs, fmt.Sprintf(`{"kind":"track","at":200,"name":"errors","contextKey":"u%d"}`, i))
		}
	}
	_, body := do(t, "POST", r.url+"/v1/events", "", fmt.Sprintf(`{"batch":%q,"events":[%s]}`, id, strings.Join(evs, ",")))
	return body
}

// guardRollbacks counts the guard's rollbacks of flag key in the audit; a
// rollback by any actor but the guard is an error.
func guardRollbacks(t *testing.T, st *pgstore.Store, key string) int {
	t.Helper()
	p, err := st.Audit(context.Background(), server.AuditQuery{Key: key, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	guards := 0
	for _, e := range p.Entries {
		if e.Action == server.ActionGuard {
			guards++
			if e.Actor != server.ActorGuard {
				t.Errorf("rollback by %q", e.Actor)
			}
		}
	}
	return guards
}

// TestRestoredBackupRenewsEpoch: the epoch changes whenever the version
// history does not continue (SPEC §5), and restoring a backup takes it
// back. A replica that runs through a pg_restore of an older dump serves
// the restored content under a new epoch, which a replica started after
// it shares; a database restored while no replica ran is found restored
// when the next one starts. A client of the lost history is sent a
// snapshot, never patches of the new one.
func TestRestoredBackupRenewsEpoch(t *testing.T) {
	c := ownCluster(t)
	db := pgtest.FreshDatabase(t, c.url)
	a := newReplica(t, db)
	put(t, a, "x", 1) // version 1: the backup
	dump, err := c.command("pg_dump", "--format=custom", "--dbname="+db).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	put(t, a, "x", 2) // versions 2 and 3: lost by the restore
	put(t, a, "lost", 3)
	lost := a.srv.Epoch()
	restore := func() {
		t.Helper()
		cmd := c.command("pg_restore", "--clean", "--if-exists", "--single-transaction", "--dbname="+db)
		cmd.Stdin = bytes.NewReader(dump)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_restore: %v\n%s", err, out)
		}
	}
	restore()
	if !testkit.Await(waitLimit, 10*time.Millisecond, func() bool { return a.srv.Epoch() != lost }) {
		t.Fatalf("A serves epoch %s at version %d after the restore, the epoch of the lost history", a.srv.Epoch(), a.srv.Version())
	}
	renewed := a.srv.Epoch()
	if a.srv.Version() != 1 || a.srv.Document().Flags["lost"] != nil {
		t.Errorf("A serves version %d (flag lost: %s), want the backup's 1", a.srv.Version(), a.srv.Document().Flags["lost"])
	}
	b := newReplica(t, db)
	if b.srv.Epoch() != renewed {
		t.Errorf("B, started after the restore, has epoch %s; A has %s", b.srv.Epoch(), renewed)
	}
	put(t, b, "x", 4) // version 2 of the new history
	waitVersion(t, a.srv, 2)
	if ev := openStream(t, b.url, lost+":2").next(t); ev.Name != "snapshot" || ev.ID != renewed+":2" {
		t.Errorf("a client of the lost history resuming at %s:2 was sent %s %s, want a snapshot %s:2", lost, ev.Name, ev.ID, renewed)
	}

	// Restored again with no replica running: the next one finds it.
	_ = a.srv.Close()
	_ = b.srv.Close()
	_ = a.store.Close()
	_ = b.store.Close()
	restore()
	d := newReplica(t, db)
	if e := d.srv.Epoch(); e == lost || e == renewed || d.srv.Version() != 1 {
		t.Errorf("a replica started on a restored database serves epoch %s at version %d; want a new epoch (not %s or %s) at 1", e, d.srv.Version(), lost, renewed)
	}
}

// TestAuditPagesKeepChangesWhole: the audit table's pages end between
// changes (server.AuditPager): a client paging by since misses none of
// the entries of a change of several keys.
func TestAuditPagesKeepChangesWhole(t *testing.T) {
	db := pgtest.FreshDatabase(t, postgresURL(t))
	a := newReplica(t, db)
	put(t, a, "one", 1) // version 1
	doc := &rules.Document{Flags: map[string]json.RawMessage{"one": a.srv.Document().Flags["one"]}}
	for _, k := range []string{"p1", "p2", "p3"} {
		doc.Flags[k] = json.RawMessage(`{"variations": [true], "fallthrough": {"variation": 0}}`)
	}
	if err := a.srv.Publish(doc); err != nil { // version 2: three keys
		t.Fatal(err)
	}
	keys := func(p *server.AuditPage) string {
		var out []string
		for _, e := range p.Entries {
			out = append(out, fmt.Sprintf("%d:%s", e.Version, e.Key))
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		since int64
		limit int
		want  string
	}{{0, 4, "1:one 2:p1 2:p2 2:p3"}, {0, 3, "1:one"}, {1, 2, "2:p1 2:p2"}, {1, 3, "2:p1 2:p2 2:p3"}} {
		p, err := a.store.Audit(context.Background(), server.AuditQuery{Since: tc.since, Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(p); got != tc.want {
			t.Errorf("since=%d limit=%d: %q, want %q", tc.since, tc.limit, got, tc.want)
		}
		if tc.want == "1:one" {
			rest, err := a.store.Audit(context.Background(), server.AuditQuery{Since: tc.since, Limit: tc.limit, After: p.Next})
			if err != nil || keys(rest) != "2:p1 2:p2 2:p3" {
				t.Errorf("the page after %q: %q, %v; want all of version 2", p.Next, keys(rest), err)
			}
		}
	}
}
