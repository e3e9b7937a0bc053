package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/rules"
)

// publishN publishes n changes of flag new-checkout's description.
func publishN(t *testing.T, srv *Server, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		doc := strings.Replace(baseDoc, `"owner": "team-a"`, fmt.Sprintf(`"description": "change %d-%d"`, srv.Version(), i), 1)
		if err := srv.Publish(mustParse(t, doc)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStreamResume(t *testing.T) {
	for _, tc := range []struct {
		name, lastID string
		want         []string // event name@id, in order
	}{
		{"no Last-Event-ID", "", []string{"snapshot@e1:21"}},
		{"in ring", "e1:19", []string{"patch@e1:20", "patch@e1:21"}},
		{"oldest kept", "e1:18", []string{"patch@e1:19", "patch@e1:20", "patch@e1:21"}},
		{"first version", "e1:17", []string{"snapshot@e1:21"}},
		{"out of ring", "e1:3", []string{"snapshot@e1:21"}},
		{"other epoch", "e0:20", []string{"snapshot@e1:21"}},
		{"ahead of server", "e1:22", []string{"snapshot@e1:21"}},
		{"garbage", "what", []string{"snapshot@e1:21"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, ts := newTestServer(t, baseDoc, Options{Epoch: "e1", ReplayPatches: 3})
			publishN(t, srv, 4) // versions 18..21; the ring holds 19, 20, 21
			c := openStream(t, ts.URL, "", tc.lastID)
			start := "resume"
			if strings.HasPrefix(tc.want[0], "snapshot") {
				start = "snapshot"
			}
			if got := c.resp.Header.Get(rules.StreamStartHeader); got != start {
				t.Errorf("%s: %q, want %q", rules.StreamStartHeader, got, start)
			}
			for _, want := range tc.want {
				ev := c.next(t)
				if got := ev.Name + "@" + ev.ID; got != want {
					t.Fatalf("event %s, want %s", got, want)
				}
			}
			// What follows is the live patch, nothing else in between.
			publishN(t, srv, 1)
			ev, p := c.nextPatch(t)
			if want := fmt.Sprintf("e1:%d", srv.Version()); ev.ID != want || p.Version != srv.Version() {
				t.Fatalf("live event id %s version %d, want %s", ev.ID, p.Version, want)
			}
		})
	}

	// Up to date: no snapshot, no replay; the next event is the next patch.
	srv, ts := newTestServer(t, baseDoc, Options{Epoch: "e1"})
	publishN(t, srv, 2)
	c := openStream(t, ts.URL, "", fmt.Sprintf("e1:%d", srv.Version()))
	if got := c.resp.Header.Get(rules.StreamStartHeader); got != "resume" {
		t.Errorf("up-to-date resume: %s %q, want \"resume\"", rules.StreamStartHeader, got)
	}
	publishN(t, srv, 1)
	ev, _ := c.nextPatch(t)
	if ev.ID != fmt.Sprintf("e1:%d", srv.Version()) {
		t.Errorf("up-to-date resume got %s first", ev.ID)
	}
}

func TestStreamReplayBytesBound(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{Epoch: "e1", ReplayBytes: 600})
	publishN(t, srv, 4) // each patch frame is a few hundred bytes: not all fit
	c := openStream(t, ts.URL, "", "e1:17")
	if ev := c.next(t); ev.Name != "snapshot" {
		t.Fatalf("resume beyond the byte bound: %s, want snapshot", ev.Name)
	}
	c = openStream(t, ts.URL, "", "e1:20")
	if ev := c.next(t); ev.Name != "patch" || ev.ID != "e1:21" {
		t.Fatalf("resume within the byte bound: %s %s, want patch e1:21", ev.Name, ev.ID)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	_, ts := newTestServer(t, baseDoc, Options{HeartbeatInterval: 5 * time.Millisecond})
	c := openStream(t, ts.URL, "", "")
	pings := 0
	for pings < 3 {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("stream ended: %v", <-c.done)
			}
			if ev.Comment == "ping" {
				pings++
			} else if ev.Comment != "" {
				t.Fatalf("comment %q, want ping", ev.Comment)
			}
		case <-time.After(waitLimit):
			t.Fatalf("%d pings within %v, want 3", pings, waitLimit)
		}
	}
}

