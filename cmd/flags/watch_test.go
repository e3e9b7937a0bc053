package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
	"github.com/google/go-cmp/cmp"
)

// watchWait bounds every wait for output: a CLI test on a loaded machine,
// with the client's real backoff (up to 2 s before the second retry).
const watchWait = 10 * time.Second

// watchDoc has three flags; each argument is the variation "fallthrough"
// serves for a, b and c.
func watchDoc(t *testing.T, version int64, a, b, c int) *rules.Document {
	t.Helper()
	data := fmt.Sprintf(`{"version":%d,"flags":{
		"a":{"version":1,"on":true,"variations":[false,true],"fallthrough":{"variation":%d}},
		"b":{"version":1,"on":true,"variations":["x","y"],
			"rules":[{"id":"fr","clauses":[{"attribute":"country","op":"in","values":["fr"]}],"serve":{"variation":1}}],
			"fallthrough":{"variation":%d}},
		"c":{"version":1,"on":true,"variations":[1,2],"fallthrough":{"variation":%d}}}}`, version, a, b, c)
	doc, err := rules.ParseDocument([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// watchServer is the reference server on 127.0.0.1.
type watchServer struct {
	srv *server.Server
	*testkit.LiveServer
}

// startWatchServer serves doc on addr ("" for a free port), until Stop or
// the end of the test.
func startWatchServer(t *testing.T, addr string, doc *rules.Document, opts server.Options) *watchServer {
	t.Helper()
	srv, err := server.New(server.NewMemoryStore(doc), opts)
	if err != nil {
		t.Fatal(err)
	}
	return &watchServer{srv: srv, LiveServer: testkit.StartAt(t, addr, srv, func() { srv.Close() })}
}

func (ws *watchServer) publish(t *testing.T, doc *rules.Document) {
	t.Helper()
	if err := ws.srv.Publish(doc); err != nil {
		t.Fatal(err)
	}
}

// watchRun is one `flags watch` running in the background.
type watchRun struct{ *testkit.Program[int] }

func startWatch(t *testing.T, args ...string) watchRun {
	t.Helper()
	return watchRun{testkit.StartProgram(t, watchWait, func(ctx context.Context, stdout, stderr io.Writer) int {
		return runWatch(ctx, args, stdout, stderr)
	})}
}

// waitLine waits for a line, after the first `from`, for which match holds,
// and returns its index.
func (w watchRun) waitLine(t *testing.T, from int, what string, match func(string) bool) int {
	t.Helper()
	found := -1
	seen := func() bool {
		lines := w.Stdout.Lines()
		for i := from; i < len(lines); i++ {
			if match(lines[i]) {
				found = i
				return true
			}
		}
		return false
	}
	if !testkit.Await(watchWait, 5*time.Millisecond, seen) {
		t.Fatalf("waited %v for %s; stdout:\n%s\nstderr:\n%s", watchWait, what, w.Stdout, w.Stderr)
	}
	return found
}

// status is a parsed status line.
type status struct {
	State   string `json:"state"`
	Source  string `json:"source"`
	Version int64  `json:"version"`
	Error   string `json:"error"`
}

// parseStatus returns the status of a status line; ok false for another line.
func parseStatus(t *testing.T, line string) (status, bool) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &top); err != nil {
		t.Fatalf("line %q is not a JSON object: %v", line, err)
	}
	raw, ok := top["status"]
	if !ok {
		return status{}, false
	}
	if len(top) != 1 {
		t.Errorf("status line %q has other members", line)
	}
	var s status
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("status line %q: %v", line, err)
	}
	return s, true
}

func isStatus(state, source string) func(string) bool {
	return func(line string) bool {
		var v struct{ Status *status }
		return json.Unmarshal([]byte(line), &v) == nil && v.Status != nil &&
			v.Status.State == state && (source == "" || v.Status.Source == source)
	}
}

func isEval(flag string) func(string) bool {
	return func(line string) bool { return strings.HasPrefix(line, `{"flag":"`+flag+`",`) }
}

