package stream

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestBackoffTable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Each row: the n-th consecutive failure, with jitter 0 (d/2) and
	// jitter →1 (d).
	rows := []struct {
		n        int
		low, top time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{4, 4 * time.Second, 8 * time.Second},
		{5, 8 * time.Second, 16 * time.Second},
		{6, 15 * time.Second, 30 * time.Second}, // 32 s capped at 30 s
		{7, 15 * time.Second, 30 * time.Second},
		{40, 15 * time.Second, 30 * time.Second}, // no overflow
		{100, 15 * time.Second, 30 * time.Second},
	}
	lowB, topB := NewBackoff(func() float64 { return 0 }), NewBackoff(func() float64 { return 1 - 1e-12 })
	n := 0
	for _, r := range rows {
		var low, top time.Duration
		for n < r.n {
			n++
			low, top = lowB.Failure(t0, 0), topB.Failure(t0, 0)
		}
		if low != r.low {
			t.Errorf("failure %d, jitter 0: wait %v, want %v", r.n, low, r.low)
		}
		if diff := r.top - top; diff < 0 || diff > time.Microsecond {
			t.Errorf("failure %d, jitter ~1: wait %v, want ~%v", r.n, top, r.top)
		}
		if lowB.Failures() != r.n {
			t.Errorf("Failures() = %d, want %d", lowB.Failures(), r.n)
		}
	}
}

func TestBackoffJitterIsUniform(t *testing.T) {
	b := NewBackoff(func() float64 { return 0.25 })
	if got, want := b.Failure(time.Time{}, 0), 625*time.Millisecond; got != want {
		t.Errorf("first failure with jitter 0.25 = %v, want %v", got, want)
	}
	b = NewBackoff(func() float64 { return 7 }) // out of range: treated as 0
	if got, want := b.Failure(time.Time{}, 0), 500*time.Millisecond; got != want {
		t.Errorf("jitter out of range: %v, want %v", got, want)
	}
}

func TestBackoffResetAfterHealthy(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	zero := func() float64 { return 0 }
	cases := []struct {
		name    string
		upFor   time.Duration
		wantN   int
		wantGap time.Duration
	}{
		{"up 59s: keeps counting", 59 * time.Second, 4, 4 * time.Second},
		{"up 60s: starts over", 60 * time.Second, 1, 500 * time.Millisecond},
		{"up 10m: starts over", 10 * time.Minute, 1, 500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBackoff(zero)
			for range 3 {
				b.Failure(t0, 0)
			}
			b.Up(t0)
			got := b.Failure(t0.Add(tc.upFor), 0)
			if b.Failures() != tc.wantN || got != tc.wantGap {
				t.Errorf("after %v up: failure %d waits %v, want %d and %v", tc.upFor, b.Failures(), got, tc.wantN, tc.wantGap)
			}
		})
	}
	// A failure without Up in between never resets, however late.
	b := NewBackoff(zero)
	b.Failure(t0, 0)
	if b.Failure(t0.Add(time.Hour), 0); b.Failures() != 2 {
		t.Errorf("Failures() = %d, want 2 (never up)", b.Failures())
	}
	b.Reset()
	if b.Failure(t0, 0); b.Failures() != 1 {
		t.Errorf("after Reset Failures() = %d, want 1", b.Failures())
	}
}

