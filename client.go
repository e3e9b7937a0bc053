package flags

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/internal/logging"
	"github.com/flagstream/flags/rules"
)

// State is a client's health, as SPEC §6 names it.
type State string

// The client states.
const (
	StateInitializing State = "INITIALIZING" // no snapshot yet
	StateReady        State = "READY"        // a current snapshot, source healthy
	StateStale        State = "STALE"        // serving the last good snapshot while the source is down or retrying
	StateFatal        State = "FATAL"        // the source refused us for good (e.g. a rejected token)
	StateClosed       State = "CLOSED"       // Close was called
)

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s), nil }

// Status is a snapshot of a client's health.
type Status struct {
	State      State     // INITIALIZING, READY, STALE, FATAL or CLOSED
	Source     string    // where the snapshot in force came from: "document", "file", "stream", "poll", "cache", ...
	Version    int64     // the snapshot version in force (0 before the first)
	Err        error     // the last error of the source, nil when healthy
	LastUpdate time.Time // when the snapshot in force was installed
}

// Change is delivered to OnChange listeners after a new snapshot is in force.
type Change struct {
	Version int64    // the new snapshot version
	Flags   []string // keys of flags whose evaluation may differ, sorted
}

// ErrClosed is returned by WaitReady after Close.
var ErrClosed = errors.New("flags: client closed")

// Client evaluates flags against the latest snapshot its source delivered.
// It is safe for concurrent use. Evaluations never block and never panic:
// they read the current snapshot with one atomic load.
type Client struct {
	snap   atomic.Pointer[eval.Snapshot]
	status atomic.Pointer[Status]
	clock  func() time.Time
	logger *slog.Logger
	events *events      // nil: events off, or nowhere to send them
	hooks  []Hook       // nil: none
	evals  *evalCounter // WithMetrics: evaluations counted; else nil
	stats  clientStats

	updateMu  sync.Mutex // serializes snapshot installation and health; never held while listeners run
	listenMu  sync.Mutex
	changeFns map[int]func(Change)
	statusFns map[int]func(Status)
	nextID    int

	health health // guarded by updateMu
	ov     overrides

	ready     chan struct{}
	readyOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	source    Source
	outbox    outbox // last: the fields the evaluations read keep their offsets
}

// New builds a client over one source (WithDocument, WithFile or
// WithSource) and starts it. It validates every option first, and returns
// an error matching ErrNoSource when none gives a source. A source that is
// a Loader loads before New returns: WithDocument and WithFile install
// their document (a bad one is an error, and nothing is started), a
// stream.Source its last-known-good cache. Anything else arrives in the
// background, from the source's Run: use WaitReady to wait for it.
func New(opts ...Option) (*Client, error) {
	cfg := config{logger: logging.Default(), clock: time.Now}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	src, err := cfg.source()
	if err != nil {
		return nil, err
	}
	c := &Client{
		clock:     cfg.clock,
		logger:    cfg.logger,
		hooks:     cfg.hooks,
		changeFns: map[int]func(Change){},
		statusFns: map[int]func(Status){},
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
	}
	c.status.Store(&Status{State: StateInitializing})
	if cfg.metrics {
		c.evals = &evalCounter{}
	}
	if exp := cfg.eventExporter(src); exp != nil {
		c.events = newEvents(exp, cfg.eventOpts, c.logger)
	}
	if l, ok := src.(Loader); ok {
		if err := l.Load(sink{c}); err != nil {
			// Whatever the source kept of its Updates now answers ErrClosed.
			c.updateHealth(func(h *health) { h.closed = true })
			if c.events != nil {
				c.events.close(context.Background())
			}
			return nil, err
		}
	}
	c.source = src
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		if err := src.Run(ctx, sink{c}); err != nil && ctx.Err() == nil {
			c.logger.Error("flags: source stopped", "err", err)
		}
	}()
	return c, nil
}

// WaitReady blocks until the client has a snapshot, ctx is done, or the
// source has failed for good. It returns nil once evaluations use real flags.
func (c *Client) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	default:
	}
	stop := make(chan struct{})
	defer close(stop)
	fatal := make(chan error, 1)
	id := c.addStatusListener(func(s Status) {
		if s.State == StateFatal || s.State == StateClosed {
			select {
			case fatal <- s.Err:
			default:
			}
		}
	})
	defer c.removeListener(id)
	if s := c.Status(); s.State == StateFatal || s.State == StateClosed {
		return statusErr(s)
	}
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flags: waiting for the first snapshot: %w", ctx.Err())
	case <-fatal:
		return statusErr(c.Status())
	}
}

func statusErr(s Status) error {
	if s.State == StateClosed {
		return ErrClosed
	}
	if s.Err != nil {
		return s.Err
	}
	return fmt.Errorf("flags: client is %s", s.State)
}

// Close stops the client's source, sends the events not yet sent (within
// EventOptions.CloseTimeout) and waits for every goroutine it started.
// Evaluations keep answering from the last snapshot after Close.
func (c *Client) Close() error {
	c.shutdown(context.Background())
	return nil
}

// Shutdown is Close within ctx, for a service's shutdown budget: the events
// not yet sent get until ctx is done or EventOptions.CloseTimeout has
// passed, whichever comes first. It returns ctx's error when ctx ended
// before the client had closed (events may then be lost, and are logged).
// A source still stopping when ctx ends (held, say, by a listener that
// blocks: listeners run on the source's goroutine) is left to stop in the
// background; the client is closed all the same and applies nothing more.
func (c *Client) Shutdown(ctx context.Context) error {
	c.shutdown(ctx)
	return ctx.Err()
}

