package stream_test

// End-to-end tests of a flags.Client fed by a Source (streaming, polling,
// with a cache) against the reference server (package server) on 127.0.0.1.
// Every test evaluates from several goroutines for its whole length and
// checks that each value served is one the server has published so far, in
// publication order (servedChecker).

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
	"github.com/google/go-cmp/cmp"
)

func TestStreamFirstSnapshotAndPatches(t *testing.T) {
	h := newHistory()
	gate, open := holdRequests() // until the listeners are registered
	ls := startServer(t, "", testkit.GenDoc(t, 10, 0, "user-9"), server.Options{}, gate)
	c := newRemoteClient(t, streamOpt(streamConfig(t, ls.URL, newSleeper())))
	if st := c.Status(); st.State != flags.StateInitializing || st.Source != "stream" || st.Version != 0 {
		t.Errorf("status right after New = %+v, want INITIALIZING/stream", st)
	}
	rec := record(c)
	checkServed(t, c, h)
	open()

	ctx, cancel := context.WithTimeout(context.Background(), remoteWait)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	// WaitReady returns after the status and the listeners.
	if st := c.Status(); st.State != flags.StateReady || st.Source != "stream" || st.Version != 10 || st.Err != nil {
		t.Errorf("status after WaitReady = %+v, want READY/stream at version 10 without error", st)
	}
	want := []flags.Change{{Version: 10, Flags: []string{"beta", "gen", "label", "stable"}}}
	if diff := cmp.Diff(want, rec.changeList()); diff != "" {
		t.Errorf("changes after WaitReady (-want +got):\n%s", diff)
	}

	ec := flags.NewContext("user-1").Build()
	steps := []struct {
		name    string
		gen     int
		testers []string
		flags   []string // the change's, nil when the publish changes nothing
	}{
		{"value change", 1, []string{"user-9"}, []string{"gen", "label"}},
		{"segment change reaches the flag using it", 1, []string{"user-1"}, []string{"beta"}},
		{"no change", 1, []string{"user-1"}, nil},
		{"both", 2, []string{"user-1", "user-2"}, []string{"beta", "gen", "label"}},
	}
	version := int64(10)
	for _, step := range steps {
		h.publish(t, ls, step.gen, testkit.GenDoc(t, 0, step.gen, step.testers...))
		if step.flags == nil {
			continue // the next step shows that no change was delivered
		}
		version++
		want = append(want, flags.Change{Version: version, Flags: step.flags})
		checkChangeDelivered(t, c, rec, step.name, step.gen, want)
	}
	if !c.Bool(ctx, "beta", ec, false) {
		t.Error("Bool(beta) for user-1 = false after user-1 joined the segment")
	}
	checkOnlyReadySeen(t, rec, "stream")
}

// checkChangeDelivered waits for the listeners to be told of want's last
// change, then checks every change so far, that the getters already serve
// generation gen, and that the status is READY at the change's version.
func checkChangeDelivered(t *testing.T, c *flags.Client, rec *recorder, step string, gen int, want []flags.Change) {
	t.Helper()
	version := want[len(want)-1].Version
	rec.waitFor(t, step, func() bool { return len(rec.changeList()) >= len(want) })
	if diff := cmp.Diff(want, rec.changeList()); diff != "" {
		t.Errorf("%s: changes (-want +got):\n%s", step, diff)
	}
	if g := c.Int(context.Background(), "gen", flags.NewContext("user-1").Build(), -1); g != gen {
		t.Errorf("%s: after OnChange, Int(gen) = %d, want %d", step, g, gen)
	}
	if s := c.Status(); s.State != flags.StateReady || s.Source != "stream" || s.Version != version {
		t.Errorf("%s: status %+v, want READY/stream at version %d", step, s, version)
	}
}

// checkOnlyReadySeen: the listeners were told of no status but READY from
// source.
func checkOnlyReadySeen(t *testing.T, rec *recorder, source string) {
	t.Helper()
	for _, s := range rec.seen() {
		if s.State != flags.StateReady || s.Source != source {
			t.Errorf("status %+v seen on a healthy %s", s, source)
		}
	}
}

