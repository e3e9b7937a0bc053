package flagstest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
)

var (
	bg  = context.Background()
	ann = flags.NewContext("user-1").Set("email", "ann@corp.com").Build()
	bob = flags.NewContext("user-2").Set("email", "bob@example.com").Build()
)

func TestNewIsReady(t *testing.T) {
	td := flagstest.New(t,
		flagstest.Bool("new-checkout", true),
		flagstest.String("banner", "Hello").ForKey("user-1", "Hi Ann"),
		flagstest.Int("max-items", 50),
		flagstest.Float("ratio", 0.25),
		flagstest.JSON("limits", map[string]int{"cart": 3}),
	)
	st := td.Client.Status()
	if st.State != flags.StateReady || st.Source != flagstest.Origin || st.Version != 1 {
		t.Fatalf("Status() = %+v, want READY from %q at version 1", st, flagstest.Origin)
	}
	if got := td.Client.Bool(bg, "new-checkout", bob, false); !got {
		t.Errorf("Bool(new-checkout) = %v, want true", got)
	}
	if got := td.Client.String(bg, "banner", ann, ""); got != "Hi Ann" {
		t.Errorf("String(banner) for user-1 = %q, want %q", got, "Hi Ann")
	}
	r := td.Client.StringDetail(bg, "banner", bob, "")
	if r.Value != "Hello" || r.Reason.Kind != flags.ReasonFallthrough || r.Version != 1 {
		t.Errorf("StringDetail(banner) for user-2 = %+v, want Hello by FALLTHROUGH at version 1", r)
	}
	if got := td.Client.Int(bg, "max-items", bob, 0); got != 50 {
		t.Errorf("Int(max-items) = %d, want 50", got)
	}
	if got := td.Client.Float(bg, "ratio", bob, 0); got != 0.25 {
		t.Errorf("Float(ratio) = %v, want 0.25", got)
	}
	if got := string(td.Client.JSON(bg, "limits", bob, nil)); got != `{"cart":3}` {
		t.Errorf("JSON(limits) = %s, want {\"cart\":3}", got)
	}
}

// TestSetIsSynchronous: the evaluation right after Set, and an OnChange
// listener that runs before Set returns, both see the new value.
func TestSetIsSynchronous(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool("new-checkout", true))
	var seen []flags.Change
	var inListener []bool
	td.Client.OnChange(func(c flags.Change) {
		seen = append(seen, c)
		inListener = append(inListener, td.Client.Bool(bg, "new-checkout", ann, true))
	})
	for i, want := range []bool{false, true, false} {
		td.Set(flagstest.Bool("new-checkout", want))
		// No wait of any kind: Set has returned, so the listener has run.
		if len(seen) != i+1 {
			t.Fatalf("after Set #%d, OnChange ran %d times, want %d", i+1, len(seen), i+1)
		}
		if got := td.Client.Bool(bg, "new-checkout", ann, !want); got != want {
			t.Errorf("after Set #%d, Bool(new-checkout) = %v, want %v", i+1, got, want)
		}
		if inListener[i] != want {
			t.Errorf("Set #%d: the OnChange listener evaluated %v, want %v", i+1, inListener[i], want)
		}
		if c := seen[i]; !slices.Equal(c.Flags, []string{"new-checkout"}) || c.Version != int64(i+2) {
			t.Errorf("Set #%d: OnChange got %+v, want version %d, flags [new-checkout]", i+1, c, i+2)
		}
	}
}

func TestVersions(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool("a", true), flagstest.Bool("b", true).Version(9))
	version := func(key string) int64 { return td.Client.BoolDetail(bg, key, ann, false).Version }
	if version("a") != 1 || version("b") != 9 || td.Version() != 1 {
		t.Fatalf("versions a=%d b=%d snapshot=%d, want 1, 9, 1", version("a"), version("b"), td.Version())
	}
	td.Set(flagstest.Bool("a", false), flagstest.Bool("b", false))
	if version("a") != 2 || version("b") != 10 || td.Version() != 2 {
		t.Errorf("after Set: versions a=%d b=%d snapshot=%d, want 2, 10, 2", version("a"), version("b"), td.Version())
	}
	td.Set(flagstest.Document(flagstest.Bool("c", true)).Version(30))
	if td.Version() != 3 || td.Client.Status().Version != 3 {
		t.Errorf("after a Document at version 30: snapshot %d, client %d, want 3 (the server numbers snapshots)", td.Version(), td.Client.Status().Version)
	}
	td.Set(flagstest.Bool("c", true), flagstest.Bool("a", false).Version(7))
	if td.Version() != 3 || version("a") != 2 || version("c") != 1 {
		t.Errorf("after a Set that changes nothing: snapshot %d, a=%d, c=%d; want 3, 2, 1 (nothing published)", td.Version(), version("a"), version("c"))
	}
}