// checkStart checks the first lines: status lines ending with READY from
// source at version, then exactly evals, in order.
func checkStart(t *testing.T, w watchRun, source string, version int64, evals []string) []string {
	t.Helper()
	ready := w.waitLine(t, 0, "READY/"+source, isStatus("READY", source))
	lines := w.Stdout.Lines()
	for _, line := range lines[:ready] {
		s, ok := parseStatus(t, line)
		if !ok {
			// The first pass of runWatch can print evaluations while the
			// client's Status still says INITIALIZING: the snapshot is
			// stored before the status is updated.
			t.Fatalf("line %s before the READY status line; stdout:\n%s", line, w.Stdout)
		}
		if s.State != "INITIALIZING" || s.Source != source || s.Version != 0 || s.Error != "" {
			t.Errorf("line before READY: %s, want only INITIALIZING/%s at version 0", line, source)
		}
	}
	lines = w.WaitLines(t, ready+1+len(evals), "the first evaluations")
	want := fmt.Sprintf(`{"status":{"state":"READY","source":%q,"version":%d}}`, source, version)
	if lines[ready] != want {
		t.Errorf("status line = %s, want %s", lines[ready], want)
	}
	if diff := cmp.Diff(evals, lines[ready+1:ready+1+len(evals)]); diff != "" {
		t.Errorf("first evaluation lines (-want +got):\n%s", diff)
	}
	return lines
}

const (
	evalA0 = `{"flag":"a","value":false,"variation":0,"version":1,"reason":{"kind":"FALLTHROUGH"}}`
	evalB0 = `{"flag":"b","value":"x","variation":0,"version":1,"reason":{"kind":"FALLTHROUGH"}}`
	evalC0 = `{"flag":"c","value":1,"variation":0,"version":1,"reason":{"kind":"FALLTHROUGH"}}`
)

func TestWatchStream(t *testing.T) {
	ws := startWatchServer(t, "", watchDoc(t, 7, 0, 0, 0), server.Options{})
	w := startWatch(t, "--url", ws.URL, "--context", `{"key":"u1","country":"de"}`, "b", "a")
	lines := checkStart(t, w, "stream", 7, []string{evalB0, evalA0})
	n := len(lines)

	// a changes: exactly one line, for a.
	ws.publish(t, watchDoc(t, 0, 1, 0, 0))
	lines = w.WaitLines(t, n+1, "the evaluation of a after its change")
	want := `{"flag":"a","value":true,"variation":1,"version":2,"reason":{"kind":"FALLTHROUGH"}}`
	if lines[n] != want {
		t.Errorf("line after a changed = %s, want %s", lines[n], want)
	}
	n++
	// c (not asked for) changes, then a's description only, then b: the
	// only new line is b's, so the first two (applied before b's, in order)
	// printed nothing.
	ws.publish(t, watchDoc(t, 0, 1, 0, 1))
	doc := watchDoc(t, 0, 1, 0, 1)
	doc.Flags["a"] = json.RawMessage(`{"description":"now documented","on":true,"variations":[false,true],"fallthrough":{"variation":1}}`)
	ws.publish(t, doc)
	doc = watchDoc(t, 0, 1, 1, 1)
	doc.Flags["a"] = json.RawMessage(`{"description":"now documented","on":true,"variations":[false,true],"fallthrough":{"variation":1}}`)
	ws.publish(t, doc)
	lines = w.WaitLines(t, n+1, "the evaluation of b after its change")
	want = `{"flag":"b","value":"y","variation":1,"version":2,"reason":{"kind":"FALLTHROUGH"}}`
	if diff := cmp.Diff([]string{want}, lines[n:]); diff != "" {
		t.Errorf("lines after c then b changed (-want +got):\n%s", diff)
	}
	n = len(lines)

	// Server stopped: a STALE status line; back on the same address (a new
	// epoch): READY again, and the new values.
	ws.Stop()
	i := w.waitLine(t, n, "STALE/stream", isStatus("STALE", "stream"))
	s, _ := parseStatus(t, w.Stdout.Lines()[i])
	if s.Version != 11 || s.Error == "" {
		t.Errorf("STALE line %+v, want version 11 and an error", s)
	}
	startWatchServer(t, ws.Addr(), watchDoc(t, 2, 0, 1, 1), server.Options{})
	i = w.waitLine(t, i+1, "READY/stream from the new server", isStatus("READY", "stream"))
	// The line is printed when the connection is accepted, which may be
	// before the new snapshot is in (then it shows the old version, 11: a
	// change of version alone prints no status line).
	if got := w.Stdout.Lines()[i]; got != `{"status":{"state":"READY","source":"stream","version":2}}` &&
		got != `{"status":{"state":"READY","source":"stream","version":11}}` {
		t.Errorf("status line after the restart = %s, want READY/stream at version 2 (or 11)", got)
	}
	i = w.waitLine(t, i+1, "a back to false", isEval("a"))
	if got := w.Stdout.Lines()[i]; got != evalA0 {
		t.Errorf("a from the new server = %s, want %s", got, evalA0)
	}

	if code := w.Stop(t); code != 0 {
		t.Errorf("exit status after cancel = %d, want 0; stderr:\n%s", code, w.Stderr)
	}
	lines = w.Stdout.Lines()
	if last := lines[len(lines)-1]; last != `{"status":{"state":"CLOSED","source":"stream","version":2}}` {
		t.Errorf("last line = %s, want a CLOSED status line", last)
	}
	for _, line := range lines {
		if isStatus("CLOSED", "")(line) && line != lines[len(lines)-1] {
			t.Errorf("CLOSED line %s before the end", line)
		}
	}
}

