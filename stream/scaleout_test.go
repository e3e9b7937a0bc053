package stream_test

// Scale-out: replicas of the reference server behind a reverse proxy
// (docs/DEPLOYMENT.md). A client that moves from one replica to another
// meets another epoch, takes that replica's snapshot, and serves correct
// values all along.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
)

const (
	scaleOutToken = "sdk-token"
	scaleOutAdmin = "admin-token"
	// scaleOutDeadline bounds every wait: a failover includes one backoff
	// wait (0.5-1 s) and machines running tests can be slow.
	scaleOutDeadline = 30 * time.Second
)

// scaleOutDoc is a document file: color serves the given string to
// everyone, enabled is on.
func scaleOutDoc(version int, color string) string {
	return fmt.Sprintf(`{
  "version": %d,
  "flags": {
    "color": {"on": true, "variations": ["red", "blue", "green"], "fallthrough": {"variation": %d}},
    "enabled": {"on": true, "variations": [false, true], "offVariation": 0, "fallthrough": {"variation": 1}}
  }
}
`, version, map[string]int{"red": 0, "blue": 1, "green": 2}[color])
}

// scaleOutReplica is one reference server over the shared file.
type scaleOutReplica struct {
	srv *server.Server
	ts  *httptest.Server
}

func startScaleOutReplica(t *testing.T, path, epoch string) *scaleOutReplica {
	t.Helper()
	// Each replica keeps its own audit log, as replicas on their own
	// machines do: one shared would make B continue A's versions.
	store, err := server.OpenFileStore(path, server.FileStoreOptions{PollInterval: 20 * time.Millisecond,
		AuditPath: filepath.Join(t.TempDir(), "audit.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(store, server.Options{Token: scaleOutToken, AdminToken: scaleOutAdmin, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	r := &scaleOutReplica{srv: srv, ts: httptest.NewServer(srv)}
	t.Cleanup(r.kill)
	return r
}

// kill stops the replica the hard way: its connections are cut (no clean
// end of stream), its port closed, then the server stopped.
func (r *scaleOutReplica) kill() {
	r.ts.CloseClientConnections()
	r.ts.Close()
	_ = r.srv.Close()
}

// scaleOutHop is one request the proxy forwarded.
type scaleOutHop struct {
	backend     int    // index of the replica that answered
	path        string // request path
	lastEventID string // the request's Last-Event-ID
	head        *bytes.Buffer
}

// scaleOutProxy is a failover reverse proxy: every request goes to the
// first replica that accepts a connection, in order (like nginx's
// proxy_next_upstream error), and responses are flushed at once
// (FlushInterval -1) so that events are not held back.
type scaleOutProxy struct {
	tr *http.Transport
	ts *httptest.Server

	mu       sync.Mutex
	backends []*url.URL // in order of preference
	hops     []*scaleOutHop
}

// add puts a replica last in the order of preference.
func (p *scaleOutProxy) add(t *testing.T, r *scaleOutReplica) {
	t.Helper()
	u, err := url.Parse(r.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.backends = append(p.backends, u)
	p.mu.Unlock()
}

func startScaleOutProxy(t *testing.T, replicas ...*scaleOutReplica) *scaleOutProxy {
	t.Helper()
	p := &scaleOutProxy{tr: http.DefaultTransport.(*http.Transport).Clone()}
	for _, r := range replicas {
		p.add(t, r)
	}
	placeholder := &url.URL{Scheme: "http", Host: "replica.invalid"}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(placeholder) }, // RoundTrip picks the replica
		Transport:     p,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0), // a killed replica cuts bodies short
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.ts = httptest.NewServer(rp)
	t.Cleanup(func() {
		p.ts.CloseClientConnections()
		p.ts.Close()
		p.tr.CloseIdleConnections()
	})
	return p
}

// RoundTrip sends req to the first replica that accepts a connection; the
// first bytes of each response are kept for the test to read.
func (p *scaleOutProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	backends := p.backends[:len(p.backends):len(p.backends)]
	p.mu.Unlock()
	lastErr := errors.New("no replica")
	for i, b := range backends {
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.Host = b.Scheme, b.Host, b.Host
		resp, err := p.tr.RoundTrip(out)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			lastErr = err // that replica is down: fail over to the next
			continue
		}
		if err != nil {
			return nil, err
		}
		hop := &scaleOutHop{backend: i, path: req.URL.Path, lastEventID: req.Header.Get("Last-Event-ID"), head: &bytes.Buffer{}}
		p.mu.Lock()
		p.hops = append(p.hops, hop)
		p.mu.Unlock()
		resp.Body = &scaleOutHead{ReadCloser: resp.Body, p: p, buf: hop.head}
		return resp, nil
	}
	return nil, lastErr
}

// streams returns copies of the stream requests forwarded so far.
func (p *scaleOutProxy) streams() []scaleOutHop {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []scaleOutHop
	for _, h := range p.hops {
		if h.path == "/v1/stream" {
			c := *h
			c.head = bytes.NewBuffer(bytes.Clone(h.head.Bytes()))
			out = append(out, c)
		}
	}
	return out
}

// scaleOutHead keeps the first 512 bytes read from a response body.
type scaleOutHead struct {
	io.ReadCloser
	p   *scaleOutProxy
	buf *bytes.Buffer
}

func (h *scaleOutHead) Read(b []byte) (int, error) {
	n, err := h.ReadCloser.Read(b)
	h.p.mu.Lock()
	if room := 512 - h.buf.Len(); room > 0 {
		h.buf.Write(b[:min(n, room)])
	}
	h.p.mu.Unlock()
	return n, err
}

// readyScaleOutClient is a streaming client of the server at baseURL, READY,
// with its watch and a context that ends with the test (at the latest
// after scaleOutDeadline).
func readyScaleOutClient(t *testing.T, baseURL string) (*flags.Client, *scaleOutWatch, context.Context) {
	t.Helper()
	c, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: baseURL, Token: scaleOutToken})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	w := watchScaleOut(c)
	ctx, cancel := context.WithTimeout(context.Background(), scaleOutDeadline)
	t.Cleanup(cancel)
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c, w, ctx
}

