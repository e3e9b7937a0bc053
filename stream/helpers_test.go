package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/internal/logging"
	"github.com/flagstream/flags/rules"
)

// waitLimit bounds every wait for a signal; reaching it fails the test.
const waitLimit = 30 * time.Second

// applied is one call of Updates.Apply.
type applied struct {
	Version int64
	Source  string
	JSON    string
}

// reported is one call of Updates.Healthy or Updates.Failed.
type reported struct {
	Source     string
	Healthy    bool
	Fatal      bool
	Err        error
	HTTPStatus int // of the error's *StatusError, 0 when none
}

// httpStatusOf returns the HTTP status carried by err, 0 when none.
func httpStatusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func sameReport(a, b reported) bool {
	return sameStatus(status{a.Source, a.Healthy, a.Fatal, a.Err}, status{b.Source, b.Healthy, b.Fatal, b.Err}) &&
		a.HTTPStatus == b.HTTPStatus
}

// recorder is a flags.Updates that records everything, safe to inspect
// from the test goroutine.
type recorder struct {
	mu       sync.Mutex
	docs     []applied
	statuses []reported
	reject   func(*rules.Document) error // optional
	changed  chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) Apply(doc *rules.Document, origin string) error {
	b, err := doc.MarshalJSON()
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.signal()
	if r.reject != nil {
		if err := r.reject(doc); err != nil {
			return err
		}
	}
	r.docs = append(r.docs, applied{Version: doc.Version, Source: origin, JSON: string(b)})
	return nil
}

func (r *recorder) Healthy(origin string) { r.report(reported{Source: origin, Healthy: true}) }

func (r *recorder) Failed(origin string, err error, fatal bool) {
	r.report(reported{Source: origin, Fatal: fatal, Err: err, HTTPStatus: httpStatusOf(err)})
}

// Logger is where the client's logs would go: slog.Default() at warning
// level and above, as a flags.Client without WithLogger.
func (r *recorder) Logger() *slog.Logger { return logging.Default() }

func (r *recorder) report(st reported) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, st)
	r.signal()
}

func (r *recorder) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() ([]applied, []reported) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]applied(nil), r.docs...), append([]reported(nil), r.statuses...)
}

// waitFor waits until cond holds on the recorded calls.
func (r *recorder) waitFor(t *testing.T, what string, cond func(docs []applied, sts []reported) bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		docs, sts := r.snapshot()
		if cond(docs, sts) {
			return
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; applied %v, statuses %v", what, docs, sts)
		}
	}
}

func (r *recorder) waitDocs(t *testing.T, n int) []applied {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("%d documents", n), func(d []applied, _ []reported) bool { return len(d) >= n })
	docs, _ := r.snapshot()
	return docs
}

func versions(docs []applied) []int64 {
	out := make([]int64, len(docs))
	for i, d := range docs {
		out[i] = d.Version
	}
	return out
}

// fakeClock is the injected Now and Sleep: a sleep advances the clock by d
// and returns at once, after handing d to the test when gate is set.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	gate   chan time.Duration // optional: each sleep blocks until the test receives
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		select {
		case gate <- d:
		case <-ctx.Done():
		}
	}
	return ctx.Err()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// testConfig returns a Config for srvURL with the fake clock and a fixed
// jitter (Rand 0: every backoff wait is d/2).
func testConfig(srvURL string, clock *fakeClock) Config {
	return Config{
		BaseURL:    srvURL,
		Token:      "sdk-token",
		HTTPClient: &http.Client{Transport: &http.Transport{}},
		Now:        clock.Now,
		Sleep:      clock.Sleep,
		Rand:       func() float64 { return 0 },
	}
}

// request is what the test server saw of one request.
type request struct {
	Path, Auth, LastEventID, IfNoneMatch, Accept string
}

// fakeServer answers /v1/stream and /v1/flags with per-request functions
// chosen by the test; n counts the requests on that path from 0.
type fakeServer struct {
	*httptest.Server
	quit chan struct{}

	mu       sync.Mutex
	reqs     []request
	nStream  int
	nFlags   int
	stream   func(n int, w http.ResponseWriter, r *http.Request)
	flags    func(n int, w http.ResponseWriter, r *http.Request)
	requests chan request
}

func newFakeServer(t *testing.T, stream, flags func(n int, w http.ResponseWriter, r *http.Request)) *fakeServer {
	t.Helper()
	fs := &fakeServer{quit: make(chan struct{}), stream: stream, flags: flags, requests: make(chan request, 1000)}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(func() {
		fs.stop()
	})
	return fs
}

