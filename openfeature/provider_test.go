package openfeature

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
	"github.com/flagstream/flags/rules"
)

// testDocument has a flag of every type, a targeted and a rolled-out flag,
// an off flag, a malformed one and one behind a failing prerequisite.
const testDocument = `{"flags": {
  "bool": {"version": 3, "on": true, "variations": [false, true], "fallthrough": {"variation": 1}},
  "string": {"on": true, "variations": ["a", "b"], "fallthrough": {"variation": 0},
    "rules": [{"id": "fr", "clauses": [{"attribute": "org.country", "op": "in", "values": ["fr"]}], "serve": {"variation": 1}}]},
  "int": {"on": true, "variations": [1, 42], "fallthrough": {"variation": 1}},
  "fraction": {"on": true, "variations": [1.5], "fallthrough": {"variation": 0}},
  "float": {"on": true, "variations": [0.25], "fallthrough": {"variation": 0}},
  "object": {"on": true, "variations": [{"color": "red"}], "fallthrough": {"variation": 0}},
  "split": {"on": true, "variations": [false, true], "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}},
  "off": {"on": false, "variations": [false, true], "offVariation": 0, "fallthrough": {"variation": 1}},
  "gated": {"on": true, "variations": [false, true], "offVariation": 0, "prerequisites": [{"flag": "off", "variation": 1}], "fallthrough": {"variation": 1}},
  "broken": {"on": true, "variations": [false, true], "fallthrough": {"variation": 7}}}}`

// setup installs a provider over a flagstest client as OpenFeature's
// default and returns OpenFeature's client.
func setup(t *testing.T, items ...flagstest.Item) (*flagstest.TestData, *flags.Client, *of.Client) {
	t.Helper()
	if len(items) == 0 {
		items = []flagstest.Item{flagstest.FromJSON(t, []byte(testDocument))}
	}
	td := flagstest.New(t, items...)
	client := td.NewClient()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := of.SetProviderWithContextAndWait(ctx, New(client)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = of.ShutdownWithContext(context.Background()) })
	return td, client, of.NewDefaultClient()
}

func user(key string, attrs map[string]any) of.EvaluationContext {
	return of.NewEvaluationContext(key, attrs)
}

// TestEveryTypeThroughOpenFeature reads a flag of each type through
// OpenFeature's typed getters, with the reason, variant and metadata the
// provider maps flagstream's result to.
func TestEveryTypeThroughOpenFeature(t *testing.T) {
	_, _, c := setup(t)
	ctx := context.Background()
	ann := user("ann", map[string]any{"org": map[string]any{"country": "fr"}})

	for _, tc := range []typedRead{
		{name: "bool", getter: "Boolean", flag: "bool", def: false, want: true, reason: of.DefaultReason,
			variant: "1", meta: of.FlagMetadata{"version": int64(3)}},
		{name: "string (nested attribute org.country)", getter: "String", flag: "string", def: "z", want: "b",
			reason: of.TargetingMatchReason, variant: "1", meta: of.FlagMetadata{"ruleId": "fr"}},
		{name: "int", getter: "Int", flag: "int", def: int64(0), want: int64(42), reason: of.DefaultReason, variant: "1"},
		{name: "float", getter: "Float", flag: "float", def: 0.0, want: 0.25, reason: of.DefaultReason, variant: "0"},
		{name: "object", getter: "Object", flag: "object", def: nil, want: map[string]any{"color": "red"},
			reason: of.DefaultReason, variant: "0"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTypedRead(t, ctx, c, tc, ann) })
	}

	t.Run("split off and gated reasons", func(t *testing.T) {
		sp, _ := c.BooleanValueDetails(ctx, "split", false, ann)
		off, _ := c.BooleanValueDetails(ctx, "off", true, ann)
		gated, _ := c.BooleanValueDetails(ctx, "gated", true, ann)
		if sp.Reason != of.SplitReason || off.Reason != of.DisabledReason || off.Value || gated.Reason != of.DisabledReason || gated.Value {
			t.Errorf("split %v, off %v %v, gated %v %v", sp.Reason, off.Reason, off.Value, gated.Reason, gated.Value)
		}
	})
}

