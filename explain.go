package flags

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// Explanation says why an evaluation served what it served: the steps
// SPEC §3 takes, each with what it found, in order, up to the one that
// decided. `flags eval --explain` prints it.
type Explanation struct {
	Result    Result[any] // what Evaluate returns
	Steps     []string    // one line each: the prerequisite, target, rule or clause tried and its outcome
	Variation int         // the variation the steps arrived at, -1 for the caller's default: Result.Variation
}

// Explain evaluates flag key for ec like Evaluate and explains it. It walks
// the flag with the evaluator's own steps (the same clause matching,
// prerequisite evaluation, bucketing and weights), so the explanation
// cannot drift from what Evaluate does; it is slower than Evaluate and
// allocates, being meant for people.
func Explain(s *Snapshot, key string, ec Context, clock func() time.Time) Explanation {
	if clock == nil {
		clock = time.Now
	}
	x := &explainer{
		Explanation: Explanation{Result: Evaluate(s, key, ec, clock), Variation: -1},
		s:           s, ec: ec, clock: clock,
	}
	snap := s.compiled()
	if snap == nil {
		x.step("no snapshot: the client is not ready; the default is served")
		return x.Explanation
	}
	f := snap.Flag(key)
	switch {
	case f == nil:
		x.step("no flag %q in the snapshot (version %d); the default is served", key, snap.Version())
	case f.Err != nil:
		x.step("the flag is malformed (%v); the default is served", f.Err)
	case ec.err != nil:
		x.step("the context is invalid (%v); the default is served", ec.err)
	default:
		x.e = evaluator{snap: snap, ctx: &x.ec, clock: clock}
		x.flag(f)
	}
	return x.Explanation
}

// explainer gathers the steps of one Explain.
type explainer struct {
	Explanation
	s     *Snapshot
	ec    Context
	clock func() time.Time
	e     evaluator
}

func (x *explainer) step(format string, args ...any) {
	x.Steps = append(x.Steps, fmt.Sprintf(format, args...))
}

// serve ends the explanation with variation v.
func (x *explainer) serve(v int) { x.Variation = v }

// flag explains SPEC §3's steps for a well-formed flag and a valid context.
func (x *explainer) flag(f *eval.Flag) {
	if !f.On {
		x.step("the flag is off: it serves its off variation %s", variationName(f, f.OffVariation))
		x.serve(f.OffVariation)
		return
	}
	if !x.prerequisites(f) || x.targets(f) || x.rules(f) {
		return
	}
	if r := f.Fallthrough.Rollout; r != nil {
		x.step("no target or rule matched: the fallthrough's rollout decides")
		x.serve(x.e.explainRollout(r, f, x.step))
		return
	}
	x.step("no target or rule matched: the fallthrough serves variation %s", variationName(f, f.Fallthrough.Variation))
	x.serve(f.Fallthrough.Variation)
}

// prerequisites explains f's prerequisites; false when one failed (and the
// off variation is served).
func (x *explainer) prerequisites(f *eval.Flag) bool {
	for i, p := range f.Prerequisites {
		holds := x.e.prerequisiteHolds(f, i, 0)
		got := Evaluate(x.s, p.Key, x.ec, x.clock)
		found := "it serves " + served(got)
		if got.Reason.ErrorKind == ErrorFlagNotFound {
			found = "it is not in the document" // most often a misspelt key
		}
		x.step("prerequisite %s must serve variation %d: %s → %s", p.Key, p.Variation, found, verdict(holds, "holds", "fails"))
		if !holds {
			x.step("a prerequisite failed: the flag serves its off variation %s", variationName(f, f.OffVariation))
			x.serve(f.OffVariation)
			return false
		}
	}
	return true
}

// targets explains f's targets; true when one served.
func (x *explainer) targets(f *eval.Flag) bool {
	for i := range f.Targets {
		t := &f.Targets[i]
		var v any
		var ok, hit bool
		if isKey(t.Attribute) {
			v, ok, hit = x.ec.key, true, t.Values.ContainsString(x.ec.key)
		} else if v, ok = x.ec.lookup(t.Attribute); ok {
			hit = setHas(&t.Values, v)
		}
		x.step("target %d: %s %s is %s the %d targeted values → %s", i, t.Attribute, shown(v, ok), verdict(hit, "one of", "not one of"), t.Values.Len(), verdict(hit, "matched", "no match"))
		if hit {
			x.step("served variation %s by target %d", variationName(f, t.Variation), i)
			x.serve(t.Variation)
			return true
		}
	}
	return false
}