func (fs *fakeServer) stop() {
	select {
	case <-fs.quit:
	default:
		close(fs.quit)
	}
	fs.Server.Close()
}

func (fs *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	req := request{Path: r.URL.Path, Auth: r.Header.Get("Authorization"),
		LastEventID: r.Header.Get("Last-Event-ID"), IfNoneMatch: r.Header.Get("If-None-Match"),
		Accept: r.Header.Get("Accept")}
	fs.mu.Lock()
	fs.reqs = append(fs.reqs, req)
	var fn func(int, http.ResponseWriter, *http.Request)
	var n int
	switch r.URL.Path {
	case "/v1/stream":
		fn, n = fs.stream, fs.nStream
		fs.nStream++
	case "/v1/flags":
		fn, n = fs.flags, fs.nFlags
		fs.nFlags++
	}
	fs.mu.Unlock()
	fs.requests <- req
	if fn == nil {
		http.NotFound(w, r)
		return
	}
	fn(n, w, r)
}

func (fs *fakeServer) Requests(path string) []request {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []request
	for _, r := range fs.reqs {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// waitRequests waits until n requests on path have arrived.
func (fs *fakeServer) waitRequests(t *testing.T, path string, n int) []request {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		if got := fs.Requests(path); len(got) >= n {
			return got
		}
		select {
		case <-fs.requests:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %d requests on %s; got %v", n, path, fs.Requests(""))
		}
	}
}

// newTestSource is New(cfg), failing the test when cfg is refused.
func newTestSource(t *testing.T, cfg Config) *Source {
	t.Helper()
	s := New(cfg)
	if s.err != nil {
		t.Fatalf("New: %v", s.err)
	}
	return s
}

// newTestPoller returns a Source polling cfg's server.
func newTestPoller(t *testing.T, cfg Config) *Source {
	t.Helper()
	cfg.Poll = true
	return newTestSource(t, cfg)
}

// newTestStreamer returns a Source following the stream of cfg.
func newTestStreamer(t *testing.T, cfg Config) *Source {
	t.Helper()
	cfg.Poll = false
	return newTestSource(t, cfg)
}

// event is one event of a scripted stream.
type event struct{ name, id, data string }

// script is what a scripted stream sends on one connection: its events,
// then it holds the connection open until the client leaves or, with end,
// ends the stream cleanly.
type script struct {
	events []event
	end    bool
}

// scriptedServer is a fakeServer whose stream plays scripts[n] on its n-th
// connection and the last script on every later one; it has no /v1/flags.
func scriptedServer(t *testing.T, scripts ...script) *fakeServer {
	t.Helper()
	return newFakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		s := scripts[min(n, len(scripts)-1)]
		sseStart(w)
		for _, e := range s.events {
			sseEvent(w, e.name, e.id, e.data)
		}
		if !s.end {
			holdStream(r)
		}
	}, nil)
}

// holdStream keeps a handler's stream open until the client leaves.
func holdStream(r *http.Request) { <-r.Context().Done() }

// serveETag answers a poll as the server does: body with ETag tag, or 304
// Not Modified when the client already holds tag.
func serveETag(w http.ResponseWriter, r *http.Request, tag, body string) {
	w.Header().Set("ETag", tag)
	if r.Header.Get("If-None-Match") == tag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write([]byte(body))
}