// typedRead is one flag read through one of OpenFeature's typed getters
// and the answer expected, meta holding the metadata entries it must carry.
type typedRead struct {
	name, getter, flag string
	def, want          any
	reason             of.Reason
	variant            string
	meta               of.FlagMetadata
}

// checkTypedRead evaluates tc's flag for ec and compares value, reason,
// variant and the metadata entries tc names with what tc wants.
func checkTypedRead(t *testing.T, ctx context.Context, c *of.Client, tc typedRead, ec of.EvaluationContext) {
	t.Helper()
	value, d, err := valueDetails(ctx, c, tc.getter, tc.flag, tc.def, ec)
	if err != nil || !reflect.DeepEqual(value, tc.want) || d.Reason != tc.reason || d.Variant != tc.variant {
		t.Errorf("%s: value %#v reason %q variant %q (%+v) error %v; want %#v, %q, %q",
			tc.flag, value, d.Reason, d.Variant, d, err, tc.want, tc.reason, tc.variant)
	}
	for k, want := range tc.meta {
		if got, ok := d.FlagMetadata[k]; !ok || got != want {
			t.Errorf("%s metadata %v: %s = %#v, want %#v", tc.flag, d.FlagMetadata, k, got, want)
		}
	}
}

func TestErrorCodesThroughOpenFeature(t *testing.T) {
	_, _, c := setup(t)
	ctx := context.Background()
	ann := user("ann", nil)
	for _, tc := range []struct {
		name   string
		getter string // which of the client's …ValueDetails reads the flag
		flag   string
		def    any
		ec     of.EvaluationContext
		code   of.ErrorCode
	}{
		{"flag not found", "Boolean", "nope", true, ann, of.FlagNotFoundCode},
		{"type mismatch", "String", "bool", "def", ann, of.TypeMismatchCode},
		{"a fraction as an int", "Int", "fraction", int64(9), ann, of.TypeMismatchCode},
		{"an object flag read as a bool", "Boolean", "object", true, ann, of.TypeMismatchCode},
		{"a bool flag read as an object", "Object", "bool", "def", ann, of.TypeMismatchCode},
		{"malformed flag", "Boolean", "broken", true, ann, of.ParseErrorCode},
		{"targeting key missing", "Boolean", "bool", false, of.NewTargetlessEvaluationContext(map[string]any{"a": 1}),
			of.TargetingKeyMissingCode},
	} {
		value, d, _ := valueDetails(ctx, c, tc.getter, tc.flag, tc.def, tc.ec)
		if d.ErrorCode != tc.code || d.Reason != of.ErrorReason || value != tc.def {
			t.Errorf("%s: code %q reason %q value %v; want %q, ERROR, the default %v", tc.name, d.ErrorCode, d.Reason, value, tc.code, tc.def)
		}
	}
}

// valueDetails evaluates flag with the client's BooleanValueDetails,
// StringValueDetails, IntValueDetails, FloatValueDetails or
// ObjectValueDetails, as getter names it, and returns the value, the
// details and the error.
func valueDetails(ctx context.Context, c *of.Client, getter, flag string, def any, ec of.EvaluationContext) (any, of.EvaluationDetails, error) {
	switch getter {
	case "Boolean":
		d, err := c.BooleanValueDetails(ctx, flag, def.(bool), ec)
		return d.Value, d.EvaluationDetails, err
	case "String":
		d, err := c.StringValueDetails(ctx, flag, def.(string), ec)
		return d.Value, d.EvaluationDetails, err
	case "Int":
		d, err := c.IntValueDetails(ctx, flag, def.(int64), ec)
		return d.Value, d.EvaluationDetails, err
	case "Float":
		d, err := c.FloatValueDetails(ctx, flag, def.(float64), ec)
		return d.Value, d.EvaluationDetails, err
	case "Object":
		d, err := c.ObjectValueDetails(ctx, flag, def, ec)
		return d.Value, d.EvaluationDetails, err
	}
	panic("valueDetails: no getter " + getter)
}

