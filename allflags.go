package flags

import (
	"bytes"
	"context"
	"iter"
	"slices"
	"strings"

	"github.com/flagstream/flags/internal/eval"
)

// AllFlags evaluates every flag for ec, in key order, with no default (a
// flag that cannot serve a variation has a nil Value). Use it to bootstrap a
// front end: the result encodes to JSON as an array in the shape of `flags
// eval`. Before the client is ready it holds no flag.
//
// Every flag is evaluated before AllFlags returns (the result does not
// change when the flags do), but a result keeps only what each evaluation
// decided, 12 bytes a flag: Results are built when read. So AllFlags
// allocates twice whatever the number of flags, unless an override or a
// malformed flag makes a result that must be kept whole.
func (c *Client) AllFlags(ctx context.Context, ec Context) *Evaluations {
	all := &Evaluations{}
	snap := c.snap.Load()
	if snap == nil {
		return all
	}
	all.snap = snap
	all.decided = make([]decision, len(snap.Flags()))
	e := evaluator{snap: snap, ctx: &ec, clock: c.clock}
	ov := c.ov.set.Load()
	valid := ec.err == nil && ec.attrs != nil
	for i, f := range snap.Flags() {
		if valid && f.Err == nil && (ov == nil || ov.lookup(f.Key, ec.key) == nil) {
			if d, err := e.decide(f, 0); err == nil {
				all.decided[i] = d
				continue
			}
		}
		// The rare cases, an override or an error, keep the whole result.
		all.decided[i].kind = kindKept
		all.kept = append(all.kept, keptResult{index: i})
		c.evaluateOne(&e, ov, f, ec, &all.kept[len(all.kept)-1].result)
	}
	return all
}

// AppendAllFlags is AllFlags appending whole results to dst, for callers
// that want every detail at once and reuse one buffer: with enough capacity
// it does not allocate.
func (c *Client) AppendAllFlags(ctx context.Context, dst []Result[any], ec Context) []Result[any] {
	snap := c.snap.Load()
	if snap == nil {
		return dst
	}
	e := evaluator{snap: snap, ctx: &ec, clock: c.clock}
	ov := c.ov.set.Load()
	all := snap.Flags()
	n := len(dst)
	dst = slices.Grow(dst, len(all))[:n+len(all)]
	valid := ec.err == nil && ec.attrs != nil
	for i, f := range all {
		r := &dst[n+i]
		if valid && f.Err == nil && (ov == nil || ov.lookup(f.Key, ec.key) == nil) {
			if d, err := e.decide(f, 0); err == nil {
				fillDecision(r, f, d)
				continue
			}
		}
		c.evaluateOne(&e, ov, f, ec, r)
	}
	return dst
}

// evaluateOne evaluates f into r the long way: with overrides, for a
// malformed flag or an invalid context, or when decide reported an error.
func (c *Client) evaluateOne(e *evaluator, ov *overrideSet, f *eval.Flag, ec Context, r *Result[any]) {
	if ov != nil {
		if forced := ov.lookup(f.Key, ec.key); forced != nil {
			ev := evaluation{flag: f, forced: forced, variation: -1, kind: kindOverride}
			fillAny(r, f.Key, &ev, nil)
			return
		}
	}
	if ec.err == nil && ec.attrs != nil && f.Err == nil {
		d, err := e.decide(f, 0)
		if err == nil {
			fillDecision(r, f, d)
			return
		}
		ev := errorEval(f, errMalformedFlag, err)
		fillAny(r, f.Key, &ev, nil)
		return
	}
	var ev evaluation
	e.evaluateTop(&ev, f)
	fillAny(r, f.Key, &ev, nil)
}

// kindKept marks a decision whose whole result Evaluations keeps.
const kindKept uint8 = 0xff

// Evaluations is every flag evaluated for one context, in key order: what
// AllFlags returns. It is immutable and safe for concurrent use.
type Evaluations struct {
	snap    *eval.Snapshot
	decided []decision   // one per flag of snap, in key order
	kept    []keptResult // the results kept whole, by index
}

// keptResult is a result Evaluations keeps whole (an override, an error).
type keptResult struct {
	index  int
	result Result[any]
}

// EvaluationsOf returns Evaluations holding results, sorted by flag key:
// for fakes of Evaluator and for tests.
func EvaluationsOf(results ...Result[any]) *Evaluations {
	all := &Evaluations{decided: make([]decision, len(results)), kept: make([]keptResult, len(results))}
	sorted := slices.SortedStableFunc(slices.Values(results), func(a, b Result[any]) int { return strings.Compare(a.Flag, b.Flag) })
	for i, r := range sorted {
		all.decided[i].kind = kindKept
		all.kept[i] = keptResult{index: i, result: r}
	}
	return all
}

// Len returns the number of flags.
func (a *Evaluations) Len() int { return len(a.decided) }

// At returns the result of the i-th flag in key order, 0 <= i < Len().
func (a *Evaluations) At(i int) Result[any] {
	var r Result[any]
	a.fill(&r, i)
	return r
}

func (a *Evaluations) fill(r *Result[any], i int) {
	d := a.decided[i]
	if d.kind != kindKept {
		fillDecision(r, a.snap.Flags()[i], d)
		return
	}
	k, _ := slices.BinarySearchFunc(a.kept, i, func(k keptResult, i int) int { return k.index - i })
	*r = a.kept[k].result
}

// Lookup returns the result of flag key, and false when there is no such
// flag.
func (a *Evaluations) Lookup(key string) (Result[any], bool) {
	var i int
	var ok bool
	if a.snap != nil {
		i, ok = slices.BinarySearchFunc(a.snap.Flags(), key, func(f *eval.Flag, key string) int {
			return strings.Compare(f.Key, key)
		})
	} else { // EvaluationsOf: every result kept, in key order
		i, ok = slices.BinarySearchFunc(a.kept, key, func(k keptResult, key string) int {
			return strings.Compare(k.result.Flag, key)
		})
	}
	if !ok {
		return Result[any]{}, false
	}
	return a.At(i), true
}

// All yields every result in key order.
func (a *Evaluations) All() iter.Seq[Result[any]] {
	return func(yield func(Result[any]) bool) {
		var r Result[any]
		for i := range a.decided {
			a.fill(&r, i)
			if !yield(r) {
				return
			}
		}
	}
}

// AppendTo appends every result to dst, in key order.
func (a *Evaluations) AppendTo(dst []Result[any]) []Result[any] {
	n := len(dst)
	dst = slices.Grow(dst, len(a.decided))[:n+len(a.decided)]
	for i := range a.decided {
		a.fill(&dst[n+i], i)
	}
	return dst
}

// MarshalJSON encodes the results as a JSON array, each in the shape
// `flags eval` prints.
func (a *Evaluations) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('[')
	var r Result[any]
	for i := range a.decided {
		if i > 0 {
			b.WriteByte(',')
		}
		a.fill(&r, i)
		enc, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b.Write(enc)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}
