package pgstore_test

import (
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
	for i := range 6 {
		put(t, rs[i%3], fmt.Sprintf("f%d", i%2), i)
	}
	for _, r := range rs {
		waitVersion(t, r.srv, 6)
	}
	var etags []string
	for i, r := range rs {
		resp, body := do(t, "GET", r.url+"/v1/admin/flags/f1", adminToken, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("replica %d GET = %d %s", i, resp.StatusCode, body)
		}
		etags = append(etags, resp.Header.Get("ETag"))
		resp, body = do(t, "GET", r.url+"/v1/flags", "", "")
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
	if etags[0] == "" || etags[0] != etags[1] || etags[1] != etags[2] {
		t.Errorf("ETags %q, want one value everywhere", etags)
	}
	// The audit, read on any replica: one entry per change, in version order.
	resp, body := do(t, "GET", rs[2].url+"/v1/admin/audit?limit=100", adminToken, "")
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
	// Paging and filters through the store itself.
	p, err := rs[0].store.Audit(context.Background(), server.AuditQuery{Key: "f1", Limit: 2})
	if err != nil || len(p.Entries) != 2 || p.Next == "" || p.Entries[0].Version != 2 {
		t.Fatalf("Audit(key f1, limit 2) = %+v, %v", p, err)
	}
	p, err = rs[0].store.Audit(context.Background(), server.AuditQuery{Key: "f1", Limit: 2, After: p.Next})
	if err != nil || len(p.Entries) != 1 || p.Next != "" || p.Entries[0].Version != 6 {
		t.Fatalf("Audit's second page = %+v, %v", p, err)
	}
	if _, err := rs[0].store.Audit(context.Background(), server.AuditQuery{After: "x"}); !errors.Is(err, server.ErrBadCursor) {
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
	var ok, stale, other atomic.Int64
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			r := rs[i%3]
			key := fmt.Sprintf("k%03d", i%keys)
			etag := `"1"` // every key is at its flag version 1: one writer per key wins
			resp, body := do(t, "PATCH", r.url+"/v1/admin/flags/"+key, adminToken,
				fmt.Sprintf(`{"description": "writer %d"}`, i),
				"If-Match", etag, "Content-Type", "application/merge-patch+json")
			switch resp.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusPreconditionFailed:
				stale.Add(1)
			default:
				other.Add(1)
				t.Errorf("PATCH %s = %d %s", key, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if ok.Load() != keys || stale.Load() != 1000-keys || other.Load() != 0 {
		t.Fatalf("%d accepted, %d 412, %d other; want %d, %d, 0", ok.Load(), stale.Load(), other.Load(), keys, 1000-keys)
	}
	for _, r := range rs {
		waitVersion(t, r.srv, 2*keys)
	}
	for i, r := range rs {
		if v := r.srv.Version(); v != 2*keys {
			t.Errorf("replica %d at %d, want %d", i, v, 2*keys)
		}
	}
	changes, err := rs[0].store.Changes(context.Background(), 0, 1000)
	if err != nil || len(changes) != 2*keys {
		t.Fatalf("change log: %d commits, %v; want %d", len(changes), err, 2*keys)
	}
	for i, c := range changes {
		if c.Version != int64(i+1) {
			t.Fatalf("change log position %d holds version %d: not gapless", i, c.Version)
		}
	}
	var entries []server.AuditEntry
	for after := ""; ; {
		p, err := rs[1].store.Audit(context.Background(), server.AuditQuery{Limit: server.MaxAuditLimit, After: after})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, p.Entries...)
		if after = p.Next; after == "" {
			break
		}
	}
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
	put(t, a, "x", 0)
	waitVersion(t, b.srv, 1)
	sb := openStream(t, b.url, "")
	if ev := sb.next(t); ev.Name != "snapshot" {
		t.Fatalf("first event %s", ev.Name)
	}

	// Writers through both replicas, across the outage: every write
	// answered 200 must survive it.
	var acked sync.Map
	stopWriters := make(chan struct{})
	var writers sync.WaitGroup
	for w, r := range []*replica{a, b} {
		writers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopWriters:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				resp, _ := do(t, "PUT", r.url+"/v1/admin/flags/"+key, adminToken, fmt.Sprintf(flagBody, i%7))
				if resp.StatusCode == http.StatusOK {
					acked.Store(key, true)
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)

	c.kill(t)
	resp, body := do(t, "PUT", a.url+"/v1/admin/flags/x", adminToken, fmt.Sprintf(flagBody, 1))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("PUT with the database down = %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	for name, r := range map[string]*replica{"A": a, "B": b} {
		if resp, _ := do(t, "GET", r.url+"/readyz", "", ""); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("replica %s /readyz = %d with the database down, want 503", name, resp.StatusCode)
		}
		resp, body := do(t, "GET", r.url+"/v1/flags", "", "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"variation":0`) {
			t.Errorf("replica %s /v1/flags = %d %s with the database down, want the last snapshot", name, resp.StatusCode, body)
		}
	}

	c.start(t)
	// Writes are accepted again once the pool reconnects.
	deadline := time.Now().Add(waitLimit)
	for {
		resp, body := do(t, "PUT", a.url+"/v1/admin/flags/x", adminToken, fmt.Sprintf(flagBody, 2))
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("PUT after the restart = %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stopWriters)
	writers.Wait()
	final, err := a.store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	acked.Range(func(k, _ any) bool {
		if final.Flags[k.(string)] == nil {
			t.Errorf("write of %s was acknowledged and is lost", k)
		}
		n++
		return true
	})
	if n < 10 {
		t.Errorf("only %d writes acknowledged: the writers did not run", n)
	}
	// Both replicas serve exactly what the database holds, and B's
	// stream, open through the outage, got every version in order.
	for name, r := range map[string]*replica{"A": a, "B": b} {
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
	for v := int64(2); v <= final.Version; v++ {
		ev := sb.next(t)
		if ev.Name != "patch" || !strings.HasSuffix(ev.ID, fmt.Sprintf(":%d", v)) {
			t.Fatalf("B's stream: %s %s, want the patch of version %d", ev.Name, ev.ID, v)
		}
	}
	for name, r := range map[string]*replica{"A": a, "B": b} {
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
	p, err := a.store.Audit(context.Background(), server.AuditQuery{Since: final.Version - 1, Limit: 10})
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Version != final.Version {
		t.Fatalf("audit of the last version: %+v, %v; want its one entry", p, err)
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
	var rs []*replica
	for range 2 {
		st := openStore(t, db, pgstore.Options{PollInterval: 500 * time.Millisecond})
		srv, err := server.New(st, server.Options{AdminToken: adminToken, GuardInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		t.Cleanup(ts.Close)
		t.Cleanup(func() { _ = srv.Close() })
		rs = append(rs, &replica{srv: srv, store: st, url: ts.URL})
	}
	resp, body := do(t, "PUT", rs[0].url+"/v1/admin/flags/checkout", adminToken, `{"on": true, "variations": ["old", "new"],
	  "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
	  "guard": {"metric": "errors", "better": "lower", "control": 0, "treatment": 1, "minUnits": 50}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	post := func(r *replica, id string, from, to int) string {
		var evs []string
		for i := from; i < to; i++ {
			v := i % 2
			evs = append(evs, fmt.Sprintf(`{"kind":"exposure","at":100,"flag":"checkout","version":1,"variation":%d,"contextKey":"u%d","inRollout":true}`, v, i))
			if v == 1 || i%10 == 0 { // the treatment always fails, the control 10 %
				evs = append(evs, fmt.Sprintf(`{"kind":"track","at":200,"name":"errors","contextKey":"u%d"}`, i))
			}
		}
		_, body := do(t, "POST", r.url+"/v1/events", "", fmt.Sprintf(`{"batch":%q,"events":[%s]}`, id, strings.Join(evs, ",")))
		return body
	}
	// Below minUnits: nothing trips yet.
	if b := post(rs[0], "pg-batch-0000000001", 0, 40); !strings.Contains(b, `"accepted":`) {
		t.Fatalf("post: %s", b)
	}
	if b := post(rs[1], "pg-batch-0000000001", 0, 40); !strings.Contains(b, `"duplicate":true`) {
		t.Fatalf("the same batch through the other replica: %s, want a duplicate", b)
	}
	ra, _ := rs[0].srv.Experiment("checkout")
	rb, _ := rs[1].srv.Experiment("checkout")
	ja, _ := json.Marshal(ra)
	jb, _ := json.Marshal(rb)
	if string(ja) != string(jb) || ra.Units(0) != 20 || ra.Units(1) != 20 {
		t.Fatalf("replicas disagree or miscount:\n%s\n%s", ja, jb)
	}
	post(rs[1], "pg-batch-0000000002", 40, 200)
	for _, r := range rs {
		waitVersion(t, r.srv, 2)
	}
	time.Sleep(300 * time.Millisecond) // several more checks on both replicas
	p, err := rs[0].store.Audit(context.Background(), server.AuditQuery{Key: "checkout", Limit: 10})
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
	if guards != 1 || rs[0].srv.Version() != 2 || rs[1].srv.Version() != 2 {
		t.Errorf("%d rollbacks audited, versions %d and %d; want one rollback at version 2", guards, rs[0].srv.Version(), rs[1].srv.Version())
	}
}