func TestStreamServerRestart(t *testing.T) {
	h := newHistory()
	ls := startServer(t, "", testkit.GenDoc(t, 10, 0), server.Options{}, nil)
	sl := newSleeper()
	c := newRemoteClient(t, streamOpt(streamConfig(t, ls.URL, sl)))
	rec := record(c)
	checkServed(t, c, h)
	rec.waitState(t, flags.StateReady, "stream")
	h.publish(t, ls, 1, testkit.GenDoc(t, 0, 1))
	rec.waitFor(t, "version 11", func() bool { return c.Status().Version == 11 })
	oldEpoch := ls.srv.Epoch()

	// Server gone: STALE, the last good snapshot still served.
	sl.hold()
	ls.Stop()
	st := rec.waitState(t, flags.StateStale, "stream")
	if st.Err == nil || st.Version != 11 {
		t.Errorf("status after the server stopped = %+v, want an error and version 11", st)
	}
	ec := flags.NewContext("user-1").Build()
	if r := c.IntDetail(context.Background(), "gen", ec, -1); r.Value != 1 || r.Err != nil {
		t.Errorf("IntDetail(gen) while STALE = %+v, want 1", r)
	}
	if err := c.WaitReady(context.Background()); err != nil {
		t.Errorf("WaitReady while STALE = %v, want nil (a snapshot is served)", err)
	}

	// A new server (new epoch, lower version) on the same address.
	h.max.Store(2)
	ls2 := startServer(t, ls.Addr(), testkit.GenDoc(t, 3, 2), server.Options{}, nil)
	if ls2.srv.Epoch() == oldEpoch {
		t.Fatal("the new server has the old epoch")
	}
	sl.release()
	rec.waitReadyAt(t, "stream", 3)
	if g := c.Int(context.Background(), "gen", ec, -1); g != 2 {
		t.Errorf("Int(gen) after the restart = %d, want 2", g)
	}
	// And it follows the new server's patches.
	h.publish(t, ls2, 3, testkit.GenDoc(t, 0, 3))
	rec.waitFor(t, "version 4", func() bool { return c.Status().Version == 4 })
	if g := c.Int(context.Background(), "gen", ec, -1); g != 3 {
		t.Errorf("Int(gen) after a patch of the new server = %d, want 3", g)
	}
}

func TestRemoteUnauthorized(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token string
		code  int
		poll  bool
	}{
		{"stream no token", "", 401, false},
		{"stream wrong token", "nope", 401, false}, // SPEC §10: an unknown token is 401
		{"poll no token", "", 401, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := startServer(t, "", testkit.GenDoc(t, 1, 0), server.Options{Token: "secret"}, nil)
			sl := newSleeper()
			cfg := streamConfig(t, ls.URL, sl)
			cfg.Token = tc.token
			opt, source := streamOpt(cfg), "stream"
			if tc.poll {
				opt, source = pollOpt(cfg), "poll"
			}
			c := newRemoteClient(t, opt)
			ctx, cancel := context.WithTimeout(context.Background(), remoteWait)
			defer cancel()
			err := c.WaitReady(ctx)
			var se *stream.StatusError
			if !errors.Is(err, stream.ErrUnauthorized) || !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("WaitReady = %v, want a %d *stream.StatusError matching ErrUnauthorized", err, tc.code)
			}
			st := c.Status()
			if st.State != flags.StateFatal || st.Source != source || st.Err == nil || st.Version != 0 {
				t.Errorf("status = %+v, want FATAL/%s with an error", st, source)
			}
			if r := c.BoolDetail(ctx, "beta", flags.NewContext("u").Build(), false); !errors.Is(r.Err, flags.ErrClientNotReady) {
				t.Errorf("evaluation after FATAL = %+v, want CLIENT_NOT_READY", r)
			}
			c.Close() // waits for the source: no retry can follow
			if n := ls.requests.Load(); n != 1 {
				t.Errorf("requests = %d, want exactly 1 (401/403 are final)", n)
			}
			if n := sl.calls.Load(); n != 0 {
				t.Errorf("backoff waits = %d, want 0", n)
			}
		})
	}
}

