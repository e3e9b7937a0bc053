package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/evalcases"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
	"github.com/google/go-cmp/cmp"
)

const typesDoc = `{"version":2,"flags":{
 "b":{"version":1,"on":true,"variations":[false,true],"fallthrough":{"variation":1}},
 "s":{"version":1,"on":true,"variations":["x","y"],"fallthrough":{"variation":1}},
 "i":{"version":1,"on":true,"variations":[3,4],"fallthrough":{"variation":1}},
 "frac":{"version":1,"on":true,"variations":[2.5],"fallthrough":{"variation":0}},
 "j":{"version":1,"on":true,"variations":[{"a":1},[1,2]],"fallthrough":{"variation":0}},
 "off":{"version":5,"on":false,"variations":[true],"fallthrough":{"variation":0}}}}`

func newTestClient(t *testing.T, doc string, opts ...Option) *Client {
	t.Helper()
	c, err := New(append([]Option{WithDocument([]byte(doc))}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// typedOutcome is what a typed getter's detail form gives, compared whole.
type typedOutcome struct {
	Value     any
	Variation int
	Reason    Reason
	IsWrong   bool // Err wraps ErrWrongType
}

func checkTypedResult[T any](t *testing.T, name string, r Result[T], want typedOutcome) {
	t.Helper()
	got := typedOutcome{r.Value, r.Variation, r.Reason, errors.Is(r.Err, ErrWrongType)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// TestTypedGetters checks every typed getter on every variation type: the
// right type is served, any other is WRONG_TYPE with the default.
func TestTypedGetters(t *testing.T) {
	c := newTestClient(t, typesDoc)
	ctx := context.Background()
	u := NewContext("u").Build()
	fall := Reason{Kind: ReasonFallthrough}
	// wrong is a getter's default served with WRONG_TYPE.
	wrong := func(def any) typedOutcome {
		return typedOutcome{def, -1, Reason{Kind: ReasonError, ErrorKind: ErrorWrongType}, true}
	}
	wrongBool, wrongString, wrongInt, wrongFloat := wrong(false), wrong("def"), wrong(-1), wrong(-1.5)
	tests := []struct {
		key                              string
		asBool, asString, asInt, asFloat typedOutcome
		asJSON                           string // "" for the default with WRONG_TYPE
	}{
		{"b", typedOutcome{true, 1, fall, false}, wrongString, wrongInt, wrongFloat, ""},
		{"s", wrongBool, typedOutcome{"y", 1, fall, false}, wrongInt, wrongFloat, ""},
		{"i", wrongBool, wrongString, typedOutcome{4, 1, fall, false}, typedOutcome{4.0, 1, fall, false}, ""},
		{"frac", wrongBool, wrongString, wrongInt, typedOutcome{2.5, 0, fall, false}, ""},
		{"j", wrongBool, wrongString, wrongInt, wrongFloat, `{"a":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			checkTypedResult(t, "Bool("+tc.key+")", c.BoolDetail(ctx, tc.key, u, false), tc.asBool)
			checkTypedResult(t, "String("+tc.key+")", c.StringDetail(ctx, tc.key, u, "def"), tc.asString)
			checkTypedResult(t, "Int("+tc.key+")", c.IntDetail(ctx, tc.key, u, -1), tc.asInt)
			checkTypedResult(t, "Float("+tc.key+")", c.FloatDetail(ctx, tc.key, u, -1.5), tc.asFloat)
			checkJSONGetter(t, c.JSONDetail(ctx, tc.key, u, nil), tc.key, tc.asJSON)
		})
	}
	t.Run("short forms agree with the detail forms", func(t *testing.T) {
		if c.Bool(ctx, "b", u, false) != true || c.String(ctx, "s", u, "") != "y" || c.Int(ctx, "i", u, 0) != 4 ||
			c.Float(ctx, "frac", u, 0) != 2.5 || string(c.JSON(ctx, "j", u, nil)) != `{"a":1}` {
			t.Error("short getters disagree with detail getters")
		}
		if c.Bool(ctx, "s", u, true) != true || c.String(ctx, "b", u, "d") != "d" {
			t.Error("short getters must serve the default on WRONG_TYPE")
		}
	})
	t.Run("off without offVariation serves the default, no type check", func(t *testing.T) {
		r := c.StringDetail(ctx, "off", u, "d")
		if r.Value != "d" || r.Reason.Kind != ReasonOff || r.Variation != -1 || r.Version != 5 {
			t.Errorf("StringDetail(off) = %+v, want default by OFF with version 5", r)
		}
	})
}

// checkJSONGetter: JSONDetail serves want, or for want "" the nil default
// with WRONG_TYPE.
func checkJSONGetter(t *testing.T, rj Result[json.RawMessage], key, want string) {
	t.Helper()
	if want != "" {
		if string(rj.Value) != want || rj.Err != nil {
			t.Errorf("JSON(%s) = %s, %v; want %s", key, rj.Value, rj.Err, want)
		}
		return
	}
	if rj.Value != nil || !errors.Is(rj.Err, ErrWrongType) {
		t.Errorf("JSON(%s) = %s, %v; want default and WRONG_TYPE", key, rj.Value, rj.Err)
	}
}

func TestNotReadyAndInvalidContext(t *testing.T) {
	var nilSnap *Snapshot
	r := Evaluate(nilSnap, "x", NewContext("u").Build(), nil)
	if r.Reason.ErrorKind != ErrorClientNotReady || !errors.Is(r.Err, ErrClientNotReady) {
		t.Errorf("Evaluate(nil snapshot) = %+v, want CLIENT_NOT_READY", r.Reason)
	}
	c := newTestClient(t, typesDoc)
	bad := NewContext("u").Set("when", make(chan int)).Build()
	if bad.Err() == nil || !strings.Contains(bad.Err().Error(), `attribute "when": unsupported type chan int`) {
		t.Fatalf("Err() = %v, want it to name the attribute", bad.Err())
	}
	br := c.BoolDetail(context.Background(), "b", bad, false)
	if br.Reason.ErrorKind != ErrorInvalidContext || !errors.Is(br.Err, ErrInvalidContext) {
		t.Errorf("BoolDetail with a bad context = %+v, want INVALID_CONTEXT", br.Reason)
	}
	dotted := NewContext("u").Set("org.plan", "x").Build()
	if !errors.Is(dotted.Err(), ErrInvalidContext) {
		t.Errorf("Set(\"org.plan\") must make the context invalid, got %v", dotted.Err())
	}
	noKey := ContextFromMap(map[string]any{"email": "x"})
	if r := c.BoolDetail(context.Background(), "b", noKey, false); r.Reason.ErrorKind != ErrorInvalidContext {
		t.Errorf("no key: %+v, want INVALID_CONTEXT", r.Reason)
	}
	// The flag's own problems come first (SPEC §3 step 2).
	if r := c.BoolDetail(context.Background(), "missing", noKey, false); r.Reason.ErrorKind != ErrorFlagNotFound {
		t.Errorf("missing flag with bad context: %+v, want FLAG_NOT_FOUND", r.Reason)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string][]Option{
		"invalid document":   {WithDocument([]byte(`{"flags":[]}`))},
		"missing file":       {WithFile(filepath.Join(t.TempDir(), "nope.json"))},
		"document and file":  {WithDocument([]byte(`{}`)), WithFile("x.json")},
		"nil logger":         {WithLogger(nil)},
		"nil clock":          {WithClock(nil)},
		"nil source":         {WithSource(nil)},
		"empty file path":    {WithFile("")},
		"nil document bytes": {WithDocument(nil)},
	} {
		if c, err := New(opts...); err == nil {
			c.Close()
			t.Errorf("New(%s) succeeded, want an error", name)
		}
	}
}

// TestNewWithoutSourceIsErrNoSource: "`flags.New()` with no source returns
// no error and stays INITIALIZING forever".
func TestNewWithoutSourceIsErrNoSource(t *testing.T) {
	for name, opts := range map[string][]Option{
		"no option":             nil,
		"nil options":           {nil, nil},
		"logger and clock only": {WithLogger(slog.New(slog.DiscardHandler)), WithClock(time.Now)},
	} {
		c, err := New(opts...)
		if !errors.Is(err, ErrNoSource) || c != nil {
			t.Errorf("New(%s) = %v, %v; want nil, ErrNoSource", name, c, err)
		}
	}
}

// TestFileReload edits a watched file: a good edit is applied and reported
// to listeners, a bad one is logged and the last good flags stay.
func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	testkit.ReplaceFile(t, path, `{"version":1,"flags":{"f":{"on":true,"variations":["a","b"],"fallthrough":{"variation":0}}}}`)
	var logs testkit.SyncBuffer
	fast := optionFunc(func(c *config) error { c.fileIvl = 5 * time.Millisecond; return nil })
	c, err := New(WithFile(path), fast, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	changes := make(chan Change, 10)
	c.OnChange(func(ch Change) { changes <- ch })
	statuses := make(chan Status, 10)
	c.OnStatus(func(s Status) { statuses <- s })
	u := NewContext("u").Build()
	if got := c.String(context.Background(), "f", u, ""); got != "a" {
		t.Fatalf("String(f) = %q, want a", got)
	}

	testkit.ReplaceFile(t, path, `{"version":2,"flags":{"f":{"on":true,"variations":["a","b"],"fallthrough":{"variation":1}},"g":{"on":false,"variations":[1]}}}`)
	select {
	case ch := <-changes:
		if diff := cmp.Diff(Change{Version: 2, Flags: []string{"f", "g"}}, ch); diff != "" {
			t.Errorf("change (-want +got):\n%s", diff)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported after the file was edited")
	}
	if got := c.String(context.Background(), "f", u, ""); got != "b" {
		t.Errorf("after reload String(f) = %q, want b", got)
	}

	testkit.ReplaceFile(t, path, `{"version":3,"flags":`) // a half-written file
	if s := nextStale(statuses); s.Err == nil || !strings.Contains(s.Err.Error(), "keeping the last good flags") {
		t.Errorf("stale status error = %v", s.Err)
	}
	if got := c.String(context.Background(), "f", u, ""); got != "b" {
		t.Errorf("after a bad edit String(f) = %q, want the last good b", got)
	}
	if c.Status().Version != 2 {
		t.Errorf("version = %d, want 2", c.Status().Version)
	}
	logged := logs.String()
	if !strings.Contains(logged, "flag file problem") || !strings.Contains(logged, "keeping the last good flags") {
		t.Errorf("the bad edit was not logged; logs:\n%s", logged)
	}
}

// nextStale returns the first STALE status the listener reports.
func nextStale(statuses <-chan Status) Status {
	for s := range statuses {
		if s.State == StateStale {
			return s
		}
	}
	return Status{}
}

func TestConcurrentEvaluationDuringUpdates(t *testing.T) {
	c, u := manualClient(t)
	if r := c.BoolDetail(context.Background(), "f", NewContext("u").Build(), false); r.Reason.ErrorKind != ErrorClientNotReady {
		t.Fatalf("before the first snapshot: %+v, want CLIENT_NOT_READY", r.Reason)
	}
	docs := make([]*rules.Document, 2)
	for i, v := range []string{"false", "true"} {
		d, err := rules.ParseDocument([]byte(`{"flags":{"f":{"on":true,"variations":[` + v + `],"fallthrough":{"variation":0}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = d
	}
	if err := u.Apply(docs[0], "manual"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ec := NewContext("u").Build()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := c.BoolDetail(context.Background(), "f", ec, false)
				if r.Err != nil || r.Variation != 0 {
					t.Errorf("evaluation during updates: %+v", r)
					return
				}
			}
		}()
	}
	for i := 0; i < 1000; i++ {
		if err := u.Apply(docs[i%2], "manual"); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestWaitReadyTimesOutAndClose(t *testing.T) {
	src := &manualSource{started: make(chan Updates, 1)}
	c, err := New(WithSource(src))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady = %v, want deadline exceeded", err)
	}
	u := <-src.started
	u.Failed("manual", errors.New("401"), true)
	if err := c.WaitReady(context.Background()); err == nil || c.Status().State != StateFatal {
		t.Errorf("WaitReady after a fatal failure = %v, state %s", err, c.Status().State)
	}
	c.Close()
	if c.Status().State != StateClosed {
		t.Errorf("state after Close = %s", c.Status().State)
	}
	if err := c.WaitReady(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitReady after Close = %v, want ErrClosed", err)
	}
}

// manualClient returns a client fed by hand through the Updates it returns.
func manualClient(t *testing.T) (*Client, Updates) {
	t.Helper()
	c, _, u := fedClient(t)
	return c, u
}

// fedClient returns a client with opts whose source (returned) applies on
// its own goroutine the documents sent on its apply channel, and the
// source's Updates, to feed it by hand. The client is closed when the test
// ends.
func fedClient(t *testing.T, opts ...Option) (*Client, *manualSource, Updates) {
	t.Helper()
	src := &manualSource{started: make(chan Updates, 1), apply: make(chan *rules.Document)}
	c, err := New(append([]Option{WithSource(src)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, src, <-src.started
}

// manualSource hands its Updates to the test, and applies on its own
// goroutine (Run's) the documents sent on apply, when apply is not nil.
type manualSource struct {
	started chan Updates
	apply   chan *rules.Document
}

func (m *manualSource) Run(ctx context.Context, u Updates) error {
	m.started <- u
	for {
		select {
		case <-ctx.Done():
			return nil
		case doc := <-m.apply:
			_ = u.Apply(doc, "test")
		}
	}
}

// TestPrerequisiteSeenThroughReuse: a flag reused unchanged by
// eval.CompileFrom evaluates its prerequisites as they are in the new
// snapshot, not in the one it was first compiled in.
func TestPrerequisiteSeenThroughReuse(t *testing.T) {
	a := `"a":{"on":true,"variations":[false,true],"prerequisites":[{"flag":"b","variation":1}],"fallthrough":{"variation":1}}`
	d1, _ := rules.ParseDocument([]byte(`{"flags":{` + a + `,"b":{"on":true,"variations":[false,true],"fallthrough":{"variation":1}}}}`))
	d2, _ := rules.ParseDocument([]byte(`{"flags":{` + a + `,"b":{"on":true,"variations":[false,true],"fallthrough":{"variation":0}}}}`))
	d3, _ := rules.ParseDocument([]byte(`{"flags":{` + a + `}}`))
	s1 := Compile(d1)
	s2 := compileFrom(s1, d2)
	s3 := compileFrom(s2, d3)
	u := NewContext("u").Build()
	for i, tc := range []struct {
		snap *Snapshot
		want ReasonKind
	}{{s1, ReasonFallthrough}, {s2, ReasonPrerequisiteFailed}, {s3, ReasonPrerequisiteFailed}, {s1, ReasonFallthrough}} {
		if r := Evaluate(tc.snap, "a", u, nil); r.Reason.Kind != tc.want {
			t.Errorf("snapshot %d: a = %+v, want %s", i+1, r.Reason, tc.want)
		}
	}
}

// TestMalformedLoggedOnce: a malformed flag is logged when it appears, not
// again with every later snapshot.
func TestMalformedLoggedOnce(t *testing.T) {
	var logs testkit.SyncBuffer
	_, _, u := fedClient(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for v := 1; v <= 3; v++ {
		doc, err := rules.ParseDocument([]byte(fmt.Sprintf(`{"version":%d,"flags":{"bad":{"on":"yes"},"ok":{"on":true,"variations":[%d],"fallthrough":{"variation":0}}}}`, v, v)))
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Apply(doc, "manual"); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "flags.bad.on: got a string"); n != 1 {
		t.Errorf("the malformed flag was logged %d times over 3 snapshots, want 1:\n%s", n, logs.String())
	}
}

// TestRepeatedClausesEvaluateOnce: a flag whose rules repeat clauses (each
// computed once per evaluation) picks the same rule as a plain walk that
// evaluates every clause, for every combination of the attributes tested.
func TestRepeatedClausesEvaluateOnce(t *testing.T) {
	doc, err := rules.ParseDocument([]byte(`{"flags":{"f":{"on":true,"variations":["none","r0","r1","r2","r3"],"fallthrough":{"variation":0},"rules":[
		{"clauses":[{"attribute":"email","op":"endsWith","values":["@corp.com"]},{"attribute":"country","op":"in","values":["de"]}],"serve":{"variation":1}},
		{"clauses":[{"attribute":"country","op":"in","values":["de"]},{"attribute":"email","op":"endsWith","values":["@corp.com"],"negate":true}],"serve":{"variation":2}},
		{"clauses":[{"attribute":"email","op":"endsWith","values":["@corp.com"]},{"attribute":"plan","op":"exists","values":[]}],"serve":{"variation":3}},
		{"clauses":[{"attribute":"plan","op":"exists","values":[]},{"attribute":"email","op":"endsWith","values":["@corp.com"]}],"serve":{"variation":4}}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	snap := Compile(doc)
	f := snap.compiled().Flag("f")
	if f.Err != nil || !f.HasMemos() {
		t.Fatalf("flag: err %v, HasMemos %v; want a valid flag with repeated clauses", f.Err, f.HasMemos())
	}
	seen := map[int]bool{}
	for _, email := range []any{nil, "ann@corp.com", "bob@else.org", 7.0} {
		for _, country := range []any{nil, "de", "fr"} {
			for _, plan := range []any{nil, "pro"} {
				b := NewContext("u")
				for name, v := range map[string]any{"email": email, "country": country, "plan": plan} {
					if v != nil {
						b.Set(name, v)
					}
				}
				ec := b.Build()
				r := Evaluate(snap, "f", ec, nil)
				kind, rule, ok := naiveOutcome(f, ec, 0)
				if !ok || r.Reason.Kind != kind || kind == ReasonRuleMatch && r.Reason.RuleIndex != rule {
					t.Errorf("email %v, country %v, plan %v: evaluated %s rule %d, a plain walk gives %s rule %d",
						email, country, plan, r.Reason.Kind, r.Reason.RuleIndex, kind, rule)
				}
				seen[r.Variation] = true
			}
		}
	}
	if len(seen) != 4 { // r3 is unreachable: r2 tests the same clauses
		t.Errorf("variations served %v, want four of them (the test must reach most rules)", seen)
	}
}

// TestAllFlagsAgreeWithEvaluate: AllFlags (one evaluator for all flags,
// sharing what it looked up) gives every flag the result Evaluate gives it
// alone, for every document and context of the conformance cases.
func TestAllFlagsAgreeWithEvaluate(t *testing.T) {
	files := evalcases.Read(t, "testdata/eval")
	clock := func() time.Time { return defaultFuzzTime }
	checked := 0
	for _, cf := range files {
		file := cf.Path
		c, err := New(WithDocument(cf.Document), WithClock(clock))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		snap := c.Snapshot()
		for _, tc := range cf.Cases {
			ec, err := ContextFromJSON(tc.Context)
			if err != nil {
				continue
			}
			for got := range c.AllFlags(context.Background(), ec).All() {
				want := Evaluate(snap, got.Flag, ec, clock)
				if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) })); diff != "" {
					t.Errorf("%s: flag %s for %s (-Evaluate +AllFlags):\n%s", file, got.Flag, tc.Context, diff)
				}
				checked++
			}
		}
		c.Close()
	}
	if checked < 1000 {
		t.Errorf("only %d flag evaluations compared; the case files should give thousands", checked)
	}
}

// TestShutdownLeavesABlockedListener: a listener that blocks holds the
// source's goroutine; Shutdown still returns when its context ends, with
// the client closed and applying nothing more, and the listener, once it
// returns, is told CLOSED.
func TestShutdownLeavesABlockedListener(t *testing.T) {
	doc, _ := rules.ParseDocument([]byte(`{"version": 1, "flags": {}}`))
	c, src, u := fedClient(t, WithLogger(slog.New(slog.DiscardHandler)))
	entered, release := make(chan struct{}, 1), make(chan struct{})
	c.OnChange(func(Change) {
		entered <- struct{}{}
		<-release
	})
	closed := make(chan struct{})
	c.OnStatus(func(s Status) {
		if s.State == StateClosed {
			close(closed)
		}
	})
	src.apply <- doc // Run applies it: the source's goroutine is held by the listener
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want the context's deadline", err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("Shutdown still waiting for the blocked listener 5 s after its context ended")
	}
	if st := c.Status().State; st != StateClosed {
		t.Errorf("state after Shutdown %s, want CLOSED", st)
	}
	if err := u.Apply(doc, "test"); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Shutdown = %v, want ErrClosed", err)
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("the listener, released, was never told CLOSED")
	}
}

// TestListenerPanicRecovered: a listener that panics runs on the source's
// goroutine, where the program cannot recover; the client recovers it,
// logs it, calls the listeners after it and goes on applying updates.
func TestListenerPanicRecovered(t *testing.T) {
	var logs testkit.SyncBuffer
	c, src, _ := fedClient(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	c.OnChange(func(Change) { panic("listener bug") })
	got := make(chan int64, 2)
	c.OnChange(func(ch Change) { got <- ch.Version })
	for v := range 2 {
		doc, _ := rules.ParseDocument(fmt.Appendf(nil, `{"version": %d, "flags": {"f%d": {"on": false, "variations": [1]}}}`, v+1, v))
		src.apply <- doc
		select {
		case n := <-got:
			if n != int64(v+1) {
				t.Errorf("change of version %d, want %d", n, v+1)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the listener after the one that panicked was not called for version %d", v+1)
		}
	}
	if !strings.Contains(logs.String(), "listener panicked") || !strings.Contains(logs.String(), "listener bug") {
		t.Errorf("the panic was not logged: %s", logs.String())
	}
}

// TestUnregisteredListenerNotCalled: while a slow listener holds the
// delivery of a change, another listener is unregistered; it is not
// called for that change after its unregister function returned.
func TestUnregisteredListenerNotCalled(t *testing.T) {
	c, src, _ := fedClient(t)
	entered, release := make(chan struct{}), make(chan struct{})
	c.OnChange(func(Change) {
		close(entered)
		<-release
	})
	var unregistered, calledAfter atomic.Bool
	stop := c.OnChange(func(Change) { calledAfter.Store(unregistered.Load()) })
	last := make(chan struct{})
	c.OnChange(func(Change) { close(last) })
	doc, _ := rules.ParseDocument([]byte(`{"version": 1, "flags": {}}`))
	src.apply <- doc
	<-entered
	stop()
	unregistered.Store(true)
	close(release)
	<-last
	if calledAfter.Load() {
		t.Error("a listener was called after its unregister function had returned")
	}
}
