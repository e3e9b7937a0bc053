package experiment

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flagstream/flags/rules"
)

// The simulations below are seeded and use no clock: their numbers are the
// same on every run and every machine. Each run randomizes units 50/50
// between a control (variation 0) and a treatment (variation 1) whose
// error rates are pC and pT, and a guard (metric "errors", lower is
// better, alpha 0.05, minUnits 100) looks at the counts every 100 units up
// to 20,000 units, as a server checking every few seconds would.
const (
	simRuns  = 1000
	simUnits = 20000
	simPeek  = 100
	simAlpha = 0.05
)

var simGuard = &rules.Guard{Metric: "errors", Better: rules.GuardLower, Control: 0, Treatment: 1,
	Alpha: simAlpha, MinUnits: rules.DefaultGuardMinUnits}

// simResult is what a batch of runs saw.
type simResult struct {
	guardTrips   int     // runs in which the guard tripped at some look
	unitsToTrip  float64 // mean units at the tripping look, over the runs that tripped
	naiveTrips   int     // runs in which a two-sided z-test had p < alpha at some look
	seqTwoSided  int     // runs in which sequentialP < alpha at some look, either direction
	lastLookNaiv int     // runs in which the z-test had p < alpha at the last look only
}

// simulate runs simRuns runs with error rates pC and pT, from seed.
func simulate(seed uint64, pC, pT float64) simResult {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var res simResult
	var unitsSum float64
	for range simRuns {
		run := simulateRun(rng, pC, pT)
		if run.trippedAt > 0 {
			res.guardTrips++
			unitsSum += float64(run.trippedAt)
		}
		if run.naive {
			res.naiveTrips++
		}
		if run.seq {
			res.seqTwoSided++
		}
		if run.lastLookNaive {
			res.lastLookNaiv++
		}
	}
	if res.guardTrips > 0 {
		res.unitsToTrip = unitsSum / float64(res.guardTrips)
	}
	return res
}

// simRun is what one run saw.
type simRun struct {
	trippedAt     int  // units at the look where the guard first tripped; 0 if it never did
	naive         bool // a two-sided z-test had p < alpha at some look
	seq           bool // sequentialP < alpha at some look, either direction
	lastLookNaive bool // the z-test had p < alpha at the last look
}

// simulateRun randomizes simUnits units, drawing from rng in a fixed
// order (the variation, then whether the unit errs), and looks at the
// counts every simPeek units.
func simulateRun(rng *rand.Rand, pC, pT float64) simRun {
	var run simRun
	var n, c [2]int64
	p := [2]float64{pC, pT}
	for u := 1; u <= simUnits; u++ {
		v := rng.IntN(2)
		n[v]++
		if rng.Float64() < p[v] {
			c[v]++
		}
		if u%simPeek != 0 {
			continue
		}
		if run.trippedAt == 0 && CheckGuard(countsReport(n, c), simGuard).Trip {
			run.trippedAt = u
		}
		naive, seq := belowAlpha(n, c)
		run.naive = run.naive || naive
		run.seq = run.seq || seq
		run.lastLookNaive = naive && u == simUnits
	}
	return run
}

// belowAlpha says whether, for these counts, the naive two-sided z-test's
// p-value and sequentialP are below simAlpha; neither is while a
// variation has no units.
func belowAlpha(n, c [2]int64) (naive, seq bool) {
	if n[0] == 0 || n[1] == 0 {
		return false, false
	}
	cmp := compare(c[1], n[1], c[0], n[0])
	return cmp.pValue != nil && *cmp.pValue < simAlpha, cmp.sequentialP != nil && *cmp.sequentialP < simAlpha
}