func TestCacheServesWhileServerDown(t *testing.T) {
	h := newHistory()
	path := filepath.Join(t.TempDir(), "flags.cache")
	ls := startServer(t, "", testkit.GenDoc(t, 5, 0), server.Options{}, nil)
	url := ls.URL

	// First run: the cache is written after every update.
	checkCacheFollowsUpdates(t, h, ls, path)
	ls.Stop()

	// Second run, server down: the cached flags at once, STALE/cache.
	sl := newSleeper()
	sl.hold() // after the first failure, until the server is back
	c2 := newRemoteClient(t, streamOpt(withCache(streamConfig(t, url, sl), path)))
	st := c2.Status()
	if st.State != flags.StateStale || st.Source != "cache" || st.Version != 6 {
		t.Errorf("status right after New = %+v, want STALE/cache at version 6", st)
	}
	rec2 := record(c2)
	checkServed(t, c2, h)
	ec := flags.NewContext("user-1").Build()
	if r := c2.IntDetail(context.Background(), "gen", ec, -1); r.Value != 1 || r.Err != nil {
		t.Errorf("IntDetail(gen) from the cache = %+v, want 1", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := c2.WaitReady(ctx); err != nil {
		t.Errorf("WaitReady with a cache = %v, want nil at once", err)
	}
	// Failing to connect keeps it STALE/cache, with the error.
	<-sl.sleeping
	if st := c2.Status(); st.State != flags.StateStale || st.Source != "cache" || st.Err == nil || st.Version != 6 {
		t.Errorf("status after a failed connection = %+v, want STALE/cache with an error", st)
	}

	// A server comes back: READY/stream with its document.
	h.max.Store(2)
	startServer(t, ls.Addr(), testkit.GenDoc(t, 20, 2), server.Options{}, nil)
	sl.release()
	rec2.waitReadyAt(t, "stream", 20)
	if g := c2.Int(context.Background(), "gen", ec, -1); g != 2 {
		t.Errorf("Int(gen) = %d, want 2", g)
	}
	c2.Close()
	if doc, err := stream.ReadCache(path, url); err != nil || doc.Version != 20 {
		t.Errorf("ReadCache after the second run = %v, %v; want version 20", doc, err)
	}
}

// checkCacheFollowsUpdates runs a client with a cache at path against ls
// (at version 5) through one publish: the cache file holds version 6 once
// the client is closed.
func checkCacheFollowsUpdates(t *testing.T, h *history, ls *liveServer, path string) {
	t.Helper()
	c := newRemoteClient(t, streamOpt(withCache(streamConfig(t, ls.URL, newSleeper()), path)))
	rec := record(c)
	rec.waitState(t, flags.StateReady, "stream")
	h.publish(t, ls, 1, testkit.GenDoc(t, 0, 1))
	rec.waitFor(t, "version 6", func() bool { return c.Status().Version == 6 })
	c.Close() // the cache write that follows an Apply is over when Close returns
	if doc, err := stream.ReadCache(path, ls.URL); err != nil || doc.Version != 6 {
		t.Fatalf("ReadCache after the first run = %v, %v; want version 6", doc, err)
	}
}

func TestCacheIgnoredWhenCorruptOrForeign(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.cache")
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, path, url string)
	}{
		{"garbage", func(t *testing.T, path, url string) {
			os.WriteFile(path, []byte("not json at all"), 0o644)
		}},
		{"truncated", func(t *testing.T, path, url string) {
			if err := stream.WriteCache(good, url, testkit.GenDoc(t, 99, 7)); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(good)
			os.WriteFile(path, data[:len(data)/2], 0o644)
		}},
		{"document changed after its checksum", func(t *testing.T, path, url string) {
			if err := stream.WriteCache(good, url, testkit.GenDoc(t, 99, 7)); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(good)
			i := len(data) - 10
			for data[i] != '7' {
				i--
			}
			data[i] = '8' // still JSON, still a document: only the checksum tells
			os.WriteFile(path, data, 0o644)
		}},
		{"another base URL", func(t *testing.T, path, url string) {
			if err := stream.WriteCache(path, "http://127.0.0.1:1", testkit.GenDoc(t, 99, 7)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory()
			gate, open := holdRequests() // nothing arrives before the first checks
			ls := startServer(t, "", testkit.GenDoc(t, 5, 0), server.Options{}, gate)
			path := filepath.Join(t.TempDir(), "flags.cache")
			tc.write(t, path, ls.URL)
			c := newRemoteClient(t, streamOpt(withCache(streamConfig(t, ls.URL, newSleeper()), path)))
			if snap := c.Snapshot(); snap != nil {
				t.Fatalf("a bad cache was served: version %d", snap.Version())
			}
			if st := c.Status(); st.State != flags.StateInitializing || st.Source != "stream" {
				t.Errorf("status right after New = %+v, want INITIALIZING/stream", st)
			}
			rec := record(c)
			checkServed(t, c, h)
			open()
			rec.waitReadyAt(t, "stream", 5)
			c.Close()
			if doc, err := stream.ReadCache(path, ls.URL); err != nil || doc.Version != 5 {
				t.Errorf("ReadCache after the run = %v, %v; want the server's version 5", doc, err)
			}
		})
	}
}

func TestPollingSeesChanges(t *testing.T) {
	h := newHistory()
	ls := startServer(t, "", testkit.GenDoc(t, 1, 0), server.Options{}, nil)
	sl := newSleeper()
	cfg := streamConfig(t, ls.URL, nil) // real 20 ms poll interval
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		if d != cfg.PollInterval { // a backoff wait: fast, or held
			return sl.Sleep(ctx, d)
		}
		return sleepFor(ctx, d)
	}
	c := newRemoteClient(t, pollOpt(cfg))
	rec := record(c)
	checkServed(t, c, h)
	rec.waitState(t, flags.StateReady, "poll")
	h.publish(t, ls, 1, testkit.GenDoc(t, 0, 1))
	rec.waitFor(t, "a change to version 2", func() bool {
		ch := rec.changeList()
		return len(ch) > 0 && ch[len(ch)-1].Version == 2
	})
	ch := rec.changeList()
	if diff := cmp.Diff(flags.Change{Version: 2, Flags: []string{"gen", "label"}}, ch[len(ch)-1]); diff != "" {
		t.Errorf("polled change (-want +got):\n%s", diff)
	}
	if s := c.Status(); s.State != flags.StateReady || s.Source != "poll" || s.Version != 2 {
		t.Errorf("status = %+v, want READY/poll at version 2", s)
	}
	// Server gone: STALE/poll, still serving; back: READY/poll.
	sl.hold()
	ls.Stop()
	st := rec.waitState(t, flags.StateStale, "poll")
	if st.Err == nil || c.Int(context.Background(), "gen", flags.NewContext("u").Build(), -1) != 1 {
		t.Errorf("while the server is down: status %+v, want an error and gen 1 served", st)
	}
	h.max.Store(2)
	startServer(t, ls.Addr(), testkit.GenDoc(t, 1, 2), server.Options{}, nil)
	sl.release()
	rec.waitReadyAt(t, "poll", 1)
	if g := c.Int(context.Background(), "gen", flags.NewContext("u").Build(), -1); g != 2 {
		t.Errorf("Int(gen) from the new server (new epoch, lower version) = %d, want 2", g)
	}
}

