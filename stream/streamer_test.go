package stream

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flagstream/flags/rules"
)

func TestStreamerAppliesSnapshotAndPatches(t *testing.T) {
	doc1 := docJSON(1, "a", "b")
	p2, p3 := patchJSON(2, "c"), patchJSON(3, "-a")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		_, _ = w.Write([]byte(": ping\n\n"))
		sseEvent(w, "snapshot", "e1:1", doc1)
		sseEvent(w, "patch", "e1:2", p2)
		sseEvent(w, "future-event", "e1:2", `{"whatever":1}`) // unknown: ignored
		sseEvent(w, "patch", "e1:3", p3)
		holdStream(r)
	}, nil)
	clock := newFakeClock()
	rec := newRecorder()
	s := newTestStreamer(t, testConfig(srv.URL, clock))
	run := startRun(t, s.Run, rec)
	checkApplied(t, rec.waitDocs(t, 3),
		applied{1, OriginStream, canonical(t, doc1)},
		applied{2, OriginStream, patched(t, doc1, p2)},
		applied{3, OriginStream, patched(t, doc1, p2, p3)})
	if err := run.stop(t); err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	reqs := srv.Requests("/v1/stream")
	if len(reqs) != 1 {
		t.Fatalf("%d stream requests, want 1", len(reqs))
	}
	if reqs[0].Auth != "Bearer sdk-token" || reqs[0].LastEventID != "" || reqs[0].Accept != "text/event-stream" {
		t.Errorf("first request = %+v, want Bearer token, no Last-Event-ID, Accept text/event-stream", reqs[0])
	}
	_, sts := rec.snapshot()
	if diff := cmp.Diff([]reported{{Source: OriginStream, Healthy: true}}, sts); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if len(clock.Sleeps()) != 0 {
		t.Errorf("sleeps = %v, want none", clock.Sleeps())
	}
	checkNoLeak(t)
}

func TestStreamerIgnoresDuplicatePatch(t *testing.T) {
	doc1 := docJSON(1, "a")
	p2, p3 := patchJSON(2, "b"), patchJSON(3, "c")
	srv := scriptedServer(t, script{events: []event{
		{"snapshot", "e1:1", doc1},
		{"patch", "e1:2", p2},
		{"patch", "e1:2", p2},                  // replayed duplicate
		{"patch", "e1:1", patchJSON(1, "zzz")}, // older still
		{"patch", "e1:3", p3},
	}})
	_, rec := streamDocs(t, testConfig(srv.URL, newFakeClock()), 3)
	docs, _ := rec.snapshot()
	checkVersions(t, docs, 1, 2, 3)
	if got, want := docs[2].JSON, patched(t, doc1, p2, p3); got != want {
		t.Errorf("final document = %s, want %s", got, want)
	}
	if n := len(srv.Requests("/v1/stream")); n != 1 {
		t.Errorf("%d stream requests, want 1 (a duplicate is no reason to reconnect)", n)
	}
}

func TestStreamerCleanEndReconnectsWithLastEventID(t *testing.T) {
	doc1 := docJSON(1, "a")
	p2, p3 := patchJSON(2, "b"), patchJSON(3, "c")
	srv := scriptedServer(t,
		script{end: true, events: []event{{"snapshot", "e1:1", doc1}, {"patch", "e1:2", p2}}},
		script{events: []event{{"patch", "e1:3", p3}}}, // replay after Last-Event-ID e1:2
	)
	clock := newFakeClock()
	docs, rec := streamDocs(t, testConfig(srv.URL, clock), 3)
	checkVersions(t, docs, 1, 2, 3)
	if got, want := docs[2].JSON, patched(t, doc1, p2, p3); got != want {
		t.Errorf("final document = %s, want %s", got, want)
	}
	reqs := srv.Requests("/v1/stream")
	if len(reqs) != 2 || reqs[1].LastEventID != "e1:2" {
		t.Fatalf("stream requests = %+v, want 2, the second with Last-Event-ID e1:2", reqs)
	}
	if got, want := clock.Sleeps(), []time.Duration{500 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("sleeps = %v, want %v (first failure, Rand 0)", got, want)
	}
	_, sts := rec.snapshot()
	if len(sts) != 3 || !sts[0].Healthy || sts[1].Healthy || !errors.Is(sts[1].Err, ErrStreamEnded) || !sts[2].Healthy {
		t.Errorf("statuses = %+v, want healthy, ErrStreamEnded, healthy", sts)
	}
	checkNoLeak(t)
}

