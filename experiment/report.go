package experiment

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// FlagInfo is what the analysis needs to know about a flag.
type FlagInfo struct {
	Key        string
	Variations int      // the number of variations
	Control    int      // the variation the others are compared with (see FlagInfoOf)
	SRM        []Weight // the flag's one unscheduled rollout, when it has exactly one; nil: no SRM check
}

// Weight is one variation of a rollout and its weight (of 100,000).
type Weight struct {
	Variation int
	Weight    int64
}

// FlagInfoOf derives the FlagInfo of flag key, whose JSON (as in a
// document's Flags) is flag, as SPEC §8 says: the control is the guard's
// control, else the first variation of the fallthrough's rollout, else 0;
// the sample-ratio check applies when the flag has exactly one rollout
// (fallthrough and rules together) and it has no schedule. When flag is
// malformed it returns what could be read of it and the flag's first
// problem.
func FlagInfoOf(key string, flag json.RawMessage) (FlagInfo, error) {
	doc := &rules.Document{Flags: map[string]json.RawMessage{key: flag}}
	f := eval.Compile(doc).Flag(key)
	return flagInfo(f), f.Err
}

// flagInfo is FlagInfoOf of a compiled flag.
func flagInfo(f *eval.Flag) FlagInfo {
	info := FlagInfo{Key: f.Key, Variations: len(f.Variations)}
	if ro := f.Fallthrough.Rollout; ro != nil && len(ro.Variations) > 0 {
		info.Control = ro.Variations[0]
	}
	if f.Metadata != nil && f.Guard != nil {
		info.Control = f.Guard.Control
	}
	rollouts := f.Rollouts()
	if len(rollouts) == 1 && len(rollouts[0].Schedule) == 0 {
		ro := rollouts[0]
		for i, v := range ro.Variations {
			info.SRM = append(info.SRM, Weight{Variation: v, Weight: ro.Weights[i]})
		}
	}
	return info
}

// Report is SPEC §8's analysis of one flag; encoded as JSON it is the
// answer of GET /v1/admin/experiments/{flag}.
type Report struct {
	Flag       string                 `json:"flag"`
	Control    int                    `json:"control"`
	Switched   int64                  `json:"switched"` // units exposed to more than one variation
	Variations []VariationUnits       `json:"variations"`
	SRM        *SRM                   `json:"srm,omitempty"`
	Metrics    map[string][]MetricRow `json:"metrics"`
}

// VariationUnits is how many units a variation was first served to.
type VariationUnits struct {
	Variation int   `json:"variation"`
	Units     int64 `json:"units"`
}

// SRM is the sample-ratio mismatch check: a PValue below 0.001 means the
// assignment is broken and the results must not be trusted.
type SRM struct {
	Expected  []float64 `json:"expected"`
	ChiSquare float64   `json:"chiSquare"`
	PValue    float64   `json:"pValue"`
}

// MetricRow is one variation's outcome on one metric.
type MetricRow struct {
	Variation   int         `json:"variation"`
	Conversions int64       `json:"conversions"` // units with at least one counted event
	Rate        float64     `json:"rate"`        // conversions / units
	Sum         float64     `json:"sum"`         // the counted events' values (1 each without one)
	Mean        float64     `json:"mean"`        // sum / units
	VsControl   *Comparison `json:"vsControl,omitempty"`
}

// Comparison compares a variation's rate with the control's (SPEC §8).
// Null fields are undefined: Relative when the control's rate is 0; CI95
// and PValue when the standard error is 0; SequentialP when the pooled
// variance is 0.
type Comparison struct {
	Diff        float64     `json:"diff"`
	Relative    *float64    `json:"relative"`
	CI95        *[2]float64 `json:"ci95"`
	PValue      *float64    `json:"pValue"`
	SequentialP *float64    `json:"sequentialP"`
}

// SRMThreshold is the SRM p-value under which results must not be trusted.
const SRMThreshold = 0.001

// Row returns the row of variation v for metric, and false when there is none.
func (r *Report) Row(metric string, v int) (MetricRow, bool) {
	for _, row := range r.Metrics[metric] {
		if row.Variation == v {
			return row, true
		}
	}
	return MetricRow{}, false
}

// Units returns the units of variation v.
func (r *Report) Units(v int) int64 {
	for _, u := range r.Variations {
		if u.Variation == v {
			return u.Units
		}
	}
	return 0
}

// Report computes the analysis of flag f from the units recorded so far.
// Variations a unit was served that f no longer has are left out.
func (a *Aggregator) Report(f FlagInfo) *Report {
	r := &Report{Flag: f.Key, Control: f.Control, Variations: make([]VariationUnits, f.Variations),
		Metrics: map[string][]MetricRow{}}
	for v := range r.Variations {
		r.Variations[v].Variation = v
	}
	for metric, t := range a.count(f, r) {
		r.Metrics[metric] = metricRows(f, r.Variations, t)
	}
	r.SRM = srm(f.SRM, r.Variations)
	return r
}