// TestProviderNotReady: before the client has flags, evaluations answer
// PROVIDER_NOT_READY (the provider's own answer, asked directly, as the SDK
// short-circuits while it initializes).
func TestProviderNotReady(t *testing.T) {
	c, err := flags.New(flags.WithSource(never{}))
	if err != nil {
		t.Fatal(err)
	}
	p := New(c, WithInitTimeout(50*time.Millisecond))
	if err := p.Init(of.EvaluationContext{}); err == nil {
		t.Error("Init succeeded without flags")
	}
	d := p.BooleanEvaluation(context.Background(), "bool", true, of.FlattenedContext{of.TargetingKey: "ann"})
	if d.ResolutionDetail().ErrorCode != of.ProviderNotReadyCode || !d.Value {
		t.Errorf("%+v", d)
	}
	p.Shutdown()
	if c.Status().State != flags.StateClosed {
		t.Error("Shutdown did not close the client")
	}
}

// TestProviderNotReadyThroughOpenFeature: through OpenFeature's client,
// a provider whose client has no flags yet answers PROVIDER_NOT_READY and
// the default.
func TestProviderNotReadyThroughOpenFeature(t *testing.T) {
	c, err := flags.New(flags.WithSource(never{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := of.SetProviderWithContext(context.Background(), New(c, WithInitTimeout(time.Minute))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = of.ShutdownWithContext(context.Background()) })
	d, _ := of.NewDefaultClient().BooleanValueDetails(context.Background(), "bool", true, user("ann", nil))
	if d.ErrorCode != of.ProviderNotReadyCode || !d.Value || d.Reason != of.ErrorReason {
		t.Errorf("%+v, want PROVIDER_NOT_READY and the default", d)
	}
}

// TestInitTimesOutThenReady: OpenFeature's calls that take no context
// (SetNamedProviderAndWait) give Init context.Background(): WithInitTimeout
// bounds the wait, the provider is in ERROR, and it becomes READY when the
// client gets its flags. (Unbounded, a service started while its flag
// server was down waited for the whole outage.)
func TestInitTimesOutThenReady(t *testing.T) {
	src := &later{deliver: make(chan struct{})}
	c, err := flags.New(flags.WithSource(src))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = of.ShutdownWithContext(context.Background()) })
	done := make(chan error, 1)
	go func() { done <- of.SetNamedProviderAndWait("late", New(c, WithInitTimeout(50*time.Millisecond))) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("SetNamedProviderAndWait succeeded without flags")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SetNamedProviderAndWait still waits after 10 s, with an init timeout of 50 ms")
	}
	client := of.NewClient("late")
	if st := client.State(); st != of.ErrorState {
		t.Errorf("state after the init timeout %s, want ERROR", st)
	}
	close(src.deliver)
	deadline := time.Now().Add(10 * time.Second)
	for client.State() != of.ReadyState {
		if time.Now().After(deadline) {
			t.Fatalf("state %s 10 s after the client got its flags, want READY", client.State())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v, err := client.BooleanValue(context.Background(), "a", false, user("u", nil)); err != nil || !v {
		t.Errorf("a = %v, %v; want true", v, err)
	}
}

// later is a source that delivers a document when deliver is closed.
type later struct{ deliver chan struct{} }

func (s *later) Run(ctx context.Context, u flags.Updates) error {
	select {
	case <-ctx.Done():
		return nil
	case <-s.deliver:
	}
	doc, err := rules.ParseDocument([]byte(`{"flags": {"a": {"on": true, "variations": [true], "fallthrough": {"variation": 0}}}}`))
	if err != nil {
		return err
	}
	if err := u.Apply(doc, "test"); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// never is a source that delivers nothing.
type never struct{}

func (never) Run(ctx context.Context, _ flags.Updates) error { <-ctx.Done(); return nil }

// TestEventSequence: READY, then STALE when the source fails, READY when it
// recovers, and CONFIGURATION_CHANGED with the changed keys.
func TestEventSequence(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	changed := make(chan []string, 4)
	record := func(name string) of.EventCallback {
		cb := func(d of.EventDetails) {
			mu.Lock()
			seen = append(seen, name)
			mu.Unlock()
			if name == "changed" {
				changed <- d.FlagChanges
			}
		}
		return &cb
	}
	td, _, c := setup(t, flagstest.Bool("a", true), flagstest.Bool("b", false))
	if st := c.State(); st != of.ReadyState {
		t.Fatalf("state %s after SetProviderWithContextAndWait, want READY", st)
	}
	// A READY handler added to a ready provider runs at once (OpenFeature's
	// rule): the first event of the sequence.
	ready, stale, changedCB := record("ready"), record("stale"), record("changed")
	of.AddHandler(of.ProviderReady, ready)
	of.AddHandler(of.ProviderStale, stale)
	of.AddHandler(of.ProviderConfigChange, changedCB)
	t.Cleanup(func() {
		of.RemoveHandler(of.ProviderReady, ready)
		of.RemoveHandler(of.ProviderStale, stale)
		of.RemoveHandler(of.ProviderConfigChange, changedCB)
	})
	waitFor(t, &mu, &seen, "ready")
	td.Fail(errors.New("connection reset"), false)
	waitFor(t, &mu, &seen, "stale")
	if _, err := c.BooleanValue(context.Background(), "a", false, user("u", nil)); err != nil {
		t.Errorf("a STALE provider still serves its flags: %v", err)
	}
	td.Recover()
	waitForCount(t, &mu, &seen, "ready", 2) // OpenFeature runs handlers on goroutines: wait for each step
	td.Set(flagstest.Bool("b", true))
	select {
	case keys := <-changed:
		if len(keys) != 1 || keys[0] != "b" {
			t.Errorf("changed flags %v, want [b]", keys)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no CONFIGURATION_CHANGED")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"ready", "stale", "ready", "changed"}
	if len(seen) < 4 || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] || seen[3] != want[3] {
		t.Errorf("events %v, want %v", seen, want)
	}
}

func waitFor(t *testing.T, mu *sync.Mutex, seen *[]string, name string) {
	t.Helper()
	waitForCount(t, mu, seen, name, 1)
}

func waitForCount(t *testing.T, mu *sync.Mutex, seen *[]string, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		count := 0
		for _, s := range *seen {
			if s == name {
				count++
			}
		}
		mu.Unlock()
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event; saw %v", name, *seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTrackThroughOpenFeature: OpenFeature's Track is flagstream's Track.
func TestTrackThroughOpenFeature(t *testing.T) {
	ctx, rec, client, c := recorded(t, flagstest.Bool("a", true).TrackEvents())
	ann := user("ann", map[string]any{"plan": "pro"})
	c.BooleanValue(ctx, "a", false, ann)
	c.Track(ctx, "purchase", ann, of.NewTrackingEventDetails(42.5))
	if err := client.FlushEvents(ctx); err != nil {
		t.Fatal(err)
	}
	tr := rec.Tracks()
	if len(tr) != 1 || tr[0].Name != "purchase" || tr[0].ContextKey != "ann" || *tr[0].Value != 42.5 {
		t.Errorf("tracks %+v", tr)
	}
	if ex := rec.Exposures(); len(ex) != 1 || ex[0].Flag != "a" {
		t.Errorf("exposures %+v", ex)
	}
}

// TestObjectValueIsTheCallersCopy: the map (or slice) ObjectValue returns
// belongs to the caller: changing it, at any depth, changes nothing for
// later evaluations, through OpenFeature or the flags client. (It was the
// snapshot's own map: one caller filling in defaults changed the flag for
// everyone, and raced with their evaluations.)
func TestObjectValueIsTheCallersCopy(t *testing.T) {
	td := flagstest.New(t,
		flagstest.JSON("o", map[string]any{"a": 1, "n": map[string]any{"x": []any{1, 2}}}),
		flagstest.JSON("list", []any{map[string]any{"k": "v"}, "s"}))
	client := td.NewClient()
	ctx, c := ownAPI(t, client)
	want := map[string]any{"a": 1.0, "n": map[string]any{"x": []any{1.0, 2.0}}}
	wantList := []any{map[string]any{"k": "v"}, "s"}

	v, err := c.ObjectValue(ctx, "o", nil, user("u1", nil))
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("o = %#v, %v; want %#v", v, err, want)
	}
	m := v.(map[string]any)
	m["a"] = "MUTATED"
	m["n"].(map[string]any)["x"].([]any)[0] = "M2"
	delete(m["n"].(map[string]any), "y")
	m["added"] = true
	l, _ := c.ObjectValue(ctx, "list", nil, user("u1", nil))
	l.([]any)[0].(map[string]any)["k"] = "MUTATED"
	l.([]any)[1] = "MUTATED"

	for _, key := range []string{"u1", "u2"} {
		if v, _ := c.ObjectValue(ctx, "o", nil, user(key, nil)); !reflect.DeepEqual(v, want) {
			t.Errorf("o for %s after the first caller changed its value: %#v, want %#v", key, v, want)
		}
		if v, _ := c.ObjectValue(ctx, "list", nil, user(key, nil)); !reflect.DeepEqual(v, wantList) {
			t.Errorf("list for %s after the first caller changed its value: %#v, want %#v", key, v, wantList)
		}
	}
	if r := client.Value(ctx, "o", flags.NewContext("u3").Build(), nil); !reflect.DeepEqual(r.Value, want) {
		t.Errorf("the flags client's o after an OpenFeature caller changed its value: %#v, want %#v", r.Value, want)
	}
	// An override's value is the caller's copy too.
	if err := client.Override("o", map[string]any{"forced": []any{"x"}}); err != nil {
		t.Fatal(err)
	}
	v, _ = c.ObjectValue(ctx, "o", nil, user("u1", nil))
	v.(map[string]any)["forced"].([]any)[0] = "MUTATED"
	if v, _ := c.ObjectValue(ctx, "o", nil, user("u2", nil)); !reflect.DeepEqual(v, map[string]any{"forced": []any{"x"}}) {
		t.Errorf("overridden o after a caller changed its value: %#v", v)
	}
}

// newAPI returns an OpenFeature API of the test's own (isolated.NewAPI),
// shut down by t.Cleanup.
func newAPI(t *testing.T) *of.EvaluationAPI {
	t.Helper()
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	return api
}

// TestShutdownWithinTheContext: OpenFeature's Shutdown(ctx) closes the
// client within ctx, and says when ctx ended first: with an event server
// that never answers, it returns at ctx's deadline with its error (it
// waited for the whole EventOptions.CloseTimeout, and returned nil).
func TestShutdownWithinTheContext(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool("a", true).TrackEvents())
	client := td.NewClient(flags.WithEventExporter(stalled{}), flags.WithEventOptions(flags.EventOptions{CloseTimeout: 3 * time.Second}))
	api := newAPI(t)
	if err := api.SetProviderAndWait(context.Background(), New(client)); err != nil {
		t.Fatal(err)
	}
	c := api.NewClient()
	c.Track(context.Background(), "purchase", user("ann", nil), of.NewTrackingEventDetails(1)) // something to send
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := api.Shutdown(ctx)
	if took := time.Since(start); took > 2*time.Second || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a context of 100 ms took %v and returned %v; want about 100 ms and %v", took, err, context.DeadlineExceeded)
	}
	if st := client.Status().State; st != flags.StateClosed {
		t.Errorf("client %s after Shutdown, want CLOSED", st)
	}
}

// stalled is an event exporter whose server never answers.
type stalled struct{}

func (stalled) Export(ctx context.Context, _ *flags.EventBatch) error { <-ctx.Done(); return ctx.Err() }

// TestTrackValuesAndContexts: OpenFeature's zero TrackingEventDetails
// (its only way to give no value) records a track event without a value,
// which counts 1, as flags.Client.Track without one does (it recorded the
// value 0); NewTrackingEventDetails(0) keeps its 0. A tracking context
// with an attribute flagstream cannot take still records the event for its
// key (it was dropped silently).
func TestTrackValuesAndContexts(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool("a", true))
	rec := new(flagstest.EventRecorder)
	client := td.NewClient(flags.WithEventExporter(rec))
	ctx, c := ownAPI(t, client)
	c.Track(ctx, "signup", user("u1", nil), of.TrackingEventDetails{})
	c.Track(ctx, "refund", user("u2", nil), of.NewTrackingEventDetails(0))
	c.Track(ctx, "revenue", user("u3", nil), of.NewTrackingEventDetails(42.5).Add("currency", "EUR"))
	c.Track(ctx, "odd-context", user("u4", map[string]any{"x": struct{}{}, "ch": make(chan int)}), of.NewTrackingEventDetails(2))
	c.Track(ctx, "odd-context-no-value", user("u5", map[string]any{"x": struct{}{}}), of.TrackingEventDetails{})
	if err := client.FlushEvents(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range rec.Tracks() {
		v := "none"
		if e.Value != nil {
			v = strconv.FormatFloat(*e.Value, 'g', -1, 64)
		}
		got[e.Name] = e.ContextKey + " " + v
	}
	want := map[string]string{"signup": "u1 none", "refund": "u2 0", "revenue": "u3 42.5",
		"odd-context": "u4 2", "odd-context-no-value": "u5 none"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("track events (name: key value) %v, want %v", got, want)
	}
}

// TestNoTargetingKeyInSpecOrder: an evaluation without a targeting key goes
// through the flags client like any other, which answers in SPEC §3's
// order: an unknown flag is FLAG_NOT_FOUND and a malformed one
// PARSE_ERROR; only a flag that could be evaluated is
// TARGETING_KEY_MISSING. The client counts each one and its hooks see it,
// as they see a context with an attribute flagstream cannot take. (The
// provider answered TARGETING_KEY_MISSING before looking the flag up, and
// flagstream never saw those evaluations.)
func TestNoTargetingKeyInSpecOrder(t *testing.T) {
	td := flagstest.New(t, flagstest.FromJSON(t, []byte(testDocument)))
	hook := &countingHook{}
	client := td.NewClient(flags.WithMetrics(), flags.WithHooks(hook))
	ctx, c := ownAPI(t, client)
	noKey := of.NewTargetlessEvaluationContext(map[string]any{"plan": "pro"})
	for _, tc := range []struct {
		name, getter, flag string
		def                any
		ec                 of.EvaluationContext
		code               of.ErrorCode
	}{
		{"unknown flag, no key", "Boolean", "nope", true, noKey, of.FlagNotFoundCode},
		{"unknown object flag, no key", "Object", "nope", "def", noKey, of.FlagNotFoundCode},
		{"malformed flag, no key", "Boolean", "broken", true, noKey, of.ParseErrorCode},
		{"flag, no key", "Boolean", "bool", false, noKey, of.TargetingKeyMissingCode},
		{"flag, no targeting key but an attribute named key", "Boolean", "bool", false,
			of.NewTargetlessEvaluationContext(map[string]any{"key": "ann"}), of.TargetingKeyMissingCode},
		{"flag, no key and an attribute flagstream cannot take", "String", "string", "def",
			of.NewTargetlessEvaluationContext(map[string]any{"x": struct{}{}}), of.TargetingKeyMissingCode},
		{"unknown flag, a key and an attribute flagstream cannot take", "Int", "nope", int64(7),
			user("ann", map[string]any{"x": struct{}{}}), of.FlagNotFoundCode},
		{"flag, a key and an attribute flagstream cannot take", "Int", "int", int64(7),
			user("ann", map[string]any{"x": struct{}{}}), of.InvalidContextCode},
	} {
		value, d, _ := valueDetails(ctx, c, tc.getter, tc.flag, tc.def, tc.ec)
		if d.ErrorCode != tc.code || d.Reason != of.ErrorReason || value != tc.def {
			t.Errorf("%s: code %q (%s) reason %q value %v; want %q, ERROR, the default %v",
				tc.name, d.ErrorCode, d.ErrorMessage, d.Reason, value, tc.code, tc.def)
		}
	}
	if n := client.Metrics().FlagsNotFound; n != 3 {
		t.Errorf("the flags client counted %d evaluations of unknown flags, want 3", n)
	}
	if n := hook.after.Load(); n != 8 {
		t.Errorf("the flags client's hooks saw %d evaluations, want 8", n)
	}
}

// countingHook is a flags.Hook that counts the evaluations it sees.
type countingHook struct{ after atomic.Int64 }

func (*countingHook) Before(context.Context, flags.HookEvaluation) {}
func (h *countingHook) After(context.Context, flags.HookEvaluation, flags.Result[any]) {
	h.after.Add(1)
}

// TestObjectOfAnotherTypeIsNoExposure: an ObjectValue of a bool flag
// serves the default (TYPE_MISMATCH) and records no exposure: the caller
// never got the variation.
func TestObjectOfAnotherTypeIsNoExposure(t *testing.T) {
	ctx, rec, client, c := recorded(t, flagstest.Bool("a", true).TrackEvents(), flagstest.JSON("o", map[string]any{"k": 1}).TrackEvents())
	d, _ := c.ObjectValueDetails(ctx, "a", "def", user("ann", nil))
	if d.Value != "def" || d.ErrorCode != of.TypeMismatchCode {
		t.Errorf("ObjectValue of a bool flag: %+v", d)
	}
	if v, _ := c.ObjectValue(ctx, "o", nil, user("bob", nil)); !reflect.DeepEqual(v, map[string]any{"k": 1.0}) {
		t.Errorf("ObjectValue of o = %#v", v)
	}
	if err := client.FlushEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if ex := rec.Exposures(); len(ex) != 1 || ex[0].Flag != "o" {
		t.Errorf("exposures %+v, want only o's", ex)
	}
}

// recorded serves items to a flags client whose events go to the recorder
// it returns, set as OpenFeature's default provider (shut down when the
// test ends), and returns a context bounding the test, the recorder, the
// client and an OpenFeature client.
func recorded(t *testing.T, items ...flagstest.Item) (context.Context, *flagstest.EventRecorder, *flags.Client, *of.Client) {
	t.Helper()
	rec := new(flagstest.EventRecorder)
	client := flagstest.New(t, items...).NewClient(flags.WithEventExporter(rec))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if err := of.SetProviderWithContextAndWait(ctx, New(client)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = of.ShutdownWithContext(context.Background()) })
	return ctx, rec, client, of.NewDefaultClient()
}

// ownAPI sets a provider over client in an OpenFeature API of the
// test's own (newAPI), and returns a context bounding the test and a client
// of that API.
func ownAPI(t *testing.T, client *flags.Client) (context.Context, *of.Client) {
	t.Helper()
	api := newAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if err := api.SetProviderAndWait(ctx, New(client)); err != nil {
		t.Fatal(err)
	}
	return ctx, api.NewClient()
}
