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
	const secret = "s3cret-pw"
	withCreds := func(raw string) string { return strings.Replace(raw, "http://", "http://ann:"+secret+"@", 1) }
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)
	closed := func() string { // an address nothing listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()
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
		{"deadline", true, func(w http.ResponseWriter, r *http.Request) {
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
		}, stream.ErrRequestTimeout.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := closed
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				t.Cleanup(srv.Close)
				base = srv.URL
			}
			capture := newLogCapture()
			cfg := streamConfig(t, withCreds(base), newSleeper())
			opt := streamOpt(cfg)
			if tc.poll {
				opt = pollOpt(cfg)
			}
			c := newRemoteClient(t, opt, flags.WithLogger(capture.logger()))
			rec := record(c)
			var st error // the status error waited for (the listener may have missed it)
			rec.waitFor(t, "an error naming "+tc.want, func() bool {
				if err := c.Status().Err; err != nil && strings.Contains(err.Error(), tc.want) {
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
			if msg := fmt.Sprint(st); strings.Contains(msg, secret) || !strings.Contains(msg, "ann:xxxxx@") {
				t.Errorf("status errors show the password, or no redacted URL: %s", msg)
			}
			logged := capture.String()
			if logged == "" || strings.Contains(logged, secret) {
				t.Errorf("logs show the password (or are empty):\n%s", logged)
			}
		})
	}
	t.Run("bad base URL", func(t *testing.T) {
		_, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: "http://ann:" + secret + "@127.0.0.1:port/"})))
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("New with a bad base URL = %v, want an error without the password", err)
		}
	})
	t.Run("cache file", func(t *testing.T) {
		ls := startServer(t, "", testkit.GenDoc(t, 3, 1), server.Options{}, nil)
		path := filepath.Join(t.TempDir(), "flags.cache")
		url := withCreds(ls.URL)
		c := newRemoteClient(t, streamOpt(withCache(streamConfig(t, url, nil), path)))
		if err := c.WaitReady(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.Close()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), secret) {
			t.Errorf("the cache file holds the password: %s", data)
		}
		if doc, err := stream.ReadCache(path, url); err != nil || doc.Version != 3 {
			t.Errorf("ReadCache = %v, %v; want version 3", doc, err)
		}
	})
}
