package stream_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/stream"
)

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

	h := newLogWatch("fallback poll failed", 3)
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
	case <-h.reached:
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