// scaleOutWatch collects a client's statuses and changes.
type scaleOutWatch struct {
	statuses chan flags.Status
	changes  chan flags.Change
}

func watchScaleOut(c *flags.Client) *scaleOutWatch {
	w := &scaleOutWatch{statuses: make(chan flags.Status, 1024), changes: make(chan flags.Change, 1024)}
	c.OnStatus(func(s flags.Status) { w.statuses <- s })
	c.OnChange(func(ch flags.Change) { w.changes <- ch })
	return w
}

// drainChanges forgets the changes received so far.
func (w *scaleOutWatch) drainChanges() {
	for {
		select {
		case <-w.changes:
		default:
			return
		}
	}
}

// status waits for a status that satisfies ok and returns it.
func (w *scaleOutWatch) status(t *testing.T, what string, ok func(flags.Status) bool) flags.Status {
	t.Helper()
	return awaitMatch(t, w.statuses, "status "+what, ok)
}

// change waits for a change that satisfies ok and returns it.
func (w *scaleOutWatch) change(t *testing.T, what string, ok func(flags.Change) bool) flags.Change {
	t.Helper()
	return awaitMatch(t, w.changes, "change "+what, ok)
}

// awaitMatch waits, for at most scaleOutDeadline, for a value on c that
// satisfies ok, and returns it.
func awaitMatch[T any](t *testing.T, c <-chan T, what string, ok func(T) bool) T {
	t.Helper()
	timer := time.NewTimer(scaleOutDeadline)
	defer timer.Stop()
	for {
		select {
		case v := <-c:
			if ok(v) {
				return v
			}
		case <-timer.C:
			t.Fatalf("no %s within %v", what, scaleOutDeadline)
		}
	}
}

// scaleOutSampler evaluates the flags every millisecond and keeps every
// value it should never have seen: color outside allowed() (a default
// included), enabled not true, or color back to blue once green was seen.
type scaleOutSampler struct {
	allowGreen atomic.Bool
	stop       chan struct{}
	done       chan struct{}
	samples    atomic.Int64

	mu  sync.Mutex
	bad []string
}

