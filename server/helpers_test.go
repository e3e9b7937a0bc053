package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
)

// waitLimit bounds every wait for a signal, so a broken server fails the test
// instead of hanging it. It is never slept.
const waitLimit = 10 * time.Second

const baseDoc = `{
  "version": 17,
  "flags": {
    "new-checkout": {"version": 3, "on": true, "variations": [false, true], "fallthrough": {"variation": 1}, "owner": "team-a"},
    "banner-text": {"on": false, "variations": ["a", "b"], "offVariation": 0, "fallthrough": {"variation": 0}}
  },
  "segments": {
    "beta-testers": {"version": 2, "included": ["u1"]}
  }
}`

func mustParse(t testing.TB, doc string) *rules.Document {
	t.Helper()
	d, err := rules.ParseDocument([]byte(doc))
	if err != nil {
		t.Fatalf("ParseDocument: %v", err)
	}
	return d
}

// newTestServer serves doc from a MemoryStore on a real 127.0.0.1 server.
func newTestServer(t testing.TB, doc string, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	srv, err := New(NewMemoryStore(mustParse(t, doc)), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return srv, serve(t, srv)
}

// serve mounts srv on an httptest server; cleanup closes srv, then the listener.
func serve(t testing.TB, srv *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = srv.Close() })
	return ts
}

// do is testkit.Do: one request, its response and body.
func do(t *testing.T, method, url, token, body string, header ...string) (*http.Response, string) {
	t.Helper()
	return testkit.Do(t, method, url, token, body, header...)
}

// sseEvent is one event, or one comment (Comment set), read from a stream.
type sseEvent = testkit.SSEEvent

// sseClient reads a stream in the background.
type sseClient struct {
	resp   *http.Response
	events chan sseEvent
	done   chan error // the read error (io.EOF on a clean end) once reading stops
	cancel context.CancelFunc
}

func openStream(t testing.TB, url, token, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET /v1/stream: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream Content-Type = %q, want text/event-stream", ct)
	}
	c := &sseClient{resp: resp, events: make(chan sseEvent, 1024), done: make(chan error, 1), cancel: cancel}
	go c.read()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return c
}

func (c *sseClient) read() {
	c.done <- testkit.ReadSSE(c.resp.Body, func(ev sseEvent) { c.events <- ev })
	close(c.events)
}

// next returns the next event, skipping comments.
func (c *sseClient) next(t testing.TB) sseEvent {
	t.Helper()
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("stream ended: %v", <-c.done)
			}
			if ev.Comment != "" {
				continue
			}
			return ev
		case <-time.After(waitLimit):
			t.Fatalf("no event within %v", waitLimit)
		}
	}
}

// nextPatch returns the next event, which must be a patch, decoded.
func (c *sseClient) nextPatch(t testing.TB) (sseEvent, patchData) {
	t.Helper()
	ev := c.next(t)
	if ev.Name != "patch" {
		t.Fatalf("event %q (id %s), want patch", ev.Name, ev.ID)
	}
	return ev, decodePatch(t, ev.Data)
}

// patchData is a decoded patch event.
type patchData struct {
	Version  int64                      `json:"version"`
	Flags    map[string]json.RawMessage `json:"flags"`
	Segments map[string]json.RawMessage `json:"segments"`
}

func decodePatch(t testing.TB, data string) patchData {
	t.Helper()
	var p patchData
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		t.Fatalf("patch %s: %v", data, err)
	}
	return p
}

// member decodes one member of a JSON object.
func member(t *testing.T, raw json.RawMessage, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return m[name]
}

// logSink is a slog.Handler that hands every record's message and attributes
// to a channel, so tests can await what the server reports.
type logSink struct {
	ch chan string
}

func newLogSink() (*slog.Logger, <-chan string) {
	ch := make(chan string, 1024)
	return slog.New(&logSink{ch: ch}), ch
}

func (h *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSink) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logSink) WithGroup(string) slog.Handler            { return h }
func (h *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	select {
	case h.ch <- b.String():
	default:
	}
	return nil
}

// awaitLog waits for a log line containing every one of parts.
func awaitLog(t *testing.T, logs <-chan string, parts ...string) string {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case line := <-logs:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		case <-deadline:
			t.Fatalf("no log line with %q within %v", parts, waitLimit)
		}
	}
}

// errorIs fails unless errors.Is(err, target).
func errorIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want one matching %v", err, target)
	}
}