// sseStart writes the headers of an event stream.
func sseStart(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// sseEvent writes one event and flushes it.
func sseEvent(w http.ResponseWriter, name, id, data string) {
	var b strings.Builder
	fmt.Fprintf(&b, "event: %s\n", name)
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	for _, line := range strings.Split(data, "\n") {
		fmt.Fprintf(&b, "data: %s\n", line)
	}
	b.WriteString("\n")
	_, _ = w.Write([]byte(b.String()))
	w.(http.Flusher).Flush()
}

// docJSON builds a document with one boolean flag per key.
func docJSON(version int64, keys ...string) string {
	flags := map[string]any{}
	for _, k := range keys {
		flags[k] = map[string]any{"version": version, "on": true, "variations": []any{false, true},
			"fallthrough": map[string]any{"variation": 1}}
	}
	b, _ := json.Marshal(map[string]any{"version": version, "flags": flags, "segments": map[string]any{}})
	return string(b)
}

// patchJSON builds a patch that sets (or, with a "-" prefix, deletes) flags.
func patchJSON(version int64, keys ...string) string {
	flags := map[string]any{}
	for _, k := range keys {
		if strings.HasPrefix(k, "-") {
			flags[k[1:]] = nil
			continue
		}
		flags[k] = map[string]any{"version": version, "on": true, "variations": []any{false, true},
			"fallthrough": map[string]any{"variation": 0}}
	}
	b, _ := json.Marshal(map[string]any{"version": version, "flags": flags})
	return string(b)
}

// canonical returns the MarshalJSON form of a document's JSON.
func canonical(t *testing.T, s string) string {
	t.Helper()
	doc, err := rules.ParseDocument([]byte(s))
	if err != nil {
		t.Fatalf("ParseDocument: %v", err)
	}
	b, err := doc.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// patched returns the canonical document after applying patches to base.
func patched(t *testing.T, base string, patches ...string) string {
	t.Helper()
	doc, err := rules.ParseDocument([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range patches {
		p, err := rules.ParsePatch([]byte(ps))
		if err != nil {
			t.Fatal(err)
		}
		doc = doc.Apply(p)
	}
	b, _ := doc.MarshalJSON()
	return string(b)
}

// runner runs a client's Run in a goroutine.
type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func startRun(t *testing.T, run func(context.Context, flags.Updates) error, h flags.Updates) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx, h) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return (once).
func (r *runner) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait waits for Run to return on its own.
func (r *runner) wait(t *testing.T) error {
	t.Helper()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return within %s", waitLimit)
		return nil
	}
}

// leakedGoroutines lists goroutines still running code of this package's
// clients or of the r3labs reader, waiting for them to end.
func leakedGoroutines() []string {
	var leaked []string
	for range 200 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		leaked = leaked[:0]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "flags/stream.(*streamer)") || strings.Contains(g, "flags/stream.(*poller)") ||
				strings.Contains(g, "flags/stream.(*Source)") || strings.Contains(g, "flags/stream.(*cacheWriter)") ||
				strings.Contains(g, "flags/stream.startWatchdog") || strings.Contains(g, "flags/stream.fetchFlags") ||
				strings.Contains(g, "r3labs/sse") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return nil
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
	return leaked
}

func checkNoLeak(t *testing.T) {
	t.Helper()
	if g := leakedGoroutines(); len(g) > 0 {
		t.Errorf("%d goroutines left:\n%s", len(g), strings.Join(g, "\n\n"))
	}
}

// checkApplied fails the test unless docs are want.
func checkApplied(t *testing.T, docs []applied, want ...applied) {
	t.Helper()
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Errorf("applied documents (-want +got):\n%s", diff)
	}
}

// checkVersions fails the test unless docs have the versions want.
func checkVersions(t *testing.T, docs []applied, want ...int64) {
	t.Helper()
	if got := versions(docs); !slices.Equal(got, want) {
		t.Errorf("applied versions = %v, want %v", got, want)
	}
}

// checkResynced fails the test unless srv saw two stream requests, the
// second a resync: without Last-Event-ID, so the server starts over with a
// snapshot.
func checkResynced(t *testing.T, srv *fakeServer) {
	t.Helper()
	if reqs := srv.Requests("/v1/stream"); len(reqs) != 2 || reqs[1].LastEventID != "" {
		t.Errorf("stream requests = %+v, want a resync without Last-Event-ID", reqs)
	}
}

func hasStatus(sts []reported, f func(reported) bool) bool {
	for _, s := range sts {
		if f(s) {
			return true
		}
	}
	return false
}

// streamDocs runs a streamer (newTestStreamer) with cfg until it has
// applied n documents, stops it, and returns those documents and the
// recorder, which holds the statuses.
func streamDocs(t *testing.T, cfg Config, n int) ([]applied, *recorder) {
	t.Helper()
	rec := newRecorder()
	return streamInto(t, cfg, rec, n), rec
}

// streamInto is streamDocs with a recorder of the caller's.
func streamInto(t *testing.T, cfg Config, rec *recorder, n int) []applied {
	t.Helper()
	run := startRun(t, newTestStreamer(t, cfg).Run, rec)
	docs := rec.waitDocs(t, n)
	run.stop(t)
	return docs
}

// gatedConfig is testConfig with a fake clock whose every wait blocks
// until the test takes it (nextSleep), so that the test steps the client
// from one wait to the next.
func gatedConfig(srvURL string) (Config, *fakeClock) {
	clock := newFakeClock()
	clock.gate = make(chan time.Duration)
	return testConfig(srvURL, clock), clock
}