func TestWatchAllFlags(t *testing.T) {
	ws := startWatchServer(t, "", watchDoc(t, 3, 0, 0, 0), server.Options{})
	w := startWatch(t, "--context", `{"key":"u1","country":"fr"}`, "--url", ws.URL)
	evalBfr := `{"flag":"b","value":"y","variation":1,"version":1,"reason":{"kind":"RULE_MATCH","ruleIndex":0,"ruleId":"fr"}}`
	lines := checkStart(t, w, "stream", 3, []string{evalA0, evalBfr, evalC0})
	n := len(lines)

	// A flag deleted prints its new state once; a flag added prints.
	doc := watchDoc(t, 0, 0, 0, 0)
	delete(doc.Flags, "a")
	doc.Flags["d"] = json.RawMessage(`{"on":false,"variations":["z"],"offVariation":0,"fallthrough":{"variation":0}}`)
	ws.publish(t, doc)
	lines = w.WaitLines(t, n+2, "a deleted and d added")
	want := []string{
		`{"flag":"d","value":"z","variation":0,"version":1,"reason":{"kind":"OFF"}}`,
		`{"flag":"a","value":null,"reason":{"kind":"ERROR","errorKind":"FLAG_NOT_FOUND"}}`,
	}
	if diff := cmp.Diff(want, lines[n:]); diff != "" {
		t.Errorf("lines after a deleted and d added (-want +got):\n%s", diff)
	}
	if code := w.Stop(t); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
}

func TestWatchPoll(t *testing.T) {
	ws := startWatchServer(t, "", watchDoc(t, 5, 0, 0, 0), server.Options{})
	w := startWatch(t, "--url", ws.URL, "--poll", "--poll-interval", "20ms", "--context", `{"key":"u1"}`, "a")
	lines := checkStart(t, w, "poll", 5, []string{evalA0})
	n := len(lines)
	ws.publish(t, watchDoc(t, 0, 0, 0, 1)) // c: nothing to print
	ws.publish(t, watchDoc(t, 0, 1, 0, 1))
	lines = w.WaitLines(t, n+1, "a after its change")
	want := `{"flag":"a","value":true,"variation":1,"version":2,"reason":{"kind":"FALLTHROUGH"}}`
	if diff := cmp.Diff([]string{want}, lines[n:]); diff != "" {
		t.Errorf("lines after the change (-want +got):\n%s", diff)
	}
	if code := w.Stop(t); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
	lines = w.Stdout.Lines()
	if last := lines[len(lines)-1]; last != `{"status":{"state":"CLOSED","source":"poll","version":7}}` {
		t.Errorf("last line = %s, want CLOSED/poll at version 7", last)
	}
}

func TestWatchCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "flags.cache")
	ws := startWatchServer(t, "", watchDoc(t, 5, 0, 0, 0), server.Options{})
	url := ws.URL

	// First run: writes the cache.
	w := startWatch(t, "--url", url, "--cache", cache, "--context", `{"key":"u1"}`, "a")
	checkStart(t, w, "stream", 5, []string{evalA0})
	ws.publish(t, watchDoc(t, 0, 1, 0, 0))
	w.waitLine(t, 0, "a after its change", isEval("a"))
	evalA1 := `{"flag":"a","value":true,"variation":1,"version":2,"reason":{"kind":"FALLTHROUGH"}}`
	w.waitLine(t, 0, "a true", func(l string) bool { return l == evalA1 })
	if code := w.Stop(t); code != 0 {
		t.Fatalf("first run: exit %d", code)
	}
	ws.Stop()

	// Second run, server down: the cached flags, STALE/cache.
	w = startWatch(t, "--url", url, "--cache", cache, "--context", `{"key":"u1"}`, "a")
	lines := w.WaitLines(t, 2, "the cached state")
	// The first connection may have failed already: then the line has its
	// error too.
	if s, ok := parseStatus(t, lines[0]); !ok || s.State != "STALE" || s.Source != "cache" || s.Version != 6 {
		t.Errorf("first line = %s, want STALE/cache at version 6", lines[0])
	}
	if lines[1] != evalA1 {
		t.Errorf("second line = %s, want the cached evaluation %s", lines[1], evalA1)
	}
	// The server comes back: READY/stream, and a's new value.
	startWatchServer(t, ws.Addr(), watchDoc(t, 1, 0, 0, 0), server.Options{})
	i := w.waitLine(t, 2, "READY/stream", isStatus("READY", "stream"))
	lines = w.WaitLines(t, i+2, "a from the server")
	if got := lines[i]; got != `{"status":{"state":"READY","source":"stream","version":1}}` {
		t.Errorf("status line = %s", got)
	}
	if lines[i+1] != evalA0 {
		t.Errorf("a from the server = %s, want %s", lines[i+1], evalA0)
	}
	for _, line := range lines[2:i] {
		if s, ok := parseStatus(t, line); !ok || s.State != "STALE" {
			t.Errorf("line %s while the server was down, want only STALE status lines", line)
		}
	}
	if code := w.Stop(t); code != 0 {
		t.Errorf("second run: exit %d", code)
	}
}

func TestWatchUnauthorized(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(fmt.Sprintf("poll=%v", poll), func(t *testing.T) {
			ws := startWatchServer(t, "", watchDoc(t, 1, 0, 0, 0), server.Options{Token: "secret"})
			args := []string{"--url", ws.URL, "--context", `{"key":"u1"}`}
			source := "stream"
			if poll {
				args, source = append(args, "--poll"), "poll"
			}
			w := startWatch(t, args...)
			// A hang here was once seen when the FATAL status came before
			// runWatch registered its OnStatus listener (fixed: the first
			// pass now closes w.fatal too).
			if code := w.Wait(t); code != 1 {
				t.Errorf("exit status = %d, want 1", code)
			}
			i := w.waitLine(t, 0, "FATAL", isStatus("FATAL", source))
			s, _ := parseStatus(t, w.Stdout.Lines()[i])
			if !strings.Contains(s.Error, "401") || s.Version != 0 {
				t.Errorf("FATAL line %+v, want an error naming the 401", s)
			}
			lines := w.Stdout.Lines()
			for _, line := range lines {
				if !isStatus("INITIALIZING", source)(line) && !isStatus("FATAL", source)(line) {
					t.Errorf("unexpected line %s", line)
				}
			}
			if last := lines[len(lines)-1]; !isStatus("FATAL", source)(last) {
				t.Errorf("last line %s, want the FATAL status line", last)
			}
		})
	}
}

func TestWatchBadArguments(t *testing.T) {
	checkRefusals(t, runWatch, nil, []refusal{
		{"no url", []string{"--context", `{"key":"u"}`}, "--url and --context are required"},
		{"no context", []string{"--url", "http://127.0.0.1:1"}, "--url and --context are required"},
		{"context not an object", []string{"--url", "http://127.0.0.1:1", "--context", `[1]`}, "--context must be a JSON object"},
		{"bad url", []string{"--url", "ftp://127.0.0.1:1", "--context", `{"key":"u"}`}, "scheme"},
	})
}

func TestWatchCorruptCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "flags.cache")
	if err := os.WriteFile(cache, []byte(`{"format":"flagstream-cache/1","baseURL":`), 0o644); err != nil {
		t.Fatal(err)
	}
	ws := startWatchServer(t, "", watchDoc(t, 4, 0, 0, 0), server.Options{})
	w := startWatch(t, "--url", ws.URL, "--cache", cache, "--context", `{"key":"u1"}`, "a")
	checkStart(t, w, "stream", 4, []string{evalA0})
	if !strings.Contains(w.Stderr.String(), "ignoring the last-known-good cache") {
		t.Errorf("stderr %q, want a warning about the cache", w.Stderr)
	}
	if code := w.Stop(t); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
	data, err := os.ReadFile(cache)
	if err != nil || !strings.Contains(string(data), `"version":4`) {
		t.Errorf("cache after the run: %q, %v; want the server's document", data, err)
	}
}

