package stream

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flagstream/flags/rules"
)

func newTestStreamer(t *testing.T, cfg Config) *Streamer {
	t.Helper()
	s, err := NewStreamer(cfg)
	if err != nil {
		t.Fatalf("NewStreamer: %v", err)
	}
	return s
}

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
	docs := rec.waitDocs(t, 3)
	want := []applied{
		{1, SourceStream, canonical(t, doc1)},
		{2, SourceStream, patched(t, doc1, p2)},
		{3, SourceStream, patched(t, doc1, p2, p3)},
	}
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Errorf("applied documents (-want +got):\n%s", diff)
	}
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
	if diff := cmp.Diff([]Status{{Source: SourceStream, Healthy: true}}, sts); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if len(clock.Sleeps()) != 0 {
		t.Errorf("sleeps = %v, want none", clock.Sleeps())
	}
	checkNoLeak(t)
}

// holdStream keeps a handler's stream open until the client leaves.
func holdStream(r *http.Request) { <-r.Context().Done() }

func TestStreamerIgnoresDuplicatePatch(t *testing.T) {
	doc1 := docJSON(1, "a")
	p2, p3 := patchJSON(2, "b"), patchJSON(3, "c")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		sseEvent(w, "snapshot", "e1:1", doc1)
		sseEvent(w, "patch", "e1:2", p2)
		sseEvent(w, "patch", "e1:2", p2)                  // replayed duplicate
		sseEvent(w, "patch", "e1:1", patchJSON(1, "zzz")) // older still
		sseEvent(w, "patch", "e1:3", p3)
		holdStream(r)
	}, nil)
	rec := newRecorder()
	s := newTestStreamer(t, testConfig(srv.URL, newFakeClock()))
	run := startRun(t, s.Run, rec)
	rec.waitDocs(t, 3)
	run.stop(t)
	docs, _ := rec.snapshot()
	if got, want := versions(docs), []int64{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("applied versions = %v, want %v", got, want)
	}
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
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		switch n {
		case 0:
			sseEvent(w, "snapshot", "e1:1", doc1)
			sseEvent(w, "patch", "e1:2", p2)
			// return: a clean end of stream
		default:
			sseEvent(w, "patch", "e1:3", p3) // replay after Last-Event-ID e1:2
			holdStream(r)
		}
	}, nil)
	clock := newFakeClock()
	rec := newRecorder()
	s := newTestStreamer(t, testConfig(srv.URL, clock))
	run := startRun(t, s.Run, rec)
	docs := rec.waitDocs(t, 3)
	run.stop(t)
	if got, want := versions(docs), []int64{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("applied versions = %v, want %v", got, want)
	}
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

func TestStreamerCutMidEvent(t *testing.T) {
	doc1 := docJSON(1, "a")
	p2 := patchJSON(2, "b")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		switch n {
		case 0:
			sseEvent(w, "snapshot", "e1:1", doc1)
			_, _ = w.Write([]byte("event: patch\nid: e1:2\ndata: " + p2[:len(p2)/2]))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection mid-event
		default:
			sseEvent(w, "patch", "e1:2", p2)
			holdStream(r)
		}
	}, nil)
	srv.Config.ErrorLog = nil
	clock := newFakeClock()
	rec := newRecorder()
	s := newTestStreamer(t, testConfig(srv.URL, clock))
	run := startRun(t, s.Run, rec)
	rec.waitDocs(t, 2)
	run.stop(t)
	docs, _ := rec.snapshot()
	want := []applied{
		{1, SourceStream, canonical(t, doc1)},
		{2, SourceStream, patched(t, doc1, p2)},
	}
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Errorf("applied documents (-want +got):\n%s", diff)
	}
	if reqs := srv.Requests("/v1/stream"); len(reqs) != 2 || reqs[1].LastEventID != "e1:1" {
		t.Errorf("stream requests = %+v, want 2, the second resuming from e1:1", reqs)
	}
	if n := len(clock.Sleeps()); n != 1 {
		t.Errorf("%d backoff waits, want 1", n)
	}
	checkNoLeak(t)
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
	drained := make(chan struct{})
	defer close(drained)
	go func() {
		for {
			select {
			case <-clock.gate:
			case <-drained:
				return
			}
		}
	}()
	docs := rec.waitDocs(t, 3)
	if err := run.stop(t); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	want := []applied{
		{1, SourceStream, canonical(t, doc1)},
		{2, SourceStream, patched(t, doc1, p2)},
		{3, SourceStream, patched(t, doc1, p2, p3)},
	}
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Errorf("applied documents (-want +got):\n%s", diff)
	}
	_, sts := rec.snapshot()
	if !hasStatus(sts, func(s Status) bool { return !s.Healthy && s.Err != nil }) {
		t.Errorf("statuses = %v, want an unhealthy one while down", sts)
	}
	if last := sts[len(sts)-1]; !last.Healthy || last.Source != SourceStream {
		t.Errorf("last status = %+v, want healthy stream", last)
	}
}

