package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventsDoc: a tracked flag, an experiment rollout, a guarded flag, a
// plain one, and one that is off with no off variation (the default).
const eventsDoc = `{"version": 3, "flags": {
  "tracked": {"version": 2, "on": true, "variations": [false, true], "fallthrough": {"variation": 1}, "trackEvents": true},
  "exp": {"version": 5, "on": true, "variations": ["a", "b"],
    "fallthrough": {"rollout": {"experiment": true, "variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}},
  "guarded": {"on": true, "variations": [false, true],
    "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
    "guard": {"metric": "errors", "better": "lower", "control": 0, "treatment": 1}},
  "plain": {"on": true, "variations": [false, true], "fallthrough": {"variation": 1}},
  "split": {"version": 5, "on": true, "variations": ["a", "b"],
    "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}},
  "dark": {"on": false, "variations": [false, true], "fallthrough": {"variation": 1}}}}`

// recorder is an Exporter that keeps batches, failing as told.
type recorder struct {
	mu      sync.Mutex
	batches []*EventBatch
	calls   []string // batch ids, one per Export call
	fail    []error  // errors for the next calls
}

func (r *recorder) Export(_ context.Context, b *EventBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, b.ID)
	if len(r.fail) > 0 {
		err := r.fail[0]
		r.fail = r.fail[1:]
		if err != nil {
			return err
		}
	}
	r.batches = append(r.batches, b)
	return nil
}

func (r *recorder) events(kind string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, b := range r.batches {
		for _, e := range b.Events {
			if e.Kind == kind {
				out = append(out, e)
			}
		}
	}
	return out
}

