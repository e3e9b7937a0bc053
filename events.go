package flags

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagstream/flags/internal/eval"
)

// Event is one event the SDK reports (SPEC §7): an exposure (who was served
// which variation of a flag that is tracked), a track event (a metric), or a
// summary (how many evaluations served what). Which fields apply depends on
// Kind; its JSON is SPEC §7's.
type Event struct {
	Kind string `json:"kind"` // "exposure", "track" or "summary"

	At         int64  `json:"at,omitempty"`         // exposure, track: when, Unix ms
	Flag       string `json:"flag,omitempty"`       // exposure: the flag evaluated
	Version    int64  `json:"version,omitempty"`    // exposure: its version
	Variation  *int   `json:"variation,omitempty"`  // exposure: the variation served
	Name       string `json:"name,omitempty"`       // track: the metric
	ContextKey string `json:"contextKey,omitempty"` // exposure, track: the context's key (the unit)
	InRollout  bool   `json:"inRollout,omitempty"`  // exposure: a rollout drew the variation (randomized)

	Value *float64 `json:"value,omitempty"` // track: its value; nil counts 1

	Start    int64            `json:"start,omitempty"`    // summary: the interval's start, Unix ms
	End      int64            `json:"end,omitempty"`      // summary: its end
	Counters []SummaryCounter `json:"counters,omitempty"` // summary: evaluations per flag version and variation
	Dropped  int64            `json:"dropped,omitempty"`  // summary: events dropped since the last summary
}

// MarshalJSON encodes the event in SPEC §7's shape for its kind: the fields
// of its kind only, and every one of them (inRollout false, dropped 0).
func (e Event) MarshalJSON() ([]byte, error) {
	switch e.Kind {
	case EventExposure:
		return json.Marshal(struct {
			Kind       string `json:"kind"`
			At         int64  `json:"at"`
			Flag       string `json:"flag"`
			Version    int64  `json:"version"`
			Variation  *int   `json:"variation"`
			ContextKey string `json:"contextKey"`
			InRollout  bool   `json:"inRollout"`
		}{e.Kind, e.At, e.Flag, e.Version, e.Variation, e.ContextKey, e.InRollout})
	case EventSummary:
		counters := e.Counters
		if counters == nil {
			counters = []SummaryCounter{}
		}
		return json.Marshal(struct {
			Kind     string           `json:"kind"`
			Start    int64            `json:"start"`
			End      int64            `json:"end"`
			Counters []SummaryCounter `json:"counters"`
			Dropped  int64            `json:"dropped"`
		}{e.Kind, e.Start, e.End, counters, e.Dropped})
	}
	type plain Event // no MarshalJSON: the track shape by the tags
	return json.Marshal(plain(e))
}

// The kinds of Event.
const (
	EventExposure = "exposure"
	EventTrack    = "track"
	EventSummary  = "summary"
)

// SummaryCounter counts the evaluations of one flag version that served
// one variation (nil: the caller's default) during a summary's interval.
type SummaryCounter struct {
	Flag      string `json:"flag"`                // the flag evaluated
	Version   int64  `json:"version"`             // its version
	Variation *int   `json:"variation,omitempty"` // the variation served; nil: the caller's default
	Count     int64  `json:"count"`               // how many evaluations
}

// EventBatch is what an Exporter is given: events and the batch id a retry
// repeats (SPEC §7), so that the server accepts the batch once.
type EventBatch struct {
	ID     string  `json:"batch"`  // random, 32 hex characters; the same for a retry
	Events []Event `json:"events"` // in the order recorded, the summary last
}

// Exporter delivers batches of events: to a flagstream server (the
// stream.Source provides one), to a file (NewJSONLinesExporter), or to
// anything else. Export is called from one goroutine at a time, never from
// an evaluation. An error is retried once after a second with the same
// batch, unless it matches ErrEventsRejected (dropped) or
// ErrEventsUnauthorized or ErrEventsUnsupported (the client then stops
// sending events).
type Exporter interface {
	Export(ctx context.Context, b *EventBatch) error
}

// Errors an Exporter returns (wrapped) to say that retrying cannot help.
var (
	// ErrEventsUnauthorized: the destination refused the credentials
	// (401/403); the client stops sending events.
	ErrEventsUnauthorized = errors.New("flags: events refused: unauthorized")
	// ErrEventsRejected: the destination refused this batch (a 4xx other
	// than 401, 403, 404 and 429); it is dropped and counted.
	ErrEventsRejected = errors.New("flags: events batch rejected")
	// ErrEventsUnsupported: the destination takes no events (a server
	// without POST /v1/events answers 404); the client stops sending
	// them, with one warning.
	ErrEventsUnsupported = errors.New("flags: the server takes no events")
)