func TestStreamerNewEpochAfterRestart(t *testing.T) {
	docA := docJSON(5, "a")
	pA6 := patchJSON(6, "b")
	docB := docJSON(2, "x") // a new lineage may well have a lower version
	pB3 := patchJSON(3, "y")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		switch n {
		case 0:
			sseEvent(w, "snapshot", "A:5", docA)
			sseEvent(w, "patch", "A:6", pA6)
			// the server "restarts": the stream ends
		default:
			// The new server has no history for A:6: snapshot first.
			sseEvent(w, "snapshot", "B:2", docB)
			sseEvent(w, "patch", "B:3", pB3)
			holdStream(r)
		}
	}, nil)
	rec := newRecorder()
	s := newTestStreamer(t, testConfig(srv.URL, newFakeClock()))
	run := startRun(t, s.Run, rec)
	docs := rec.waitDocs(t, 4)
	run.stop(t)
	want := []applied{
		{5, SourceStream, canonical(t, docA)},
		{6, SourceStream, patched(t, docA, pA6)},
		{2, SourceStream, canonical(t, docB)},
		{3, SourceStream, patched(t, docB, pB3)},
	}
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Errorf("applied documents (-want +got):\n%s", diff)
	}
	if reqs := srv.Requests("/v1/stream"); reqs[1].LastEventID != "A:6" {
		t.Errorf("second request Last-Event-ID = %q, want A:6", reqs[1].LastEventID)
	}
}

func TestStreamerForeignEpochPatchResyncs(t *testing.T) {
	docA := docJSON(5, "a")
	docB := docJSON(9, "x")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		switch n {
		case 0:
			sseEvent(w, "snapshot", "A:5", docA)
			sseEvent(w, "patch", "B:6", patchJSON(6, "evil")) // version fits, epoch does not
			holdStream(r)
		default:
			sseEvent(w, "snapshot", "B:9", docB)
			holdStream(r)
		}
	}, nil)
	rec := newRecorder()
	s := newTestStreamer(t, testConfig(srv.URL, newFakeClock()))
	run := startRun(t, s.Run, rec)
	docs := rec.waitDocs(t, 2)
	run.stop(t)
	if got, want := versions(docs), []int64{5, 9}; !slices.Equal(got, want) {
		t.Errorf("applied versions = %v, want %v", got, want)
	}
	if docs[1].JSON != canonical(t, docB) {
		t.Errorf("second document = %s, want B's snapshot", docs[1].JSON)
	}
	if reqs := srv.Requests("/v1/stream"); len(reqs) != 2 || reqs[1].LastEventID != "" {
		t.Errorf("stream requests = %+v, want a resync without Last-Event-ID", reqs)
	}
}

