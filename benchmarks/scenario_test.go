package benchmarks

import (
	"errors"
	"runtime"
	"testing"
)

// notApplicable lists the scenarios each library cannot express natively.
var wantNotApplicable = map[string][]Scenario{
	"Unleash":         {S7Prerequisites, R1RealisticMix},
	"go-feature-flag": {S5Segment10000, S7Prerequisites, R1RealisticMix},
	"ConfigCat":       {R1RealisticMix},
}

func isNA(lib string, s Scenario) bool {
	for _, x := range wantNotApplicable[lib] {
		if x == s {
			return true
		}
	}
	return false
}

// TestScenarios sets every scenario up in every library and checks its
// answers: the same checks the benchmarks run before their timers start.
func TestScenarios(t *testing.T) {
	for _, lib := range Libraries() {
		for _, s := range Scenarios() {
			t.Run(lib.Slug()+"/"+string(s), func(t *testing.T) {
				c, err := lib.Setup(s)
				if isNA(lib.Name, s) {
					if !errors.Is(err, ErrNotApplicable) {
						t.Fatalf("Setup(%s) = %v, want ErrNotApplicable", s, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Setup(%s): %v", s, err)
				}
				defer c.Close()
				if err := Check(s, c); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestCheckCatchesWrongAnswers makes sure Check fails on wrong answers, so
// that a passing TestScenarios means something.
func TestCheckCatchesWrongAnswers(t *testing.T) {
	always := func(v bool) *Case { return evalCase(func(int) bool { return v }, nil) }
	for _, tc := range []struct {
		s Scenario
		c *Case
	}{
		{S1BoolOn, always(false)},
		{S3Rules10x2, always(false)},
		{S4Rollout5050, always(true)},
		{S4Rollout5050, always(false)},
		{S8AllFlags1000, &Case{All: func(bool) int { return AllFlagsCount - 1 }}},
	} {
		if err := Check(tc.s, tc.c); err == nil {
			t.Errorf("Check(%s) on a wrong case = nil, want an error", tc.s)
		}
	}
}

// TestCheckCatchesWrongMixAnswers feeds Check flagstream's own answers for
// R1, then the same with one answer changed: one that no rollout decides,
// or every rollout's answers inverted, or every rollout serving false.
func TestCheckCatchesWrongMixAnswers(t *testing.T) {
	m := realisticMix()
	refs, err := mixReference()
	if err != nil {
		t.Fatal(err)
	}
	flipped := -1 // the first pair, in order, whose answer no rollout decides
	answers := func(change func(i int, ref mixRef) bool) *Case {
		return evalCase(func(i int) bool {
			p := m.pair(i)
			ref := refs[int(p.Flag)*len(m.Users)+int(p.User)]
			return change(i, ref)
		}, nil)
	}
	for i, p := range m.Pairs {
		if refs[int(p.Flag)*len(m.Users)+int(p.User)].Rollout == nil {
			flipped = i
			break
		}
	}
	if err := Check(R1RealisticMix, answers(func(_ int, ref mixRef) bool { return ref.Value })); err != nil {
		t.Fatalf("Check(R1) on flagstream's answers: %v", err)
	}
	for name, c := range map[string]*Case{
		"one answer flipped": answers(func(i int, ref mixRef) bool { return ref.Value != (i == flipped) }),
		"rollouts inverted":  answers(func(_ int, ref mixRef) bool { return ref.Value != (ref.Rollout != nil) }),
		"rollouts all false": answers(func(_ int, ref mixRef) bool { return ref.Value && ref.Rollout == nil }),
	} {
		if err := Check(R1RealisticMix, c); err == nil {
			t.Errorf("Check(R1) with %s = nil, want an error", name)
		}
	}
}

// TestLoad loads a small load document in every library (and flagstream's
// distinct variant) and checks four flags: the benchmark loads the same
// shape with 10,000 flags.
func TestLoad(t *testing.T) {
	for _, lib := range append(Libraries(), FlagstreamDistinct()) {
		t.Run(lib.Slug(), func(t *testing.T) {
			l, err := openRendered(100, lib.LoadDoc, lib.Load)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			checkLoaded(t, l, 100)
		})
	}
}

func checkLoaded(tb testing.TB, l Loaded, n int) {
	tb.Helper()
	for _, i := range []int{0, 1, n - 2, n - 1} {
		want := i%2 == 1
		if got := l.Bool(loadFlagKey(i)); got != want {
			tb.Fatalf("Bool(%q) = %v, want %v", loadFlagKey(i), got, want)
		}
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
