package stream

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags/rules"
)

// nextSleep waits for the client's next wait through the clock's gate.
func nextSleep(t *testing.T, c *fakeClock) time.Duration {
	t.Helper()
	select {
	case d := <-c.gate:
		return d
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for the client to wait")
		return 0
	}
}

func TestPollerETagAnd304(t *testing.T) {
	doc1, doc2 := docJSON(1, "a"), docJSON(2, "a", "b")
	srv := newFakeServer(t, nil, func(n int, w http.ResponseWriter, r *http.Request) {
		tag, body := `"e1:1"`, doc1
		if n >= 2 {
			tag, body = `"e1:2"`, doc2
		}
		serveETag(w, r, tag, body)
	})
	cfg, clock := gatedConfig(srv.URL)
	cfg.PollInterval = 7 * time.Second
	rec := newRecorder()
	run := startRun(t, newTestPoller(t, cfg).Run, rec)
	var sleeps []time.Duration
	for range 4 {
		sleeps = append(sleeps, nextSleep(t, clock))
	}
	if err := run.stop(t); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if want := []time.Duration{7 * time.Second, 7 * time.Second, 7 * time.Second, 7 * time.Second}; !slices.Equal(sleeps, want) {
		t.Errorf("sleeps = %v, want %v", sleeps, want)
	}
	docs, sts := rec.snapshot()
	want := []applied{{1, OriginPoll, canonical(t, doc1)}, {2, OriginPoll, canonical(t, doc2)}}
	if len(docs) != 2 || docs[0] != want[0] || docs[1] != want[1] {
		t.Errorf("applied %v, want versions 1 then 2 from poll", docs)
	}
	reqs := srv.Requests("/v1/flags")
	wantINM := []string{"", `"e1:1"`, `"e1:1"`, `"e1:2"`}
	for i, w := range wantINM {
		if reqs[i].IfNoneMatch != w || reqs[i].Auth != "Bearer sdk-token" {
			t.Errorf("request %d: If-None-Match %q, Authorization %q; want %q, Bearer sdk-token", i, reqs[i].IfNoneMatch, reqs[i].Auth, w)
		}
	}
	if len(sts) != 1 || !sameReport(sts[0], reported{Source: OriginPoll, Healthy: true}) {
		t.Errorf("statuses = %+v, want one healthy poll status", sts)
	}
	checkNoLeak(t)
}

func TestPollerUnauthorized(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			srv := newFakeServer(t, nil, func(n int, w http.ResponseWriter, r *http.Request) {
				http.Error(w, "no", code)
			})
			clock := newFakeClock()
			rec := newRecorder()
			run := startRun(t, newTestPoller(t, testConfig(srv.URL, clock)).Run, rec)
			err := run.wait(t)
			if !errors.Is(err, ErrUnauthorized) || httpStatusOf(err) != code {
				t.Fatalf("Run = %v, want a %d matching ErrUnauthorized", err, code)
			}
			if n := len(srv.Requests("")); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			_, sts := rec.snapshot()
			if len(sts) != 1 || !sts[0].Fatal || sts[0].HTTPStatus != code || sts[0].Source != OriginPoll {
				t.Errorf("statuses = %+v, want one fatal poll status %d", sts, code)
			}
			if s := clock.Sleeps(); len(s) != 0 {
				t.Errorf("slept %v, want no wait", s)
			}
		})
	}
}

func TestPollerBackoffAndReset(t *testing.T) {
	srv := newFakeServer(t, nil, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0, 3:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 1:
			w.Header().Set("Retry-After", "10")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		default:
			w.Header().Set("ETag", `"e1:1"`)
			_, _ = w.Write([]byte(docJSON(1, "a")))
		}
	})
	cfg, clock := gatedConfig(srv.URL)
	rec := newRecorder()
	run := startRun(t, newTestPoller(t, cfg).Run, rec)
	var sleeps []time.Duration
	for range 4 {
		sleeps = append(sleeps, nextSleep(t, clock))
	}
	run.stop(t)
	want := []time.Duration{500 * time.Millisecond, 10 * time.Second, DefaultPollInterval, 500 * time.Millisecond}
	if !slices.Equal(sleeps, want) {
		t.Errorf("sleeps = %v, want %v (backoff, Retry-After floor, interval, backoff reset)", sleeps, want)
	}
	_, sts := rec.snapshot()
	var codes []int
	for _, s := range sts {
		codes = append(codes, s.HTTPStatus)
	}
	if !slices.Equal(codes, []int{500, 429, 0, 500}) || !sts[2].Healthy {
		t.Errorf("statuses = %+v, want 500, 429, healthy, 500", sts)
	}
}

func TestPollerRejectsBadBodies(t *testing.T) {
	cases := []struct {
		name string
		body string
		max  int64
		want error
	}{
		{"too large", docJSON(1, "a", "b", "c"), 64, ErrSnapshotTooLarge},
		{"not JSON", `{"version":1,`, 0, rules.ErrInvalidDocument},
		{"wrong shape", `{"version":1,"flags":[]}`, 0, rules.ErrInvalidDocument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, nil, func(n int, w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(tc.body))
			})
			cfg, clock := gatedConfig(srv.URL)
			cfg.MaxSnapshotSize = tc.max
			rec := newRecorder()
			run := startRun(t, newTestPoller(t, cfg).Run, rec)
			nextSleep(t, clock)
			run.stop(t)
			docs, sts := rec.snapshot()
			if len(docs) != 0 {
				t.Errorf("applied %v, want nothing", docs)
			}
			if len(sts) != 1 || sts[0].Healthy || !errors.Is(sts[0].Err, tc.want) {
				t.Errorf("statuses = %+v, want one unhealthy with %v", sts, tc.want)
			}
		})
	}
}

