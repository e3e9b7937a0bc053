package stream_test

// Helpers of remote_test.go: live servers, the served-value checker, a
// status recorder and an injectable sleeper.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
)

// remoteWait bounds every wait for an event; on 127.0.0.1 events take
// milliseconds, the bound only turns a hang into a failure.
const remoteWait = 10 * time.Second

// holdRequests returns a gate for startServer that keeps every request
// waiting until open is called.
func holdRequests() (gate func(http.ResponseWriter, *http.Request) bool, open func()) {
	ch := make(chan struct{})
	var once sync.Once
	return func(_ http.ResponseWriter, r *http.Request) bool {
			select {
			case <-ch:
			case <-r.Context().Done():
			}
			return false
		}, func() {
			once.Do(func() { close(ch) })
		}
}

// liveServer is the reference server behind a real listener on 127.0.0.1.
type liveServer struct {
	srv      *server.Server
	requests atomic.Int64 // requests received, all paths
	*testkit.LiveServer
}

// startServer serves doc on addr ("" for any free port of 127.0.0.1). gate,
// when not nil, runs before every request is handed to the server: a test
// can hold requests there, or answer them itself (gate returns true). The
// server is stopped when the test ends.
func startServer(t *testing.T, addr string, doc *rules.Document, opts server.Options, gate func(http.ResponseWriter, *http.Request) bool) *liveServer {
	t.Helper()
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 50 * time.Millisecond
	}
	srv, err := server.New(server.NewMemoryStore(doc), opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ls := &liveServer{srv: srv}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls.requests.Add(1)
		if gate != nil && (gate(w, r) || r.Context().Err() != nil) {
			return
		}
		srv.ServeHTTP(w, r)
	})
	ls.LiveServer = testkit.StartAt(t, addr, h, func() { srv.Close() })
	return ls
}

// history is what the test has published: generations 0..max, in order.
type history struct{ max atomic.Int64 }

// newHistory is the history of a test that starts its server with
// generation 0 (testkit.GenDoc(t, version, 0)).
func newHistory() *history { return &history{} }

// publish records generation gen as published, then publishes doc on ls.
// Recording first means a client that has it is never ahead of history.
func (h *history) publish(t *testing.T, ls *liveServer, gen int, doc *rules.Document) {
	t.Helper()
	h.max.Store(int64(gen))
	if err := ls.srv.Publish(doc); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// servedChecker evaluates from several goroutines until stopped and fails
// the test on any value the server has not published, or published before
// one the same goroutine has already seen.
type servedChecker struct {
	t     *testing.T
	c     *flags.Client
	h     *history
	stopc chan struct{}
	wg    sync.WaitGroup
	evals atomic.Int64
	once  sync.Once
}

func checkServed(t *testing.T, c *flags.Client, h *history) *servedChecker {
	sc := &servedChecker{t: t, c: c, h: h, stopc: make(chan struct{})}
	for g := range 4 {
		sc.wg.Add(1)
		go sc.run(g%2 == 1)
	}
	t.Cleanup(sc.stop)
	return sc
}

func (sc *servedChecker) run(whole bool) {
	defer sc.wg.Done()
	ctx := context.Background()
	ec := flags.NewContext("user-1").Build()
	read := sc.readGetters
	if whole {
		read = sc.readAllFlags
	}
	last := int64(-1)
	for {
		select {
		case <-sc.stopc:
			return
		default:
		}
		sc.evals.Add(1)
		gen, err := read(ctx, ec, last)
		if errors.Is(err, errNothingServed) {
			runtime.Gosched()
			continue
		}
		if err != nil {
			sc.t.Error(err)
			return
		}
		if max := sc.h.max.Load(); gen > max || gen < last {
			sc.t.Errorf("served generation %d; published so far: 0..%d; this goroutine already saw %d", gen, max, last)
			return
		}
		last = gen
		runtime.Gosched()
	}
}

// errNothingServed is a servedChecker read before the first snapshot,
// which is no failure as long as no generation has been served.
var errNothingServed = errors.New("nothing served yet")

// readAllFlags reads the generation from one snapshot, read whole with
// AllFlags: "label" must match "gen".
func (sc *servedChecker) readAllFlags(ctx context.Context, ec flags.Context, last int64) (int64, error) {
	all := sc.c.AllFlags(ctx, ec)
	if all.Len() == 0 {
		if last >= 0 {
			return 0, fmt.Errorf("AllFlags is empty after generation %d was served", last)
		}
		return 0, errNothingServed
	}
	byKey := map[string]any{}
	for r := range all.All() {
		byKey[r.Flag] = r.Value
	}
	n, ok := byKey["gen"].(float64)
	if !ok || byKey["label"] != fmt.Sprintf("g%d", int64(n)) || byKey["stable"] != "same" {
		return 0, fmt.Errorf("AllFlags served an inconsistent snapshot: %v", byKey)
	}
	return int64(n), nil
}

// readGetters reads the generation with IntDetail, and checks that String
// serves the flag that never changes.
func (sc *servedChecker) readGetters(ctx context.Context, ec flags.Context, last int64) (int64, error) {
	r := sc.c.IntDetail(ctx, "gen", ec, -1)
	if r.Err != nil {
		if last >= 0 || !errors.Is(r.Err, flags.ErrClientNotReady) {
			return 0, fmt.Errorf("IntDetail(gen) = %+v after generation %d was served", r, last)
		}
		return 0, errNothingServed
	}
	if s := sc.c.String(ctx, "stable", ec, "default"); s != "same" {
		return 0, fmt.Errorf("String(stable) = %q, want %q", s, "same")
	}
	return int64(r.Value), nil
}

// stop ends the goroutines and checks that they evaluated.
func (sc *servedChecker) stop() {
	sc.once.Do(func() {
		close(sc.stopc)
		sc.wg.Wait()
		if sc.evals.Load() == 0 {
			sc.t.Errorf("servedChecker: no evaluation ran")
		}
	})
}

// recorder keeps what a client's listeners were told and wakes waiters.
type recorder struct {
	c        *flags.Client
	mu       sync.Mutex
	statuses []flags.Status
	changes  []flags.Change
	wake     chan struct{}
}

func record(c *flags.Client) *recorder {
	r := &recorder{c: c, wake: make(chan struct{})}
	c.OnStatus(func(s flags.Status) {
		r.mu.Lock()
		r.statuses = append(r.statuses, s)
		r.notifyLocked()
		r.mu.Unlock()
	})
	c.OnChange(func(ch flags.Change) {
		r.mu.Lock()
		r.changes = append(r.changes, ch)
		r.notifyLocked()
		r.mu.Unlock()
	})
	return r
}

func (r *recorder) notifyLocked() {
	close(r.wake)
	r.wake = make(chan struct{})
}

// waitFor waits until cond holds; cond is checked after every event.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(remoteWait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		wake := r.wake
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; status %+v; statuses seen %+v", remoteWait, what, r.c.Status(), r.seen())
		}
	}
}

