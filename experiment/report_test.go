package experiment

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/flagstream/flags/rules"
)

// workedExample feeds SPEC §8's worked example: 1,000 control units of
// which 100 convert (sum 104), 990 treatment units of which 131 convert
// (sum 140), and 3 control units that were later also served the
// treatment.
func workedExample(a *Aggregator) {
	feed := func(variation, units, converters, doubles int, prefix string) {
		for i := range units {
			unit := fmt.Sprintf("%s-%d", prefix, i)
			a.Exposure("new-checkout", unit, variation, true, 1000)
			if i < converters {
				a.Track("checkout", unit, 0, false, 2000)
				if i < doubles {
					a.Track("checkout", unit, 0, false, 3000)
				}
			}
		}
	}
	feed(0, 1000, 100, 4, "c")
	feed(1, 990, 131, 9, "t")
	for i := range 3 {
		a.Exposure("new-checkout", fmt.Sprintf("c-%d", 500+i), 1, true, 5000)
	}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// quantity is one number of a report, the value expected and the
// tolerance it is checked to (0: exactly).
type quantity struct {
	name      string
	got, want float64
	tol       float64
}

// checkQuantities reports each of qs that is not within its tolerance of
// what it should be; what says where in the report they are.
func checkQuantities(t *testing.T, what string, qs ...quantity) {
	t.Helper()
	for _, q := range qs {
		if !near(q.got, q.want, q.tol) {
			t.Errorf("%s: %s = %v, want %v ± %v", what, q.name, q.got, q.want, q.tol)
		}
	}
}

// orNaN is *p, or NaN (never near anything) when p is nil.
func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// TestWorkedExample checks the report of SPEC §8's worked example against
// the numbers worked there by hand.
func TestWorkedExample(t *testing.T) {
	a := NewAggregator()
	workedExample(a)
	r := a.Report(FlagInfo{Key: "new-checkout", Variations: 2, Control: 0,
		SRM: []Weight{{0, 50000}, {1, 50000}}})
	if r.Switched != 3 || r.Units(0) != 1000 || r.Units(1) != 990 {
		t.Fatalf("switched %d, units %d %d; want 3, 1000, 990", r.Switched, r.Units(0), r.Units(1))
	}
	c, _ := r.Row("checkout", 0)
	tr, _ := r.Row("checkout", 1)
	if c.VsControl != nil {
		t.Errorf("control row %+v compared with itself: %+v", c, *c.VsControl)
	}
	checkQuantities(t, fmt.Sprintf("control row %+v", c),
		quantity{"conversions", float64(c.Conversions), 100, 0}, quantity{"sum", c.Sum, 104, 0},
		quantity{"rate", c.Rate, 0.1, 0}, quantity{"mean", c.Mean, 0.104, 0})
	checkQuantities(t, fmt.Sprintf("treatment row %+v", tr),
		quantity{"conversions", float64(tr.Conversions), 131, 0}, quantity{"sum", tr.Sum, 140, 0},
		quantity{"rate", tr.Rate, 0.132323, 5e-7}, quantity{"mean", tr.Mean, 0.141414, 5e-7})
	checkWorkedComparison(t, tr.VsControl)
	checkWorkedSRM(t, r.SRM)
	checkJSONKeys(t, r, "flag", "control", "switched", "variations", "srm", "metrics")
}

// checkWorkedComparison checks the worked example's treatment-vs-control
// comparison.
func checkWorkedComparison(t *testing.T, v *Comparison) {
	t.Helper()
	if v == nil || v.CI95 == nil {
		t.Errorf("vsControl %+v, want a comparison with a ci95", v)
		return
	}
	checkQuantities(t, "vsControl",
		quantity{"diff", v.Diff, 0.032323, 5e-7}, quantity{"relative", orNaN(v.Relative), 0.323232, 5e-7},
		quantity{"ci95[0]", v.CI95[0], 0.004194, 5e-7}, quantity{"ci95[1]", v.CI95[1], 0.060452, 5e-7},
		quantity{"pValue", orNaN(v.PValue), 0.024309, 5e-7}, quantity{"sequentialP", orNaN(v.SequentialP), 0.296664, 5e-7})
}

// checkWorkedSRM checks the worked example's sample-ratio check: 1,990
// units expected 50/50.
func checkWorkedSRM(t *testing.T, srm *SRM) {
	t.Helper()
	if srm == nil || len(srm.Expected) != 2 {
		t.Errorf("srm %+v, want expected counts for 2 variations", srm)
		return
	}
	checkQuantities(t, fmt.Sprintf("srm %+v", srm),
		quantity{"expected[0]", srm.Expected[0], 995, 0}, quantity{"expected[1]", srm.Expected[1], 995, 0},
		quantity{"chiSquare", srm.ChiSquare, 0.05025, 5e-6}, quantity{"pValue", srm.PValue, 0.8226, 5e-5})
}

// checkJSONKeys checks that v marshals to a JSON object with every one of keys.
func checkJSONKeys(t *testing.T, v any, keys ...string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]any
	if err := json.Unmarshal(b, &shape); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, ok := shape[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
}

// allOrNothing is an aggregator with 10 control and 10 treatment units of
// flag "f" where, on metric "m", every treatment unit converts (value
// 2.5) and no control unit does.
func allOrNothing() *Aggregator {
	a := NewAggregator()
	for i := range 10 {
		a.Exposure("f", fmt.Sprintf("c%d", i), 0, true, 1)
		a.Exposure("f", fmt.Sprintf("t%d", i), 1, true, 1)
		a.Track("m", fmt.Sprintf("t%d", i), 2.5, true, 5)
	}
	return a
}

// TestNullsAndEdges: SPEC §8's nulls: relative when the control's rate is
// 0; ci95 and pValue when se is 0; sequentialP when the pooled variance is
// 0; no srm without a single unscheduled rollout; every variation listed.
func TestNullsAndEdges(t *testing.T) {
	r := allOrNothing().Report(FlagInfo{Key: "f", Variations: 3})
	if len(r.Variations) != 3 || r.Units(2) != 0 || r.SRM != nil {
		t.Fatalf("variations %+v srm %+v", r.Variations, r.SRM)
	}
	tr, _ := r.Row("m", 1)
	t.Run("all-or-nothing rates", func(t *testing.T) { checkAllOrNothingComparison(t, tr.VsControl) })
	if tr.Sum != 25 || tr.Mean != 2.5 {
		t.Errorf("sum %v mean %v, want 25 and 2.5 (values)", tr.Sum, tr.Mean)
	}
	if row, _ := r.Row("m", 2); row.VsControl != nil || row.Rate != 0 {
		t.Errorf("a variation without units: %+v, want no comparison", row)
	}
	t.Run("pooled variance 0", checkPooledVarianceZero)
	// The aggregator has events of metric "m", but none of them follows an
	// exposure to this flag.
	if _, ok := allOrNothing().Report(FlagInfo{Key: "nothing", Variations: 2}).Metrics["m"]; ok {
		t.Error("a flag without units lists a metric")
	}
}

// checkAllOrNothingComparison checks the comparison of a rate of 1 with a
// control's rate of 0: relative, ci95 and pValue are null, in JSON too.
func checkAllOrNothingComparison(t *testing.T, v *Comparison) {
	t.Helper()
	if v == nil || v.Diff != 1 || v.Relative != nil || v.CI95 != nil || v.PValue != nil || v.SequentialP == nil {
		t.Errorf("all-or-nothing rates: %+v", v)
	}
	if v == nil || v.SequentialP == nil {
		return // no JSON to expect
	}
	b, _ := json.Marshal(v)
	if string(b) != fmt.Sprintf(`{"diff":1,"relative":null,"ci95":null,"pValue":null,"sequentialP":%v}`, *v.SequentialP) {
		t.Errorf("JSON %s", b)
	}
}

// checkPooledVarianceZero: when every unit converts the pooled variance is
// 0, and sequentialP and pValue are null.
func checkPooledVarianceZero(t *testing.T) {
	a := allOrNothing()
	for i := range 10 {
		a.Track("all", fmt.Sprintf("c%d", i), 0, false, 5)
		a.Track("all", fmt.Sprintf("t%d", i), 0, false, 5)
	}
	r := a.Report(FlagInfo{Key: "f", Variations: 2})
	if row, _ := r.Row("all", 1); row.VsControl == nil || row.VsControl.SequentialP != nil || row.VsControl.PValue != nil {
		t.Errorf("pooled variance 0: %+v", row.VsControl)
	}
}

// TestExactness: repeats, switched units, track before exposure, events
// out of order, non-randomized exposures and clamped future times give
// exact counts.
func TestExactness(t *testing.T) {
	type record func(a *Aggregator)
	records := []record{
		// u1: exposure at 100; a track before it (not counted), two after,
		// one repeated (counted once).
		func(a *Aggregator) { a.Track("m", "u1", 0, false, 50) },
		func(a *Aggregator) { a.Exposure("f", "u1", 1, true, 100) },
		func(a *Aggregator) { a.Exposure("f", "u1", 1, true, 100) }, // a repeat
		func(a *Aggregator) { a.Track("m", "u1", 3, true, 150) },
		func(a *Aggregator) { a.Track("m", "u1", 3, true, 150) }, // a repeat
		func(a *Aggregator) { a.Track("m", "u1", 4, true, 150) }, // same time, another value: another event
		// u2: its events arrive before its exposure, and its first
		// exposure (variation 0 at 200) arrives after a later one
		// (variation 1 at 300).
		func(a *Aggregator) { a.Track("m", "u2", 0, false, 250) },
		func(a *Aggregator) { a.Exposure("f", "u2", 1, true, 300) },
		func(a *Aggregator) { a.Exposure("f", "u2", 0, true, 200) },
		// u3: served by a target (not randomized): not a unit.
		func(a *Aggregator) { a.Exposure("f", "u3", 0, false, 100) },
		func(a *Aggregator) { a.Track("m", "u3", 0, false, 150) },
		// u4: its exposure's time was clamped by the server to its
		// receive time; a track stamped earlier does not count.
		func(a *Aggregator) { a.Exposure("f", "u4", 0, true, 1_000) },
		func(a *Aggregator) { a.Track("m", "u4", 0, false, 999) },
	}
	a := NewAggregator()
	for _, rec := range records {
		rec(a)
	}
	r := a.Report(FlagInfo{Key: "f", Variations: 2})
	if r.Units(0) != 2 || r.Units(1) != 1 || r.Switched != 1 {
		t.Fatalf("units %d %d switched %d; want 2 (u2 first saw 0, u4), 1 (u1), 1 (u2)", r.Units(0), r.Units(1), r.Switched)
	}
	c, _ := r.Row("m", 0)
	tr, _ := r.Row("m", 1)
	if c.Conversions != 1 || c.Sum != 1 {
		t.Errorf("control: %+v, want u2's one event", c)
	}
	if tr.Conversions != 1 || tr.Sum != 7 {
		t.Errorf("treatment: %+v, want u1's events 3 and 4 (the repeat and the earlier one not counted)", tr)
	}
	// Arrival order does not matter: the same records reversed.
	b := NewAggregator()
	for _, rec := range slices.Backward(records) {
		rec(b)
	}
	rb := b.Report(FlagInfo{Key: "f", Variations: 2})
	ja, _ := json.Marshal(r)
	jb, _ := json.Marshal(rb)
	if string(ja) != string(jb) {
		t.Errorf("order of arrival changed the report:\n%s\n%s", ja, jb)
	}
}

func TestChiSquareP(t *testing.T) {
	// Reference values of the χ² survival function.
	for _, tc := range []struct {
		x    float64
		df   int
		want float64
	}{
		{3.841459, 1, 0.05}, {6.634897, 1, 0.01}, {10.827566, 1, 0.001},
		{5.991465, 2, 0.05}, {7.814728, 3, 0.05}, {0.05025, 1, 0.822626},
		{20, 10, 0.029253}, {1, 4, 0.909796}, {100, 50, 3.4549e-5},
	} {
		got := chiSquareP(tc.x, tc.df)
		if math.Abs(got-tc.want) > 1e-4*math.Max(tc.want, 0.01) {
			t.Errorf("chiSquareP(%v, %d) = %v, want %v", tc.x, tc.df, got, tc.want)
		}
	}
	if chiSquareP(0, 3) != 1 {
		t.Error("chiSquareP(0) != 1")
	}
}

func TestFlagInfoOf(t *testing.T) {
	doc, err := rules.ParseDocument([]byte(`{"flags": {
	  "plain": {"on": true, "variations": [1, 2, 3], "fallthrough": {"rollout": {"variations": [{"variation": 2, "weight": 60000}, {"variation": 0, "weight": 40000}]}}},
	  "guarded": {"on": true, "variations": [1, 2], "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
	    "guard": {"metric": "err", "better": "lower", "control": 1, "treatment": 0}},
	  "two": {"on": true, "variations": [1, 2], "rules": [{"clauses": [{"attribute": "a", "op": "in", "values": ["x"]}],
	    "serve": {"rollout": {"variations": [{"variation": 0, "weight": 100000}]}}}],
	    "fallthrough": {"rollout": {"variations": [{"variation": 1, "weight": 100000}]}}},
	  "scheduled": {"on": true, "variations": [1, 2], "fallthrough": {"rollout": {"variations": [{"variation": 0}, {"variation": 1}],
	    "schedule": [{"at": "2026-01-01T00:00:00Z", "weights": [100000, 0]}, {"at": "2026-02-01T00:00:00Z", "weights": [0, 100000]}]}}},
	  "fixed": {"on": true, "variations": [1, 2], "fallthrough": {"variation": 1}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"plain":     "{plain 3 2 [{2 60000} {0 40000}]}",
		"guarded":   "{guarded 2 1 [{0 50000} {1 50000}]}",
		"two":       "{two 2 1 []}",
		"scheduled": "{scheduled 2 0 []}",
		"fixed":     "{fixed 2 0 []}",
	} {
		info, err := FlagInfoOf(key, doc.Flags[key])
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if got := fmt.Sprint(info); got != want {
			t.Errorf("FlagInfoOf(%s) = %s, want %s", key, got, want)
		}
	}
}

// TestSumsExactInAnyOrder: sums are the correctly rounded total of the
// counted values, whatever the order of units and events (SPEC §8: sums
// are exact) — a plain float64 sum in map order gave 0 or 1 for 1e16, 1,
// -1e16, and several answers for ordinary fractions.
func TestSumsExactInAnyOrder(t *testing.T) {
	cases := map[string][]float64{
		"cancelling": {1e16, 1, -1e16},
		"fractions":  fractions(200),
		"halfway":    {1, 0x1p-53, 0x1p-106}, // rounds up only if the last partial is seen
		"magnitudes": magnitudes(300),
	}
	for name, values := range cases {
		want := exactTotal(values)
		for seed := range uint64(20) {
			order := slices.Clone(values)
			rand.New(rand.NewPCG(seed, 1)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			a := NewAggregator()
			for i, v := range order {
				unit := fmt.Sprintf("u%d", i)
				a.Exposure("f", unit, 0, true, 100)
				a.Track("m", unit, v, true, 200)
			}
			row, _ := a.Report(FlagInfo{Key: "f", Variations: 1}).Row("m", 0)
			if row.Sum != want || row.Mean != want/float64(len(values)) {
				t.Errorf("%s, order %d: sum %v mean %v, want %v and %v", name, seed, row.Sum, row.Mean, want, want/float64(len(values)))
			}
		}
	}
}

// fractions is n values such as a metric of amounts yields.
func fractions(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 0.1*float64(i%7) + 0.01*float64(i)
	}
	return out
}

// magnitudes is n values of either sign from 1e-10 to MaxValue, seeded.
func magnitudes(n int) []float64 {
	r := rand.New(rand.NewPCG(7, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Pow(10, r.Float64()*25-10) * float64(1-2*r.IntN(2))
	}
	return out
}

// exactTotal is the sum of values computed exactly, then rounded once.
func exactTotal(values []float64) float64 {
	sum := new(big.Float).SetPrec(4096)
	for _, v := range values {
		sum.Add(sum, new(big.Float).SetFloat64(v))
	}
	f, _ := sum.Float64()
	return f
}

// TestHostileValues: an exposure's variation beyond int32 is no
// variation (it once wrapped to -1 and made the report index out of
// range, or to 0 and 1 and counted units there), and a metric value
// beyond MaxValue is ignored (two of 1e308 once summed to +Inf, which
// JSON cannot carry).
func TestHostileValues(t *testing.T) {
	a := NewAggregator()
	for i, v := range []int{math.MaxInt32 + 1, 1 << 32, 1<<32 + 1, math.MaxInt64} {
		a.Exposure("f", fmt.Sprintf("evil-%d", i), v, true, 100)
	}
	a.Exposure("f", "u", 1, true, 100)
	for _, v := range []float64{1e308, 1e308, -1e308, MaxValue * 2, math.Inf(1), math.NaN()} {
		a.Track("m", "u", v, true, 200)
	}
	a.Track("m", "u", MaxValue, true, 300)
	r := a.Report(FlagInfo{Key: "f", Variations: 2})
	if r.Units(0) != 0 || r.Units(1) != 1 {
		t.Errorf("units %d and %d, want 0 and 1: a variation beyond int32 was counted", r.Units(0), r.Units(1))
	}
	row, _ := r.Row("m", 1)
	if row.Sum != MaxValue || row.Conversions != 1 {
		t.Errorf("row %+v, want only the value MaxValue counted", row)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("the report does not encode: %v", err)
	}
}

// TestTrackRepeatsAmongMany: a repeat is recognized however many events
// of the same unit and time came before it, and in whatever order they
// arrived.
func TestTrackRepeatsAmongMany(t *testing.T) {
	a := NewAggregator()
	a.Exposure("f", "u", 0, true, 100)
	for i := range 1000 {
		a.Track("m", "u", float64(1000-i), true, 200+int64(i%3))
	}
	for i := range 1000 {
		a.Track("m", "u", float64(1000-i), true, 200+int64(i%3)) // every one again
	}
	a.Track("m", "u", 1, true, 201) // same value, another time: new
	row, _ := a.Report(FlagInfo{Key: "f", Variations: 1}).Row("m", 0)
	if want := float64(1000*1001/2 + 1); row.Sum != want {
		t.Errorf("sum %v, want %v", row.Sum, want)
	}
}

// TestSRMVariationListedTwice: a rollout listing a variation twice (a legal
// 100 % rollout) is one cell, not a mismatch of two (statistics audit F4).
func TestSRMVariationListedTwice(t *testing.T) {
	units := []VariationUnits{{Units: 100}, {Units: 0}}
	s := srm([]Weight{{0, 50000}, {0, 50000}}, units)
	if len(s.Expected) != 1 || s.Expected[0] != 100 || s.ChiSquare != 0 || s.PValue != 1 {
		t.Errorf("srm = %+v, want one cell of 100 units and p 1", s)
	}
	s = srm([]Weight{{0, 25000}, {1, 50000}, {0, 25000}}, []VariationUnits{{Units: 50}, {Units: 50}})
	if len(s.Expected) != 2 || s.Expected[0] != 50 || s.ChiSquare != 0 {
		t.Errorf("srm = %+v, want two cells of 50", s)
	}
}

// TestGuardNeverTripsOnNaN: a Guard built in Go, unchecked, with MinUnits 0
// and an empty arm, or an alpha of NaN, does not roll back (statistics
// audit F5).
func TestGuardNeverTripsOnNaN(t *testing.T) {
	r := &Report{Variations: []VariationUnits{{Units: 100}, {Units: 0}},
		Metrics: map[string][]MetricRow{"clicked": {{Variation: 0, Conversions: 10, Rate: 0.1}, {Variation: 1}}}}
	for _, g := range []rules.Guard{
		{Metric: "clicked", Control: 0, Treatment: 1, Better: rules.GuardHigher, Alpha: 0.05},
		{Metric: "clicked", Control: 1, Treatment: 0, Better: rules.GuardLower, Alpha: math.NaN()},
	} {
		if d := CheckGuard(r, &g); d.Trip {
			t.Errorf("CheckGuard(%+v) tripped: %s", g, d.Reason)
		}
	}
}