// TestCloseIsPromptAndLeavesNoGoroutine closes a client at each point of
// its life and checks that Close returns at once (every wait it could be
// stuck in is an hour or unbounded) and that the goroutine count comes back
// to where it was before New.
func TestCloseIsPromptAndLeavesNoGoroutine(t *testing.T) {
	type env struct {
		url     string
		entered chan struct{} // a request reached the gated server
		sl      *sleeper
	}
	for _, tc := range []struct {
		name  string
		gated bool // requests wait in the server until the client gives up
		// start returns the client, in the situation to close it in, and
		// its configuration.
		start func(t *testing.T, e env) (*flags.Client, stream.Config)
	}{
		{"during connect", true, func(t *testing.T, e env) (*flags.Client, stream.Config) {
			cfg := streamConfig(t, e.url, e.sl)
			c := newRemoteClient(t, streamOpt(cfg))
			<-e.entered // the stream request is in the server, unanswered
			return c, cfg
		}},
		{"while streaming", false, func(t *testing.T, e env) (*flags.Client, stream.Config) {
			cfg := streamConfig(t, e.url, e.sl)
			c := newRemoteClient(t, streamOpt(cfg))
			record(c).waitState(t, flags.StateReady, "stream")
			return c, cfg
		}},
		{"during backoff", false, func(t *testing.T, e env) (*flags.Client, stream.Config) {
			e.sl.hold()
			cfg := streamConfig(t, "http://127.0.0.1:1", e.sl) // refused
			c := newRemoteClient(t, streamOpt(cfg))
			<-e.sl.sleeping
			return c, cfg
		}},
		{"during backoff after a snapshot", false, func(t *testing.T, e env) (*flags.Client, stream.Config) {
			cfg := streamConfig(t, e.url, e.sl)
			cfg.IdleTimeout = 100 * time.Millisecond // the server's pings come every hour
			e.sl.hold()
			c := newRemoteClient(t, streamOpt(cfg))
			<-e.sl.sleeping // the idle timeout dropped the connection
			return c, cfg
		}},
		{"between polls", false, func(t *testing.T, e env) (*flags.Client, stream.Config) {
			cfg := streamConfig(t, e.url, nil)
			cfg.PollInterval = time.Hour
			c := newRemoteClient(t, pollOpt(cfg))
			record(c).waitState(t, flags.StateReady, "poll")
			return c, cfg
		}},
		{"during a poll request", true, func(t *testing.T, e env) (*flags.Client, stream.Config) {
			cfg := streamConfig(t, e.url, e.sl)
			c := newRemoteClient(t, pollOpt(cfg))
			<-e.entered
			return c, cfg
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env{entered: make(chan struct{}, 16), sl: newSleeper()}
			var gate func(http.ResponseWriter, *http.Request) bool
			if tc.gated {
				gate = func(_ http.ResponseWriter, r *http.Request) bool {
					e.entered <- struct{}{}
					<-r.Context().Done()
					return true
				}
			}
			ls := startServer(t, "", testkit.GenDoc(t, 1, 0), server.Options{HeartbeatInterval: time.Hour}, gate)
			e.url = ls.URL
			settle(t, -1) // let the server's own goroutines start
			before := runtime.NumGoroutine()
			c, cfg := tc.start(t, e)
			closed := make(chan struct{})
			go func() {
				c.Close()
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(remoteWait):
				t.Fatalf("Close did not return within %v", remoteWait)
			}
			if s := c.Status(); s.State != flags.StateClosed {
				t.Errorf("status after Close = %+v, want CLOSED", s)
			}
			if c.Snapshot() == nil {
				if err := c.WaitReady(context.Background()); !errors.Is(err, flags.ErrClosed) {
					t.Errorf("WaitReady after Close = %v, want ErrClosed", err)
				}
			}
			closeIdle(cfg)
			settle(t, before)
		})
	}
}

