package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
	snap   atomic.Pointer[rules.Snapshot]
	status atomic.Pointer[Status]
	clock  func() time.Time
	logger *slog.Logger

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
		changeFns: map[int]func(Change){},
		statusFns: map[int]func(Status){},
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
	}
	c.status.Store(&Status{State: StateInitializing})
	if l, ok := src.(Loader); ok {
		if err := l.Load(sink{c}); err != nil {
			// Whatever the source kept of its Updates now answers ErrClosed.
			c.updateHealth(func(h *health) { h.closed = true })
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

// Close stops the client's source and waits for every goroutine it started.
// Evaluations keep answering from the last snapshot after Close.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.done
		c.updateHealth(func(h *health) { h.closed, h.err = true, nil })
	})
	return nil
}

// Status returns the client's current health.
func (c *Client) Status() Status { return *c.status.Load() }

// Snapshot returns the compiled snapshot in force, or nil before the first.
func (c *Client) Snapshot() *rules.Snapshot { return c.snap.Load() }

// OnChange registers fn to be called after every new snapshot, with the
// flags whose evaluation may have changed. It returns a function that
// unregisters fn.
//
// Calls are made one at a time, in the order the snapshots were installed,
// and never while the client holds its own lock: fn may call any method of
// the client (evaluations, Status, OnChange...) except Close. They run on
// the goroutine that installed the snapshot (the source's, usually), after
// the installation and before it returns, unless another goroutine is
// calling listeners at that moment: that one then makes this call too,
// after the ones before it. A slow fn never delays evaluations or another
// source's updates; it delays only the next update of the source it runs
// on. Changes that queue up behind a slow listener are delivered as one
// (the latest version, the union of the flags).
func (c *Client) OnChange(fn func(Change)) (unregister func()) {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	c.nextID++
	id := c.nextID
	c.changeFns[id] = fn
	return func() { c.removeListener(id) }
}

// OnStatus registers fn to be called on every change of Status, under the
// same rules as OnChange: statuses queued behind a slow listener that
// differ only in version are delivered as the latest; a change of state,
// source or error is always delivered. It returns a function that
// unregisters fn.
func (c *Client) OnStatus(fn func(Status)) (unregister func()) {
	id := c.addStatusListener(fn)
	return func() { c.removeListener(id) }
}

func (c *Client) addStatusListener(fn func(Status)) int {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	c.nextID++
	c.statusFns[c.nextID] = fn
	return c.nextID
}

func (c *Client) removeListener(id int) {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	delete(c.changeFns, id)
	delete(c.statusFns, id)
}

func (c *Client) listeners() ([]func(Change), []func(Status)) {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	ids := make([]int, 0, len(c.changeFns)+len(c.statusFns))
	for id := range c.changeFns {
		ids = append(ids, id)
	}
	for id := range c.statusFns {
		ids = append(ids, id)
	}
	slices.Sort(ids) // registration order
	var ch []func(Change)
	var st []func(Status)
	for _, id := range ids {
		if fn, ok := c.changeFns[id]; ok {
			ch = append(ch, fn)
		}
		if fn, ok := c.statusFns[id]; ok {
			st = append(st, fn)
		}
	}
	return ch, st
}

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
	next := rules.CompileFrom(prev, doc)
	c.snap.Store(next)
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

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// evaluate runs the evaluator on the current snapshot.
func (c *Client) evaluate(ev *evaluation, key string, ec *Context) {
	if ov := c.ov.set.Load(); ov != nil {
		if f := ov.lookup(key, ec.key); f != nil {
			*ev = evaluation{forced: f, variation: -1, kind: kindOverride}
			if snap := c.snap.Load(); snap != nil {
				ev.flag = snap.Flag(key)
			}
			return
		}
	}
	// evaluator.evaluate inlined: the extra call costs about a third of S1.
	snap := c.snap.Load()
	if snap == nil {
		*ev = errorEval(nil, errClientNotReady, ErrClientNotReady)
		return
	}
	f := snap.Flag(key)
	if f == nil {
		*ev = errorEval(nil, errFlagNotFound, fmt.Errorf("%w: %q", ErrFlagNotFound, key))
		return
	}
	e := evaluator{snap: snap, ctx: ec, clock: c.clock}
	e.evaluateTop(ev, f)
}