// EventExporterSource is implemented by sources that know where events go
// (package stream's Source: its server's POST /v1/events). A client over
// such a source sends its events there unless WithEventExporter or
// WithEvents(false) says otherwise.
type EventExporterSource interface {
	EventExporter() Exporter
}

// EventOptions tune event delivery; zero fields take the defaults.
type EventOptions struct {
	Capacity      int           // events buffered at most; more are dropped and counted (default 10,000)
	FlushInterval time.Duration // how often events are sent (default 5 s)
	FlushAt       int           // send as soon as this many wait (default 1,000)
	RetryDelay    time.Duration // the wait before the one retry (default 1 s)
	CloseTimeout  time.Duration // how long Close may spend sending what is left (default 5 s)
}

// Event delivery defaults (SPEC §7).
const (
	DefaultEventCapacity      = 10000
	DefaultEventFlushInterval = 5 * time.Second
	DefaultEventFlushAt       = 1000
)

// WithEvents turns events on (the default: sent when the source or
// WithEventExporter gives them somewhere to go) or off.
func WithEvents(on bool) Option {
	return optionFunc(func(c *config) error {
		c.eventsOff = !on
		return nil
	})
}

// WithEventExporter sends the client's events to e instead of its source's
// server (or anywhere, for sources without a server).
func WithEventExporter(e Exporter) Option {
	return optionFunc(func(c *config) error {
		if e == nil {
			return errors.New("flags: WithEventExporter(nil)")
		}
		c.exporter = e
		return nil
	})
}

// WithEventOptions tunes event delivery.
func WithEventOptions(o EventOptions) Option {
	return optionFunc(func(c *config) error {
		if o.Capacity < 0 || o.FlushInterval < 0 || o.FlushAt < 0 || o.RetryDelay < 0 || o.CloseTimeout < 0 {
			return errors.New("flags: WithEventOptions: negative value")
		}
		c.eventOpts = o
		return nil
	})
}

// pendingEvent is an exposure or track event waiting in the buffer: plain
// values, so that recording one copies and never allocates.
type pendingEvent struct {
	kind       uint8 // 1 exposure, 2 track
	inRollout  bool
	hasValue   bool
	variation  int32
	at         int64
	version    int64
	value      float64
	flag       string // exposure: the flag key; track: the metric name
	contextKey string
}

// events is a client's event pipeline: a fixed buffer that evaluations
// append to, per-snapshot summary counters they add to, and a goroutine
// that turns both into batches for the exporter.
type events struct {
	exp  Exporter
	opts EventOptions
	log  interface{ Warn(string, ...any) }

	mu           sync.Mutex
	buf          []pendingEvent // cap opts.Capacity, never grown
	spare        []pendingEvent // the other buffer, swapped in at each flush (the hot path never touches fresh memory)
	dropped      int64          // since the last summary
	droppedTotal atomic.Int64   // since the start, for Metrics
	stopped      bool           // unauthorized: nothing more is sent

	counts evalCounter // evaluations since the last summary
	// recent remembers, lossily, the exposures recorded in this interval, so
	// that repeats (SPEC §7 lets the SDK drop them) cost a hash and a load,
	// not a copy under the mutex. Replaced at each flush.
	recent atomic.Pointer[recentExposures]

	wake     chan struct{}      // FlushAt events wait
	flushNow chan chan struct{} // FlushEvents: flush now, then close the channel
	done     chan struct{}
	stop     chan struct{} // closed by close: flush once more and end
	// exportCtx is what exports run under. It is not ended by close, but
	// when close's budget is spent: an export under way when the client
	// closes finishes (and may retry) within that budget, rather than
	// being cut short and its batch lost.
	exportCtx    context.Context
	cancelExport context.CancelFunc
	closeCtx     context.Context // the last flush's: close's budget, set by close before stop
	last         int64           // the previous summary's end, Unix ms; flusher only
}

// recentExposures is a 4-way set-associative table of hashes of (flag,
// version, variation, context key): 1,024 sets of 4 slots. A hash is looked
// for in its set; a new one takes an empty slot, or when there is none one
// chosen by its top bits, so a few hashes sharing a set do not evict each
// other at every evaluation.
// 32 KiB: it stays in the first-level cache.
type recentExposures [1 << 10][4]atomic.Uint64