// settle waits until runtime.NumGoroutine is at most max (closing the
// test's idle connections first), or, with max < 0, until the count stops
// moving. It fails the test with every goroutine's stack on a timeout.
func TestStreamResumedAfterFallbackPollReportsStream(t *testing.T) {
	h := newHistory()
	var streamDown atomic.Bool
	streamDown.Store(true)
	ls := startServer(t, "", testkit.GenDoc(t, 4, 0), server.Options{}, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v1/stream" && streamDown.Load() {
			http.Error(w, "stream down", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	sl := newSleeper()
	cfg := streamConfig(t, ls.URL, sl)
	connected := newLogWatch("flags: stream: connected", 1)
	cfg.Logger = slog.New(connected)
	c := newRemoteClient(t, streamOpt(cfg))
	rec := record(c)
	checkServed(t, c, h)
	rec.waitFor(t, "the fallback poll's document", func() bool { return c.Status().Version == 4 })
	if st := c.Status(); st.State != flags.StateReady || st.Source != "poll" {
		t.Errorf("status with the stream down and the fallback poll healthy = %+v, want READY/poll", st)
	}
	streamDown.Store(false)
	select {
	case <-connected.reached: // logged after the connection's Status was handled
	case <-time.After(remoteWait):
		t.Fatal("the stream did not reconnect")
	}
	if st := c.Status(); st.State != flags.StateReady || st.Source != "stream" {
		t.Errorf("status once the stream is back (resumed, nothing to replay) = %+v, want READY/stream", st)
	}
	// The next patch comes over the stream.
	h.publish(t, ls, 1, testkit.GenDoc(t, 0, 1))
	rec.waitFor(t, "version 5", func() bool { return c.Status().Version == 5 })
	if st := c.Status(); st.State != flags.StateReady || st.Source != "stream" {
		t.Errorf("status after a patch = %+v, want READY/stream", st)
	}
}

// TestStreamIdleReconnects: a connection on which nothing arrives (the
// server's pings are an hour apart here) is dropped after IdleTimeout; the
// client resumes with its Last-Event-ID, so no snapshot and no OnChange
// follow, and it keeps serving its flags throughout.
func TestStreamIdleReconnects(t *testing.T) {
	h := newHistory()
	var streams atomic.Int64
	ls := startServer(t, "", testkit.GenDoc(t, 2, 0), server.Options{HeartbeatInterval: time.Hour},
		func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/v1/stream" {
				streams.Add(1)
			}
			return false
		})
	sl := newSleeper()
	cfg := streamConfig(t, ls.URL, sl)
	cfg.IdleTimeout = 200 * time.Millisecond
	c := newRemoteClient(t, streamOpt(cfg))
	rec := record(c)
	checkServed(t, c, h)
	rec.waitState(t, flags.StateReady, "stream")
	rec.waitFor(t, "STALE after the idle timeout", func() bool {
		for _, st := range rec.seen() {
			if st.State == flags.StateStale && errors.Is(st.Err, stream.ErrIdleTimeout) {
				return true
			}
		}
		return false
	})
	rec.waitFor(t, "READY again", func() bool { return c.Status().State == flags.StateReady && streams.Load() >= 2 })
	if n := len(rec.changeList()); n > 1 {
		t.Errorf("%d changes, want at most the first snapshot's: a resumed stream has nothing new", n)
	}
	if st := c.Status(); st.Source != "stream" || st.Version != 2 {
		t.Errorf("status after the reconnection = %+v, want stream at version 2", st)
	}
	h.publish(t, ls, 1, testkit.GenDoc(t, 0, 1))
	rec.waitFor(t, "version 3", func() bool { return c.Status().Version == 3 })
}