func (c *Client) shutdown(ctx context.Context) {
	c.closeOnce.Do(func() {
		c.cancel()
		select {
		case <-c.done:
		case <-ctx.Done():
			c.logger.Warn("flags: the source had not stopped when the shutdown's context ended; it is left to stop in the background (a listener that blocks holds it)",
				"err", ctx.Err())
		}
		if c.events != nil {
			c.events.close(ctx)
		}
		// A listener blocked on the source's goroutine is delivering:
		// this delivery leaves the CLOSED status to it rather than wait.
		c.updateHealth(func(h *health) { h.closed, h.err = true, nil })
	})
}

// Status returns the client's current health.
func (c *Client) Status() Status { return *c.status.Load() }

// Snapshot returns the compiled snapshot in force, or nil before the first.
func (c *Client) Snapshot() *Snapshot { return (*Snapshot)(c.snap.Load()) }

// health is what Status is computed from; guarded by updateMu.
type health struct {
	origin  string // source of the snapshot in force ("" before the first)
	source  string // the source last heard from, before the first snapshot
	failing bool
	fatal   bool
	closed  bool
	err     error
	updated time.Time
}

// status computes the public Status from health.
func (c *Client) statusOf(h health, version int64, haveSnap bool) Status {
	s := Status{Source: h.origin, Version: version, Err: h.err, LastUpdate: h.updated}
	if s.Source == "" {
		s.Source = h.source
	}
	switch {
	case h.closed:
		s.State = StateClosed
	case h.fatal:
		s.State = StateFatal
	case !haveSnap:
		s.State = StateInitializing
	case h.failing || h.origin == OriginCache:
		s.State = StateStale
	default:
		s.State = StateReady
	}
	return s
}

// OriginCache is the origin of a snapshot read from a last-known-good
// copy (package stream's cache file, say): the client serves it with state
// STALE until a document of another origin is applied.
const OriginCache = "cache"

// install compiles doc, swaps it in and tells listeners. Called by sources.
func (c *Client) install(doc *rules.Document, origin string) error {
	if doc == nil {
		return fmt.Errorf("flags: %s delivered no document", origin)
	}
	err := c.installLocked(doc, origin)
	c.deliver()
	if err == nil {
		// ready is closed after the delivery, so that when WaitReady returns
		// the status is current and (unless another goroutine is still
		// delivering) listeners have seen the first snapshot.
		c.readyOnce.Do(func() { close(c.ready) })
	}
	return err
}

// installLocked is install's part under updateMu: the swap, the new status
// and the notices for listeners, queued in that order.
func (c *Client) installLocked(doc *rules.Document, origin string) error {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	if c.health.closed {
		return ErrClosed
	}
	prev := c.snap.Load()
	next := eval.CompileFrom(prev, doc)
	if c.events != nil {
		c.events.snapshot(next)
	}
	if c.evals != nil {
		c.evals.rebind(next)
	}
	c.snap.Store(next)
	c.stats.updates.Add(1)
	if problems := next.Problems(); len(problems) > 0 {
		// Log each problem once, when it appears, not again with every patch.
		seen := map[string]bool{}
		if prev != nil {
			for _, p := range prev.Problems() {
				seen[p.Error()] = true
			}
		}
		for _, p := range problems {
			if msg := p.Error(); !seen[msg] {
				c.logger.Warn("flags: malformed flag kept out of service", "origin", origin, "problem", msg)
			}
		}
	}
	changed := changedFlags(prev, next)
	c.updateHealthLocked(func(h *health) {
		h.origin = origin
		h.updated = c.clock()
		if origin != OriginCache {
			if h.failing { // a source that recovers with a document (a stream's snapshot)
				c.stats.recoveries.Add(1)
			}
			h.failing, h.err = false, nil
		}
	})
	if prev != nil && len(changed) == 0 {
		return nil
	}
	c.outbox.push(notice{change: &Change{Version: next.Version(), Flags: changed}})
	return nil
}

// updateHealth applies update to the client's health and tells status
// listeners when the Status changed.
func (c *Client) updateHealth(update func(*health)) {
	c.updateMu.Lock()
	c.updateHealthLocked(update)
	c.updateMu.Unlock()
	c.deliver()
}

// updateHealthLocked applies update, publishes the new Status and queues it
// for status listeners when it changed. updateMu is held.
func (c *Client) updateHealthLocked(update func(*health)) {
	old := c.status.Load()
	update(&c.health)
	snap := c.snap.Load()
	var version int64
	if snap != nil {
		version = snap.Version()
	}
	s := c.statusOf(c.health, version, snap != nil)
	c.status.Store(&s)
	if s.State == old.State && s.Source == old.Source && s.Version == old.Version && sameErr(s.Err, old.Err) {
		return
	}
	c.outbox.push(notice{status: s})
}

// sameErr reports whether two statuses' errors are the same: one value, or
// one wrapping the other (errors.Is either way), never two errors that only
// read the same. A source reports a failure once when it starts or changes
// (package stream does, and so does WithFile); a new error value is news
// for status listeners.
func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return errors.Is(a, b) || errors.Is(b, a)
}