// waitState waits for the client's Status to have state and source.
func (r *recorder) waitState(t *testing.T, state flags.State, source string) flags.Status {
	t.Helper()
	r.waitFor(t, string(state)+"/"+source, func() bool {
		s := r.c.Status()
		return s.State == state && s.Source == source
	})
	return r.c.Status()
}

// waitReadyAt waits for the client to be READY from source at version.
func (r *recorder) waitReadyAt(t *testing.T, source string, version int64) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("READY/%s at version %d", source, version), func() bool {
		s := r.c.Status()
		return s.State == flags.StateReady && s.Source == source && s.Version == version
	})
}

func (r *recorder) seen() []flags.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.statuses)
}

func (r *recorder) changeList() []flags.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// sleeper is a stream.Config.Sleep that waits 1 ms instead of the backoff,
// or until released while held. Each call is announced on sleeping when
// there is room.
type sleeper struct {
	mu       sync.Mutex
	gate     chan struct{} // non-nil while held
	calls    atomic.Int64
	sleeping chan struct{}
}

func newSleeper() *sleeper { return &sleeper{sleeping: make(chan struct{}, 1)} }

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.calls.Add(1)
	select {
	case s.sleeping <- struct{}{}:
	default:
	}
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return sleepFor(ctx, time.Millisecond)
}

func sleepFor(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sleeper) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

func (s *sleeper) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// streamConfig is a test configuration: fast backoff through sl (when not
// nil), no jitter, and a transport of its own whose idle connections are
// closed when the test ends (closeIdle closes them earlier).
func streamConfig(t *testing.T, url string, sl *sleeper) stream.Config {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := stream.Config{
		BaseURL:      url,
		HTTPClient:   &http.Client{Transport: tr},
		IdleTimeout:  5 * time.Second,
		PollInterval: 20 * time.Millisecond,
		Rand:         func() float64 { return 0 },
	}
	if sl != nil {
		cfg.Sleep = sl.Sleep
	}
	return cfg
}

func closeIdle(cfg stream.Config) {
	cfg.HTTPClient.Transport.(*http.Transport).CloseIdleConnections()
}

// streamOpt feeds a client from cfg's server, streaming.
func streamOpt(cfg stream.Config) flags.Option {
	cfg.Poll = false
	return flags.WithSource(stream.New(cfg))
}

// pollOpt feeds a client from cfg's server, polling.
func pollOpt(cfg stream.Config) flags.Option {
	cfg.Poll = true
	return flags.WithSource(stream.New(cfg))
}

// withCache is cfg with a last-known-good file.
func withCache(cfg stream.Config, path string) stream.Config {
	cfg.Cache = path
	return cfg
}

func newRemoteClient(t *testing.T, opts ...flags.Option) *flags.Client {
	t.Helper()
	c, err := flags.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func settle(t *testing.T, max int) {
	t.Helper()
	deadline := time.Now().Add(remoteWait)
	prev := -1
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if (max >= 0 && n <= max) || (max < 0 && n == prev) {
			return
		}
		prev = n
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", n, max, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logWatch is a slog.Handler that counts the records whose message
// contains match and closes reached at the want-th: a test waits on it for
// something the client only logs.
type logWatch struct {
	match   string
	want    int
	reached chan struct{}

	mu sync.Mutex
	n  int
}

func newLogWatch(match string, want int) *logWatch {
	return &logWatch{match: match, want: want, reached: make(chan struct{})}
}

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logWatch) WithGroup(string) slog.Handler            { return l }
func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.Contains(r.Message, l.match) {
		if l.n++; l.n == l.want {
			close(l.reached)
		}
	}
	return nil
}

// TestStreamResumedAfterFallbackPollReportsStream: the stream fails, the
// fallback poll (stream policy rule 11) brings the document, then the stream
// comes back, resuming from the poll's ETag: the server has nothing to
// replay, so no event arrives. The client is then healthy on the stream and
// should say so (SPEC §6: a status line whenever the client's source
// changes), not keep reporting "poll" until the next patch.