func TestStreamerPatchGapResyncs(t *testing.T) {
	doc1 := docJSON(1, "a")
	doc3 := docJSON(3, "a", "b", "c")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		switch n {
		case 0:
			sseEvent(w, "snapshot", "e1:1", doc1)
			sseEvent(w, "patch", "e1:3", patchJSON(3, "c")) // 2 is missing
			sseEvent(w, "patch", "e1:4", patchJSON(4, "d")) // must not be applied either
			holdStream(r)
		default:
			sseEvent(w, "snapshot", "e1:3", doc3)
			holdStream(r)
		}
	}, nil)
	clock := newFakeClock()
	rec := newRecorder()
	s := newTestStreamer(t, testConfig(srv.URL, clock))
	run := startRun(t, s.Run, rec)
	docs := rec.waitDocs(t, 2)
	run.stop(t)
	want := []applied{{1, SourceStream, canonical(t, doc1)}, {3, SourceStream, canonical(t, doc3)}}
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Errorf("applied documents (-want +got):\n%s", diff)
	}
	if reqs := srv.Requests("/v1/stream"); len(reqs) != 2 || reqs[1].LastEventID != "" {
		t.Errorf("stream requests = %+v, want a resync without Last-Event-ID", reqs)
	}
	_, sts := rec.snapshot()
	if !hasStatus(sts, func(s Status) bool { return errors.Is(s.Err, ErrResync) }) {
		t.Errorf("statuses = %v, want one with ErrResync", sts)
	}
}

func TestStreamerHandlerRejectionThenGap(t *testing.T) {
	doc1 := docJSON(1, "a")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		switch n {
		case 0:
			sseEvent(w, "snapshot", "e1:1", doc1)
			sseEvent(w, "patch", "e1:2", patchJSON(2, "bad"))
			sseEvent(w, "patch", "e1:3", patchJSON(3, "c"))
			holdStream(r)
		default:
			sseEvent(w, "snapshot", "e1:3", docJSON(3, "a", "c"))
			holdStream(r)
		}
	}, nil)
	rec := newRecorder()
	rec.reject = func(d *rules.Document) error {
		if _, ok := d.Flags["bad"]; ok {
			return errors.New("refused")
		}
		return nil
	}
	s := newTestStreamer(t, testConfig(srv.URL, newFakeClock()))
	run := startRun(t, s.Run, rec)
	docs := rec.waitDocs(t, 2)
	run.stop(t)
	if got, want := versions(docs), []int64{1, 3}; !slices.Equal(got, want) {
		t.Errorf("applied versions = %v, want %v", got, want)
	}
	if docs[1].JSON != canonical(t, docJSON(3, "a", "c")) {
		t.Errorf("document 3 = %s, want the resync snapshot", docs[1].JSON)
	}
	if reqs := srv.Requests("/v1/stream"); len(reqs) != 2 || reqs[1].LastEventID != "" {
		t.Errorf("stream requests = %+v, want a resync after the gap", reqs)
	}
}

func TestStreamerMalformedEvent(t *testing.T) {
	good := docJSON(1, "a")
	cases := []struct {
		name   string
		events func(w http.ResponseWriter) // first connection, after headers
		want   []int64
	}{
		{"snapshot not JSON", func(w http.ResponseWriter) {
			sseEvent(w, "snapshot", "e1:1", `{"version":1,"flags":`)
		}, []int64{7}},
		{"snapshot wrong shape", func(w http.ResponseWriter) {
			sseEvent(w, "snapshot", "e1:1", `{"version":1,"flags":[]}`)
		}, []int64{7}},
		{"patch not JSON", func(w http.ResponseWriter) {
			sseEvent(w, "snapshot", "e1:1", good)
			sseEvent(w, "patch", "e1:2", `{"version":2,`)
		}, []int64{1, 7}},
		{"patch version not an integer", func(w http.ResponseWriter) {
			sseEvent(w, "snapshot", "e1:1", good)
			sseEvent(w, "patch", "e1:2", `{"version":"2","flags":{}}`)
		}, []int64{1, 7}},
		{"id not EPOCH:VERSION", func(w http.ResponseWriter) {
			sseEvent(w, "snapshot", "e1:1", good)
			sseEvent(w, "patch", "garbage", patchJSON(2, "b"))
		}, []int64{1, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				sseStart(w)
				if n == 0 {
					tc.events(w)
				} else {
					sseEvent(w, "snapshot", "e1:7", docJSON(7, "z"))
				}
				holdStream(r)
			}, nil)
			rec := newRecorder()
			s := newTestStreamer(t, testConfig(srv.URL, newFakeClock()))
			run := startRun(t, s.Run, rec)
			docs := rec.waitDocs(t, len(tc.want))
			run.stop(t)
			if got := versions(docs); !slices.Equal(got, tc.want) {
				t.Errorf("applied versions = %v, want %v", got, tc.want)
			}
			if reqs := srv.Requests("/v1/stream"); len(reqs) != 2 || reqs[1].LastEventID != "" {
				t.Errorf("stream requests = %+v, want one resync without Last-Event-ID", reqs)
			}
		})
	}
}

