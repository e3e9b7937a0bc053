package stream

import "time"

// Backoff constants (SPEC §5).
const (
	// BackoffBase is the ceiling of the wait after the first failure.
	BackoffBase = 1 * time.Second
	// BackoffMax caps the ceiling of every wait.
	BackoffMax = 30 * time.Second
	// BackoffResetAfter is how long a connection must have stayed up for the
	// failure count to start again from zero.
	BackoffResetAfter = 60 * time.Second
	// MaxRetryAfter caps a server's Retry-After, so that a wrong header
	// cannot stop a client for days.
	MaxRetryAfter = 1 * time.Hour
)

// Backoff computes the waits between attempts. The n-th consecutive failure
// waits a time drawn uniformly from [d/2, d], d = min(BackoffMax,
// BackoffBase × 2^(n-1)); a Retry-After is a floor under that wait; n goes
// back to zero when a connection has stayed up for BackoffResetAfter (Up,
// then Failure at least that much later) or after Reset.
//
// The zero value is not usable: build one with NewBackoff. A Backoff is not
// safe for concurrent use.
type Backoff struct {
	rand    func() float64
	n       int
	up      bool
	upSince time.Time
}

// NewBackoff returns a Backoff drawing its jitter from rand, which returns
// numbers in [0, 1).
func NewBackoff(rand func() float64) *Backoff {
	return &Backoff{rand: rand}
}

// Failures returns the number of consecutive failures counted so far.
func (b *Backoff) Failures() int { return b.n }

// Up records that a connection was established at now.
func (b *Backoff) Up(now time.Time) {
	b.up = true
	b.upSince = now
}

// Reset forgets every failure (a poll succeeded).
func (b *Backoff) Reset() {
	b.n = 0
	b.up = false
}

// Failure records a failure at now and returns how long to wait before the
// next attempt; retryAfter (0 when none) is a floor.
func (b *Backoff) Failure(now time.Time, retryAfter time.Duration) time.Duration {
	if b.up && now.Sub(b.upSince) >= BackoffResetAfter {
		b.n = 0
	}
	b.up = false
	b.n++
	d := BackoffMax
	if b.n <= 16 { // 1s << 15 is far above the cap; avoid overflow beyond
		d = min(BackoffMax, BackoffBase<<(b.n-1))
	}
	r := b.rand()
	if r < 0 || r >= 1 {
		r = 0
	}
	wait := d/2 + time.Duration(r*float64(d-d/2))
	return max(wait, min(retryAfter, MaxRetryAfter))
}