func TestDelete(t *testing.T) {
	td := flagstest.New(t,
		flagstest.Bool("a", true),
		flagstest.Segment("beta").Included("user-1"),
		flagstest.Bool("b", false).Rule("beta", flagstest.Variation(1), flagstest.InSegment("beta")),
	)
	if !td.Client.Bool(bg, "b", ann, false) {
		t.Fatal("Bool(b) for a segment member = false, want true")
	}
	td.Delete("a")
	r := td.Client.BoolDetail(bg, "a", ann, true)
	if r.Value != true || r.Reason.ErrorKind != flags.ErrorFlagNotFound || !errors.Is(r.Err, flags.ErrFlagNotFound) {
		t.Errorf("after Delete, BoolDetail(a) = %+v, want the default with FLAG_NOT_FOUND", r)
	}
	td.DeleteSegment("beta")
	if td.Client.Bool(bg, "b", ann, false) {
		t.Error("after DeleteSegment, Bool(b) = true, want false: an unknown segment never matches")
	}
}

func TestSetDocumentAndFromFile(t *testing.T) {
	td := flagstest.New(t, flagstest.FromFile(t, "testdata/checkout.json"))
	if v := td.Version(); v != 40 {
		t.Errorf("Version() = %d, want 40, the file's", v)
	}
	r := td.Client.BoolDetail(bg, "new-checkout", ann, false)
	if !r.Value || r.Reason.RuleID != "staff" || r.Version != 7 {
		t.Errorf("BoolDetail(new-checkout) = %+v, want true by rule staff at version 7", r)
	}
	// A malformed flag of a document is kept malformed, as a real client keeps it.
	if r := td.Client.BoolDetail(bg, "broken", ann, true); r.Reason.ErrorKind != flags.ErrorMalformedFlag {
		t.Errorf("BoolDetail(broken) = %+v, want MALFORMED_FLAG", r)
	}
	td.SetDocument([]byte(`{"flags":{"other":{"on":true,"variations":["x"],"fallthrough":{"variation":0}}}}`))
	if got := td.Client.String(bg, "other", ann, ""); got != "x" {
		t.Errorf("after SetDocument, String(other) = %q, want x", got)
	}
	if r := td.Client.BoolDetail(bg, "new-checkout", ann, false); r.Reason.ErrorKind != flags.ErrorFlagNotFound {
		t.Errorf("after SetDocument, new-checkout = %+v, want FLAG_NOT_FOUND (replaced whole)", r)
	}
	if v := td.Version(); v != 41 {
		t.Errorf("after SetDocument, Version() = %d, want 41", v)
	}
}

func TestDocumentErrors(t *testing.T) {
	ftb := &fakeTB{}
	defer ftb.finish()
	flagstest.FromJSON(ftb, []byte(`{"flags": []}`))
	flagstest.FromFile(ftb, "testdata/no-such-file.json")
	td := flagstest.New(ftb, flagstest.Bool("a", true))
	td.SetDocument([]byte(`not json`))
	if len(ftb.fatals) != 3 {
		t.Fatalf("got %d failures, want 3:\n%s", len(ftb.fatals), ftb.failures())
	}
	for i, prefix := range []string{
		"flagstest: FromJSON: flags: invalid document: flags:",
		"flagstest: FromFile: open testdata/no-such-file.json:",
		"flagstest: SetDocument: flags: invalid document:",
	} {
		if !strings.HasPrefix(ftb.fatals[i], prefix) {
			t.Errorf("failure %d = %q, want it to start with %q", i, ftb.fatals[i], prefix)
		}
	}
	if !td.Client.Bool(bg, "a", ann, false) {
		t.Error("a document refused by SetDocument changed the flags")
	}
}