// pick is evaluate for the getters that return only a value (Bool, String,
// Int, Float, JSON): the variation served and its kind, or nil when the
// caller's default is served. It skips the reason and the error, which
// those getters drop, and serves constant flags (kill switches, finished
// rollouts, chains of them) without entering the evaluator.
func (c *Client) pick(key string, ec *Context) (*rules.Variation, rules.Kind) {
	if ov := c.ov.set.Load(); ov != nil {
		if f := ov.lookup(key, ec.key); f != nil {
			return &f.v, f.kind
		}
	}
	snap := c.snap.Load()
	if snap == nil {
		return nil, 0
	}
	f := snap.Flag(key)
	if f == nil || f.Err != nil || ec.err != nil || ec.attrs == nil {
		return nil, 0
	}
	var v int
	switch {
	case f.Constant && f.On:
		v = f.Fallthrough.Variation
	case f.Constant:
		v = f.OffVariation
	default:
		e := evaluator{snap: snap, ctx: ec, clock: c.clock}
		d, err := e.decide(f, 0)
		if err != nil {
			return nil, 0
		}
		v = int(d.variation)
	}
	if v < 0 {
		return nil, 0
	}
	return &f.Variations[v], f.Kind
}

// typed turns an evaluation into a Result[T], applying SPEC §3 step 8: a
// variation of another type serves the default with WRONG_TYPE.
func typed[T any](r *Result[T], key string, ev *evaluation, def T, want rules.Kind, get func(*rules.Variation) (T, bool)) {
	// Field by field into the caller's result: building a Result and
	// copying it doubles the cost of a detailed evaluation.
	r.Flag, r.Value, r.Variation, r.Err = key, def, int(ev.variation), ev.err
	ev.fillReason(&r.Reason)
	if ev.flag != nil {
		r.Version = ev.flag.Version
	}
	v, kind := ev.value()
	if v == nil {
		r.Variation = -1
		return
	}
	if kind == want {
		if x, ok := get(v); ok {
			r.Value = x
			return
		}
	}
	r.Variation = -1
	r.Reason = Reason{Kind: ReasonError, ErrorKind: ErrorWrongType}
	r.Err = wrongType(key, kind, want)
}

func wrongType(key string, got, want rules.Kind) error {
	if got == want { // an int request of a fractional number
		return fmt.Errorf("%w: flag %q serves a number with a fraction, want an integer", ErrWrongType, key)
	}
	return fmt.Errorf("%w: flag %q serves %s values, want %s", ErrWrongType, key, got, want)
}

func getBool(v *rules.Variation) (bool, bool)            { return v.Bool, true }
func getString(v *rules.Variation) (string, bool)        { return v.String, true }
func getFloat(v *rules.Variation) (float64, bool)        { return v.Number, true }
func getJSON(v *rules.Variation) (json.RawMessage, bool) { return v.JSON, true }
func getInt(v *rules.Variation) (int, bool) {
	n := v.Number
	// 2^63 itself does not fit: float64(math.MaxInt) rounds up to it.
	if n != math.Trunc(n) || n >= -float64(math.MinInt) || n < float64(math.MinInt) {
		return 0, false
	}
	return int(n), true
}

// Bool returns the value of a bool flag for ec, or def when the flag cannot be
// evaluated (see BoolDetail for why). ctx is accepted for tracing and future
// hooks; evaluation itself never blocks.
func (c *Client) Bool(ctx context.Context, key string, ec Context, def bool) bool {
	if v, kind := c.pick(key, &ec); kind == rules.KindBool {
		return v.Bool
	}
	return def
}

// BoolDetail is Bool with the variation, reason and flag version.
func (c *Client) BoolDetail(ctx context.Context, key string, ec Context, def bool) (r Result[bool]) {
	var ev evaluation
	c.evaluate(&ev, key, &ec)
	typed(&r, key, &ev, def, rules.KindBool, getBool)
	return r
}

// String returns the value of a string flag for ec, or def.
func (c *Client) String(ctx context.Context, key string, ec Context, def string) string {
	if v, kind := c.pick(key, &ec); kind == rules.KindString {
		return v.String
	}
	return def
}