// tally is one metric's outcome by variation: the units that converted
// and the sum of their counted values.
type tally struct {
	conversions []int64
	sums        []exactSum
}

// count adds the units recorded for flag f to r's Variations and Switched,
// and returns the tally of each metric that any of them converted on.
func (a *Aggregator) count(f FlagInfo, r *Report) map[string]*tally {
	tallies := map[string]*tally{}
	a.mu.Lock()
	defer a.mu.Unlock()
	units := a.flags[f.Key]
	if units == nil {
		return tallies
	}
	for unit, e := range units.units {
		if e.switched {
			r.Switched++
		}
		v := int(e.variation)
		if v < 0 || v >= f.Variations {
			continue
		}
		r.Variations[v].Units++
		a.convert(tallies, unit, e, f.Variations)
	}
	return tallies
}

// convert counts, in tallies, the events of unit since its exposure e on
// every metric; variations is the flag's number of variations. Called with
// a.mu held.
func (a *Aggregator) convert(tallies map[string]*tally, unit string, e *exposure, variations int) {
	v := int(e.variation)
	for metric, ue := range a.events[unit] {
		var sum *exactSum // the variation's, from the unit's first event counted
		for i, at := range ue.at {
			if at < e.at {
				continue // before the unit's first exposure: not counted
			}
			if sum == nil {
				t := tallies[metric]
				if t == nil {
					t = &tally{conversions: make([]int64, variations), sums: make([]exactSum, variations)}
					tallies[metric] = t
				}
				t.conversions[v]++
				sum = &t.sums[v]
			}
			sum.add(ue.value[i])
		}
	}
}

// metricRows is one metric's rows of flag f, a variation a row, from its
// tally t and the units of each variation; each row other than the
// control's is compared with it when the control has units.
func metricRows(f FlagInfo, units []VariationUnits, t *tally) []MetricRow {
	rows := make([]MetricRow, f.Variations)
	for v := range rows {
		n := units[v].Units
		sum := t.sums[v].value()
		rows[v] = MetricRow{Variation: v, Conversions: t.conversions[v], Sum: sum}
		if n > 0 {
			rows[v].Rate = float64(t.conversions[v]) / float64(n)
			rows[v].Mean = sum / float64(n)
		}
	}
	c := f.Control
	if c < 0 || c >= f.Variations || units[c].Units == 0 {
		return rows
	}
	for v := range rows {
		if v == c || units[v].Units == 0 {
			continue
		}
		cmp := compare(t.conversions[v], units[v].Units, t.conversions[c], units[c].Units)
		rows[v].VsControl = &Comparison{Diff: cmp.diff, Relative: cmp.relative, CI95: cmp.ci95,
			PValue: cmp.pValue, SequentialP: cmp.sequentialP}
	}
	return rows
}

// srm is the sample-ratio check of SPEC §8 over the rollout's variations
// of positive weight; nil when the flag has no single unscheduled rollout.
// A variation the rollout lists twice is one cell of the summed weight:
// its units cannot be told apart.
func srm(weights []Weight, units []VariationUnits) *SRM {
	if weights == nil {
		return nil
	}
	weights = mergeWeights(weights)
	var n int64
	for _, u := range units {
		n += u.Units
	}
	out := &SRM{Expected: []float64{}}
	k := 0
	for _, w := range weights {
		if w.Weight <= 0 || w.Variation < 0 || w.Variation >= len(units) {
			continue
		}
		e := float64(n) * float64(w.Weight) / 100000
		out.Expected = append(out.Expected, e)
		k++
		if e > 0 {
			d := float64(units[w.Variation].Units) - e
			out.ChiSquare += d * d / e
		}
	}
	out.PValue = 1
	if k > 1 {
		out.PValue = chiSquareP(out.ChiSquare, k-1)
	}
	return out
}

// mergeWeights sums the weights of each variation, in the order of their
// first entries.
func mergeWeights(weights []Weight) []Weight {
	out := make([]Weight, 0, len(weights))
	for _, w := range weights {
		if i := slices.IndexFunc(out, func(o Weight) bool { return o.Variation == w.Variation }); i >= 0 {
			out[i].Weight += w.Weight
			continue
		}
		out = append(out, w)
	}
	return out
}

// MetricNames returns the names of the report's metrics, sorted.
func (r *Report) MetricNames() []string {
	return slices.Sorted(maps.Keys(r.Metrics))
}
