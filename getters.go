package flags

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// evaluate runs the evaluator on the current snapshot, and the hooks
// around it when there are any.
func (c *Client) evaluate(ctx context.Context, ev *evaluation, key string, ec *Context, want accept) {
	if c.hooks != nil {
		c.hooked(ctx, ev, key, ec, want)
		return
	}
	c.evaluateSnapshot(ev, key, ec, want)
}

// accept is what a getter can return: variations of a kind (0: any), and
// for Int only integers. A variation it cannot return serves the caller's
// default (SPEC §3 step 8), and is recorded so: no exposure, and a summary
// count of the default, since the user never got the variation.
type accept struct {
	kind    rules.Kind
	integer bool
}

// What Value and Bool accept.
var (
	anyKind    = accept{}
	acceptBool = accept{kind: rules.KindBool}
)

// takes reports whether a getter that accepts a can return variation v of f.
func (a accept) takes(f *eval.Flag, v int) bool {
	if a.kind == 0 {
		return true
	}
	if f.Kind != a.kind {
		return false
	}
	if a.integer {
		_, ok := getInt(&f.Variations[v])
		return ok
	}
	return true
}

// evaluateSnapshot is evaluate without hooks.
func (c *Client) evaluateSnapshot(ev *evaluation, key string, ec *Context, want accept) {
	if ov := c.ov.set.Load(); ov != nil {
		if f := ov.lookup(key, ec.key); f != nil {
			*ev = evaluation{forced: f, variation: -1, kind: kindOverride}
			if snap := c.snap.Load(); snap != nil {
				ev.flag = snap.Flag(key)
			}
			return
		}
	}
	// evaluator.evaluate inlined: the extra call costs about a third of S1.
	snap := c.snap.Load()
	if snap == nil {
		*ev = errorEval(nil, errClientNotReady, ErrClientNotReady)
		return
	}
	f := snap.Flag(key)
	if f == nil {
		c.stats.notFound.Add(1)
		*ev = errorEval(nil, errFlagNotFound, fmt.Errorf("%w: %q", ErrFlagNotFound, key))
		return
	}
	e := evaluator{snap: snap, ctx: ec, clock: c.clock}
	e.evaluateTop(ev, f)
	if v := ev.variation; v >= 0 && !want.takes(f, int(v)) {
		c.record(snap, f, -1, 0, ec)
		return
	}
	c.record(snap, f, ev.variation, ev.rollout, ec)
}

// record hands an evaluation of f to the events (exposures and summaries)
// and to the metrics' counters, when the client has them. Small enough to
// inline: most clients have neither, and pay two nil checks.
func (c *Client) record(snap *eval.Snapshot, f *eval.Flag, v int32, rollout uint8, ec *Context) {
	if c.events != nil || c.evals != nil {
		c.recordTo(snap, f, v, rollout, ec)
	}
}

func (c *Client) recordTo(snap *eval.Snapshot, f *eval.Flag, v int32, rollout uint8, ec *Context) {
	if c.events != nil {
		c.events.evaluated(snap, f, v, rollout, ec)
	}
	if c.evals != nil {
		c.evals.count(snap, f, v)
	}
}

// pick is evaluate for the getters that return only a value (Bool, String,
// Int, Float, JSON): the variation served and its kind, or nil when the
// caller's default is served. It skips the reason and the error, which
// those getters drop, and serves constant flags (kill switches, finished
// rollouts, chains of them) without entering the evaluator.
func (c *Client) pick(ctx context.Context, key string, ec *Context, want accept) (*eval.Variation, rules.Kind) {
	if c.hooks != nil { // the hooks see the whole result
		var ev evaluation
		c.hooked(ctx, &ev, key, ec, want)
		return ev.value()
	}
	if ov := c.ov.set.Load(); ov != nil {
		if f := ov.lookup(key, ec.key); f != nil {
			return &f.v, f.kind
		}
	}
	snap := c.snap.Load()
	if snap == nil {
		return nil, 0
	}
	f := snap.Flag(key)
	if f == nil {
		c.stats.notFound.Add(1)
		return nil, 0
	}
	v, rollout := -1, uint8(0)
	switch {
	case f.Err != nil || ec.err != nil || ec.attrs == nil:
	case f.Constant: // kill switches and finished rollouts, without a call
		v = f.OffVariation
		if f.On {
			v = f.Fallthrough.Variation
		}
	default:
		v, rollout = c.decided(snap, f, ec)
	}
	if v >= 0 && !want.takes(f, v) { // the caller gets its default
		v, rollout = -1, 0
	}
	c.record(snap, f, int32(v), rollout, ec)
	if v < 0 {
		return nil, 0
	}
	return &f.Variations[v], f.Kind
}