// StringDetail is String with the variation, reason and flag version.
func (c *Client) StringDetail(ctx context.Context, key string, ec Context, def string) (r Result[string]) {
	var ev evaluation
	c.evaluate(&ev, key, &ec)
	typed(&r, key, &ev, def, rules.KindString, getString)
	return r
}

// Int returns the value of a number flag for ec, or def. A number with a
// fraction is WRONG_TYPE (there is no rounding).
func (c *Client) Int(ctx context.Context, key string, ec Context, def int) int {
	if v, kind := c.pick(key, &ec); kind == rules.KindNumber {
		if n, ok := getInt(v); ok {
			return n
		}
	}
	return def
}

// IntDetail is Int with the variation, reason and flag version.
func (c *Client) IntDetail(ctx context.Context, key string, ec Context, def int) (r Result[int]) {
	var ev evaluation
	c.evaluate(&ev, key, &ec)
	typed(&r, key, &ev, def, rules.KindNumber, getInt)
	return r
}

// Float returns the value of a number flag for ec, or def.
func (c *Client) Float(ctx context.Context, key string, ec Context, def float64) float64 {
	if v, kind := c.pick(key, &ec); kind == rules.KindNumber {
		return v.Number
	}
	return def
}

// FloatDetail is Float with the variation, reason and flag version.
func (c *Client) FloatDetail(ctx context.Context, key string, ec Context, def float64) (r Result[float64]) {
	var ev evaluation
	c.evaluate(&ev, key, &ec)
	typed(&r, key, &ev, def, rules.KindNumber, getFloat)
	return r
}

// JSON returns the value of a JSON (object or array) flag for ec as raw JSON,
// or def. The returned bytes are shared: do not modify them.
func (c *Client) JSON(ctx context.Context, key string, ec Context, def json.RawMessage) json.RawMessage {
	if v, kind := c.pick(key, &ec); kind == rules.KindJSON {
		return v.JSON
	}
	return def
}

// JSONDetail is JSON with the variation, reason and flag version.
func (c *Client) JSONDetail(ctx context.Context, key string, ec Context, def json.RawMessage) (r Result[json.RawMessage]) {
	var ev evaluation
	c.evaluate(&ev, key, &ec)
	typed(&r, key, &ev, def, rules.KindJSON, getJSON)
	return r
}

// Value evaluates a flag of any type: the result holds a bool, string,
// float64, []any or map[string]any (shared: do not modify), or def.
func (c *Client) Value(ctx context.Context, key string, ec Context, def any) Result[any] {
	var ev evaluation
	c.evaluate(&ev, key, &ec)
	return anyResult(key, ev, def)
}

// AllFlags evaluates every flag for ec, in key order, with no default (a
// flag that cannot serve a variation has a nil Value). Use it to bootstrap a
// front end: the slice encodes to JSON in the shape of `flags eval`.
func (c *Client) AllFlags(ctx context.Context, ec Context) []Result[any] {
	snap := c.snap.Load()
	if snap == nil {
		return nil
	}
	return c.appendAll(make([]Result[any], 0, len(snap.Flags())), snap, ec)
}

// AppendAllFlags is AllFlags appending to dst, for callers that evaluate
// every flag on a hot path (say, per request) and reuse one buffer: with
// enough capacity it does not allocate.
func (c *Client) AppendAllFlags(dst []Result[any], ctx context.Context, ec Context) []Result[any] {
	snap := c.snap.Load()
	if snap == nil {
		return dst
	}
	return c.appendAll(dst, snap, ec)
}

func (c *Client) appendAll(dst []Result[any], snap *rules.Snapshot, ec Context) []Result[any] {
	e := evaluator{snap: snap, ctx: &ec, clock: c.clock}
	ov := c.ov.set.Load()
	all := snap.Flags()
	n := len(dst)
	dst = slices.Grow(dst, len(all))[:n+len(all)]
	valid := ec.err == nil && ec.attrs != nil
	for i, f := range all {
		r := &dst[n+i]
		if ov != nil {
			if forced := ov.lookup(f.Key, ec.key); forced != nil {
				ev := evaluation{flag: f, forced: forced, variation: -1, kind: kindOverride}
				fillAny(r, f.Key, &ev, nil)
				continue
			}
		}
		if valid && f.Err == nil {
			d, err := e.decide(f, 0)
			if err == nil {
				fillDecision(r, f, d)
				continue
			}
			ev := errorEval(f, errMalformedFlag, err)
			fillAny(r, f.Key, &ev, nil)
			continue
		}
		var ev evaluation
		e.evaluateTop(&ev, f)
		fillAny(r, f.Key, &ev, nil)
	}
	return dst
}