func TestStreamerIdleTimeout(t *testing.T) {
	t.Run("silent after headers", func(t *testing.T) {
		srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			sseStart(w)
			if n > 0 {
				sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
			}
			holdStream(r)
		}, nil)
		cfg := testConfig(srv.URL, newFakeClock())
		cfg.IdleTimeout = 100 * time.Millisecond
		rec := newRecorder()
		run := startRun(t, newTestStreamer(t, cfg).Run, rec)
		rec.waitDocs(t, 1)
		run.stop(t)
		_, sts := rec.snapshot()
		if !hasStatus(sts, func(s Status) bool { return errors.Is(s.Err, ErrIdleTimeout) }) {
			t.Errorf("statuses = %v, want one with ErrIdleTimeout", sts)
		}
		if n := len(srv.Requests("/v1/stream")); n != 2 {
			t.Errorf("%d stream requests, want 2", n)
		}
		checkNoLeak(t)
	})
	t.Run("no headers", func(t *testing.T) {
		srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				holdStream(r)
				return
			}
			sseStart(w)
			sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
			holdStream(r)
		}, nil)
		cfg := testConfig(srv.URL, newFakeClock())
		cfg.IdleTimeout = 100 * time.Millisecond
		rec := newRecorder()
		run := startRun(t, newTestStreamer(t, cfg).Run, rec)
		rec.waitDocs(t, 1)
		run.stop(t)
		_, sts := rec.snapshot()
		if !hasStatus(sts, func(s Status) bool { return errors.Is(s.Err, ErrIdleTimeout) }) {
			t.Errorf("statuses = %v, want one with ErrIdleTimeout", sts)
		}
		checkNoLeak(t)
	})
	t.Run("pings keep it alive", func(t *testing.T) {
		srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			sseStart(w)
			// 12 pings 50 ms apart span 600 ms, beyond the 300 ms idle time.
			for range 12 {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				_, _ = w.Write([]byte(": ping\n\n"))
				w.(http.Flusher).Flush()
			}
			sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
			holdStream(r)
		}, nil)
		cfg := testConfig(srv.URL, newFakeClock())
		cfg.IdleTimeout = 300 * time.Millisecond
		rec := newRecorder()
		run := startRun(t, newTestStreamer(t, cfg).Run, rec)
		rec.waitDocs(t, 1)
		run.stop(t)
		if n := len(srv.Requests("/v1/stream")); n != 1 {
			t.Errorf("%d stream requests, want 1 (pings are activity)", n)
		}
	})
}