// newEvents starts a pipeline to exp.
func newEvents(exp Exporter, o EventOptions, logger interface{ Warn(string, ...any) }) *events {
	o.Capacity = cmp.Or(o.Capacity, DefaultEventCapacity)
	o.FlushInterval = cmp.Or(o.FlushInterval, DefaultEventFlushInterval)
	o.FlushAt = cmp.Or(o.FlushAt, DefaultEventFlushAt)
	o.RetryDelay = cmp.Or(o.RetryDelay, time.Second)
	o.CloseTimeout = cmp.Or(o.CloseTimeout, 5*time.Second)
	ev := &events{exp: exp, opts: o, log: logger, buf: make([]pendingEvent, 0, o.Capacity),
		wake: make(chan struct{}, 1), flushNow: make(chan chan struct{}),
		done: make(chan struct{}), stop: make(chan struct{}), closeCtx: context.Background()}
	ev.exportCtx, ev.cancelExport = context.WithCancel(context.Background())
	ev.last = time.Now().UnixMilli()
	ev.recent.Store(new(recentExposures))
	go ev.run()
	return ev
}

// evaluated records an evaluation of f in snap that served variation v (-1:
// the default) with rollout bits: a summary count, and an exposure when f
// is tracked or the rollout is an experiment. It does not allocate.
func (ev *events) evaluated(snap *eval.Snapshot, f *eval.Flag, v int32, rollout uint8, ec *Context) {
	ev.counts.count(snap, f, v)
	if v < 0 || !(f.Tracked || rollout&bitInExperiment != 0) || ec.key == "" || ec.attrs == nil {
		return
	}
	h := ec.attrs.keyHash ^ (uint64(f.Node())<<32|uint64(uint32(v)))*0x9e3779b97f4a7c15 ^ uint64(f.Version)*0xc2b2ae3d27d4eb4f
	set := &ev.recent.Load()[h&(uint64(len(recentExposures{}))-1)]
	way := int(h >> 62) // evicted when the set is full
	for i := range set {
		switch set[i].Load() {
		case h:
			return // recorded in this interval already
		case 0:
			way = i
		}
	}
	set[way].Store(h)
	ev.add(pendingEvent{kind: 1, inRollout: rollout&bitInRollout != 0, variation: v, at: time.Now().UnixMilli(), // a first exposure in the interval: repeats never get here
		version: f.Version, flag: f.Key, contextKey: ec.key})
}

// add buffers e, or counts it dropped when the buffer is full.
func (ev *events) add(e pendingEvent) {
	ev.mu.Lock()
	if ev.stopped || len(ev.buf) == cap(ev.buf) {
		ev.dropped++
		ev.droppedTotal.Add(1)
		ev.mu.Unlock()
		return
	}
	ev.buf = append(ev.buf, e)
	full := len(ev.buf) >= ev.opts.FlushAt
	ev.mu.Unlock()
	if full {
		select {
		case ev.wake <- struct{}{}:
		default:
		}
	}
}

// snapshot switches the summary counters to snap, keeping the old counts
// for the next summary.
func (ev *events) snapshot(snap *eval.Snapshot) { ev.counts.rebind(snap) }

// run flushes every FlushInterval, when FlushAt events wait, and once more
// when stopped (Close).
func (ev *events) run() {
	defer close(ev.done)
	flush := time.NewTicker(ev.opts.FlushInterval)
	defer flush.Stop()
	ctx := ev.exportCtx
	for {
		select {
		case <-ev.stop:
			ev.flush(ev.closeCtx, false) // set before stop was closed
			return
		case <-flush.C:
			ev.flush(ctx, false)
		case <-ev.wake:
			ev.flush(ctx, true)
		case reply := <-ev.flushNow:
			ev.flush(ctx, false)
			close(reply)
		}
	}
}

