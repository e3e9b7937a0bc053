package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/google/go-cmp/cmp"
)

// wait bounds every wait for output; it only turns a hang into a failure.
const wait = 10 * time.Second

// quickstart serves testdata/quickstart.json, as `flags serve` would, on
// 127.0.0.1. Requests wait until open is called.
func quickstart(t *testing.T, opts server.Options) (srv *server.Server, url string, doc *rules.Document, open func()) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "quickstart.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err = rules.ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	srv, err = server.New(server.NewMemoryStore(doc), opts)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var once sync.Once
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
			srv.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	open = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() {
		open()
		srv.Close()
		ts.Close()
	})
	return srv, ts.URL, doc, open
}

// start runs the program's logic in the background.
func start(t *testing.T, args ...string) *testkit.Program[error] {
	return testkit.StartProgram(t, wait, func(ctx context.Context, stdout, stderr io.Writer) error {
		return run(ctx, args, stdout, stderr)
	})
}

func TestStreamingFollowsChanges(t *testing.T) {
	srv, url, doc, open := quickstart(t, server.Options{})
	p := start(t, "-url", url, "-context", `{"key":"ann","email":"ann@corp.com"}`, "new-checkout", "kill-switch-payments")
	p.WaitLines(t, 2, "the first status")
	open()
	lines := p.WaitLines(t, 5, "the first evaluations")
	want := []string{
		`following ` + url + ` as {"key":"ann","email":"ann@corp.com"} (Ctrl-C to stop)`,
		`status: INITIALIZING (stream)`,
		`status: READY (stream), flags version 1`,
		`new-checkout = true (RULE_MATCH staff)`,
		`kill-switch-payments = false (OFF)`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("first lines (-want +got):\n%s", diff)
	}

	// Turn the kill switch on; change a flag the program does not follow.
	next := &rules.Document{Flags: map[string]json.RawMessage{}, Segments: doc.Segments}
	for k, v := range doc.Flags {
		next.Flags[k] = v
	}
	next.Flags["kill-switch-payments"] = json.RawMessage(`{"on":true,"variations":[false,true],"offVariation":0,"fallthrough":{"variation":1}}`)
	next.Flags["banner-text"] = json.RawMessage(`{"on":false,"variations":["Hi"],"fallthrough":{"variation":0}}`)
	if err := srv.Publish(next); err != nil {
		t.Fatal(err)
	}
	lines = p.WaitLines(t, 6, "the kill switch")
	if got, want := lines[5], `kill-switch-payments = true (FALLTHROUGH)`; got != want {
		t.Errorf("line after the change = %q, want %q", got, want)
	}

	if err := p.Stop(t); err != nil {
		t.Errorf("run after an interrupt = %v, want nil", err)
	}
	lines = p.Stdout.Lines()
	if diff := cmp.Diff([]string{`kill-switch-payments = true (FALLTHROUGH)`, `status: CLOSED (stream), flags version 2`}, lines[5:]); diff != "" {
		t.Errorf("last lines (-want +got):\n%s", diff)
	}
}

func TestStreamingAllFlags(t *testing.T) {
	_, url, _, open := quickstart(t, server.Options{Token: "sdk"})
	open()
	p := start(t, "-url", url, "-token", "sdk", "-context", `{"key":"user-7","country":"fr","org":{"id":"uni-7","plan":"enterprise"}}`)
	// "status: INITIALIZING" may or may not come first (the snapshot can
	// beat the first status line): wait for the last flag instead of a count.
	var lines []string
	for n := 7; ; n++ {
		lines = p.WaitLines(t, n, "every flag")
		if strings.HasPrefix(lines[len(lines)-1], "search-v2 = ") {
			break
		}
	}
	i := 1 // after "following ..."
	for i < len(lines) && strings.HasPrefix(lines[i], "status: ") {
		i++
	}
	if lines[i-1] != "status: READY (stream), flags version 1" || len(lines) < i+5 {
		t.Fatalf("output:\n%s\nwant READY then 5 evaluations", strings.Join(lines, "\n"))
	}
	want := []string{
		`banner-text = "Bienvenue !" (RULE_MATCH french)`,
		`kill-switch-payments = false (OFF)`,
		`max-cart-items = 200 (RULE_MATCH enterprise)`,
		`new-checkout = true (RULE_MATCH beta)`,
	}
	if diff := cmp.Diff(want, lines[i:i+4]); diff != "" {
		t.Errorf("evaluations (-want +got):\n%s", diff)
	}
	// search-v2's share depends on today's date: only its shape is fixed.
	if s := lines[i+4]; !strings.HasPrefix(s, "search-v2 = ") || !strings.HasSuffix(s, "(FALLTHROUGH, rollout)") {
		t.Errorf("search-v2 line = %q, want a rollout", s)
	}
	if err := p.Stop(t); err != nil {
		t.Errorf("run = %v, want nil", err)
	}
}

func TestStreamingRefusedToken(t *testing.T) {
	_, url, _, open := quickstart(t, server.Options{Token: "sdk"})
	open()
	p := start(t, "-url", url, "-token", "wrong")
	if err := p.Wait(t); err == nil || !strings.Contains(err.Error(), "401") { // the program stops on its own
		t.Errorf("run = %v, want an error naming the 401 (an unknown token, SPEC §10)", err)
	}
	lines := p.Stdout.Lines()
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "status: FATAL (stream)") {
		t.Errorf("last line = %q, want the FATAL status", last)
	}
}

func TestStreamingBadContext(t *testing.T) {
	for _, ctxArg := range []string{`[1]`, `{"email":"a@b.c"}`} {
		var out, errOut testkit.SyncBuffer
		if err := run(context.Background(), []string{"-context", ctxArg}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "-context") {
			t.Errorf("run -context %s = %v, want a -context error", ctxArg, err)
		}
	}
}