func TestStreamerUnauthorized(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				http.Error(w, "no", code)
			}, func(n int, w http.ResponseWriter, r *http.Request) {
				http.Error(w, "no", code)
			})
			clock := newFakeClock()
			rec := newRecorder()
			run := startRun(t, newTestStreamer(t, testConfig(srv.URL, clock)).Run, rec)
			err := run.wait(t)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != code || !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Run = %v, want *StatusError %d matching ErrUnauthorized", err, code)
			}
			if n := len(srv.Requests("")); n != 1 {
				t.Errorf("%d requests, want exactly 1", n)
			}
			docs, sts := rec.snapshot()
			want := []Status{{Source: SourceStream, Fatal: true, Err: err, HTTPStatus: code}}
			if len(sts) != 1 || !sameStatus(sts[0], want[0]) {
				t.Errorf("statuses = %+v, want %+v", sts, want)
			}
			if len(docs) != 0 || len(clock.Sleeps()) != 0 {
				t.Errorf("applied %v, slept %v; want nothing", docs, clock.Sleeps())
			}
			checkNoLeak(t)
		})
	}
}

func TestStreamerServerErrorThenRecovery(t *testing.T) {
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 3 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		sseStart(w)
		sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
		holdStream(r)
	}, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	clock := newFakeClock()
	cfg := testConfig(srv.URL, clock)
	cfg.Rand = func() float64 { return 0.5 }
	rec := newRecorder()
	run := startRun(t, newTestStreamer(t, cfg).Run, rec)
	rec.waitDocs(t, 1)
	run.stop(t)
	want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second}
	if got := clock.Sleeps(); !slices.Equal(got, want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
	_, sts := rec.snapshot()
	if sts[0].Healthy || sts[0].HTTPStatus != 500 || sts[0].Source != SourceStream {
		t.Errorf("first status = %+v, want unhealthy stream 500", sts[0])
	}
	if last := sts[len(sts)-1]; !last.Healthy || last.Source != SourceStream {
		t.Errorf("last status = %+v, want healthy stream", last)
	}
	// From the second failure the client also tried GET /v1/flags, once:
	// the fake clock advanced only 1.5 s, less than the poll interval.
	if n := len(srv.Requests("/v1/flags")); n != 1 {
		t.Errorf("%d fallback polls, want 1", n)
	}
}

func TestStreamerRetryAfterIsFloor(t *testing.T) {
	clock := newFakeClock()
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			w.Header().Set("Retry-After", "120")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 1:
			w.Header().Set("Retry-After", clock.Now().Add(300*time.Second).Format(http.TimeFormat))
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "1") // below the backoff: no effect
			http.Error(w, "slow down", http.StatusTooManyRequests)
		default:
			sseStart(w)
			sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
			holdStream(r)
		}
	}, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	})
	cfg := testConfig(srv.URL, clock)
	cfg.Rand = func() float64 { return 0.999 }
	rec := newRecorder()
	run := startRun(t, newTestStreamer(t, cfg).Run, rec)
	rec.waitDocs(t, 1)
	run.stop(t)
	got := clock.Sleeps()
	if len(got) != 3 {
		t.Fatalf("sleeps = %v, want 3", got)
	}
	if got[0] != 120*time.Second || got[1] != 300*time.Second {
		t.Errorf("sleeps = %v, want 120s then 300s (Retry-After floors)", got[:2])
	}
	if got[2] < 3990*time.Millisecond || got[2] > 4*time.Second {
		t.Errorf("third sleep = %v, want the backoff (~4s) above Retry-After 1s", got[2])
	}
}