func TestPollerHandlerRejectionRefetches(t *testing.T) {
	srv := newFakeServer(t, nil, func(n int, w http.ResponseWriter, r *http.Request) {
		serveETag(w, r, `"e1:1"`, docJSON(1, "a"))
	})
	clock := newFakeClock()
	clock.gate = make(chan time.Duration)
	rec := newRecorder()
	var mu sync.Mutex
	calls := 0
	rec.reject = func(*rules.Document) error {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 1 {
			return errors.New("not now")
		}
		return nil
	}
	run := startRun(t, newTestPoller(t, testConfig(srv.URL, clock)).Run, rec)
	for range 3 {
		nextSleep(t, clock)
	}
	run.stop(t)
	reqs := srv.Requests("/v1/flags")
	if reqs[1].IfNoneMatch != "" || reqs[2].IfNoneMatch != `"e1:1"` {
		t.Errorf("If-None-Match = %q, %q; want none after the rejection, then the ETag", reqs[1].IfNoneMatch, reqs[2].IfNoneMatch)
	}
	if docs, _ := rec.snapshot(); len(docs) != 1 {
		t.Errorf("applied %v, want the document once (second delivery)", docs)
	}
}

// TestCancelReturnsPromptly cancels Run at each place it can block and
// checks that it returns nil and leaves no goroutine behind.
func TestCancelReturnsPromptly(t *testing.T) {
	type setup struct {
		stream, flags func(n int, w http.ResponseWriter, r *http.Request)
		poller        bool
		pollInterval  time.Duration
	}
	refuse := func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "down", http.StatusServiceUnavailable)
	}
	hang := func(n int, w http.ResponseWriter, r *http.Request) { holdStream(r) }
	cases := []struct {
		name  string
		setup setup
		// ready returns once Run is blocked where the case wants it.
		ready func(t *testing.T, srv *fakeServer, rec *recorder, slept <-chan time.Duration)
	}{
		{"stream connect", setup{stream: hang}, func(t *testing.T, srv *fakeServer, _ *recorder, _ <-chan time.Duration) {
			srv.waitRequests(t, "/v1/stream", 1)
		}},
		{"stream open", setup{stream: func(n int, w http.ResponseWriter, r *http.Request) {
			sseStart(w)
			sseEvent(w, "snapshot", "e1:1", docJSON(1, "a"))
			holdStream(r)
		}}, func(t *testing.T, _ *fakeServer, rec *recorder, _ <-chan time.Duration) {
			rec.waitDocs(t, 1)
		}},
		{"stream backoff", setup{stream: refuse, flags: refuse}, func(t *testing.T, _ *fakeServer, _ *recorder, slept <-chan time.Duration) {
			if d := <-slept; d != time.Hour {
				t.Errorf("wait = %v, want the 1h Retry-After", d)
			}
		}},
		{"stream fallback poll", setup{stream: func(n int, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusBadGateway)
		}, flags: hang}, func(t *testing.T, srv *fakeServer, _ *recorder, _ <-chan time.Duration) {
			srv.waitRequests(t, "/v1/flags", 1)
		}},
		{"poll request", setup{flags: hang, poller: true}, func(t *testing.T, srv *fakeServer, _ *recorder, _ <-chan time.Duration) {
			srv.waitRequests(t, "/v1/flags", 1)
		}},
		{"poll interval", setup{flags: func(n int, w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(docJSON(1, "a")))
		}, poller: true, pollInterval: time.Hour}, func(t *testing.T, _ *fakeServer, _ *recorder, slept <-chan time.Duration) {
			if d := <-slept; d != time.Hour {
				t.Errorf("wait = %v, want the 1h interval", d)
			}
		}},
		{"poll backoff", setup{flags: refuse, poller: true}, func(t *testing.T, _ *fakeServer, _ *recorder, slept <-chan time.Duration) {
			if d := <-slept; d != time.Hour {
				t.Errorf("wait = %v, want the 1h Retry-After", d)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, tc.setup.stream, tc.setup.flags)
			slept := make(chan time.Duration, 100)
			cfg := Config{
				BaseURL:      srv.URL,
				HTTPClient:   &http.Client{Transport: &http.Transport{}},
				PollInterval: tc.setup.pollInterval,
				// The real sleep for the hour-long waits, so that cancellation
				// must interrupt it; shorter backoff waits pass at once.
				Sleep: func(ctx context.Context, d time.Duration) error {
					slept <- d
					if d < time.Hour {
						return ctx.Err()
					}
					return sleepCtx(ctx, d)
				},
			}
			rec := newRecorder()
			var run *runner
			if tc.setup.poller {
				run = startRun(t, newTestPoller(t, cfg).Run, rec)
			} else {
				run = startRun(t, newTestStreamer(t, cfg).Run, rec)
			}
			tc.ready(t, srv, rec, slept)
			start := time.Now()
			if err := run.stop(t); err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
			t.Logf("Run returned %v after cancel", time.Since(start))
			checkNoLeak(t)
		})
	}
}
