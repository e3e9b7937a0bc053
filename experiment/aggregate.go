package experiment

import (
	"math"
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
	mu    sync.Mutex
	flags map[string]*flagUnits
	// events are the track events by unit, then metric: a report visits
	// each exposed unit's own metrics. (By metric first, it looked every
	// exposed unit up in every metric: units × metrics, which a few
	// batches of one-unit metrics made minutes long.)
	events map[string]map[string]*unitEvents // unit → metric → its events
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

// unitEvents is one unit's events of one metric, in the order they
// arrived: a report scans them all (it sums their values anyway), so
// keeping them sorted would buy nothing, and an insertion in time order
// would cost the unit's whole history for an event that arrives late.
type unitEvents struct {
	at     []int64
	value  []float64 // 1 for an event without a value
	latest int64     // the greatest of at

	// seen holds the unit's events once it has scanEvents, to find a
	// repeat in constant time: scanning the events of equal time made a
	// batch of one unit's events cost the square of its size (SPEC §13).
	seen map[trackEvent]struct{}
}

// trackEvent is what makes two events of one unit and metric the same.
type trackEvent struct {
	at    int64
	value float64 // never NaN (Track refuses it), so == is the identity of values
}

// NewAggregator returns an empty Aggregator.
func NewAggregator() *Aggregator {
	return &Aggregator{flags: map[string]*flagUnits{}, events: map[string]map[string]*unitEvents{}}
}

// Exposure records that unit was served variation of flag at time at (Unix
// ms). Exposures not drawn by a rollout (inRollout false) do not enter the
// analysis (SPEC §8) and are ignored.
func (a *Aggregator) Exposure(flag, unit string, variation int, inRollout bool, at int64) {
	if !inRollout || unit == "" || variation < 0 || variation > math.MaxInt32 {
		return // a variation beyond int32 is no flag's: it must not wrap to another one
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

// MaxValue bounds the magnitude of a metric event's value: Track ignores
// a value beyond it (and NaN), and the server rejects such an event. It is
// far above any measurement (a revenue in cents, a latency in ns), and low
// enough that no number of events can make a sum overflow to infinity,
// which JSON cannot carry.
const MaxValue = 1e15

// ValidValue reports whether v may be a metric event's value: a number
// within MaxValue of 0.
func ValidValue(v float64) bool { return math.Abs(v) <= MaxValue }

// Track records an event of metric from unit at time at (Unix ms), with
// value when hasValue (else it counts 1). A value beyond MaxValue is
// ignored.
func (a *Aggregator) Track(metric, unit string, value float64, hasValue bool, at int64) {
	if unit == "" || metric == "" || hasValue && !ValidValue(value) {
		return
	}
	if !hasValue {
		value = 1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	byMetric := a.events[unit]
	if byMetric == nil {
		byMetric = map[string]*unitEvents{}
		a.events[unit] = byMetric
	}
	u := byMetric[metric]
	if u == nil {
		byMetric[metric] = &unitEvents{at: []int64{at}, value: []float64{value}, latest: at}
		return
	}
	if !u.add(trackEvent{at, value}) {
		return // a repeat
	}
	u.at = append(u.at, at)
	u.value = append(u.value, value)
}

// add records ev among the unit's events and reports whether it is new.
// An event later than all the unit's others (the usual one: events mostly
// arrive in time order) is new without a look; otherwise a unit's few
// events are compared one by one, and from scanEvents on they are in a
// set.
func (u *unitEvents) add(ev trackEvent) bool {
	later := ev.at > u.latest
	u.latest = max(u.latest, ev.at)
	if u.seen == nil && (later || len(u.at) < scanEvents) {
		if later {
			return true
		}
		for i := range u.at {
			if u.at[i] == ev.at && u.value[i] == ev.value {
				return false
			}
		}
		return true
	}
	if u.seen == nil {
		u.seen = make(map[trackEvent]struct{}, 2*len(u.at))
		for i := range u.at {
			u.seen[trackEvent{u.at[i], u.value[i]}] = struct{}{}
		}
	}
	if _, ok := u.seen[ev]; ok {
		return false
	}
	u.seen[ev] = struct{}{}
	return true
}

// scanEvents is how many events of a unit add compares one by one before
// it keeps them in a set: most units have a few.
const scanEvents = 16