func sampleScaleOut(c *flags.Client) *scaleOutSampler {
	s := &scaleOutSampler{stop: make(chan struct{}), done: make(chan struct{})}
	ctx, ec := context.Background(), flags.NewContext("user-1").Build()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		sawGreen := false
		for {
			color := c.String(ctx, "color", ec, "DEFAULT")
			enabled := c.Bool(ctx, "enabled", ec, false)
			var bad string
			switch {
			case color == "green" && s.allowGreen.Load():
				sawGreen = true
			case color == "blue" && !sawGreen:
			default:
				bad = fmt.Sprintf("color = %q (green allowed: %v, seen: %v)", color, s.allowGreen.Load(), sawGreen)
			}
			if !enabled {
				bad += " enabled = false"
			}
			if bad != "" {
				s.mu.Lock()
				if len(s.bad) < 10 {
					s.bad = append(s.bad, fmt.Sprintf("%s (status %+v)", strings.TrimSpace(bad), c.Status()))
				}
				s.mu.Unlock()
			}
			s.samples.Add(1)
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops the sampler and fails the test for every bad value.
func (s *scaleOutSampler) finish(t *testing.T) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bad {
		t.Errorf("served a wrong value: %s", b)
	}
	if s.samples.Load() == 0 {
		t.Error("no evaluation sampled")
	}
}

// TestScaleOutFailover: two replicas over one file, each with its own epoch
// and its own version numbers for the same content (replica B started after
// the file changed under A), behind a failover proxy. The client streams
// from A; A is killed; the proxy sends the reconnect to B, which answers
// the client's Last-Event-ID of A's epoch with a snapshot; the client takes
// it (its version goes down from 6 to B's 5: another history, not an old
// state) and serves blue all along, never the default. A change to the
// file then reaches the client through B.
func TestScaleOutFailover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	testkit.ReplaceFile(t, path, scaleOutDoc(5, "red"))
	a := startScaleOutReplica(t, path, "replica-a")
	proxy := startScaleOutProxy(t, a)

	c, w, ctx := readyScaleOutClient(t, proxy.ts.URL)
	ec := flags.NewContext("user-1").Build()
	if got := c.String(ctx, "color", ec, "DEFAULT"); got != "red" {
		t.Fatalf(`String("color") = %q, want "red"`, got)
	}
	// The file changes: A publishes it as version 6. B, started afterwards
	// from the same file, serves the same content as version 5.
	testkit.ReplaceFile(t, path, scaleOutDoc(5, "blue"))
	w.change(t, "to blue through replica A", func(ch flags.Change) bool { return ch.Version == 6 })
	b := startScaleOutReplica(t, path, "replica-b")
	if b.srv.Version() != 5 {
		t.Fatalf("replica B: version %d, want 5 (the file's)", b.srv.Version())
	}
	proxy.add(t, b)
	checkStreamingFromA(t, c, proxy)
	sampler := sampleScaleOut(c)
	defer sampler.finish(t) // also when a wait below fails

	a.kill()
	w.status(t, "STALE after replica A died", func(s flags.Status) bool { return s.State == flags.StateStale })
	// B answers A's Last-Event-ID with a snapshot (and says so in
	// rules.StreamStartHeader): READY comes once it is in force, at B's
	// version, never at A's version 6 that it replaces.
	st := w.status(t, "READY after failover", func(s flags.Status) bool { return s.State == flags.StateReady })
	if st.Source != "stream" || st.Version != 5 {
		t.Errorf("first READY after failover %+v, want source stream at B's version 5", st)
	}
	if got := c.String(ctx, "color", ec, "DEFAULT"); got != "blue" {
		t.Errorf(`after failover String("color") = %q, want "blue"`, got)
	}
	checkReconnectToB(t, proxy.streams())

	w.drainChanges() // B's snapshot has the content A served: no change
	sampler.allowGreen.Store(true)
	testkit.ReplaceFile(t, path, scaleOutDoc(5, "green"))
	ch := w.change(t, "to green through replica B", func(ch flags.Change) bool { return ch.Version == 6 })
	if len(ch.Flags) != 1 || ch.Flags[0] != "color" {
		t.Errorf("change %+v, want flags [color]", ch)
	}
	if got := c.String(ctx, "color", ec, "DEFAULT"); got != "green" {
		t.Errorf(`String("color") = %q, want "green"`, got)
	}
	if st := c.Status(); st.State != flags.StateReady || st.Version != 6 {
		t.Errorf("Status() = %+v, want READY at version 6 (replica B)", st)
	}
}

// checkStreamingFromA: before the failover the client is READY at replica
// A's version 6, over one stream request, which went to A.
func checkStreamingFromA(t *testing.T, c *flags.Client, proxy *scaleOutProxy) {
	t.Helper()
	if st := c.Status(); st.State != flags.StateReady || st.Version != 6 {
		t.Fatalf("Status() = %+v, want READY at version 6 (replica A)", st)
	}
	hops := proxy.streams()
	if len(hops) != 1 || hops[0].backend != 0 {
		t.Fatalf("stream requests %+v, want one, to replica A", hops)
	}
}

// checkReconnectToB: the last stream request went to replica B with the
// Last-Event-ID of A's epoch, and B answered it with a snapshot of its own
// epoch.
func checkReconnectToB(t *testing.T, hops []scaleOutHop) {
	t.Helper()
	last := hops[len(hops)-1]
	if last.backend != 1 {
		t.Errorf("the reconnect went to replica %d, want 1 (B)", last.backend)
	}
	if last.lastEventID != "replica-a:6" {
		t.Errorf("the reconnect sent Last-Event-ID %q, want replica-a:6", last.lastEventID)
	}
	if head := last.head.String(); !strings.HasPrefix(head, "id: replica-b:5\nevent: snapshot\n") {
		t.Errorf("replica B answered %q…, want a snapshot with id replica-b:5", head)
	}
}

// TestScaleOutAdminWriteReachesOtherReplica: an admin PUT on replica A
// rewrites the shared file, and a client streaming from replica B gets the
// change when B reloads that file.
func TestScaleOutAdminWriteReachesOtherReplica(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	testkit.ReplaceFile(t, path, scaleOutDoc(5, "blue"))
	a := startScaleOutReplica(t, path, "replica-a")
	b := startScaleOutReplica(t, path, "replica-b")
	c, w, ctx := readyScaleOutClient(t, b.ts.URL)

	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.ts.URL+"/v1/admin/flags/color",
		strings.NewReader(`{"on": true, "variations": ["red", "blue", "green"], "fallthrough": {"variation": 2}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+scaleOutAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT on replica A: %s %s", resp.Status, body)
	}

	w.change(t, "through replica B", func(ch flags.Change) bool { return ch.Version == 6 && len(ch.Flags) == 1 && ch.Flags[0] == "color" })
	if got := c.String(ctx, "color", flags.NewContext("user-1").Build(), "DEFAULT"); got != "green" {
		t.Errorf(`String("color") = %q, want "green"`, got)
	}
	if v := b.srv.Version(); v != 6 {
		t.Errorf("replica B: Version() = %d, want 6", v)
	}
}
