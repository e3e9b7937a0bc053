package experiment

import (
	"slices"
	"sync"
)

// Aggregator keeps what the analysis needs, unit by unit, as events arrive,
// so that a report reads units, never the events again. It is exact
// whatever the order in which events arrive: a unit's first exposure is the
// earliest by `at`, and a metric event counts for a flag when its `at` is at
// or after the unit's first exposure to that flag, even when the exposure
// arrives after the event. It is safe for concurrent use.
//
// The server feeds it every event it accepted, once per event (it drops
// repeated batches), with `at` already clamped to the time it received the
// event (SPEC §8). Repeating an event changes nothing: a unit is counted
// once per flag, and a metric event identical to one already recorded for
// the same unit (same metric, at, and value) is recorded once.
type Aggregator struct {
	mu      sync.Mutex
	flags   map[string]*flagUnits
	metrics map[string]map[string]*unitEvents // metric → unit → its events
}

// flagUnits is one flag's randomized units.
type flagUnits struct {
	units map[string]*exposure
}

// exposure is a unit's first randomized exposure to one flag.
type exposure struct {
	at        int64 // the earliest exposure's time, Unix ms
	variation int32 // its variation
	seen      int32 // the variation of the exposure recorded first, whatever its time
	switched  bool  // exposures to more than one variation
}

// unitEvents is one unit's events of one metric, sorted by time.
type unitEvents struct {
	at    []int64
	value []float64 // 1 for an event without a value
}

// NewAggregator returns an empty Aggregator.
func NewAggregator() *Aggregator {
	return &Aggregator{flags: map[string]*flagUnits{}, metrics: map[string]map[string]*unitEvents{}}
}

// Exposure records that unit was served variation of flag at time at (Unix
// ms). Exposures not drawn by a rollout (inRollout false) do not enter the
// analysis (SPEC §8) and are ignored.
func (a *Aggregator) Exposure(flag, unit string, variation int, inRollout bool, at int64) {
	if !inRollout || unit == "" || variation < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.flags[flag]
	if f == nil {
		f = &flagUnits{units: map[string]*exposure{}}
		a.flags[flag] = f
	}
	e := f.units[unit]
	if e == nil {
		f.units[unit] = &exposure{at: at, variation: int32(variation), seen: int32(variation)}
		return
	}
	if int32(variation) != e.seen {
		e.switched = true
	}
	// The earliest exposure decides; at equal times, the lower variation,
	// so that the order of arrival never matters.
	if at < e.at || at == e.at && int32(variation) < e.variation {
		e.at, e.variation = at, int32(variation)
	}
}

// Track records an event of metric from unit at time at (Unix ms), with
// value when hasValue (else it counts 1).
func (a *Aggregator) Track(metric, unit string, value float64, hasValue bool, at int64) {
	if unit == "" || metric == "" {
		return
	}
	if !hasValue {
		value = 1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	byUnit := a.metrics[metric]
	if byUnit == nil {
		byUnit = map[string]*unitEvents{}
		a.metrics[metric] = byUnit
	}
	u := byUnit[unit]
	if u == nil {
		byUnit[unit] = &unitEvents{at: []int64{at}, value: []float64{value}}
		return
	}
	// Insert in time order; events mostly arrive in order, so this is an
	// append. An identical event (same time and value) is a repeat.
	i := len(u.at)
	for i > 0 && u.at[i-1] > at {
		i--
	}
	for j := i - 1; j >= 0 && u.at[j] == at; j-- {
		if u.value[j] == value {
			return
		}
	}
	u.at = slices.Insert(u.at, i, at)
	u.value = slices.Insert(u.value, i, value)
}

// since returns how many of the unit's events are at or after t, and the
// sum of their values.
func (u *unitEvents) since(t int64) (n int, sum float64) {
	i, _ := slices.BinarySearch(u.at, t)
	for _, v := range u.value[i:] {
		sum += v
	}
	return len(u.at) - i, sum
}
