package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// recordSink is a slog.Handler that hands every record's attributes over,
// as strings.
type recordSink struct{ ch chan map[string]string }

func (h recordSink) Enabled(context.Context, slog.Level) bool { return true }
func (h recordSink) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordSink) WithGroup(string) slog.Handler            { return h }
func (h recordSink) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	h.ch <- m
	return nil
}

// nextAccess returns the next access log record.
func nextAccess(t *testing.T, ch <-chan map[string]string) map[string]string {
	t.Helper()
	for {
		select {
		case m := <-ch:
			if m["msg"] == "flags: request" {
				return m
			}
		case <-time.After(waitLimit):
			t.Fatalf("no access log record within %v", waitLimit)
		}
	}
}

// TestAccessLog ("flags serve writes no access log"): one Info record per
// request through Options.Logger, with method, path, status, bytes,
// duration and the token's name (never the token); a stream's record is
// written when it ends.
func TestAccessLog(t *testing.T) {
	const sdk, old, adm = "s3cret-sdk", "s3cret-old", "s3cret-adm"
	ch := make(chan map[string]string, 64)
	srv, ts := newTestServer(t, baseDoc, Options{Token: sdk, PreviousTokens: []string{old}, AdminToken: adm,
		Logger: slog.New(recordSink{ch})})
	flag := `{"variations": [true], "fallthrough": {"variation": 0}}`
	for _, tc := range []struct {
		method, path, token, body string
		status                    int
		name                      string
	}{
		{"GET", "/v1/flags", sdk, "", 200, TokenName},
		{"GET", "/v1/flags", old, "", 200, "previous-1"},
		{"GET", "/v1/flags", adm, "", 200, AdminTokenName},
		{"GET", "/v1/flags", "wrong", "", 401, "-"},
		{"GET", "/v1/flags", "", "", 401, "-"},
		{"PUT", "/v1/admin/flags/x", adm, flag, 200, AdminTokenName},
		{"PUT", "/v1/admin/flags/x", sdk, flag, 403, TokenName}, // known, without the role
		{"GET", "/nowhere", sdk, "", 404, "-"},
	} {
		resp, body := do(t, tc.method, ts.URL+tc.path, tc.token, tc.body)
		m := nextAccess(t, ch)
		want := map[string]string{"level": "INFO", "method": tc.method, "path": tc.path, "status": itoa(tc.status),
			"bytes": itoa(len(body)), "token": tc.name}
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s %s with %q: access log %s = %q, want %q (record %v)", tc.method, tc.path, tc.token, k, m[k], v, m)
			}
		}
		if d, err := time.ParseDuration(m["duration"]); err != nil || d < 0 {
			t.Errorf("access log duration %q", m["duration"])
		}
		for k, v := range m {
			for _, secret := range []string{sdk, old, adm} {
				if strings.Contains(v, secret) {
					t.Errorf("access log %s = %q holds a token", k, v)
				}
			}
		}
	}

	// A stream is logged when it ends, with every byte it sent.
	c := openStream(t, ts.URL, sdk, "")
	c.next(t)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	m := nextAccess(t, ch)
	if m["path"] != "/v1/stream" || m["status"] != "200" || m["token"] != TokenName || m["bytes"] == "0" {
		t.Errorf("stream access log %v, want /v1/stream 200 token with its bytes", m)
	}
}

func itoa(n int) string { return strings.TrimSpace(slog.IntValue(n).String()) }

// The access log costs an allocation or two a request (its writer, the
// record's attributes beyond five), before the handler's own work.
func TestAccessLogIsCheap(t *testing.T) {
	srv, _ := newTestServer(t, baseDoc, Options{})
	req, _ := http.NewRequest("GET", "/v1/flags", nil)
	req.Header.Set("If-None-Match", srv.cur.Load().etag)
	w := &nullWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(100, func() {
		clear(w.h)
		srv.ServeHTTP(w, req)
	})
	if w.code != http.StatusNotModified {
		t.Fatalf("status %d, want 304", w.code)
	}
	logged, _ := newTestServer(t, baseDoc, Options{Logger: slog.New(slog.DiscardHandler), AccessLogger: slog.New(countingHandler{})})
	req.Header.Set("If-None-Match", logged.cur.Load().etag)
	withLog := testing.AllocsPerRun(100, func() {
		clear(w.h)
		logged.ServeHTTP(w, req)
	})
	if w.code != http.StatusNotModified {
		t.Fatalf("status %d, want 304", w.code)
	}
	if withLog-allocs > 3 {
		t.Errorf("the access log costs %.0f allocations a request (%.0f without), want at most 3", withLog-allocs, allocs)
	}
}

type nullWriter struct {
	h    http.Header
	code int
}

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(code int)        { w.code = code }

// countingHandler is an enabled handler that does nothing.
type countingHandler struct{}

func (countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return countingHandler{} }
func (countingHandler) WithGroup(string) slog.Handler             { return countingHandler{} }
func (countingHandler) Handle(context.Context, slog.Record) error { return nil }