// decided is the variation a well-formed flag that is not constant serves
// a valid context (-1: the caller's default), and the rollout flags of the
// decision.
func (c *Client) decided(snap *eval.Snapshot, f *eval.Flag, ec *Context) (int, uint8) {
	e := evaluator{snap: snap, ctx: ec, clock: c.clock}
	d, err := e.decide(f, 0)
	if err != nil {
		return -1, 0
	}
	return int(d.variation), d.rollout
}

// value is the typed getters' evaluation: the value served, or def.
func value[T any](c *Client, ctx context.Context, key string, ec *Context, def T, want accept, get func(*eval.Variation) (T, bool)) T {
	if v, kind := c.pick(ctx, key, ec, want); kind == want.kind {
		if x, ok := get(v); ok {
			return x
		}
	}
	return def
}

// detail is the Detail getters' evaluation: the whole result, typed.
func detail[T any](c *Client, ctx context.Context, key string, ec *Context, def T, want accept, get func(*eval.Variation) (T, bool)) (r Result[T]) {
	var ev evaluation
	c.evaluate(ctx, &ev, key, ec, want)
	typed(&r, key, &ev, def, want.kind, get)
	return r
}

// typed turns an evaluation into a Result[T], applying SPEC §3 step 8: a
// variation of another type serves the default with WRONG_TYPE.
func typed[T any](r *Result[T], key string, ev *evaluation, def T, want rules.Kind, get func(*eval.Variation) (T, bool)) {
	// Field by field into the caller's result: building a Result and
	// copying it doubles the cost of a detailed evaluation.
	r.Flag, r.Value, r.Variation, r.Err = key, def, int(ev.variation), ev.err
	ev.fillReason(&r.Reason)
	if ev.flag != nil {
		r.Version = ev.flag.Version
	}
	v, kind := ev.value()
	if v == nil {
		r.Variation = -1
		return
	}
	if kind == want {
		if x, ok := get(v); ok {
			r.Value = x
			return
		}
	}
	r.Variation = -1
	r.Reason = Reason{Kind: ReasonError, ErrorKind: ErrorWrongType}
	r.Err = wrongType(key, kind, want, v)
}

func wrongType(key string, got, want rules.Kind, v *eval.Variation) error {
	if got == want { // an int request of a number that is no int
		if v.Number == math.Trunc(v.Number) {
			return fmt.Errorf("%w: flag %q serves %g, beyond the range of int", ErrWrongType, key, v.Number)
		}
		return fmt.Errorf("%w: flag %q serves a number with a fraction, want an integer", ErrWrongType, key)
	}
	return fmt.Errorf("%w: flag %q serves %s values, want %s", ErrWrongType, key, got, want)
}

func getBool(v *eval.Variation) (bool, bool)            { return v.Bool, true }
func getString(v *eval.Variation) (string, bool)        { return v.String, true }
func getFloat(v *eval.Variation) (float64, bool)        { return v.Number, true }
func getJSON(v *eval.Variation) (json.RawMessage, bool) { return v.JSON, true }
func getInt(v *eval.Variation) (int, bool) {
	n := v.Number
	// 2^63 itself does not fit: float64(math.MaxInt) rounds up to it.
	if n != math.Trunc(n) || n >= -float64(math.MinInt) || n < float64(math.MinInt) {
		return 0, false
	}
	return int(n), true
}

// Bool returns the value of a bool flag for ec, or def when the flag cannot be
// evaluated (see BoolDetail for why). ctx is accepted for tracing and future
// hooks; evaluation itself never blocks.
func (c *Client) Bool(ctx context.Context, key string, ec Context, def bool) bool {
	// Written out rather than through value, which is too large to inline:
	// Bool is the getter kill switches and ramps call on hot paths.
	if v, kind := c.pick(ctx, key, &ec, acceptBool); kind == rules.KindBool {
		return v.Bool
	}
	return def
}