// A subscriber that never reads is dropped, and meanwhile another subscriber
// gets every patch and Publish never waits for the stuck one.
func TestStreamSlowSubscriberDropped(t *testing.T) {
	srv, err := New(NewMemoryStore(mustParse(t, baseDoc)), Options{
		Epoch: "e1", SubscriberQueue: 2, WriteTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	removed := make(chan string, 16)
	srv.onRemove = func(reason string) { removed <- reason }
	// Small socket buffers on the server side, so a stuck reader blocks the
	// server's writes after a few KiB rather than a few MiB.
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener = smallBufferListener{ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = srv.Close() })

	conn := dialStuckSubscriber(t, ts.Listener.Addr().String())
	fast := openStream(t, ts.URL, "", "")
	fast.next(t) // snapshot

	reason := publishUntilDropped(t, srv, fast, removed)
	if !strings.Contains(reason, "fell behind") && !strings.Contains(reason, "write failed") {
		t.Errorf("removed because %q, want fell behind or write failed", reason)
	}
	// The server let go of the stuck connection: reading it now ends (what
	// was buffered, then the end or a reset), rather than timing out.
	_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the dropped subscriber's connection is still open")
		}
	}
	// The fast one is still connected and served.
	publishN(t, srv, 1)
	if _, p := fast.nextPatch(t); p.Version != srv.Version() {
		t.Fatalf("after the drop: version %d, want %d", p.Version, srv.Version())
	}
}

// dialStuckSubscriber opens a stream over a raw connection that sends its
// request and never reads, with a small receive buffer.
func dialStuckSubscriber(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	if _, err := io.WriteString(conn, "GET /v1/stream HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// publishUntilDropped publishes changes of 64 KiB, each of which the fast
// subscriber must get at once, until the server reports on removed that it
// dropped a subscriber (at most 1,000); it returns the reason given.
func publishUntilDropped(t *testing.T, srv *Server, fast *sseClient, removed <-chan string) string {
	t.Helper()
	big := strings.Repeat("x", 64<<10)
	for i := range 1000 {
		doc := strings.Replace(baseDoc, `"owner": "team-a"`, fmt.Sprintf(`"description": "%d%s"`, i, big), 1)
		if err := srv.Publish(mustParse(t, doc)); err != nil {
			t.Fatal(err)
		}
		_, p := fast.nextPatch(t)
		if p.Version != srv.Version() {
			t.Fatalf("fast subscriber got version %d, want %d", p.Version, srv.Version())
		}
		select {
		case reason := <-removed:
			t.Logf("dropped after %d patches of %d KiB: %s", i+1, len(big)>>10, reason)
			return reason
		default:
		}
	}
	t.Fatal("the subscriber that never reads was not dropped")
	return ""
}

func TestClose(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{})
	c := openStream(t, ts.URL, "", "")
	c.next(t)
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case <-closed:
	case <-time.After(waitLimit):
		t.Fatal("Close did not return")
	}
	// The stream ends cleanly: whatever was queued, then EOF.
	for range c.events {
	}
	if err := <-c.done; err != io.EOF {
		t.Errorf("stream ended with %v, want a clean end (EOF)", err)
	}
	resp, _ := do(t, "GET", ts.URL+"/v1/stream", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("stream after Close: %d, want 503", resp.StatusCode)
	}
	resp, _ = do(t, "GET", ts.URL+"/v1/flags", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("flags after Close: %d, want 200", resp.StatusCode)
	}
	errorIs(t, srv.Publish(mustParse(t, baseDoc)), ErrClosed)
	if err := srv.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// A stream's connection is not reused: write deadlines set on it must not
// outlive the stream into another request.
func TestStreamEndClosesConnection(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{})
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, "GET /v1/stream HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Close {
		t.Error("stream response without Connection: close")
	}
	srv.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("stream body: %v", err)
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the stream: read %q, %v; want the connection closed", n, err)
	}
}

// smallBufferListener gives every accepted connection a small send buffer.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A snapshot larger than one write chunk arrives whole.
func TestStreamLargeSnapshot(t *testing.T) {
	doc := strings.Replace(baseDoc, `"owner": "team-a"`, `"description": "`+strings.Repeat("d", 1<<20)+`"`, 1)
	_, ts := newTestServer(t, doc, Options{})
	ev := openStream(t, ts.URL, "", "").next(t)
	d, err := rules.ParseDocument([]byte(ev.Data))
	if err != nil || ev.Name != "snapshot" {
		t.Fatalf("event %s of %d bytes: %v", ev.Name, len(ev.Data), err)
	}
	if got := member(t, d.Flags["new-checkout"], "description").(string); len(got) != 1<<20 {
		t.Errorf("description of %d bytes, want %d", len(got), 1<<20)
	}
}