// TestWatchStatusErrors: a status line is printed when the state or source
// changes, and when an error of another kind appears with neither changing
// (SPEC §10: a certificate error is seen in the status); never for a retry
// that fails the same way, whose message may differ (another URL, the
// time in an expired certificate's error, another local port), nor for an
// error that only clears.
func TestWatchStatusErrors(t *testing.T) {
	get := func(path string, err error) error {
		return &url.Error{Op: "Get", URL: "https://127.0.0.1:8443" + path, Err: err}
	}
	// As package stream reports them (its certificateErr and classifyEnd).
	certificate := func(path string, cause error) error {
		return fmt.Errorf("flags: GET https://127.0.0.1:8443%s: %w: %w", path, stream.ErrCertificate,
			get(path, &tls.CertificateVerificationError{Err: cause}))
	}
	expired := func(now string) error {
		return x509.CertificateInvalidError{Reason: x509.Expired, Detail: "current time " + now + " is after 2026-01-01T00:00:00Z"}
	}
	network := func(path string, err error) error {
		return fmt.Errorf("flags: GET https://127.0.0.1:8443%s: %w", path, get(path, err))
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	reset := func(port int) error {
		return &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
			Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}, Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	}
	unavailable := func(retry time.Duration) error {
		return &stream.StatusError{Code: 503, URL: "https://127.0.0.1:8443/v1/stream", RetryAfter: retry}
	}
	st := func(state flags.State, version int64, err error) flags.Status {
		return flags.Status{State: state, Source: "stream", Version: version, Err: err}
	}
	steps := []struct {
		status flags.Status
		print  bool
	}{
		{st(flags.StateInitializing, 0, nil), true},
		{st(flags.StateInitializing, 0, certificate("/v1/stream", expired("2026-12-04T10:00:00Z"))), true},
		// The fallback poll; then a connection accepted, and failing again
		// the same way.
		{st(flags.StateInitializing, 0, certificate("/v1/flags", expired("2026-12-04T10:00:01Z"))), false},
		{st(flags.StateInitializing, 0, nil), false},
		{st(flags.StateInitializing, 0, certificate("/v1/stream", expired("2026-12-04T10:00:03Z"))), false},
		{st(flags.StateInitializing, 0, certificate("/v1/stream", x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"example.com"}}, Host: "127.0.0.1"})), true},
		{st(flags.StateReady, 4, nil), true},
		{st(flags.StateReady, 5, nil), false},
		{st(flags.StateStale, 5, network("/v1/stream", stream.ErrStreamEnded)), true},
		{st(flags.StateStale, 5, network("/v1/stream", refused)), true},
		{st(flags.StateStale, 5, network("/v1/flags", refused)), false},
		{st(flags.StateStale, 5, unavailable(time.Second)), true},
		{st(flags.StateStale, 5, unavailable(2*time.Second)), false},
		{st(flags.StateStale, 5, certificate("/v1/stream", x509.UnknownAuthorityError{})), true},
		{st(flags.StateStale, 5, network("/v1/stream", reset(40001))), true},
		{st(flags.StateStale, 5, network("/v1/stream", reset(40002))), false},
		{st(flags.StateClosed, 5, nil), true},
	}
	var buf bytes.Buffer
	w := &watcher{out: bufio.NewWriter(&buf)}
	var want []string
	for _, step := range steps {
		w.printStatusLocked(step.status)
		if !step.print {
			continue
		}
		s := step.status
		line := fmt.Sprintf(`{"status":{"state":%q,"source":%q,"version":%d`, s.State, s.Source, s.Version)
		if s.Err != nil {
			msg, _ := json.Marshal(s.Err.Error())
			line += `,"error":` + string(msg)
		}
		want = append(want, line+"}}")
	}
	w.out.Flush()
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")); diff != "" {
		t.Errorf("status lines (-want +got):\n%s", diff)
	}
}