// TestStreamerCutMidEvent: an event that the connection's end cuts before
// its blank line is not dispatched (SSE), whether its data is half a
// document or already whole JSON; the client resumes from the event before
// it and applies what the server sends then.
func TestStreamerCutMidEvent(t *testing.T) {
	doc1 := docJSON(1, "a")
	p2 := patchJSON(2, "b")
	whole := patchJSON(2, "cut")
	for name, cut := range map[string]string{
		"half the data":          p2[:len(p2)/2],
		"whole data, line ended": whole + "\n",
		"whole data, line open":  whole,
	} {
		t.Run(name, func(t *testing.T) {
			srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				sseStart(w)
				switch n {
				case 0:
					sseEvent(w, "snapshot", "e1:1", doc1)
					_, _ = w.Write([]byte("event: patch\nid: e1:2\ndata: " + cut))
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler) // drop the connection mid-event
				default:
					sseEvent(w, "patch", "e1:2", p2)
					holdStream(r)
				}
			}, nil)
			srv.Config.ErrorLog = nil
			clock := newFakeClock()
			_, rec := streamDocs(t, testConfig(srv.URL, clock), 2)
			docs, _ := rec.snapshot()
			checkApplied(t, docs,
				applied{1, OriginStream, canonical(t, doc1)},
				applied{2, OriginStream, patched(t, doc1, p2)})
			if reqs := srv.Requests("/v1/stream"); len(reqs) != 2 || reqs[1].LastEventID != "e1:1" {
				t.Errorf("stream requests = %+v, want 2, the second resuming from e1:1", reqs)
			}
			if n := len(clock.Sleeps()); n != 1 {
				t.Errorf("%d backoff waits, want 1", n)
			}
			checkNoLeak(t)
		})
	}
}

// restartableServer serves on a fixed 127.0.0.1 address that can go down
// and come back.
type restartableServer struct {
	addr    string
	handler http.Handler
	srv     *http.Server
	done    chan struct{}
}

func (rs *restartableServer) start(t *testing.T) {
	t.Helper()
	addr := rs.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	rs.addr = ln.Addr().String()
	rs.srv = &http.Server{Handler: rs.handler}
	rs.done = make(chan struct{})
	go func() { defer close(rs.done); _ = rs.srv.Serve(ln) }()
}

func (rs *restartableServer) down() {
	_ = rs.srv.Close() // closes the listener and every connection
	<-rs.done
}

func TestStreamerServerDownThenBack(t *testing.T) {
	doc1 := docJSON(1, "a")
	p2, p3 := patchJSON(2, "b"), patchJSON(3, "c")
	rs := &restartableServer{}
	rs.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/stream" {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		sseStart(w)
		switch r.Header.Get("Last-Event-ID") {
		case "":
			sseEvent(w, "snapshot", "e1:1", doc1)
			sseEvent(w, "patch", "e1:2", p2)
		case "e1:2": // history persisted across the restart: replay
			sseEvent(w, "patch", "e1:3", p3)
		default:
			sseEvent(w, "snapshot", "e1:3", patched(t, doc1, p2, p3))
		}
		holdStream(r) // http.Server.Close ends it
	})
	rs.start(t)
	clock := newFakeClock()
	clock.gate = make(chan time.Duration)
	rec := newRecorder()
	s := newTestStreamer(t, testConfig("http://"+rs.addr, clock))
	run := startRun(t, s.Run, rec)
	rec.waitDocs(t, 2)

	rs.down()
	// The client fails, waits, fails again (connection refused) and falls
	// back to GET /v1/flags, which also fails; meanwhile nothing is applied.
	for range 4 {
		select {
		case <-clock.gate:
		case <-time.After(waitLimit):
			t.Fatal("no backoff wait while the server is down")
		}
	}
	if docs, _ := rec.snapshot(); len(docs) != 2 {
		t.Fatalf("applied %v while the server was down, want the 2 documents from before", versions(docs))
	}
	rs.start(t) // same address
	defer rs.down()
	// Let the pending wait end; the next attempt reaches the server.
	defer passSleeps(clock)()
	docs := rec.waitDocs(t, 3)
	if err := run.stop(t); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	checkApplied(t, docs,
		applied{1, OriginStream, canonical(t, doc1)},
		applied{2, OriginStream, patched(t, doc1, p2)},
		applied{3, OriginStream, patched(t, doc1, p2, p3)})
	_, sts := rec.snapshot()
	if !hasStatus(sts, func(s reported) bool { return !s.Healthy && s.Err != nil }) {
		t.Errorf("statuses = %v, want an unhealthy one while down", sts)
	}
	if last := sts[len(sts)-1]; !last.Healthy || last.Source != OriginStream {
		t.Errorf("last status = %+v, want healthy stream", last)
	}
}

