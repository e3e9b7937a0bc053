package server

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
)

// TestHealthAndReadiness: /healthz answers 200 while the process runs;
// /readyz 200 only while the store can be reached and the server is not
// shutting down. Neither needs a token.
func TestHealthAndReadiness(t *testing.T) {
	path := docFile(t, baseDoc)
	_, srv := openFileServer(t, path, FileStoreOptions{PollInterval: testPoll}, Options{Token: "sdk", AdminToken: adminToken})
	ts := serve(t, srv)
	check := func(path string, want int, inBody string) {
		t.Helper()
		resp, body := do(t, "GET", ts.URL+path, "", "")
		if resp.StatusCode != want || !strings.Contains(body, inBody) {
			t.Errorf("GET %s = %d %q, want %d with %q", path, resp.StatusCode, body, want, inBody)
		}
	}
	check("/healthz", 200, "ok")
	check("/readyz", 200, "version 17")
	moved := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	check("/readyz", 503, "store is unavailable")
	check("/healthz", 200, "ok")
	if err := os.Rename(moved, path); err != nil {
		t.Fatal(err)
	}
	check("/readyz", 200, "ready")
	_ = srv.Close()
	check("/readyz", 503, "shutting down")
	check("/healthz", 200, "ok")
}

// TestCloseFinishesInFlightWrites: Close lets an admin write already under
// way finish and publish, writes its patch to every stream (a final
// flush), then ends the streams cleanly; admin writes and streams that
// arrive meanwhile are answered 503.
func TestCloseFinishesInFlightWrites(t *testing.T) {
	path := docFile(t, baseDoc)
	_, srv := openFileServer(t, path, FileStoreOptions{PollInterval: testPoll}, Options{Epoch: "e1", AdminToken: adminToken})
	admitted := make(chan struct{}, 1)
	srv.onAdmit = func() { admitted <- struct{}{} }
	ts := serve(t, srv)
	c := openStream(t, ts.URL, "", "")
	c.next(t) // snapshot

	body := `{"variations": [true], "fallthrough": {"variation": 0}}`
	late := startSlowPut(t, ts.URL+"/v1/admin/flags/late", body)
	awaitClosed(t, admitted, "the PUT was not admitted")

	closed := make(chan struct{})
	go func() {
		_ = srv.Close()
		close(closed)
	}()
	shuttingDown := func() bool {
		resp, _ := do(t, "GET", ts.URL+"/readyz", "", "")
		return resp.StatusCode == http.StatusServiceUnavailable
	}
	if !testkit.Await(waitLimit, time.Millisecond, shuttingDown) {
		t.Fatal("/readyz never said the server is shutting down")
	}
	checkRefusedDuringShutdown(t, ts.URL, body)
	select {
	case <-closed:
		t.Fatal("Close returned while an admitted write was under way")
	default:
	}

	if put := late.finish(t); put.StatusCode != http.StatusOK {
		t.Errorf("the PUT under way = %d, want 200", put.StatusCode)
	}
	if ev, p := c.nextPatch(t); p.Version != 18 || p.Flags["late"] == nil {
		t.Errorf("the stream got %s, want the late PUT's patch before its end", ev.Data)
	}
	awaitClosed(t, closed, "Close did not return")
	checkStreamEnded(t, c)
	doc, _ := readDoc(t, path)
	if doc.Flags["late"] == nil {
		t.Error("the late PUT is not in the file")
	}
}

// slowPut is an admin PUT whose body is still arriving: the server has
// admitted it but cannot finish it until finish sends the rest.
type slowPut struct {
	body     string
	pw       *io.PipeWriter
	answered chan *http.Response // closed without a value when the PUT failed
}

// startSlowPut sends the headers and the first 10 bytes of body.
func startSlowPut(t *testing.T, url, body string) *slowPut {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PUT", url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.ContentLength = int64(len(body))
	p := &slowPut{body: body, pw: pw, answered: make(chan *http.Response, 1)}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("PUT: %v", err)
			close(p.answered)
			return
		}
		p.answered <- resp
	}()
	if _, err := pw.Write([]byte(body[:10])); err != nil {
		t.Fatal(err)
	}
	return p
}

// finish sends the rest of the body and returns the answer.
func (p *slowPut) finish(t *testing.T) *http.Response {
	t.Helper()
	if _, err := p.pw.Write([]byte(p.body[10:])); err != nil {
		t.Fatal(err)
	}
	_ = p.pw.Close()
	resp, ok := <-p.answered
	if !ok {
		t.FailNow() // the goroutine reported why
	}
	resp.Body.Close()
	return resp
}

// awaitClosed waits for a value on ch, or its close, failing with msg after
// waitLimit.
func awaitClosed(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatal(msg)
	}
}

// checkRefusedDuringShutdown checks that a new admin write and a new stream
// are answered 503 while the server shuts down.
func checkRefusedDuringShutdown(t *testing.T, url, body string) {
	t.Helper()
	resp, answer := do(t, "PUT", url+"/v1/admin/flags/other", adminToken, body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a PUT during the shutdown = %d %s, want 503 with Retry-After", resp.StatusCode, answer)
	}
	if resp, _ := do(t, "HEAD", url+"/v1/stream", "", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a new stream during the shutdown = %d, want 503", resp.StatusCode)
	}
}

// checkStreamEnded checks that the stream sends nothing but comments before
// ending cleanly.
func checkStreamEnded(t *testing.T, c *sseClient) {
	t.Helper()
	for ev := range c.events {
		if ev.Comment == "" {
			t.Errorf("after the patch the stream sent %+v, want its end", ev)
		}
	}
	if err := <-c.done; err != io.EOF {
		t.Errorf("the stream ended with %v, want a clean end (EOF)", err)
	}
}