func TestStreamerLargeSnapshotFetchedByGET(t *testing.T) {
	// A document of exactly 10^7 bytes: one flag carrying a long description.
	const size = 10_000_000
	prefix := `{"version":5,"flags":{"big":{"on":true,"variations":[true],"fallthrough":{"variation":0},"description":"`
	suffix := `"}},"segments":{}}`
	pad := make([]byte, size-len(prefix)-len(suffix))
	for i := range pad {
		pad[i] = 'x'
	}
	big := prefix + string(pad) + suffix
	if len(big) != size {
		t.Fatalf("document is %d bytes", len(big))
	}
	p6 := patchJSON(6, "small")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		if r.Header.Get("Last-Event-ID") == "" {
			sseEvent(w, "snapshot", "e1:5", big)
		} else {
			sseEvent(w, "patch", "e1:6", p6)
		}
		holdStream(r)
	}, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e1:5"`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(big))
	})
	clock := newFakeClock()
	rec := newRecorder()
	run := startRun(t, newTestStreamer(t, testConfig(srv.URL, clock)).Run, rec)
	docs := rec.waitDocs(t, 2)
	run.stop(t)
	want := []applied{
		{5, SourcePoll, canonical(t, big)},
		{6, SourceStream, patched(t, big, p6)},
	}
	if docs[0].Version != want[0].Version || docs[0].Source != want[0].Source || docs[0].JSON != want[0].JSON {
		t.Errorf("first document: version %d source %s (%d bytes), want 5 poll (%d bytes)",
			docs[0].Version, docs[0].Source, len(docs[0].JSON), len(want[0].JSON))
	}
	if docs[1].Version != 6 || docs[1].Source != SourceStream || docs[1].JSON != want[1].JSON {
		t.Errorf("second document: version %d source %s, want 6 stream", docs[1].Version, docs[1].Source)
	}
	reqs := srv.Requests("/v1/stream")
	if len(reqs) != 2 || reqs[1].LastEventID != "e1:5" {
		t.Errorf("stream requests = %+v, want 2, the second resuming from e1:5", reqs)
	}
	if n := len(srv.Requests("/v1/flags")); n != 1 {
		t.Errorf("%d GET /v1/flags, want 1", n)
	}
	if s := clock.Sleeps(); len(s) != 0 {
		t.Errorf("backoff waits %v, want none", s)
	}
	_, sts := rec.snapshot()
	if hasStatus(sts, func(s Status) bool { return !s.Healthy }) {
		t.Errorf("statuses = %v, want no unhealthy one", sts)
	}
}

