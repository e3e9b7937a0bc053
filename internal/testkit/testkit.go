// Package testkit holds what the module's tests in several packages share:
// a concurrency-safe output buffer, a command run in the background, one
// HTTP request with a bearer token, a test server on an address of the
// test's choice, a reader of server-sent events, files written and
// checked on disk (files.go), a document as JSON to compare, a wait for a
// condition, and the generation document the listener tests of flags and
// stream both publish. Only tests import it.
package testkit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags/rules"
)

// SyncBuffer is an io.Writer that a program's goroutines and the test
// read and write at the same time (a logger's output, a command's stdout).
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns the complete lines written so far (a line still being
// written is left out).
func (s *SyncBuffer) Lines() []string {
	out := s.String()
	i := strings.LastIndexByte(out, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(out[:i], "\n")
}

// Do sends one HTTP request, with token as a bearer token when not empty
// and header as name, value pairs, and returns the response (its body
// read and closed) and the body.
func Do(t testing.TB, method, url, token, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, string(b)
}

// LiveServer is a test server on an address a test chose: a test that
// stops it and starts another on its Addr sees a client reconnect to the
// same URL, which httptest.NewServer, always on a new port, cannot show.
type LiveServer struct {
	*httptest.Server
	onStop func()
	once   sync.Once
}

// StartAt starts a test server for h on addr, or on a free port of
// 127.0.0.1 when addr is "", and stops it at the end of the test. onStop,
// when not nil, runs first when it stops (or when it cannot start): a
// server that holds streams open must end them there, since
// httptest.Server.Close waits for every request to end.
func StartAt(t testing.TB, addr string, h http.Handler, onStop func()) *LiveServer {
	t.Helper()
	l := &LiveServer{onStop: onStop}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		l.Stop()
		t.Fatalf("listen %s: %v", addr, err)
	}
	l.Server = httptest.NewUnstartedServer(h)
	l.Listener.Close()
	l.Listener = ln
	l.Start()
	t.Cleanup(l.Stop)
	return l
}

// Addr is the address the server listens on, host:port.
func (l *LiveServer) Addr() string { return l.Listener.Addr().String() }

// Stop runs onStop, then closes the listener and every connection: the
// address refuses connections afterwards. Calls after the first do nothing.
func (l *LiveServer) Stop() {
	l.once.Do(func() {
		if l.onStop != nil {
			l.onStop()
		}
		if l.Server != nil {
			l.CloseClientConnections()
			l.Close()
		}
	})
}

// SSEEvent is one server-sent event, or one comment line (a keep-alive),
// which has Comment set and nothing else.
type SSEEvent struct {
	ID, Name, Data, Comment string
}

// ReadSSE reads the server-sent events of r, in the lines the reference
// server writes ("id: ", "event: ", "data: ", ": comment"), and hands each
// event and comment to emit as it ends. It returns the error that ended r:
// io.EOF when the stream ended cleanly.
func ReadSSE(r io.Reader, emit func(SSEEvent)) error {
	br := bufio.NewReader(r)
	var ev SSEEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev != (SSEEvent{}) {
				emit(ev)
			}
			ev = SSEEvent{}
		case strings.HasPrefix(line, ":"):
			emit(SSEEvent{Comment: strings.TrimSpace(line[1:])})
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.Name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.Data += line[6:]
		}
	}
}

// DocJSON is d as JSON, the form in which two documents compare whole.
func DocJSON(t testing.TB, d *rules.Document) string {
	t.Helper()
	b, err := d.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Await calls cond every interval until it holds, and reports whether it
// did before limit passed. The caller fails the test with what it waited
// for: the limit only turns a hang into a failure, so it is generous.
func Await(limit, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}

// GenDoc is the document of generation gen: "gen" serves gen, "label"
// serves "g<gen>" (so a snapshot read whole must agree with "gen"),
// "stable" never changes, and "beta" serves true to the members of segment
// "testers", which holds the given keys.
func GenDoc(t testing.TB, version int64, gen int, testers ...string) *rules.Document {
	t.Helper()
	if testers == nil {
		testers = []string{}
	}
	ts, err := json.Marshal(testers)
	if err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf(`{"version":%d,"flags":{
		"gen":{"on":true,"variations":[%d],"fallthrough":{"variation":0}},
		"label":{"on":true,"variations":["g%d"],"fallthrough":{"variation":0}},
		"stable":{"on":true,"variations":["same"],"fallthrough":{"variation":0}},
		"beta":{"on":true,"variations":[false,true],
			"rules":[{"id":"t","clauses":[{"op":"inSegment","values":["testers"]}],"serve":{"variation":1}}],
			"fallthrough":{"variation":0}}},
		"segments":{"testers":{"included":%s}}}`, version, gen, gen, ts)
	doc, err := rules.ParseDocument([]byte(data))
	if err != nil {
		t.Fatalf("GenDoc: %v", err)
	}
	return doc
}