// TestParallelIsolation: 100 parallel tests give the same flag keys
// different values and each sees only its own, before and after a Set.
func TestParallelIsolation(t *testing.T) {
	for i := range 100 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			td := flagstest.New(t,
				flagstest.Int("limit", i),
				flagstest.Bool("even", i%2 == 0),
				flagstest.String("name", fmt.Sprint("test-", i)).ForKey("user-1", fmt.Sprint("ann-", i)),
			)
			for round := range 3 {
				want := i*1000 + round
				if round > 0 {
					td.Set(flagstest.Int("limit", want))
				} else {
					want = i
				}
				for range 20 {
					if got := td.Client.Int(bg, "limit", bob, -1); got != want {
						t.Fatalf("round %d: Int(limit) = %d, want %d", round, got, want)
					}
					if got := td.Client.Bool(bg, "even", bob, i%2 != 0); got != (i%2 == 0) {
						t.Fatalf("round %d: Bool(even) = %v, want %v", round, got, i%2 == 0)
					}
					if got, want := td.Client.String(bg, "name", ann, ""), fmt.Sprint("ann-", i); got != want {
						t.Fatalf("round %d: String(name) = %q, want %q", round, got, want)
					}
				}
			}
		})
	}
}

// TestConcurrentReaders: evaluations on other goroutines while the test
// sets flags (run with -race).
func TestConcurrentReaders(t *testing.T) {
	td := flagstest.New(t, flagstest.Int("n", 0))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := td.Client.Int(bg, "n", bob, -1)
				if n < last {
					t.Errorf("Int(n) went back from %d to %d", last, n)
					return
				}
				last = n
			}
		}()
	}
	for n := 1; n <= 200; n++ {
		td.Set(flagstest.Int("n", n))
	}
	close(stop)
	wg.Wait()
	if got := td.Client.Int(bg, "n", bob, -1); got != 200 {
		t.Errorf("Int(n) = %d, want 200", got)
	}
}

func TestFailAndRecover(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool("a", true))
	var states []flags.State
	td.Client.OnStatus(func(s flags.Status) { states = append(states, s.State) })
	down := errors.New("flag server down")
	td.Fail(down, false)
	if st := td.Client.Status(); st.State != flags.StateStale || !errors.Is(st.Err, down) {
		t.Errorf("after Fail, Status() = %+v, want STALE with the error", st)
	}
	if !td.Client.Bool(bg, "a", ann, false) {
		t.Error("a failing source stopped serving the last flags")
	}
	td.Recover()
	td.Fail(down, true)
	want := []flags.State{flags.StateStale, flags.StateReady, flags.StateFatal}
	if !slices.Equal(states, want) {
		t.Errorf("OnStatus saw %v, want %v", states, want)
	}
}

func TestNewClientOptions(t *testing.T) {
	dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	td := flagstest.New(t, flagstest.Bool("search-v2", false).Fallthrough(
		flagstest.Rollout().Step(dec1, 100000, 0).Step(dec1.Add(7*24*time.Hour), 0, 100000)))
	before := td.NewClient(flags.WithClock(func() time.Time { return dec1.Add(-time.Hour) }))
	after := td.NewClient(flags.WithClock(func() time.Time { return dec1.Add(8 * 24 * time.Hour) }))
	if before.Bool(bg, "search-v2", ann, true) || !after.Bool(bg, "search-v2", ann, false) {
		t.Errorf("search-v2 before/after the ramp = %v/%v, want false/true",
			before.Bool(bg, "search-v2", ann, true), after.Bool(bg, "search-v2", ann, false))
	}
	td.Set(flagstest.Bool("search-v2", true))
	for i, c := range []*flags.Client{td.Client, before, after} {
		if !c.Bool(bg, "search-v2", ann, false) {
			t.Errorf("client %d did not get the Set", i)
		}
	}
	// A client closed early is dropped, not reported.
	before.Close()
	td.Set(flagstest.Bool("search-v2", false))
	if after.Bool(bg, "search-v2", ann, true) {
		t.Error("after closing one client, the others stopped getting Sets")
	}
}

// TestClientsLogToTheTest: what a TestData's clients log goes to the test's
// log (attributed to it, not interleaved on stderr), and nothing after the
// test's cleanups.
func TestClientsLogToTheTest(t *testing.T) {
	tb := &fakeTB{}
	td := flagstest.New(tb)
	td.SetDocument([]byte(`{"flags":{"broken":{"on":true,"variations":["x"],"fallthrough":{"variation":7}}}}`))
	tb.finish()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.fatals) > 0 || !strings.Contains(strings.Join(tb.logs, "\n"), "broken") {
		t.Errorf("the test's log %q (failures %q), want the client's warning naming flag broken", tb.logs, tb.fatals)
	}
}
