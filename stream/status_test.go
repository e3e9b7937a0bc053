package stream_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/stream"
)

// countingHandler counts log records whose message contains a substring.
type countingHandler struct {
	mu    sync.Mutex
	match string
	n     int
	seen  chan struct{}
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.Contains(r.Message, h.match) {
		h.n++
		if h.n == 3 {
			close(h.seen)
		}
	}
	return nil
}

// TestStatusSourceDoesNotFlap: while a stream and its fallback poll both
// fail before any snapshot, Status keeps the configured source instead of
// alternating "stream" and "poll" on every retry (flags watch prints a line
// per change of source).
func TestStatusSourceDoesNotFlap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every request is refused

	h := &countingHandler{match: "fallback poll failed", seen: make(chan struct{})}
	var mu sync.Mutex
	var sources []string
	cfg := stream.Config{BaseURL: "http://" + addr, PollInterval: time.Nanosecond,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }}
	c, err := flags.New(streamOpt(cfg), flags.WithLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.OnStatus(func(s flags.Status) {
		mu.Lock()
		sources = append(sources, s.Source)
		mu.Unlock()
	})
	select {
	case <-h.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("no fallback poll failures within 10s")
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sources {
		if s != "stream" {
			t.Fatalf("status sources %v: want only \"stream\" before any snapshot", sources)
		}
	}
}