// TestPollingCache: Config.Cache works with Config.Poll too.
func TestPollingCache(t *testing.T) {
	h := newHistory()
	path := filepath.Join(t.TempDir(), "flags.cache")
	ls := startServer(t, "", testkit.GenDoc(t, 5, 0), server.Options{}, nil)
	c1 := newRemoteClient(t, pollOpt(withCache(streamConfig(t, ls.URL, newSleeper()), path)))
	record(c1).waitState(t, flags.StateReady, "poll")
	c1.Close()
	ls.Stop()

	sl := newSleeper()
	sl.hold()
	c2 := newRemoteClient(t, pollOpt(withCache(streamConfig(t, ls.URL, sl), path)))
	if st := c2.Status(); st.State != flags.StateStale || st.Source != "cache" || st.Version != 5 {
		t.Errorf("status right after New = %+v, want STALE/cache at version 5", st)
	}
	rec := record(c2)
	checkServed(t, c2, h)
	<-sl.sleeping
	h.max.Store(1)
	startServer(t, ls.Addr(), testkit.GenDoc(t, 8, 1), server.Options{}, nil)
	sl.release()
	rec.waitReadyAt(t, "poll", 8)
}

// TestCacheHoldsLastVersionAfterClose: cache writes are coalesced while
// patches pour in, yet the file holds the last version applied once Close
// has returned, and the temporary files of a killed writer are gone.
func TestCacheHoldsLastVersionAfterClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.cache")
	leftover := filepath.Join(dir, ".flags.cache.tmp-1234")
	if err := os.WriteFile(leftover, []byte("half a write"), 0o600); err != nil {
		t.Fatal(err)
	}
	ls := startServer(t, "", testkit.GenDoc(t, 1, 0), server.Options{}, nil)
	c := newRemoteClient(t, streamOpt(withCache(streamConfig(t, ls.URL, newSleeper()), path)))
	rec := record(c)
	rec.waitState(t, flags.StateReady, "stream")
	const n = 200
	for gen := 1; gen <= n; gen++ {
		if err := ls.srv.Publish(testkit.GenDoc(t, 0, gen)); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitFor(t, "the last patch", func() bool { return c.Int(context.Background(), "gen", flags.NewContext("u").Build(), -1) == n })
	last := c.Snapshot().Version() // Status may trail the snapshot just swapped in by an instant
	c.Close()
	doc, err := stream.ReadCache(path, ls.URL)
	if err != nil || doc.Version != last {
		t.Fatalf("ReadCache after Close = %v, %v; want version %d", doc, err, last)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover temporary file: %v, want it removed", err)
	}
}