// flush sends what is buffered, the summary and the drop count. early is
// set for a flush because FlushAt events wait: the interval goes on, and
// repeats inside it stay dropped.
func (ev *events) flush(ctx context.Context, early bool) {
	now := time.Now().UnixMilli()
	ev.mu.Lock()
	if !early {
		ev.recent.Store(new(recentExposures)) // a new interval: repeats count again
	}
	pending := ev.buf
	if ev.spare == nil {
		ev.spare = make([]pendingEvent, 0, ev.opts.Capacity)
	}
	ev.buf, ev.spare = ev.spare[:0], nil
	counts := ev.counts.drain()
	dropped := ev.dropped
	ev.dropped = 0
	stopped := ev.stopped
	ev.mu.Unlock()
	if stopped {
		return
	}
	batch := &EventBatch{ID: batchID(), Events: make([]Event, 0, len(pending)+1)}
	type exposureKey struct {
		flag, contextKey string
		version          int64
		variation        int32
	}
	seen := map[exposureKey]bool{} // repeats inside one interval are sent once (SPEC §7)
	for _, p := range pending {
		switch p.kind {
		case 1:
			k := exposureKey{p.flag, p.contextKey, p.version, p.variation}
			if seen[k] {
				continue
			}
			seen[k] = true
			v := int(p.variation)
			batch.Events = append(batch.Events, Event{Kind: EventExposure, At: p.at, Flag: p.flag, Version: p.version,
				Variation: &v, ContextKey: p.contextKey, InRollout: p.inRollout})
		case 2:
			e := Event{Kind: EventTrack, At: p.at, Name: p.flag, ContextKey: p.contextKey}
			if p.hasValue {
				x := p.value
				e.Value = &x
			}
			batch.Events = append(batch.Events, e)
		}
	}
	if len(counts) > 0 || dropped > 0 {
		s := Event{Kind: EventSummary, Start: ev.last, End: now, Counters: []SummaryCounter{}, Dropped: dropped}
		for k, n := range counts {
			c := SummaryCounter{Flag: k.flag, Version: k.version, Count: n}
			if k.variation >= 0 {
				v := int(k.variation)
				c.Variation = &v
			}
			s.Counters = append(s.Counters, c)
		}
		batch.Events = append(batch.Events, s)
	}
	ev.last = now
	clear(pending) // drop the strings it holds
	ev.mu.Lock()
	ev.spare = pending[:0]
	ev.mu.Unlock()
	if len(batch.Events) == 0 {
		return
	}
	ev.send(ctx, batch)
}

// send exports b, retrying once after RetryDelay; a batch that cannot be
// delivered is counted in the next summary's dropped.
func (ev *events) send(ctx context.Context, b *EventBatch) {
	err := ev.exp.Export(ctx, b)
	final := errors.Is(err, ErrEventsUnauthorized) || errors.Is(err, ErrEventsUnsupported)
	if err != nil && !errors.Is(err, ErrEventsRejected) && !final {
		t := time.NewTimer(ev.opts.RetryDelay)
		select {
		case <-t.C:
			err = ev.exp.Export(ctx, b)
		case <-ctx.Done():
		}
		t.Stop()
	}
	if err == nil {
		return
	}
	lost := int64(0)
	for _, e := range b.Events {
		if e.Kind != EventSummary {
			lost++
		}
	}
	ev.droppedTotal.Add(lost)
	ev.mu.Lock()
	ev.dropped += lost
	if final {
		ev.stopped = true
		ev.buf = ev.buf[:0]
	}
	ev.mu.Unlock()
	ev.log.Warn("flags: events not delivered", "events", lost, "err", err)
}

// FlushEvents sends the events recorded so far now, and returns when the
// exporter has them (or failed, after its one retry), or when ctx is done.
// Tests use it before asserting what was sent; services need not: events
// are sent every FlushInterval and by Close.
func (c *Client) FlushEvents(ctx context.Context) error {
	ev := c.events
	if ev == nil {
		return nil
	}
	reply := make(chan struct{})
	select {
	case ev.flushNow <- reply:
	case <-ev.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close flushes what is left (within CloseTimeout and ctx) and stops. An
// export already under way goes on within the same budget.
func (ev *events) close(ctx context.Context) {
	budget, cancel := context.WithTimeout(ctx, ev.opts.CloseTimeout)
	defer cancel()
	stopExports := context.AfterFunc(budget, ev.cancelExport)
	defer stopExports()
	defer ev.cancelExport()
	ev.closeCtx = budget
	close(ev.stop)
	<-ev.done
}

// batchID returns a random batch id of 32 hex characters.
func batchID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Track records a track event: context ec did something the metric name
// counts (SPEC §7), with an optional value (the first one given; without
// one the event counts 1). Experiments and guards compare the metric
// between the variations units were served. It never blocks: with events
// off or the buffer full, the event is dropped (and counted).
func (c *Client) Track(ctx context.Context, name string, ec Context, value ...float64) {
	ev := c.events
	if ev == nil || name == "" || ec.key == "" {
		return
	}
	p := pendingEvent{kind: 2, at: time.Now().UnixMilli(), flag: name, contextKey: ec.key}
	if len(value) > 0 {
		p.hasValue, p.value = true, value[0]
	}
	ev.add(p)
}

// jsonLinesExporter writes each event as a line of JSON.
type jsonLinesExporter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSONLinesExporter returns an Exporter that writes every event to w as
// one line of JSON (SPEC §7's shape), for programs without a flagstream
// server: pipe them to your own analytics.
func NewJSONLinesExporter(w io.Writer) Exporter { return &jsonLinesExporter{w: w} }

func (j *jsonLinesExporter) Export(_ context.Context, b *EventBatch) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var buf []byte
	for _, e := range b.Events {
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrEventsRejected, err)
		}
		buf = append(append(buf, line...), '\n')
	}
	_, err := j.w.Write(buf)
	return err
}