func flush(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.FlushEvents(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestExposuresAndSummaries evaluates every flag of eventsDoc for ten
// contexts and tracks three events, then checks what one flush exports.
func TestExposuresAndSummaries(t *testing.T) {
	rec := recordEventsScenario(t)
	t.Run("exposures", func(t *testing.T) { checkExposures(t, rec.events(EventExposure)) })
	t.Run("track events", func(t *testing.T) { checkTrackEvents(t, rec.events(EventTrack)) })
	t.Run("summary", func(t *testing.T) { checkSummary(t, rec.events(EventSummary)) })
}

// recordEventsScenario evaluates each flag of eventsDoc (and a missing one)
// for ten contexts, tracked twice, tracks three events and flushes once.
func recordEventsScenario(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{}
	c := newTestClient(t, eventsDoc, WithEventExporter(rec), WithEventOptions(EventOptions{FlushInterval: time.Hour}))
	ctx := context.Background()
	for i := range 10 {
		u := NewContext(fmt.Sprintf("u%d", i)).Build()
		c.Bool(ctx, "tracked", u, false)
		c.Bool(ctx, "tracked", u, false) // a repeat in the same interval: one exposure
		c.StringDetail(ctx, "exp", u, "")
		c.Bool(ctx, "guarded", u, false)
		c.Bool(ctx, "plain", u, false)
		c.Bool(ctx, "dark", u, false)
		c.Bool(ctx, "missing", u, false)
	}
	c.Track(ctx, "errors", NewContext("u1").Build())
	c.Track(ctx, "revenue", NewContext("u2").Build(), 12.5, 99)
	c.Track(ctx, "errors", NewContext("").Build()) // no key: no unit
	flush(t, c)
	return rec
}

// checkExposures: one exposure per context of the tracked flag, the
// experiment and the guarded flag, none of the others.
func checkExposures(t *testing.T, exposures []Event) {
	t.Helper()
	byFlag := map[string][]Event{}
	for _, e := range exposures {
		byFlag[e.Flag] = append(byFlag[e.Flag], e)
		if e.At == 0 || e.ContextKey == "" || e.Variation == nil {
			t.Errorf("exposure without time, key or variation: %+v", e)
		}
	}
	if n := len(byFlag["tracked"]); n != 10 {
		t.Errorf("%d exposures of tracked, want 10 (one per context)", n)
	}
	if e := byFlag["tracked"][0]; e.Version != 2 || e.InRollout || *e.Variation != 1 {
		t.Errorf("tracked exposure %+v", e)
	}
	if n := len(byFlag["exp"]); n != 10 || !byFlag["exp"][0].InRollout {
		t.Errorf("%d exposures of the experiment (inRollout %v), want 10, true", n, n > 0 && byFlag["exp"][0].InRollout)
	}
	if n := len(byFlag["guarded"]); n != 10 {
		t.Errorf("%d exposures of the guarded flag, want 10", n)
	}
	if len(byFlag["plain"])+len(byFlag["dark"])+len(byFlag["missing"])+len(byFlag["split"]) != 0 {
		t.Errorf("exposures of untracked flags: %v", byFlag)
	}
}

// checkTrackEvents: the two tracked events with a context key, the second
// with its value.
func checkTrackEvents(t *testing.T, tracks []Event) {
	t.Helper()
	if len(tracks) != 2 || tracks[0].Name != "errors" || tracks[0].Value != nil || *tracks[1].Value != 12.5 {
		t.Errorf("track events %+v", tracks)
	}
}

// checkSummary: one summary counting every evaluation by flag, version and
// variation (the default for a flag off without an off variation).
func checkSummary(t *testing.T, sums []Event) {
	t.Helper()
	if len(sums) != 1 {
		t.Fatalf("%d summaries, want 1", len(sums))
	}
	counts := map[string]int64{}
	for _, cn := range sums[0].Counters {
		v := "default"
		if cn.Variation != nil {
			v = fmt.Sprint(*cn.Variation)
		}
		counts[fmt.Sprintf("%s@%d:%s", cn.Flag, cn.Version, v)] += cn.Count
	}
	want := map[string]int64{"tracked@2:1": 20, "plain@0:1": 10, "dark@0:default": 10}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("summary %s = %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	if counts["exp@5:0"]+counts["exp@5:1"] != 10 || counts["guarded@0:0"]+counts["guarded@0:1"] != 10 {
		t.Errorf("summary of rollouts: %v", counts)
	}
	if sums[0].End < sums[0].Start || sums[0].Dropped != 0 {
		t.Errorf("summary interval %d..%d dropped %d", sums[0].Start, sums[0].End, sums[0].Dropped)
	}
}

func TestEventsDroppedAndCounted(t *testing.T) {
	rec := &recorder{}
	c := newTestClient(t, eventsDoc, WithEventExporter(rec), WithEventOptions(EventOptions{Capacity: 3, FlushAt: 100, FlushInterval: time.Hour}))
	for i := range 5 {
		c.Track(context.Background(), "m", NewContext(fmt.Sprintf("u%d", i)).Build())
	}
	flush(t, c)
	if n := len(rec.events(EventTrack)); n != 3 {
		t.Errorf("%d track events sent, want the 3 the buffer holds", n)
	}
	if s := rec.events(EventSummary); len(s) != 1 || s[0].Dropped != 2 {
		t.Errorf("summaries %+v, want one with dropped 2", s)
	}
}

func TestEventsRetryAndStop(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{fail: []error{errors.New("connection refused")}}
	c := newTestClient(t, eventsDoc, WithEventExporter(rec), WithEventOptions(EventOptions{FlushInterval: time.Hour, RetryDelay: time.Millisecond}))
	c.Track(ctx, "m", NewContext("u").Build())
	flush(t, c)
	if len(rec.calls) != 2 || rec.calls[0] != rec.calls[1] || len(rec.calls[0]) < 16 {
		t.Errorf("calls %q, want one retry of the same batch id", rec.calls)
	}
	// Failing twice: dropped, and counted in the next summary.
	rec.fail = []error{errors.New("503"), errors.New("503")}
	c.Track(ctx, "m", NewContext("u").Build())
	flush(t, c)
	c.Track(ctx, "m", NewContext("u").Build())
	flush(t, c)
	if s := rec.events(EventSummary); len(s) != 1 || s[0].Dropped != 1 {
		t.Errorf("summaries %+v, want one reporting the dropped event", s)
	}
	// Rejected: not retried.
	before := len(rec.calls)
	rec.fail = []error{fmt.Errorf("%w: 400", ErrEventsRejected)}
	c.Track(ctx, "m", NewContext("u").Build())
	flush(t, c)
	if len(rec.calls) != before+1 {
		t.Errorf("a rejected batch was retried: %d calls", len(rec.calls)-before)
	}
	// Unsupported (a server without POST /v1/events) stops them too.
	rec2 := &recorder{fail: []error{fmt.Errorf("%w: 404", ErrEventsUnsupported)}}
	c2 := newTestClient(t, eventsDoc, WithEventExporter(rec2), WithEventOptions(EventOptions{FlushInterval: time.Hour, RetryDelay: time.Millisecond}))
	c2.Track(ctx, "m", NewContext("u").Build())
	flush(t, c2)
	c2.Track(ctx, "m", NewContext("u").Build())
	flush(t, c2)
	if len(rec2.calls) != 1 {
		t.Errorf("%d exports after a 404, want the one", len(rec2.calls))
	}
	// Unauthorized: no more events are sent.
	rec.fail = []error{fmt.Errorf("%w: 401", ErrEventsUnauthorized)}
	c.Track(ctx, "m", NewContext("u").Build())
	flush(t, c)
	before = len(rec.calls)
	c.Track(ctx, "m", NewContext("u").Build())
	c.Bool(ctx, "tracked", NewContext("u").Build(), false)
	flush(t, c)
	if len(rec.calls) != before {
		t.Errorf("events sent after a 401")
	}
}

func TestCloseFlushesEvents(t *testing.T) {
	rec := &recorder{}
	c, err := New(WithDocument([]byte(eventsDoc)), WithEventExporter(rec), WithEventOptions(EventOptions{FlushInterval: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	c.Track(context.Background(), "m", NewContext("u").Build())
	c.Close()
	if len(rec.events(EventTrack)) != 1 {
		t.Error("Close did not send the event")
	}
}

// stalledExporter is a destination that never answers: an Export returns
// when its context ends.
type stalledExporter struct{ ended chan error }

func (e stalledExporter) Export(ctx context.Context, _ *EventBatch) error {
	<-ctx.Done()
	e.ended <- ctx.Err()
	return ctx.Err()
}

// TestShutdownBoundsTheLastFlush: Shutdown gives the events left until its
// context ends, not the whole CloseTimeout, and says so; the client is
// closed all the same.
func TestShutdownBoundsTheLastFlush(t *testing.T) {
	exp := stalledExporter{ended: make(chan error, 1)}
	c, err := New(WithDocument([]byte(eventsDoc)), WithEventExporter(exp),
		WithEventOptions(EventOptions{FlushInterval: time.Hour, CloseTimeout: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	c.Track(context.Background(), "m", NewContext("u").Build())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's deadline", err)
	}
	select {
	case err := <-exp.ended:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the last export ended with %v, want the Shutdown context's deadline", err)
		}
	default:
		t.Error("Shutdown returned before the last export ended")
	}
	if c.Status().State != StateClosed {
		t.Errorf("state after Shutdown %s, want %s", c.Status().State, StateClosed)
	}
}

func TestEventsOff(t *testing.T) {
	rec := &recorder{}
	c := newTestClient(t, eventsDoc, WithEventExporter(rec), WithEvents(false))
	c.Track(context.Background(), "m", NewContext("u").Build())
	c.Bool(context.Background(), "tracked", NewContext("u").Build(), false)
	if c.events != nil || c.FlushEvents(context.Background()) != nil || len(rec.calls) != 0 {
		t.Error("events sent with WithEvents(false)")
	}
	if c := newTestClient(t, eventsDoc); c.events != nil {
		t.Error("a document source without an exporter has an event pipeline")
	}
}

func TestJSONLinesExporter(t *testing.T) {
	var buf bytes.Buffer
	c := newTestClient(t, eventsDoc, WithEventExporter(NewJSONLinesExporter(&buf)), WithEventOptions(EventOptions{FlushInterval: time.Hour}))
	c.Bool(context.Background(), "tracked", NewContext("ann").Build(), false)
	c.Track(context.Background(), "clicks", NewContext("ann").Build(), 2)
	flush(t, c)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var kinds []string
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		kinds = append(kinds, e["kind"].(string))
	}
	sort.Strings(kinds)
	if strings.Join(kinds, ",") != "exposure,summary,track" {
		t.Errorf("lines %q", lines)
	}
	if !strings.Contains(buf.String(), `{"kind":"exposure","at":`) || !strings.Contains(buf.String(), `"flag":"tracked","version":2,"variation":1,"contextKey":"ann","inRollout":false}`) {
		t.Errorf("exposure line not in SPEC §7's shape: %s", buf.String())
	}
}

// discard is an Exporter that drops everything.
type discard struct{}

func (discard) Export(context.Context, *EventBatch) error { return nil }

// BenchmarkTrackedEvaluation compares a flag that records an exposure
// with the same flag untracked, both with events on.
func BenchmarkTrackedEvaluation(b *testing.B) {
	c, err := New(WithDocument([]byte(eventsDoc)), WithEventExporter(discard{}))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	users := make([]Context, 1024)
	for i := range users {
		users[i] = NewContext(fmt.Sprintf("user-%d", i)).Build()
	}
	// A constant flag, untracked and tracked; a 50/50 rollout, plain and
	// as an experiment (which records exposures).
	for _, key := range []string{"plain", "tracked", "split", "exp"} {
		b.Run(key, func(b *testing.B) {
			b.ReportAllocs()
			if key == "split" || key == "exp" {
				for i := 0; i < b.N; i++ {
					_ = c.String(ctx, key, users[i%len(users)], "")
				}
				return
			}
			for i := 0; i < b.N; i++ {
				_ = c.Bool(ctx, key, users[i%len(users)], false)
			}
		})
	}
}

// slowExporter takes delay to export a batch (or until its context ends),
// and signals started when it begins.
type slowExporter struct {
	delay   time.Duration
	started chan struct{}
	mu      sync.Mutex
	got     int
}

func (e *slowExporter) Export(ctx context.Context, b *EventBatch) error {
	select {
	case e.started <- struct{}{}:
	default:
	}
	select {
	case <-time.After(e.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	e.got += len(b.Events)
	e.mu.Unlock()
	return nil
}

// TestCloseLetsAnExportFinish: Close while a batch is being exported lets
// that export finish within CloseTimeout; it used to cancel it, and the
// batch was lost.
func TestCloseLetsAnExportFinish(t *testing.T) {
	exp := &slowExporter{delay: 200 * time.Millisecond, started: make(chan struct{}, 1)}
	c, err := New(WithDocument([]byte(eventsDoc)), WithEventExporter(exp), WithLogger(slog.New(slog.DiscardHandler)),
		WithEventOptions(EventOptions{FlushAt: 10, FlushInterval: time.Hour, CloseTimeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		c.Track(context.Background(), "m", NewContext("u").Build())
	}
	<-exp.started // the FlushAt batch is on its way
	c.Close()
	exp.mu.Lock()
	defer exp.mu.Unlock()
	if exp.got != 10 {
		t.Errorf("%d events delivered, want the 10 of the batch under way at Close", exp.got)
	}
	if n := c.Metrics().EventsDropped; n != 0 {
		t.Errorf("%d events dropped", n)
	}
}

// TestWrongTypeIsNoExposure: a getter that cannot return the variation
// evaluated (a Bool of a string flag, an Int of a fraction) serves the
// caller's default (SPEC §3 step 8): the user never got the variation, so
// no exposure is recorded and the summary counts the default.
func TestWrongTypeIsNoExposure(t *testing.T) {
	doc := `{"flags": {
	  "exp": {"version": 5, "on": true, "variations": ["a", "b"],
	    "fallthrough": {"rollout": {"experiment": true, "variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}},
	  "ratio": {"version": 2, "on": true, "variations": [0.5, 2], "fallthrough": {"variation": 0}, "trackEvents": true}}}`
	rec := &recorder{}
	c := newTestClient(t, doc, WithEventExporter(rec), WithEventOptions(EventOptions{FlushInterval: time.Hour}), WithMetrics())
	ctx, u := context.Background(), NewContext("alice").Build()
	c.Bool(ctx, "exp", u, false)
	c.BoolDetail(ctx, "exp", u, false)
	c.Int(ctx, "exp", u, 7)
	c.Int(ctx, "ratio", u, 7)
	c.IntDetail(ctx, "ratio", u, 7)
	flush(t, c)
	if got := rec.events(EventExposure); len(got) != 0 {
		t.Errorf("exposures recorded for variations never served: %+v", got)
	}
	for _, e := range c.Metrics().Evaluations {
		if e.Variation != -1 {
			t.Errorf("Metrics counts variation %d of %s, which was never served", e.Variation, e.Flag)
		}
	}
	// The getters that can return them record as before.
	c.String(ctx, "exp", u, "")
	c.Float(ctx, "ratio", u, 0)
	flush(t, c)
	if got := rec.events(EventExposure); len(got) != 2 {
		t.Errorf("exposures of served variations: %+v, want 2", got)
	}
}
