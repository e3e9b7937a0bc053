package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
)

// logCapture is a slog.Handler that keeps every record as a line of text,
// attributes and groups included.
type logCapture struct {
	buf testkit.SyncBuffer
	h   slog.Handler
}

func newLogCapture() *logCapture {
	c := &logCapture{}
	c.h = slog.NewTextHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	return c
}

func (c *logCapture) logger() *slog.Logger { return slog.New(c.h) }

func (c *logCapture) String() string { return c.buf.String() }

// TestDefaultLoggerIsSlogDefault: "The default logger discards everything,
// so a misconfigured service says nothing". Without WithLogger, warnings
// and errors go to slog.Default() (the stream's too); lower levels do not.
func TestDefaultLoggerIsSlogDefault(t *testing.T) {
	capture := newLogCapture()
	prev := slog.Default()
	slog.SetDefault(capture.logger())
	t.Cleanup(func() { slog.SetDefault(prev) })

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	missing := filepath.Join(t.TempDir(), "none.cache") // logged at debug level
	c := newRemoteClient(t, pollOpt(withCache(streamConfig(t, srv.URL, nil), missing)))
	if err := c.WaitReady(context.Background()); !errors.Is(err, stream.ErrUnauthorized) {
		t.Fatalf("WaitReady = %v, want ErrUnauthorized", err)
	}
	c.Close() // the source's own error is logged before Close returns
	logged := capture.String()
	for _, want := range []string{"level=ERROR", "server refused the token", "401"} {
		if !strings.Contains(logged, want) {
			t.Errorf("slog.Default() got no %q; it got:\n%s", want, logged)
		}
	}
	if strings.Contains(logged, "level=DEBUG") || strings.Contains(logged, "level=INFO") {
		t.Errorf("slog.Default() got records below WARN:\n%s", logged)
	}
}

// TestURLCredentialsRedacted: "a URL with a password is logged
// unredacted". No log line and no status error shows the password, whatever
// fails: a status, a dial, a refused redirect, a deadline, a bad base URL;
// and the cache file does not hold it either.
func TestURLCredentialsRedacted(t *testing.T) {
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)
	closed := closedURL(t)
	for _, tc := range []struct {
		name    string
		poll    bool
		handler http.HandlerFunc // nil: use closed
		want    string           // in the status error
	}{
		{"status", false, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusInternalServerError) }, "500"},
		{"dial", true, nil, "flags: GET"},
		{"redirect", false, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
		}, stream.ErrRedirectRefused.Error()},
		{"deadline", true, endlessSpaces, stream.ErrRequestTimeout.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := closed
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				t.Cleanup(srv.Close)
				base = srv.URL
			}
			checkFailureRedacted(t, base, tc.poll, tc.want)
		})
	}
	t.Run("bad base URL", func(t *testing.T) {
		_, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: "http://ann:" + redactSecret + "@127.0.0.1:port/"})))
		if err == nil || strings.Contains(err.Error(), redactSecret) {
			t.Errorf("New with a bad base URL = %v, want an error without the password", err)
		}
	})
	t.Run("cache file", testCacheFileRedacted)
}

// redactSecret is the password TestURLCredentialsRedacted puts in URLs.
const redactSecret = "s3cret-pw"

// withCredentials adds user ann and redactSecret to an http:// URL.
func withCredentials(raw string) string {
	return strings.Replace(raw, "http://", "http://ann:"+redactSecret+"@", 1)
}

// closedURL is the URL of an address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// endlessSpaces answers 200 and then a space every 50 ms until the client goes:
// a response that never ends, for the request deadline to cut.
func endlessSpaces(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	for {
		if _, err := w.Write([]byte(" ")); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkFailureRedacted runs a client of base, with credentials, until its
// status reports an error naming want, then checks that neither the status
// errors nor the logs show the password, and that the errors show the
// redacted URL.
func checkFailureRedacted(t *testing.T, base string, poll bool, want string) {
	t.Helper()
	capture := newLogCapture()
	cfg := streamConfig(t, withCredentials(base), newSleeper())
	opt := streamOpt(cfg)
	if poll {
		opt = pollOpt(cfg)
	}
	c := newRemoteClient(t, opt, flags.WithLogger(capture.logger()))
	rec := record(c)
	var st error // the status error waited for (the listener may have missed it)
	rec.waitFor(t, "an error naming "+want, func() bool {
		if err := c.Status().Err; err != nil && strings.Contains(err.Error(), want) {
			st = err
		}
		return st != nil
	})
	c.Close()
	for _, s := range rec.seen() {
		if s.Err != nil {
			st = errors.Join(st, s.Err)
		}
	}
	if msg := fmt.Sprint(st); strings.Contains(msg, redactSecret) || !strings.Contains(msg, "ann:xxxxx@") {
		t.Errorf("status errors show the password, or no redacted URL: %s", msg)
	}
	logged := capture.String()
	if logged == "" || strings.Contains(logged, redactSecret) {
		t.Errorf("logs show the password (or are empty):\n%s", logged)
	}
}

// testCacheFileRedacted: the cache file of a client whose URL holds a
// password does not hold it, and reads back for that URL.
func testCacheFileRedacted(t *testing.T) {
	ls := startServer(t, "", testkit.GenDoc(t, 3, 1), server.Options{}, nil)
	path := filepath.Join(t.TempDir(), "flags.cache")
	url := withCredentials(ls.URL)
	c := newRemoteClient(t, streamOpt(withCache(streamConfig(t, url, nil), path)))
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), redactSecret) {
		t.Errorf("the cache file holds the password: %s", data)
	}
	if doc, err := stream.ReadCache(path, url); err != nil || doc.Version != 3 {
		t.Errorf("ReadCache = %v, %v; want version 3", doc, err)
	}
}