// countsReport is the report an Aggregator gives for these counts.
func countsReport(n, c [2]int64) *Report {
	r := &Report{Flag: "sim", Variations: []VariationUnits{{0, n[0]}, {1, n[1]}}, Metrics: map[string][]MetricRow{}}
	rows := make([]MetricRow, 2)
	for v := range 2 {
		rows[v] = MetricRow{Variation: v, Conversions: c[v], Sum: float64(c[v])}
		if n[v] > 0 {
			rows[v].Rate = float64(c[v]) / float64(n[v])
		}
	}
	r.Metrics["errors"] = rows
	return r
}

// TestAATripsAtMostAlpha: with no true difference, the guard trips in at
// most alpha of the runs however often it looks; a naive z-test looked at
// the same way "finds" a difference far more often.
func TestAATripsAtMostAlpha(t *testing.T) {
	res := simulate(1, 0.10, 0.10)
	rate := float64(res.guardTrips) / simRuns
	t.Logf("A/A, %d runs, a look every %d units to %d: guard tripped in %d (%.1f %%); sequentialP < %.2f either way in %d (%.1f %%); naive z-test p < %.2f at some look in %d (%.1f %%), at the last look only %d (%.1f %%)",
		simRuns, simPeek, simUnits, res.guardTrips, 100*rate, simAlpha, res.seqTwoSided, 100*float64(res.seqTwoSided)/simRuns,
		simAlpha, res.naiveTrips, 100*float64(res.naiveTrips)/simRuns, res.lastLookNaiv, 100*float64(res.lastLookNaiv)/simRuns)
	if rate > simAlpha {
		t.Errorf("A/A guard trips in %.1f %% of runs, want at most %.0f %%", 100*rate, 100*simAlpha)
	}
	if two := float64(res.seqTwoSided) / simRuns; two > simAlpha {
		t.Errorf("A/A sequentialP below alpha in %.1f %% of runs (two-sided), want at most %.0f %%", 100*two, 100*simAlpha)
	}
	if naive := float64(res.naiveTrips) / simRuns; naive < 0.15 {
		t.Errorf("the naive z-test peeked every %d units fired in only %.1f %% of runs: the simulation does not peek like a guard", simPeek, 100*naive)
	}
}

// TestRegressionsTrip: a treatment that raises the error rate from 10 % to
// 12 % trips the guard in at least 90 % of runs within 20,000 units, from
// 10 % to 15 % in at least 99 %.
func TestRegressionsTrip(t *testing.T) {
	for _, tc := range []struct {
		pT, want float64
	}{{0.12, 0.90}, {0.15, 0.99}} {
		res := simulate(2, 0.10, tc.pT)
		rate := float64(res.guardTrips) / simRuns
		t.Logf("10 %% -> %.0f %%: tripped in %d of %d runs (%.1f %%), after %.0f units on average",
			100*tc.pT, res.guardTrips, simRuns, 100*rate, res.unitsToTrip)
		if rate < tc.want {
			t.Errorf("10 %% -> %.0f %%: tripped in %.1f %% of runs, want at least %.0f %%", 100*tc.pT, 100*rate, 100*tc.want)
		}
	}
}

// TestSimulationThroughAggregator: the counts the simulations use are what
// an Aggregator reports for the same events, and the guard decides the
// same on both.
func TestSimulationThroughAggregator(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for run := range 20 {
		a := NewAggregator()
		var n, c [2]int64
		for u := range 2000 {
			unit := fmt.Sprintf("r%d-u%d", run, u)
			v := rng.IntN(2)
			a.Exposure("sim", unit, v, true, int64(u))
			n[v]++
			if rng.Float64() < 0.10+0.05*float64(v) {
				c[v]++
				a.Track("errors", unit, 0, false, int64(u)+1)
			}
		}
		got := a.Report(FlagInfo{Key: "sim", Variations: 2})
		want := countsReport(n, c)
		dg, dw := CheckGuard(got, simGuard), CheckGuard(want, simGuard)
		if dg.Trip != dw.Trip || dg.Units != dw.Units || math.Abs(dg.PValue-dw.PValue) > 1e-12 {
			t.Fatalf("run %d: aggregator %+v, counts %+v", run, dg, dw)
		}
	}
}
