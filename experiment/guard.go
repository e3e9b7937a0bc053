package experiment

import (
	"fmt"

	"github.com/flagstream/flags/rules"
)

// Decision is a guard's check on a report (SPEC §9).
type Decision struct {
	Trip   bool
	PValue float64    // sequentialP of the treatment against the control on the metric (1 when undefined)
	Units  [2]int64   // control, treatment
	Rates  [2]float64 // the metric's rates: control, treatment
	Reason string     // why it trips or why not, for people
}

// CheckGuard decides whether guard g trips on report r: both variations
// have at least MinUnits units, the treatment's rate of the metric is worse
// than the control's in the Better direction, and the sequential p-value of
// the difference is below Alpha. It neither knows nor cares whether the
// guard already tripped: the caller checks only armed guards.
func CheckGuard(r *Report, g *rules.Guard) Decision {
	d := Decision{PValue: 1, Units: [2]int64{r.Units(g.Control), r.Units(g.Treatment)}}
	ctl, okC := r.Row(g.Metric, g.Control)
	trt, okT := r.Row(g.Metric, g.Treatment)
	if okC {
		d.Rates[0] = ctl.Rate
	}
	if okT {
		d.Rates[1] = trt.Rate
	}
	for i, name := range [2]string{"control", "treatment"} {
		if d.Units[i] < g.MinUnits {
			d.Reason = fmt.Sprintf("%s has %d units, needs %d", name, d.Units[i], g.MinUnits)
			return d
		}
	}
	if !okC || !okT {
		d.Reason = fmt.Sprintf("no %q event counted yet", g.Metric)
		return d
	}
	if p := sequentialP(d.Rates[1]-d.Rates[0], ctl.Conversions+trt.Conversions, d.Units[1], d.Units[0]); p != nil {
		d.PValue = *p
	}
	worse := d.Rates[1] > d.Rates[0]
	if g.Better == rules.GuardHigher {
		worse = d.Rates[1] < d.Rates[0]
	}
	switch {
	case !worse:
		d.Reason = fmt.Sprintf("treatment's %s rate %.4g is not worse than control's %.4g (%s is better)", g.Metric, d.Rates[1], d.Rates[0], g.Better)
	case !(d.PValue < g.Alpha): // a NaN p or alpha (a Guard built in Go with MinUnits 0, say) never trips
		d.Reason = fmt.Sprintf("treatment's %s rate %.4g against control's %.4g: sequential p %.4g, not below %g", g.Metric, d.Rates[1], d.Rates[0], d.PValue, g.Alpha)
	default:
		d.Trip = true
		d.Reason = fmt.Sprintf("treatment's %s rate %.4g is worse than control's %.4g (sequential p %.4g < %g)", g.Metric, d.Rates[1], d.Rates[0], d.PValue, g.Alpha)
	}
	return d
}
