package eval

import (
	"encoding/json"
	"time"
)

// Guard is a flag's guarded rollout (SPEC §9): while the flag is on, the
// server compares the treatment variation with the control on a metric and,
// when the treatment is worse with an always-valid p-value below Alpha,
// rolls the flag back to the control and records Tripped.
type Guard struct {
	Metric    string  // the tracked metric compared (SPEC §7 track events)
	Better    string  // GuardLower or GuardHigher: which direction of the metric's rate is better
	Control   int     // the variation index rolled back to
	Treatment int     // the variation index watched
	Alpha     float64 // the significance level; DefaultGuardAlpha when unset
	MinUnits  int64   // units each variation needs before a check; DefaultGuardMinUnits when unset

	// Tripped is set once the guard has rolled the flag back; a tripped
	// guard never checks again until an edit removes it.
	Tripped *GuardTrip
}

// GuardTrip records why and when a guard rolled its flag back.
type GuardTrip struct {
	At     time.Time  // when the server tripped it
	PValue float64    // the sequential p-value that tripped it
	Units  [2]int64   // units of the control and of the treatment
	Rates  [2]float64 // the metric's rates of the control and of the treatment
}

// The directions a guard's metric can be better in.
const (
	GuardLower  = "lower"  // fewer conversions is better (errors, latency breaches)
	GuardHigher = "higher" // more conversions is better (checkouts, clicks)
)

// Defaults of a guard's optional fields (SPEC §9).
const (
	DefaultGuardAlpha    = 0.05
	DefaultGuardMinUnits = 100
)

// Armed reports whether the guard is set and has not tripped: evaluations
// of its flag then record exposures and the server checks it.
func (g *Guard) Armed() bool { return g != nil && g.Tripped == nil }

// guard reads a flag's guard; n is its number of variations.
func (ps *problems) guard(obj object, n int) *Guard {
	v, ok := obj.get("guard")
	if !ok || v == nil {
		return nil
	}
	o := ps.object(v, "guard")
	if o == nil {
		return nil
	}
	g := &Guard{Alpha: DefaultGuardAlpha, MinUnits: DefaultGuardMinUnits}
	ps.guardMetric(o, g)
	g.Control = ps.requiredIndex(o, "control", "guard", n)
	g.Treatment = ps.requiredIndex(o, "treatment", "guard", n)
	if g.Control >= 0 && g.Control == g.Treatment {
		ps.add("guard.treatment", "is the control (%d): want another variation", g.Control)
	}
	ps.guardTest(o, g)
	if t, ok := o.get("tripped"); ok && t != nil {
		g.Tripped = ps.guardTrip(t)
	}
	return g
}

// guardMetric reads a guard's metric and its better direction, both
// required.
func (ps *problems) guardMetric(o object, g *Guard) {
	if m, ok := o.get("metric"); !ok {
		ps.add("guard.metric", "missing (required): the name of a tracked metric")
	} else if g.Metric = ps.str(o, "metric", "guard"); m == "" {
		ps.add("guard.metric", "is empty: want the name of a tracked metric")
	}
	if _, ok := o.get("better"); !ok {
		ps.add("guard.better", "missing (required): %q or %q", GuardLower, GuardHigher)
	} else if g.Better = ps.str(o, "better", "guard"); g.Better != GuardLower && g.Better != GuardHigher {
		ps.add("guard.better", "%q: want %q or %q", g.Better, GuardLower, GuardHigher)
	}
}

// guardTest reads the optional parameters of a guard's test: alpha and
// minUnits, which keep their defaults when absent.
func (ps *problems) guardTest(o object, g *Guard) {
	if a, ok := o.get("alpha"); ok && a != nil {
		g.Alpha = ps.float(a, "guard.alpha")
		if !(g.Alpha > 0 && g.Alpha < 1) {
			ps.add("guard.alpha", "%v: want a number between 0 and 1 (exclusive)", g.Alpha)
		}
	}
	if m, ok := o.get("minUnits"); ok && m != nil {
		if g.MinUnits = ps.int64Value(m, "guard.minUnits"); g.MinUnits < 1 {
			ps.add("guard.minUnits", "%d: want at least 1", g.MinUnits)
		}
	}
}

// guardTrip reads a guard's tripped record.
func (ps *problems) guardTrip(v any) *GuardTrip {
	o := ps.object(v, "guard.tripped")
	if o == nil {
		return nil
	}
	t := &GuardTrip{}
	if at := ps.str(o, "at", "guard.tripped"); at == "" {
		ps.add("guard.tripped.at", "missing (required): an RFC 3339 time")
	} else if when, err := ParseRFC3339(at); err != nil {
		ps.add("guard.tripped.at", "%q is not an RFC 3339 time", at)
	} else {
		t.At = when
	}
	if p, ok := o.get("pValue"); ok && p != nil {
		t.PValue = ps.float(p, "guard.tripped.pValue")
	}
	for i, u := range ps.pair(o, "units") {
		t.Units[i] = ps.int64Value(u, ps.item("guard.tripped.units", i))
	}
	for i, r := range ps.pair(o, "rates") {
		t.Rates[i] = ps.float(r, ps.item("guard.tripped.rates", i))
	}
	return t
}

// pair reads an optional array of two items of a guard's tripped record
// (control first, treatment second).
func (ps *problems) pair(o object, name string) []any {
	items := ps.array(o, name, "guard.tripped")
	if items != nil && len(items) != 2 {
		ps.add(ps.join("guard.tripped", name), "has %d items, want 2 (control, treatment)", len(items))
		return nil
	}
	return items
}

// float reads a number.
func (ps *problems) float(v any, field string) float64 {
	return number(ps, v, field, "a number", "is out of range", json.Number.Float64)
}
