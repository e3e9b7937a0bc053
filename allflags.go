package flags

import (
	"context"
	"slices"

	"github.com/flagstream/flags/rules"
)

// AllFlags evaluates every flag for ec, in key order, with no default (a
// flag that cannot serve a variation has a nil Value). Use it to bootstrap a
// front end: the slice encodes to JSON in the shape of `flags eval`.
func (c *Client) AllFlags(ctx context.Context, ec Context) []Result[any] {
	snap := c.snap.Load()
	if snap == nil {
		return nil
	}
	return c.appendAll(make([]Result[any], 0, len(snap.Flags())), snap, ec)
}

// AppendAllFlags is AllFlags appending to dst, for callers that evaluate
// every flag on a hot path (say, per request) and reuse one buffer: with
// enough capacity it does not allocate.
func (c *Client) AppendAllFlags(ctx context.Context, dst []Result[any], ec Context) []Result[any] {
	snap := c.snap.Load()
	if snap == nil {
		return dst
	}
	return c.appendAll(dst, snap, ec)
}

func (c *Client) appendAll(dst []Result[any], snap *rules.Snapshot, ec Context) []Result[any] {
	e := evaluator{snap: snap, ctx: &ec, clock: c.clock}
	ov := c.ov.set.Load()
	all := snap.Flags()
	n := len(dst)
	dst = slices.Grow(dst, len(all))[:n+len(all)]
	valid := ec.err == nil && ec.attrs != nil
	for i, f := range all {
		r := &dst[n+i]
		if ov != nil {
			if forced := ov.lookup(f.Key, ec.key); forced != nil {
				ev := evaluation{flag: f, forced: forced, variation: -1, kind: kindOverride}
				fillAny(r, f.Key, &ev, nil)
				continue
			}
		}
		if valid && f.Err == nil {
			d, err := e.decide(f, 0)
			if err == nil {
				fillDecision(r, f, d)
				continue
			}
			ev := errorEval(f, errMalformedFlag, err)
			fillAny(r, f.Key, &ev, nil)
			continue
		}
		var ev evaluation
		e.evaluateTop(&ev, f)
		fillAny(r, f.Key, &ev, nil)
	}
	return dst
}