func TestBackoffRetryAfterFloor(t *testing.T) {
	cases := []struct {
		failures   int
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 10 * time.Second, 10 * time.Second},             // floor above the backoff
		{1, 100 * time.Millisecond, 500 * time.Millisecond}, // floor below: backoff wins
		{7, 20 * time.Second, 20 * time.Second},             // 15 s backoff < 20 s floor
		{7, 5 * time.Second, 15 * time.Second},
		{1, 48 * time.Hour, MaxRetryAfter}, // capped
	}
	for _, tc := range cases {
		b := NewBackoff(func() float64 { return 0 })
		var got time.Duration
		for i := range tc.failures {
			ra := time.Duration(0)
			if i == tc.failures-1 {
				ra = tc.retryAfter
			}
			got = b.Failure(time.Time{}, ra)
		}
		if got != tc.want {
			t.Errorf("failure %d with Retry-After %v: wait %v, want %v", tc.failures, tc.retryAfter, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 120 * time.Second},
		{" 5 ", 5 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"99999999999", MaxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), MaxRetryAfter},
	}
	for _, tc := range cases {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseEventIDAndETag(t *testing.T) {
	cases := []struct {
		id      string
		epoch   string
		version int64
	}{
		{"e1:5", "e1", 5},
		{"a:b:0", "a:b", 0},
		{"e1:", "", -1},
		{":5", "", -1},
		{"e1:-1", "", -1},
		{"e1:x", "", -1},
		{"nocolon", "", -1},
		{"", "", -1},
	}
	for _, tc := range cases {
		if e, v := parseEventID(tc.id); e != tc.epoch || v != tc.version {
			t.Errorf("parseEventID(%q) = %q, %d; want %q, %d", tc.id, e, v, tc.epoch, tc.version)
		}
	}
	tags := []struct {
		tag     string
		epoch   string
		version int64
	}{
		{`"e1:5"`, "e1", 5},
		{`W/"e1:5"`, "e1", 5},
		{`e1:5`, "", -1},
		{`"`, "", -1},
		{``, "", -1},
	}
	for _, tc := range tags {
		if e, v := parseETag(tc.tag); e != tc.epoch || v != tc.version {
			t.Errorf("parseETag(%q) = %q, %d; want %q, %d", tc.tag, e, v, tc.epoch, tc.version)
		}
	}
}

// TestEventScanner: what counts as progress on a stream (a complete event
// or comment line) and what is a cut (the body ending inside an event),
// whichever way the bytes are split across reads.
func TestEventScanner(t *testing.T) {
	for _, tc := range []struct {
		in       string
		progress bool // some event or comment line completed
		partial  bool // ends inside an event
		events   int  // events completed
	}{
		{"data: x\n\n", true, false, 1},
		{"x\r\r", true, false, 1},
		{"x\r\n\r\n", true, false, 1},
		{"x\n\r\n", true, false, 1},
		{": ping\n", true, false, 0},
		{":\r\n", true, false, 0},
		{": ping", false, false, 0},
		{"\n\n\n", false, false, 0}, // blank lines alone end no event
		{"x\n", false, true, 0},
		{"x\r\n", false, true, 0},
		{"data: x", false, true, 0},
		{"d", false, true, 0},
		{"x\r", false, true, 0},
		{"event: patch\ndata: {}\n", false, true, 0},
		{"event: patch\n: ping\n: ping\n", false, true, 0}, // comments inside an open event
		{"data: x\n\n: ping\n", true, false, 1},
		{"data: x\n\ndata: y", true, true, 1},
		{"", false, false, 0},
	} {
		for split := 0; split <= len(tc.in); split++ {
			var s eventScanner
			// Progress may show in either part; only its presence matters.
			progress, events := s.scan([]byte(tc.in[:split]))
			more, events2 := s.scan([]byte(tc.in[split:]))
			progress, events = progress || more, events+events2
			if progress != tc.progress || s.partial() != tc.partial || events != tc.events {
				t.Errorf("scan(%q) split at %d: progress %v, partial %v, %d events; want %v, %v, %d",
					tc.in, split, progress, s.partial(), events, tc.progress, tc.partial, tc.events)
			}
		}
	}
	// One byte at a time: a line trickled never counts until it ends.
	var s eventScanner
	for i, c := range []byte("data: {\"version\":1}\n") {
		if progress, _ := s.scan([]byte{c}); progress {
			t.Fatalf("byte %d (%q) counted as progress", i, c)
		}
	}
	if progress, events := s.scan([]byte("\n")); !progress || events != 1 {
		t.Error("the blank line ending the event was not progress")
	}
}

func TestStatusErrorIs(t *testing.T) {
	for code, fatal := range map[int]bool{401: true, 403: true, 404: false, 429: false, 500: false} {
		err := error(&StatusError{Code: code, URL: "http://x/v1/stream"})
		if got := errors.Is(err, ErrUnauthorized); got != fatal {
			t.Errorf("errors.Is(%d, ErrUnauthorized) = %v, want %v", code, got, fatal)
		}
	}
}