// passSleeps lets every wait of a gated clock end at once, until the
// returned stop is called.
func passSleeps(clock *fakeClock) (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-clock.gate:
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

func TestStreamerNewEpochAfterRestart(t *testing.T) {
	docA := docJSON(5, "a")
	pA6 := patchJSON(6, "b")
	docB := docJSON(2, "x") // a new lineage may well have a lower version
	pB3 := patchJSON(3, "y")
	srv := scriptedServer(t,
		// the server "restarts": the stream ends
		script{end: true, events: []event{{"snapshot", "A:5", docA}, {"patch", "A:6", pA6}}},
		// The new server has no history for A:6: snapshot first.
		script{events: []event{{"snapshot", "B:2", docB}, {"patch", "B:3", pB3}}},
	)
	docs, _ := streamDocs(t, testConfig(srv.URL, newFakeClock()), 4)
	checkApplied(t, docs,
		applied{5, OriginStream, canonical(t, docA)},
		applied{6, OriginStream, patched(t, docA, pA6)},
		applied{2, OriginStream, canonical(t, docB)},
		applied{3, OriginStream, patched(t, docB, pB3)})
	if reqs := srv.Requests("/v1/stream"); reqs[1].LastEventID != "A:6" {
		t.Errorf("second request Last-Event-ID = %q, want A:6", reqs[1].LastEventID)
	}
}

func TestStreamerForeignEpochPatchResyncs(t *testing.T) {
	docA := docJSON(5, "a")
	docB := docJSON(9, "x")
	srv := scriptedServer(t,
		script{events: []event{
			{"snapshot", "A:5", docA},
			{"patch", "B:6", patchJSON(6, "evil")}, // version fits, epoch does not
		}},
		script{events: []event{{"snapshot", "B:9", docB}}},
	)
	docs, _ := streamDocs(t, testConfig(srv.URL, newFakeClock()), 2)
	checkVersions(t, docs, 5, 9)
	if docs[1].JSON != canonical(t, docB) {
		t.Errorf("second document = %s, want B's snapshot", docs[1].JSON)
	}
	checkResynced(t, srv)
}

func TestStreamerPatchGapResyncs(t *testing.T) {
	doc1 := docJSON(1, "a")
	doc3 := docJSON(3, "a", "b", "c")
	srv := scriptedServer(t,
		script{events: []event{
			{"snapshot", "e1:1", doc1},
			{"patch", "e1:3", patchJSON(3, "c")}, // 2 is missing
			{"patch", "e1:4", patchJSON(4, "d")}, // must not be applied either
		}},
		script{events: []event{{"snapshot", "e1:3", doc3}}},
	)
	clock := newFakeClock()
	docs, rec := streamDocs(t, testConfig(srv.URL, clock), 2)
	checkApplied(t, docs, applied{1, OriginStream, canonical(t, doc1)}, applied{3, OriginStream, canonical(t, doc3)})
	checkResynced(t, srv)
	_, sts := rec.snapshot()
	if !hasStatus(sts, func(s reported) bool { return errors.Is(s.Err, ErrResync) }) {
		t.Errorf("statuses = %v, want one with ErrResync", sts)
	}
}

// TestPatchVersionOverflowResyncs: "the version overflows at MaxInt64". A
// client at math.MaxInt64 - 1 applies the patch to MaxInt64 and ignores it
// replayed; a patch claiming the version after MaxInt64, or a wrapped
// (negative) one, resyncs instead of wrapping the client's version.
func TestPatchVersionOverflowResyncs(t *testing.T) {
	const top = math.MaxInt64
	base := docJSON(top-1, "a")
	last := patchJSON(top, "b")
	topID := fmt.Sprintf("e1:%d", top)
	srv := scriptedServer(t,
		script{events: []event{
			{"snapshot", fmt.Sprintf("e1:%d", top-1), base},
			{"patch", topID, last},
			{"patch", topID, last}, // replayed: ignored
			{"patch", topID, `{"version":9223372036854775808,"flags":{"c":null}}`},
		}},
		script{events: []event{
			{"snapshot", topID, patched(t, base, last)},
			{"patch", "e1:-9223372036854775808", `{"version":-9223372036854775808,"flags":{"c":null}}`},
		}},
		script{events: []event{{"snapshot", "e2:1", docJSON(1, "a")}}},
	)
	docs, _ := streamDocs(t, testConfig(srv.URL, newFakeClock()), 4)
	checkVersions(t, docs, top-1, top, top, 1)
	reqs := srv.Requests("/v1/stream")
	if len(reqs) < 3 || reqs[1].LastEventID != "" || reqs[2].LastEventID != "" {
		t.Errorf("stream requests = %+v, want two resyncs without Last-Event-ID", reqs)
	}
}

func TestStreamerHandlerRejectionThenGap(t *testing.T) {
	doc1 := docJSON(1, "a")
	srv := scriptedServer(t,
		script{events: []event{
			{"snapshot", "e1:1", doc1},
			{"patch", "e1:2", patchJSON(2, "bad")},
			{"patch", "e1:3", patchJSON(3, "c")},
		}},
		script{events: []event{{"snapshot", "e1:3", docJSON(3, "a", "c")}}},
	)
	rec := newRecorder()
	rec.reject = func(d *rules.Document) error {
		if _, ok := d.Flags["bad"]; ok {
			return errors.New("refused")
		}
		return nil
	}
	docs := streamInto(t, testConfig(srv.URL, newFakeClock()), rec, 2)
	checkVersions(t, docs, 1, 3)
	if docs[1].JSON != canonical(t, docJSON(3, "a", "c")) {
		t.Errorf("document 3 = %s, want the resync snapshot", docs[1].JSON)
	}
	checkResynced(t, srv) // after the gap
}

func TestStreamerMalformedEvent(t *testing.T) {
	good := docJSON(1, "a")
	cases := []struct {
		name   string
		events []event // the first connection's
		want   []int64
	}{
		{"snapshot not JSON", []event{{"snapshot", "e1:1", `{"version":1,"flags":`}}, []int64{7}},
		{"snapshot wrong shape", []event{{"snapshot", "e1:1", `{"version":1,"flags":[]}`}}, []int64{7}},
		{"patch not JSON", []event{{"snapshot", "e1:1", good}, {"patch", "e1:2", `{"version":2,`}}, []int64{1, 7}},
		{"patch version not an integer", []event{
			{"snapshot", "e1:1", good},
			{"patch", "e1:2", `{"version":"2","flags":{}}`},
		}, []int64{1, 7}},
		{"id not EPOCH:VERSION", []event{{"snapshot", "e1:1", good}, {"patch", "garbage", patchJSON(2, "b")}}, []int64{1, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := scriptedServer(t, script{events: tc.events}, script{events: []event{{"snapshot", "e1:7", docJSON(7, "z")}}})
			docs, _ := streamDocs(t, testConfig(srv.URL, newFakeClock()), len(tc.want))
			checkVersions(t, docs, tc.want...)
			checkResynced(t, srv)
		})
	}
}
