package stream

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/flagstream/flags"
)

func TestStreamerIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream func(n int, w http.ResponseWriter, r *http.Request) // silent on the first request
	}{
		{"silent after headers", func(n int, w http.ResponseWriter, r *http.Request) {
			sseStart(w)
			if n > 0 {
				sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
			}
			holdStream(r)
		}},
		{"no headers", func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				holdStream(r)
				return
			}
			sseStart(w)
			sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
			holdStream(r)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, tc.stream, nil)
			cfg := testConfig(srv.URL, newFakeClock())
			cfg.IdleTimeout = 100 * time.Millisecond
			_, rec := streamDocs(t, cfg, 1)
			_, sts := rec.snapshot()
			if !hasStatus(sts, func(s reported) bool { return errors.Is(s.Err, ErrIdleTimeout) }) {
				t.Errorf("statuses = %v, want one with ErrIdleTimeout", sts)
			}
			if n := len(srv.Requests("/v1/stream")); n < 2 {
				t.Errorf("%d stream requests, want a reconnection", n)
			}
			checkNoLeak(t)
		})
	}
	t.Run("pings keep it alive", func(t *testing.T) {
		srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			sseStart(w)
			// 30 pings 50 ms apart span 1.5 s, beyond the 1 s idle time. (The
			// margin is wide so that a loaded machine cannot starve a ping.)
			for range 30 {
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
		cfg.IdleTimeout = time.Second
		_, rec := streamDocs(t, cfg, 1)
		if n := len(srv.Requests("/v1/stream")); n != 1 {
			_, sts := rec.snapshot()
			t.Errorf("%d stream requests, want 1 (pings are activity); statuses %v", n, sts)
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
			want := []reported{{Source: OriginStream, Fatal: true, Err: se, HTTPStatus: code}}
			if len(sts) != 1 || !sameReport(sts[0], want[0]) {
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
	_, rec := streamDocs(t, cfg, 1)
	want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second}
	if got := clock.Sleeps(); !slices.Equal(got, want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
	_, sts := rec.snapshot()
	if sts[0].Healthy || sts[0].HTTPStatus != 500 || sts[0].Source != OriginStream {
		t.Errorf("first status = %+v, want unhealthy stream 500", sts[0])
	}
	if last := sts[len(sts)-1]; !last.Healthy || last.Source != OriginStream {
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
	streamDocs(t, cfg, 1)
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
	docs, rec := streamDocs(t, testConfig(srv.URL, clock), 2)
	want := []applied{
		{5, OriginPoll, canonical(t, big)},
		{6, OriginStream, patched(t, big, p6)},
	}
	if docs[0].Version != want[0].Version || docs[0].Source != want[0].Source || docs[0].JSON != want[0].JSON {
		t.Errorf("first document: version %d source %s (%d bytes), want 5 poll (%d bytes)",
			docs[0].Version, docs[0].Source, len(docs[0].JSON), len(want[0].JSON))
	}
	if docs[1].Version != 6 || docs[1].Source != OriginStream || docs[1].JSON != want[1].JSON {
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
	if hasStatus(sts, func(s reported) bool { return !s.Healthy }) {
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
		serveETag(w, r, `"e1:5"`, big)
	})
	cfg, clock := gatedConfig(srv.URL)
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
		serveETag(w, r, `"e1:3"`, doc3)
	})
	clock := newFakeClock()
	cfg := testConfig(srv.URL, clock)
	cfg.Rand = func() float64 { return 0.999 }
	cfg.PollInterval = 2 * time.Second
	docs, rec := streamDocs(t, cfg, 2)
	if got, want := versions(docs), []int64{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("applied versions = %v, want %v", got, want)
	}
	if docs[0].Source != OriginPoll || docs[1].Source != OriginStream {
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
	wantSts := []reported{
		{Source: OriginStream, Err: sts[0].Err, HTTPStatus: 502},
		{Source: OriginPoll, Healthy: true},
		{Source: OriginStream, Healthy: true},
	}
	if len(sts) != len(wantSts) {
		t.Fatalf("statuses = %+v, want %+v", sts, wantSts)
	}
	for i := range sts {
		if !sameReport(sts[i], wantSts[i]) {
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
	streamDocs(t, testConfig(srv.URL, clock), 1)
	if n := len(clock.Sleeps()); n != 1 {
		t.Errorf("%d waits, want 1 (the HTML answer is a failure)", n)
	}
}

// TestNewValidates: a bad Config is reported by Load and Run (so by
// flags.New) before anything starts, streaming or polling.
func TestNewValidates(t *testing.T) {
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
		for _, poll := range []bool{false, true} {
			cfg.Poll = poll
			s := New(cfg)
			rec := newRecorder()
			if err := s.Load(rec); err == nil {
				t.Errorf("New(%+v).Load = nil error, want one", cfg)
			}
			if err := s.Run(context.Background(), rec); err == nil {
				t.Errorf("New(%+v).Run = nil error, want one", cfg)
			}
			if docs, sts := rec.snapshot(); len(docs)+len(sts) > 0 {
				t.Errorf("New(%+v): reported %v %v, want nothing", cfg, docs, sts)
			}
			if _, err := flags.New(flags.WithSource(s)); err == nil {
				t.Errorf("flags.New over New(%+v) = nil error, want one", cfg)
			}
		}
	}
	s := New(Config{BaseURL: "http://127.0.0.1:1/base/"})
	if s.err != nil {
		t.Fatal(s.err)
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

func TestStreamerFallbackPollUnauthorizedIsFatal(t *testing.T) {
	srv := newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "token revoked", http.StatusForbidden)
	})
	clock := newFakeClock()
	rec := newRecorder()
	run := startRun(t, newTestStreamer(t, testConfig(srv.URL, clock)).Run, rec)
	err := run.wait(t)
	if !errors.Is(err, ErrUnauthorized) || httpStatusOf(err) != http.StatusForbidden {
		t.Fatalf("Run = %v, want a 403 matching ErrUnauthorized", err)
	}
	if n := len(srv.Requests("/v1/flags")); n != 1 {
		t.Errorf("%d GET /v1/flags, want 1", n)
	}
	if n := len(srv.Requests("/v1/stream")); n != 2 {
		t.Errorf("%d stream requests, want 2 (the poll starts at the second failure)", n)
	}
	_, sts := rec.snapshot()
	if last := sts[len(sts)-1]; !last.Fatal || last.Source != OriginPoll || last.HTTPStatus != http.StatusForbidden {
		t.Errorf("last status = %+v, want fatal poll 403", last)
	}
}
