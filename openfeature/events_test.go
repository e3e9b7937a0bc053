package openfeature

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
)

// script is a flags.Source the test drives through its Updates: documents
// applied, failures and recoveries, when the test says.
type script struct {
	started chan struct{}
	u       flags.Updates
}

func (s *script) Run(ctx context.Context, u flags.Updates) error {
	s.u = u
	close(s.started)
	<-ctx.Done()
	return nil
}

// initialized is scripted with a first document applied, and a provider
// over its client, initialized (and shut down when the test ends).
func initialized(t *testing.T) (*flags.Client, flags.Updates, *Provider) {
	t.Helper()
	fc, u := scripted(t)
	apply(t, u, 0, "stream")
	p := New(fc)
	t.Cleanup(p.Shutdown)
	if err := p.InitWithContext(context.Background(), of.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	return fc, u, p
}

// scripted returns a client over a script and the script's Updates. The
// client is closed by t.Cleanup.
func scripted(t *testing.T) (*flags.Client, flags.Updates) {
	t.Helper()
	s := &script{started: make(chan struct{})}
	c, err := flags.New(flags.WithSource(s), flags.WithLogger(slog.New(slog.DiscardHandler)), flags.WithEvents(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	select {
	case <-s.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the source did not start")
	}
	return c, s.u
}

// apply applies a document holding flag "a" and flags f1 to fn (each
// apply with one more flag changes that one flag), from origin.
func apply(t *testing.T, u flags.Updates, n int, origin string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"flags": {"a": {"on": true, "variations": [true], "fallthrough": {"variation": 0}}`)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `, "f%d": {"on": true, "variations": [true], "fallthrough": {"variation": 0}}`, i)
	}
	b.WriteString(`}}`)
	doc, err := rules.ParseDocument([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Apply(doc, origin); err != nil {
		t.Fatal(err)
	}
}

// keys returns "f1" to "fn".
func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("f%d", i+1)
	}
	slices.Sort(out)
	return out
}

// readEvents reads p's events until done says the ones read are all it
// expects, failing the test after 5 s.
func readEvents(t *testing.T, p *Provider, done func([]of.Event) bool) []of.Event {
	t.Helper()
	var evs []of.Event
	timeout := time.After(5 * time.Second)
	for !done(evs) {
		select {
		case ev := <-p.EventChannel():
			evs = append(evs, ev)
		case <-timeout:
			t.Fatalf("events after 5 s: %s", describe(evs))
		}
	}
	return evs
}

// summary is what a list of events reports: the union of the changed
// keys, the last state, and whether a change came after that state.
func summary(evs []of.Event) (changed []string, last of.EventType) {
	for _, ev := range evs {
		if ev.EventType == of.ProviderConfigChange {
			changed = union(changed, ev.FlagChanges)
		} else {
			last = ev.EventType
		}
	}
	return changed, last
}

func describe(evs []of.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(string(ev.EventType))
		if n := len(ev.FlagChanges); n > 0 {
			fmt.Fprintf(&b, "(%d keys: %s…%s)", n, ev.FlagChanges[0], ev.FlagChanges[n-1])
		}
		b.WriteString(" ")
	}
	return b.String()
}

// TestNoEventDropped: behind an SDK that does not read, no event is lost:
// 201 changes are merged into CONFIGURATION_CHANGED events holding every
// changed key, and the states (STALE, READY, STALE: a failure, a recovery,
// a change and a failure) are reported in order, the one that lasts last.
// (Events were dropped once 64 were pending: changes lost, and a READY or
// STALE lost for good, OpenFeature's state left behind the client's.)
func TestNoEventDropped(t *testing.T) {
	_, u, p := initialized(t)
	for n := 1; n <= 200; n++ {
		apply(t, u, n, "stream")
	}
	u.Failed("stream", errors.New("connection reset"), false)
	u.Healthy("stream")
	apply(t, u, 201, "stream")
	u.Failed("stream", errors.New("connection reset again"), false)

	want := keys(201)
	evs := readEvents(t, p, func(evs []of.Event) bool {
		changed, last := summary(evs)
		return slices.Equal(changed, want) && last == of.ProviderStale
	})
	t.Logf("events: %s", describe(evs))
	var states []of.EventType
	for _, ev := range evs {
		if ev.EventType != of.ProviderConfigChange {
			states = append(states, ev.EventType)
		}
	}
	if want := []of.EventType{of.ProviderStale, of.ProviderReady, of.ProviderStale}; !slices.Equal(states, want) || len(evs) > 6 {
		t.Errorf("events %s; want the changes merged into few CONFIGURATION_CHANGED, and the states %v in order", describe(evs), want)
	}
	select {
	case ev := <-p.EventChannel():
		t.Errorf("one more event after STALE: %s", describe([]of.Event{ev}))
	case <-time.After(50 * time.Millisecond):
	}
}

// TestEventQueueFolds: states that alternate with changes (a cache
// document, STALE, then a streamed one, READY, a hundred times) behind an
// SDK that does not read are folded: every changed key, the latest state,
// and a bounded number of events.
func TestEventQueueFolds(t *testing.T) {
	_, u, p := initialized(t)
	for n := 1; n <= 200; n++ {
		origin := "stream"
		if n%2 == 1 {
			origin = flags.OriginCache
		}
		apply(t, u, n, origin)
	}
	apply(t, u, 201, flags.OriginCache)
	want := keys(201)
	evs := readEvents(t, p, func(evs []of.Event) bool {
		changed, last := summary(evs)
		return slices.Equal(changed, want) && last == of.ProviderStale
	})
	t.Logf("events: %s", describe(evs))
	if len(evs) > maxQueued+3 {
		t.Errorf("%d events: %s", len(evs), describe(evs))
	}
}

// TestBurstThroughOpenFeature: through OpenFeature's handlers, a burst of
// changes then a failure and a recovery: handlers see every changed key,
// and OpenFeature's state ends as the client's, READY.
func TestBurstThroughOpenFeature(t *testing.T) {
	fc, u := scripted(t)
	apply(t, u, 0, "stream")
	api := newAPI(t)
	var mu sync.Mutex
	var changed []string
	onChange := of.EventCallback(ptr(func(d of.EventDetails) {
		mu.Lock()
		changed = union(changed, d.FlagChanges)
		mu.Unlock()
	}))
	api.AddHandler(of.ProviderConfigChange, onChange)
	if err := api.SetProviderAndWait(context.Background(), New(fc)); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 150; n++ {
		apply(t, u, n, "stream")
	}
	u.Failed("stream", errors.New("connection reset"), false)
	u.Healthy("stream")
	c := api.NewClient()
	want := keys(150)
	waitUntil(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(changed, want) && c.State() == of.ReadyState
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("%d of 150 changed keys seen, state %s (client %s)", len(changed), c.State(), fc.Status().State)
	})
}

func ptr[T any](v T) *T { return &v }

// waitUntil waits up to 5 s for cond, then fails with what says.
func waitUntil(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: %s", what())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestInitFatal: a client whose token was refused before its first
// snapshot (FATAL) fails Init with a ProviderInitError of PROVIDER_FATAL:
// OpenFeature reports PROVIDER_ERROR and puts the provider in FATAL, and
// evaluations answer PROVIDER_FATAL. (Init returned a plain error: ERROR,
// which OpenFeature takes as transient, and evaluations answered
// PROVIDER_NOT_READY for the life of the process.)
func TestInitFatal(t *testing.T) {
	fc, u := scripted(t)
	u.Failed("stream", errors.New("401 unauthorized: token refused"), true)
	api := newAPI(t)
	var errorEvents atomic.Int32
	api.AddHandler(of.ProviderError, ptr(func(of.EventDetails) { errorEvents.Add(1) }))
	err := api.SetProviderAndWait(context.Background(), New(fc))
	var initErr *of.ProviderInitError
	if !errors.As(err, &initErr) || initErr.ErrorCode != of.ProviderFatalCode || !strings.Contains(initErr.Message, "token refused") {
		t.Fatalf("SetProviderAndWait: %v; want a ProviderInitError of PROVIDER_FATAL saying why", err)
	}
	c := api.NewClient()
	if st := c.State(); st != of.FatalState {
		t.Errorf("state %s, want FATAL", st)
	}
	d, _ := c.BooleanValueDetails(context.Background(), "a", true, user("ann", nil))
	if d.ErrorCode != of.ProviderFatalCode || !d.Value {
		t.Errorf("evaluation: code %s value %v, want PROVIDER_FATAL and the default", d.ErrorCode, d.Value)
	}
	waitUntil(t, func() bool { return errorEvents.Load() == 1 }, func() string {
		return fmt.Sprintf("%d PROVIDER_ERROR events, want 1", errorEvents.Load())
	})
}

// TestBoundTwice: a provider bound to two domains (OpenFeature initializes
// it twice) reports each change and each state once. (Each Init registered
// its own listeners: every CONFIGURATION_CHANGED came twice.)
func TestBoundTwice(t *testing.T) {
	fc, u := scripted(t)
	apply(t, u, 0, "stream")
	api := newAPI(t)
	var changes, stale atomic.Int32
	api.AddHandler(of.ProviderConfigChange, ptr(func(of.EventDetails) { changes.Add(1) }))
	api.AddHandler(of.ProviderStale, ptr(func(of.EventDetails) { stale.Add(1) }))
	p := New(fc)
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if err := api.SetProviderAndWait(context.Background(), p, of.WithDomain("checkout")); err != nil {
		t.Fatal(err)
	}
	apply(t, u, 1, "stream")
	u.Failed("stream", errors.New("connection reset"), false)
	waitUntil(t, func() bool { return changes.Load() >= 1 && stale.Load() >= 1 }, func() string {
		return fmt.Sprintf("%d CONFIGURATION_CHANGED, %d STALE", changes.Load(), stale.Load())
	})
	time.Sleep(initSettle + 100*time.Millisecond) // time for a second one to come
	if changes.Load() != 1 || stale.Load() != 1 {
		t.Errorf("one change and one failure: %d CONFIGURATION_CHANGED and %d STALE handler calls, want 1 and 1", changes.Load(), stale.Load())
	}
	for _, c := range []*of.Client{api.NewClient(), api.NewClient(of.WithDomain("checkout"))} {
		if st := c.State(); st != of.StaleState {
			t.Errorf("domain %q: state %s, want STALE", c.Metadata().Domain(), st)
		}
	}
}

// TestInitTwiceListensOnce: Init called twice (a provider bound to two
// domains) reports a change once, even when the SDK takes the first report
// before a second registration of the listeners could have been merged
// into it: a listener of the test's, registered between the two Inits,
// reads the event. (Each Init registered its own listeners.)
func TestInitTwiceListensOnce(t *testing.T) {
	fc, u, p := initialized(t)
	first := make(chan of.Event, 1)
	fc.OnChange(func(flags.Change) {
		select {
		case ev := <-p.EventChannel():
			first <- ev
		case <-time.After(5 * time.Second):
			close(first)
		}
	})
	if err := p.InitWithContext(context.Background(), of.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	apply(t, u, 1, "stream")
	if ev, ok := <-first; !ok || ev.EventType != of.ProviderConfigChange {
		t.Fatalf("first event %v (%v), want CONFIGURATION_CHANGED", ev.EventType, ok)
	}
	select {
	case ev := <-p.EventChannel():
		t.Errorf("a second event for one change: %s %v", ev.EventType, ev.FlagChanges)
	case <-time.After(initSettle + 100*time.Millisecond):
	}
}

// TestInitReportsTheClientsState: Init's result and the events after it
// report the state the client is in, whenever it got there: a client
// serving flags from a cache, or whose source fails, is STALE right after
// Init (OpenFeature said READY until the source's next failure, up to a
// poll interval later); one whose token was refused after it had flags is
// FATAL (OpenFeature said READY for good).
func TestInitReportsTheClientsState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*testing.T, flags.Updates)
		want  of.State
	}{
		{"flags from a cache", func(t *testing.T, u flags.Updates) { apply(t, u, 0, flags.OriginCache) }, of.StaleState},
		{"source failing", func(t *testing.T, u flags.Updates) {
			apply(t, u, 0, "stream")
			u.Failed("stream", errors.New("connection reset"), false)
		}, of.StaleState},
		{"source refused after the first flags", func(t *testing.T, u flags.Updates) {
			apply(t, u, 0, "stream")
			u.Failed("stream", errors.New("401 unauthorized: token revoked"), true)
		}, of.FatalState},
		{"source healthy", func(t *testing.T, u flags.Updates) { apply(t, u, 0, "stream") }, of.ReadyState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, u := scripted(t)
			tc.setup(t, u)
			api := newAPI(t)
			err := api.SetProviderAndWait(context.Background(), New(fc))
			var initErr *of.ProviderInitError
			if fatal := errors.As(err, &initErr) && initErr.ErrorCode == of.ProviderFatalCode; fatal != (tc.want == of.FatalState) || (err != nil && !fatal) {
				t.Errorf("SetProviderAndWait: %v", err)
			}
			c := api.NewClient()
			waitUntil(t, func() bool { return c.State() == tc.want }, func() string {
				return fmt.Sprintf("state %s (client %s), want %s", c.State(), fc.Status().State, tc.want)
			})
			time.Sleep(initSettle + 30*time.Millisecond) // nothing else follows
			if st := c.State(); st != tc.want {
				t.Errorf("state %s, then %s (client %s)", tc.want, st, fc.Status().State)
			}
		})
	}
}

// TestEventsWaitForInit: events wait until Init has returned, so that
// OpenFeature applies Init's result first: a provider that timed out (in
// ERROR) and is bound again as its flags come hands READY over only after
// the second Init returns. (A READY handed over while Init was under way
// could be applied before Init's result, which then overwrote it.)
func TestEventsWaitForInit(t *testing.T) {
	fc, u := scripted(t)
	p := New(fc)
	t.Cleanup(p.Shutdown)
	expired, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-expired.Done()
	if err := p.InitWithContext(expired, of.EvaluationContext{}); err == nil {
		t.Fatal("Init succeeded without flags")
	}
	var during []of.Event
	ctx := &arriving{Context: expired, arrive: func() {
		apply(t, u, 0, "stream") // READY and a change, while the second Init waits
		select {
		case ev := <-p.EventChannel():
			during = append(during, ev)
		case <-time.After(200 * time.Millisecond):
		}
	}}
	err := p.InitWithContext(ctx, of.EvaluationContext{})
	if len(during) > 0 {
		t.Errorf("%s handed over while Init was under way", describe(during))
	}
	if err != nil {
		t.Errorf("Init: %v, though the flags came before it returned", err)
	}
	evs := readEvents(t, p, func(evs []of.Event) bool {
		changed, last := summary(evs)
		return last == of.ProviderReady && len(changed) > 0
	})
	if len(evs) != 2 || evs[1].EventType != of.ProviderConfigChange {
		t.Errorf("after Init: %s, want READY for the binding that timed out, then CONFIGURATION_CHANGED", describe(evs))
	}
}

// TestInitAsTheFlagsCome: flags that come as Init's wait ends (here, as
// WaitReady looks at the context, whose deadline has passed: either may
// win) make Init succeed, whatever the wait answered: OpenFeature is READY
// and no event follows. (Init returned the wait's error and sent READY
// before returning: OpenFeature could apply READY first, then ERROR, and
// stay in ERROR with the client READY.)
func TestInitAsTheFlagsCome(t *testing.T) {
	for i := range 30 {
		fc, u := scripted(t)
		p := New(fc)
		expired, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		<-expired.Done()
		err := p.InitWithContext(&arriving{Context: expired, arrive: func() { apply(t, u, 0, "stream") }}, of.EvaluationContext{})
		cancel()
		if err != nil {
			t.Fatalf("run %d: Init: %v, with the client %s", i, err, fc.Status().State)
		}
		select {
		case ev := <-p.EventChannel():
			t.Fatalf("run %d: %s after Init succeeded", i, describe([]of.Event{ev}))
		case <-time.After(initSettle + 20*time.Millisecond):
		}
		p.Shutdown()
	}
}

// arriving is a context that runs arrive the first time Done is called:
// WaitReady calls it as it starts waiting.
type arriving struct {
	context.Context
	once   sync.Once
	arrive func()
}

func (c *arriving) Done() <-chan struct{} {
	c.once.Do(c.arrive)
	return c.Context.Done()
}

// TestEventsSettleAfterInit: an event that comes right after Init returned
// waits until initSettle has passed since, leaving go-sdk time to apply
// Init's result (it does so on another goroutine than the provider's
// events): here a failure just after a successful Init, whose STALE must
// not be overwritten by Init's READY.
func TestEventsSettleAfterInit(t *testing.T) {
	_, u, p := initialized(t)
	returned := time.Now()
	u.Failed("stream", errors.New("connection reset"), false)
	evs := readEvents(t, p, func(evs []of.Event) bool { return len(evs) == 1 })
	if took := time.Since(returned); evs[0].EventType != of.ProviderStale || took < initSettle/2 {
		t.Errorf("%s handed over %v after Init returned, want STALE after about %v", describe(evs), took, initSettle)
	}
}