// rules explains f's rules; true when one served or an error ended the
// evaluation.
func (x *explainer) rules(f *eval.Flag) bool {
	for i := range f.Rules {
		r := &f.Rules[i]
		name := fmt.Sprintf("rule %d", i)
		if r.ID != "" {
			name += fmt.Sprintf(" (%s)", r.ID)
		}
		if r.Unreachable() {
			x.step("%s: skipped, an earlier rule tests a subset of its clauses", name)
			continue
		}
		matched, err := x.clauses(f, r, name)
		if err != nil {
			return true
		}
		if !matched {
			continue
		}
		if r.Serve.Rollout != nil {
			x.step("%s matched: its rollout decides", name)
			x.serve(x.e.explainRollout(r.Serve.Rollout, f, x.step))
		} else {
			x.step("%s matched: served variation %s", name, variationName(f, r.Serve.Variation))
			x.serve(r.Serve.Variation)
		}
		return true
	}
	return false
}

// clauses explains the clauses of rule r up to the first that does not
// match.
func (x *explainer) clauses(f *eval.Flag, r *eval.Rule, name string) (bool, error) {
	for j := range r.Clauses {
		m, what, err := x.e.explainClause(&r.Clauses[j], f)
		if err != nil {
			x.step("%s, clause %d: %s → error: %v", name, j, what, err)
			return false, err
		}
		x.step("%s, clause %d: %s → %s", name, j, what, verdict(m, "matches", "does not match"))
		if !m {
			return false, nil
		}
	}
	return true, nil
}

// explainClause matches one clause as the evaluator does and describes it.
func (e *evaluator) explainClause(c *eval.Clause, f *eval.Flag) (bool, string, error) {
	neg := ""
	if c.Negate {
		neg = "not "
	}
	vals, _ := json.Marshal(c.Values)
	switch {
	case c.Op == rules.OpInSegment:
		m, err := e.otherClauseMatches(c, f.SegmentRefs, 0)
		return m, fmt.Sprintf("the context is %sin a segment of %s%s", neg, vals, missingSegments(c, f)), err
	case c.UsesClock():
		m, err := e.otherClauseMatches(c, f.SegmentRefs, 0)
		return m, fmt.Sprintf("now (%s) %s%s %s", time.UnixMilli(e.nowMillis()).UTC().Format(time.RFC3339), neg, c.Op, vals), err
	}
	v, ok := e.ctx.lookup(c.Attribute)
	return c.Match(v, ok), fmt.Sprintf("%s %s %s%s %s", c.Attribute, shown(v, ok), neg, c.Op, vals), nil
}

// missingSegments names the segments of an inSegment clause that the
// snapshot does not hold (they hold no context), most often a misspelt key:
// "" when there is none.
func missingSegments(c *eval.Clause, f *eval.Flag) string {
	var missing []string
	for i, g := range c.SegmentRefs(f.SegmentRefs) {
		if g == nil && i < len(c.Values) {
			if name, ok := c.Values[i].(string); ok {
				missing = append(missing, strconv.Quote(name))
			}
		}
	}
	switch len(missing) {
	case 0:
		return ""
	case 1:
		return " (" + missing[0] + " is not in the document)"
	}
	return " (" + strings.Join(missing, ", ") + " are not in the document)"
}

// explainRollout buckets as the evaluator does and describes the draw.
func (e *evaluator) explainRollout(r *eval.Rollout, f *eval.Flag, step func(string, ...any)) int {
	bucket, fallback := e.bucket(r.BucketBy, r.Salt, r)
	var t int64
	if len(r.Schedule) > 0 {
		t = e.nowMillis()
	}
	v := r.Choose(bucket, t)
	by := r.BucketBy.String()
	if fallback {
		by += " (absent or not a string or integer: bucket 0)"
	}
	weights := fmt.Sprint(r.Weights)
	if len(r.Schedule) > 0 {
		weights = fmt.Sprintf("scheduled, at %s", time.UnixMilli(t).UTC().Format(time.RFC3339))
	}
	exp := ""
	if r.Experiment {
		exp = " (an experiment)"
	}
	step("bucket %d of 100000 by %s, salt %q; variations %v with weights %s → variation %s%s",
		bucket, by, r.Salt, r.Variations, weights, variationName(f, v), exp)
	return v
}

func variationName(f *eval.Flag, i int) string {
	if i < 0 || i >= len(f.Variations) {
		return "none (the caller's default)"
	}
	return fmt.Sprintf("%d (%s)", i, f.Variations[i].JSON)
}

func served(r Result[any]) string {
	if r.Variation < 0 {
		return fmt.Sprintf("no variation (%s)", r.Reason.Kind)
	}
	return fmt.Sprintf("variation %d", r.Variation)
}

func shown(v any, ok bool) string {
	if !ok {
		return "(absent)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return "= " + string(b)
}

func verdict(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}
