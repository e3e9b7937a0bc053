package flags

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/evalcases"
	"github.com/google/go-cmp/cmp"
)

// errorsByPresence compares errors by presence: results built twice hold
// equal but distinct errors.
var errorsByPresence = cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) })

// TestEvaluationsAgreeWithAppendAllFlags: the compact Evaluations that
// AllFlags returns read back, by every accessor, the results that
// AppendAllFlags builds whole — with overrides and malformed flags, which
// Evaluations keeps whole, among them.
func TestEvaluationsAgreeWithAppendAllFlags(t *testing.T) {
	files := evalcases.Read(t, "testdata/eval")
	clock := func() time.Time { return defaultFuzzTime }
	ctx := context.Background()
	checked, kept := 0, 0
	for _, cf := range files {
		c, err := New(WithDocument(cf.Document), WithClock(clock))
		if err != nil {
			t.Fatalf("%s: %v", cf.Path, err)
		}
		flags := c.Snapshot().compiled().Flags()
		for round := range 2 {
			if round == 1 && len(flags) > 0 { // overrides of one flag for everyone, one for one key
				overrideForEveryoneAndOne(t, c, flags[0].Key, flags[len(flags)-1].Key)
			}
			for _, tc := range cf.Cases {
				ec, err := ContextFromJSON(tc.Context)
				if err != nil {
					continue
				}
				want := c.AppendAllFlags(ctx, nil, ec)
				all := c.AllFlags(ctx, ec)
				checked += checkEvaluationsAgree(t, cf.Path+" for "+string(tc.Context), all, want)
				kept += len(all.kept)
			}
		}
		c.Close()
	}
	if checked < 1000 || kept == 0 {
		t.Errorf("compared %d results, %d kept whole: the case files should give thousands, some kept", checked, kept)
	}
}

// overrideForEveryoneAndOne overrides flag everyone for every context and
// flag one for user-1 alone.
func overrideForEveryoneAndOne(t *testing.T, c *Client, everyone, one string) {
	t.Helper()
	if err := c.Override(everyone, "forced"); err != nil {
		t.Fatal(err)
	}
	if err := c.OverrideFor(one, "user-1", 7); err != nil {
		t.Fatal(err)
	}
}

// checkEvaluationsAgree checks that all reads back want, the results
// AppendAllFlags built, by every accessor: Len, AppendTo, All, Lookup and
// JSON. It returns the number of results All yielded.
func checkEvaluationsAgree(t *testing.T, what string, all *Evaluations, want []Result[any]) int {
	t.Helper()
	if all.Len() != len(want) {
		t.Fatalf("%s: Len %d, want %d", what, all.Len(), len(want))
	}
	if diff := cmp.Diff(want, all.AppendTo(nil), errorsByPresence); diff != "" {
		t.Fatalf("%s: (-AppendAllFlags +AllFlags):\n%s", what, diff)
	}
	n := 0
	for r := range all.All() {
		if diff := cmp.Diff(want[n], r, errorsByPresence); diff != "" {
			t.Fatalf("%s: All()[%d]:\n%s", what, n, diff)
		}
		got, ok := all.Lookup(r.Flag)
		if !ok || !cmp.Equal(want[n], got, errorsByPresence) {
			t.Fatalf("%s: Lookup(%q) = %+v, %v, want %+v", what, r.Flag, got, ok, want[n])
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("%s: All yielded %d results, want %d", what, n, len(want))
	}
	if _, ok := all.Lookup("no-such-flag-anywhere"); ok {
		t.Errorf("%s: Lookup of a missing flag reports it present", what)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("%s: JSON\n got %s\nwant %s", what, gotJSON, wantJSON)
	}
	return n
}

func TestEvaluationsOf(t *testing.T) {
	all := EvaluationsOf(
		Result[any]{Flag: "b", Value: true, Variation: 1, Reason: Reason{Kind: ReasonFallthrough}},
		Result[any]{Flag: "a", Value: "x", Variation: -1, Reason: Reason{Kind: ReasonOverride}},
	)
	if all.Len() != 2 || all.At(0).Flag != "a" || all.At(1).Flag != "b" {
		t.Fatalf("EvaluationsOf: %+v, want a then b", all.AppendTo(nil))
	}
	if r, ok := all.Lookup("b"); !ok || r.Value != true {
		t.Errorf("Lookup(b) = %+v, %v", r, ok)
	}
	if _, ok := all.Lookup("c"); ok {
		t.Error("Lookup(c) found a flag that is not there")
	}
}

func TestAllFlagsBeforeReady(t *testing.T) {
	c := &Client{}
	all := c.AllFlags(context.Background(), NewContext("u").Build())
	if all.Len() != 0 {
		t.Errorf("Len = %d before any snapshot, want 0", all.Len())
	}
	if b, err := json.Marshal(all); err != nil || string(b) != "[]" {
		t.Errorf("JSON = %s, %v; want []", b, err)
	}
}