func TestStreamHead(t *testing.T) {
	_, ts := newTestServer(t, baseDoc, Options{})
	resp, body := do(t, "HEAD", ts.URL+"/v1/stream", "", "")
	if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD /v1/stream = %d %q %s", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

// plainWriter is a middleware's ResponseWriter with neither Flush nor
// Unwrap.
type plainWriter struct{ w http.ResponseWriter }

func (p plainWriter) Header() http.Header         { return p.w.Header() }
func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p plainWriter) WriteHeader(code int)        { p.w.WriteHeader(code) }

// flushWriter can flush but does not unwrap: no write deadlines.
type flushWriter struct{ plainWriter }

func (f flushWriter) Flush() { f.w.(http.Flusher).Flush() }

// TestStreamWithoutFlushIs500 ("streaming silently buffers forever"): behind
// a middleware whose ResponseWriter can neither flush nor unwrap, a stream
// is answered 500 and the reason logged, before any stream byte; the
// document is still served. A writer that flushes but takes no deadlines
// streams, with one warning.
func TestStreamWithoutFlushIs500(t *testing.T) {
	logger, logs := newLogSink()
	srv, err := New(NewMemoryStore(mustParse(t, baseDoc)), Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(plainWriter{w}, r)
	}))
	t.Cleanup(plain.Close)
	resp, body := do(t, "GET", plain.URL+"/v1/stream", "", "")
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/json" ||
		!strings.Contains(body, "cannot be flushed") {
		t.Errorf("stream without Flush = %d %q %s, want a 500 JSON error", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	awaitLog(t, logs, "stream refused", "Flush or an Unwrap", "plainWriter")
	if resp, _ := do(t, "GET", plain.URL+"/v1/flags", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/flags without Flush = %d, want 200", resp.StatusCode)
	}

	flushing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(flushWriter{plainWriter{w}}, r)
	}))
	t.Cleanup(flushing.Close)
	for range 2 {
		c := openStream(t, flushing.URL, "", "")
		if ev := c.next(t); ev.Name != "snapshot" {
			t.Fatalf("first event %q, want snapshot", ev.Name)
		}
		c.cancel()
	}
	// Both streams have ended once both are in the access log; the
	// warning, written while they ran, came before.
	warnings, ended := 0, 0
	for ended < 2 {
		line := awaitLog(t, logs, "")
		if strings.Contains(line, "cannot set write deadlines") {
			warnings++
		}
		if strings.Contains(line, "flags: request") && strings.Contains(line, "path=/v1/stream status=200") {
			ended++
		}
	}
	if warnings != 1 {
		t.Errorf("the deadline warning was logged %d times, want once", warnings)
	}
}

// TestSlowSteadyReaderServed: a client reading a 4 MB snapshot steadily
// at about 320 KB/s is served whole behind ConnContext. Without it the
// kernel grows the send buffer to megabytes and wakes a blocked write only
// once much of it has drained, so the write showed no progress for longer
// than WriteTimeout and the client was dropped short of the snapshot's end,
// again at every retry (15 s: it runs beside the other tests).
func TestSlowSteadyReaderServed(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	sb.WriteString(`{"flags": {`)
	for i := range 4000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"f%d": {"on": true, "variations": [true], "fallthrough": {"variation": 0}, "description": "%s"}`, i, strings.Repeat("d", 1000))
	}
	sb.WriteString(`}}`)
	srv, err := New(NewMemoryStore(mustParse(t, sb.String())), Options{WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	removed := make(chan string, 4)
	srv.onRemove = func(r string) { removed <- r }
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ConnContext = ConnContext
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = srv.Close() })
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/stream HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	for total := 0; total < sb.Len(); time.Sleep(50 * time.Millisecond) {
		_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
		n, err := conn.Read(buf)
		total += n
		if err != nil {
			t.Fatalf("the stream ended after %d bytes of a %d-byte snapshot: %v", total, sb.Len(), err)
		}
	}
	select {
	case r := <-removed:
		t.Errorf("the slow reader was dropped: %s", r)
	default:
	}
}