// BoolDetail is Bool with the variation, reason and flag version.
func (c *Client) BoolDetail(ctx context.Context, key string, ec Context, def bool) Result[bool] {
	return detail(c, ctx, key, &ec, def, acceptBool, getBool)
}

// String returns the value of a string flag for ec, or def.
func (c *Client) String(ctx context.Context, key string, ec Context, def string) string {
	return value(c, ctx, key, &ec, def, accept{kind: rules.KindString}, getString)
}

// StringDetail is String with the variation, reason and flag version.
func (c *Client) StringDetail(ctx context.Context, key string, ec Context, def string) Result[string] {
	return detail(c, ctx, key, &ec, def, accept{kind: rules.KindString}, getString)
}

// Int returns the value of a number flag for ec, or def. A number with a
// fraction is WRONG_TYPE (there is no rounding).
func (c *Client) Int(ctx context.Context, key string, ec Context, def int) int {
	return value(c, ctx, key, &ec, def, accept{rules.KindNumber, true}, getInt)
}

// IntDetail is Int with the variation, reason and flag version.
func (c *Client) IntDetail(ctx context.Context, key string, ec Context, def int) Result[int] {
	return detail(c, ctx, key, &ec, def, accept{rules.KindNumber, true}, getInt)
}

// Float returns the value of a number flag for ec, or def.
func (c *Client) Float(ctx context.Context, key string, ec Context, def float64) float64 {
	return value(c, ctx, key, &ec, def, accept{kind: rules.KindNumber}, getFloat)
}

// FloatDetail is Float with the variation, reason and flag version.
func (c *Client) FloatDetail(ctx context.Context, key string, ec Context, def float64) Result[float64] {
	return detail(c, ctx, key, &ec, def, accept{kind: rules.KindNumber}, getFloat)
}

// JSON returns the value of a JSON (object or array) flag for ec as raw JSON,
// or def. The returned bytes are shared: do not modify them.
func (c *Client) JSON(ctx context.Context, key string, ec Context, def json.RawMessage) json.RawMessage {
	return value(c, ctx, key, &ec, def, accept{kind: rules.KindJSON}, getJSON)
}

// JSONDetail is JSON with the variation, reason and flag version.
func (c *Client) JSONDetail(ctx context.Context, key string, ec Context, def json.RawMessage) Result[json.RawMessage] {
	return detail(c, ctx, key, &ec, def, accept{kind: rules.KindJSON}, getJSON)
}

// Value evaluates a flag of any type: the result holds a bool, string,
// float64, []any or map[string]any (shared: do not modify), or def.
func (c *Client) Value(ctx context.Context, key string, ec Context, def any) Result[any] {
	var ev evaluation
	c.evaluate(ctx, &ev, key, &ec, anyKind)
	return anyResult(key, ev, def)
}

// Evaluator is the evaluation half of *Client. Application code that
// accepts an Evaluator instead of a *Client can be tested with a flagstest
// client or a hand-written fake, without a mock generator.
type Evaluator interface {
	Bool(ctx context.Context, key string, ec Context, def bool) bool
	BoolDetail(ctx context.Context, key string, ec Context, def bool) Result[bool]
	String(ctx context.Context, key string, ec Context, def string) string
	StringDetail(ctx context.Context, key string, ec Context, def string) Result[string]
	Int(ctx context.Context, key string, ec Context, def int) int
	IntDetail(ctx context.Context, key string, ec Context, def int) Result[int]
	Float(ctx context.Context, key string, ec Context, def float64) float64
	FloatDetail(ctx context.Context, key string, ec Context, def float64) Result[float64]
	JSON(ctx context.Context, key string, ec Context, def json.RawMessage) json.RawMessage
	JSONDetail(ctx context.Context, key string, ec Context, def json.RawMessage) Result[json.RawMessage]
	Value(ctx context.Context, key string, ec Context, def any) Result[any]
	AllFlags(ctx context.Context, ec Context) *Evaluations
}

var _ Evaluator = (*Client)(nil)