func TestStreamerOversizeNeverLoops(t *testing.T) {
	// A server that ignores Last-Event-ID and always starts with a snapshot
	// over the reader limit. The client must slow down, not loop.
	big := docJSON(5, "a", "b", "c", "d", "e", "f", "g", "h")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		sseEvent(w, "snapshot", "e1:5", big)
		holdStream(r)
	}, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e1:5"`)
		if r.Header.Get("If-None-Match") == `"e1:5"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte(big))
	})
	clock := newFakeClock()
	clock.gate = make(chan time.Duration)
	cfg := testConfig(srv.URL, clock)
	cfg.MaxEventSize = 256
	rec := newRecorder()
	run := startRun(t, newTestStreamer(t, cfg).Run, rec)
	var waits []time.Duration
	for range 4 {
		select {
		case d := <-clock.gate:
			waits = append(waits, d)
		case <-time.After(waitLimit):
			t.Fatal("no backoff wait: the client loops")
		}
	}
	streams := len(srv.Requests("/v1/stream"))
	run.stop(t)
	// connection 1: oversize → GET → connection 2: oversize again → wait 1 …
	if streams > len(waits)+2 {
		t.Errorf("%d stream connections for %d waits", streams, len(waits))
	}
	if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(waits, want) {
		t.Errorf("waits = %v, want growing backoff %v", waits, want)
	}
	docs, _ := rec.snapshot()
	if got := versions(docs); !slices.Equal(got, []int64{5}) {
		t.Errorf("applied versions = %v, want [5] once (later GETs are 304)", got)
	}
}

func TestStreamerFallsBackToPolling(t *testing.T) {
	doc3 := docJSON(3, "a")
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 4 {
			http.Error(w, "stream broken", http.StatusBadGateway)
			return
		}
		sseStart(w)
		sseEvent(w, "patch", "e1:4", patchJSON(4, "b")) // replay after e1:3
		holdStream(r)
	}, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e1:3"`)
		if r.Header.Get("If-None-Match") == `"e1:3"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte(doc3))
	})
	clock := newFakeClock()
	cfg := testConfig(srv.URL, clock)
	cfg.Rand = func() float64 { return 0.999 }
	cfg.PollInterval = 2 * time.Second
	rec := newRecorder()
	run := startRun(t, newTestStreamer(t, cfg).Run, rec)
	docs := rec.waitDocs(t, 2)
	run.stop(t)
	if got, want := versions(docs), []int64{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("applied versions = %v, want %v", got, want)
	}
	if docs[0].Source != SourcePoll || docs[1].Source != SourceStream {
		t.Errorf("sources = %s, %s; want poll then stream", docs[0].Source, docs[1].Source)
	}
	// Failures 2, 3 and 4 each start a wait; the clock advanced ~1s, ~2s,
	// ~4s: polls at failures 2 and 4 (3 came < 2s after 2).
	flags := srv.Requests("/v1/flags")
	if len(flags) != 2 || flags[0].IfNoneMatch != "" || flags[1].IfNoneMatch != `"e1:3"` {
		t.Errorf("GET /v1/flags requests = %+v, want 2, the second conditional", flags)
	}
	streams := srv.Requests("/v1/stream")
	if last := streams[len(streams)-1]; last.LastEventID != "e1:3" {
		t.Errorf("stream resumed with Last-Event-ID %q, want e1:3 from the ETag", last.LastEventID)
	}
	_, sts := rec.snapshot()
	wantSts := []Status{
		{Source: SourceStream, Err: sts[0].Err, HTTPStatus: 502},
		{Source: SourcePoll, Healthy: true},
		{Source: SourceStream, Healthy: true},
	}
	if len(sts) != len(wantSts) {
		t.Fatalf("statuses = %+v, want %+v", sts, wantSts)
	}
	for i := range sts {
		if !sameStatus(sts[i], wantSts[i]) {
			t.Errorf("status %d = %+v, want %+v", i, sts[i], wantSts[i])
		}
	}
}

func TestStreamerRejectsNonEventStream(t *testing.T) {
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>captive portal</html>"))
			return
		}
		sseStart(w)
		sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
		holdStream(r)
	}, nil)
	clock := newFakeClock()
	rec := newRecorder()
	run := startRun(t, newTestStreamer(t, testConfig(srv.URL, clock)).Run, rec)
	rec.waitDocs(t, 1)
	run.stop(t)
	if n := len(clock.Sleeps()); n != 1 {
		t.Errorf("%d waits, want 1 (the HTML answer is a failure)", n)
	}
}

func TestNewStreamerValidates(t *testing.T) {
	bad := []Config{
		{},
		{BaseURL: "flags.example.com"},
		{BaseURL: "ftp://flags.example.com"},
		{BaseURL: "http://"},
		{BaseURL: "http://h/?q=1"},
		{BaseURL: "http://h", Token: "a\nb"},
		{BaseURL: "http://h", IdleTimeout: -1},
		{BaseURL: "%"},
	}
	for _, cfg := range bad {
		if _, err := NewStreamer(cfg); err == nil {
			t.Errorf("NewStreamer(%+v) = nil error, want one", cfg)
		}
		if _, err := NewPoller(cfg); err == nil {
			t.Errorf("NewPoller(%+v) = nil error, want one", cfg)
		}
	}
	s, err := NewStreamer(Config{BaseURL: "http://127.0.0.1:1/base/"})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.streamURL != "http://127.0.0.1:1/base/v1/stream" || s.cfg.flagsURL != "http://127.0.0.1:1/base/v1/flags" {
		t.Errorf("URLs = %s, %s", s.cfg.streamURL, s.cfg.flagsURL)
	}
	if s.cfg.IdleTimeout != 45*time.Second || s.cfg.MaxEventSize != 1<<20 || s.cfg.MaxSnapshotSize != 64<<20 || s.cfg.PollInterval != 30*time.Second {
		t.Errorf("defaults = %v %d %d %v", s.cfg.IdleTimeout, s.cfg.MaxEventSize, s.cfg.MaxSnapshotSize, s.cfg.PollInterval)
	}
	if g := leakedGoroutines(); len(g) != 0 {
		t.Errorf("constructor started goroutines: %v", g)
	}
}