// Evaluator is the evaluation half of *Client. Application code that
// accepts an Evaluator instead of a *Client can be tested with a flagstest
// client or a hand-written fake, without a mock generator.
type Evaluator interface {
	Bool(ctx context.Context, key string, ec Context, def bool) bool
	BoolDetail(ctx context.Context, key string, ec Context, def bool) Result[bool]
	String(ctx context.Context, key string, ec Context, def string) string
	StringDetail(ctx context.Context, key string, ec Context, def string) Result[string]
	Int(ctx context.Context, key string, ec Context, def int) int
	IntDetail(ctx context.Context, key string, ec Context, def int) Result[int]
	Float(ctx context.Context, key string, ec Context, def float64) float64
	FloatDetail(ctx context.Context, key string, ec Context, def float64) Result[float64]
	JSON(ctx context.Context, key string, ec Context, def json.RawMessage) json.RawMessage
	JSONDetail(ctx context.Context, key string, ec Context, def json.RawMessage) Result[json.RawMessage]
	Value(ctx context.Context, key string, ec Context, def any) Result[any]
	AllFlags(ctx context.Context, ec Context) []Result[any]
}

var _ Evaluator = (*Client)(nil)

// changedFlags lists the flags whose evaluation may differ between two
// snapshots: flags added, removed or edited, flags using an edited segment
// (directly or through nested segments) and flags depending on any of those
// as prerequisites.
func changedFlags(prev, next *rules.Snapshot) []string {
	if prev == nil {
		return slices.Clone(next.FlagKeys())
	}
	pd, nd := prev.Document(), next.Document()
	changed := map[string]bool{}
	for k, raw := range nd.Flags {
		if old, ok := pd.Flags[k]; !ok || string(old) != string(raw) {
			changed[k] = true
		}
	}
	for k := range pd.Flags {
		if _, ok := nd.Flags[k]; !ok {
			changed[k] = true
		}
	}
	segChanged := map[string]bool{}
	for k, raw := range nd.Segments {
		if old, ok := pd.Segments[k]; !ok || string(old) != string(raw) {
			segChanged[k] = true
		}
	}
	for k := range pd.Segments {
		if _, ok := nd.Segments[k]; !ok {
			segChanged[k] = true
		}
	}
	if len(segChanged) > 0 {
		// segments that include a changed segment have changed too
		for grew := true; grew; {
			grew = false
			for k := range nd.Segments {
				if s := next.Segment(k); s != nil && !segChanged[k] && segmentUses(s.Rules, segChanged) {
					segChanged[k] = true
					grew = true
				}
			}
		}
		for _, k := range next.FlagKeys() {
			f := next.Flag(k)
			for i := range f.Rules {
				if clausesUse(f.Rules[i].Clauses, segChanged) {
					changed[k] = true
				}
			}
		}
	}
	for grew := true; grew; {
		grew = false
		for _, k := range next.FlagKeys() {
			if changed[k] {
				continue
			}
			for _, p := range next.Flag(k).Prerequisites {
				if changed[p.Key] {
					changed[k] = true
					grew = true
					break
				}
			}
		}
	}
	out := make([]string, 0, len(changed))
	for k := range changed {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func segmentUses(rs []rules.SegmentRule, set map[string]bool) bool {
	for i := range rs {
		if clausesUse(rs[i].Clauses, set) {
			return true
		}
	}
	return false
}

func clausesUse(cs []rules.Clause, set map[string]bool) bool {
	for i := range cs {
		if cs[i].Op == rules.OpInSegment {
			for _, s := range cs[i].Segments() {
				if set[s] {
					return true
				}
			}
		}
	}
	return false
}
