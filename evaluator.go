package flags

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/flagstream/flags/bucketing"
	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// evaluation is the untyped outcome of evaluating one flag: the variation
// chosen (-1: serve the caller's default) and why. It is what the typed
// getters turn into a Result.
//
// It is kept small (the reason is packed; its strings are looked up only
// when a caller asks for details) because it is returned through several
// calls on the hot path.
type evaluation struct {
	flag      *eval.Flag
	forced    *forced // an override's value, served instead of a variation
	err       error
	variation int32
	index     int32 // rule index for RULE_MATCH, prerequisite index for PREREQUISITE_FAILED
	kind      uint8 // index into reasonKinds
	errKind   uint8 // index into errorKinds
	rollout   uint8 // rolloutBits
}

// decision is what the evaluation steps decide for a valid flag and
// context: the variation (-1: the caller's default) and the packed reason.
// Small enough to travel in registers: the steps return it through several
// calls, and an evaluation (with its flag, override and error) is built
// only once, at the top.
type decision struct {
	variation int32
	index     int32 // rule index for RULE_MATCH, prerequisite index for PREREQUISITE_FAILED
	kind      uint8 // index into reasonKinds
	rollout   uint8 // rolloutBits
}

var reasonKinds = [...]ReasonKind{"", ReasonOff, ReasonTargetMatch, ReasonRuleMatch, ReasonPrerequisiteFailed, ReasonFallthrough, ReasonError, ReasonOverride}

const (
	kindOff uint8 = iota + 1
	kindTargetMatch
	kindRuleMatch
	kindPrerequisiteFailed
	kindFallthrough
	kindError
	kindOverride
)

var errorKinds = [...]ErrorKind{"", ErrorClientNotReady, ErrorFlagNotFound, ErrorMalformedFlag, ErrorInvalidContext, ErrorWrongType}

const (
	errClientNotReady uint8 = iota + 1
	errFlagNotFound
	errMalformedFlag
	errInvalidContext
	errWrongType
)

const (
	bitInRollout uint8 = 1 << iota
	bitInExperiment
	bitBucketFallback
)

// value returns the value served and its kind, or nil when the caller's
// default is served.
func (ev *evaluation) value() (*eval.Variation, rules.Kind) {
	if ev.forced != nil {
		return &ev.forced.v, ev.forced.kind
	}
	if ev.variation < 0 || ev.flag == nil {
		return nil, 0
	}
	return &ev.flag.Variations[ev.variation], ev.flag.Kind
}

// fillReason unpacks the evaluation's reason into r, field by field:
// AllFlags fills its results in place.
func (ev *evaluation) fillReason(r *Reason) {
	fillReason(r, ev.flag, ev.kind, ev.errKind, ev.rollout, ev.index)
}

func fillReason(r *Reason, f *eval.Flag, kind, errKind, rollout uint8, index int32) {
	r.Kind, r.ErrorKind = reasonKinds[kind], errorKinds[errKind]
	r.InRollout = rollout&bitInRollout != 0
	r.InExperiment = rollout&bitInExperiment != 0
	r.BucketFallback = rollout&bitBucketFallback != 0
	r.RuleIndex, r.RuleID, r.PrerequisiteKey = 0, "", ""
	switch kind {
	case kindRuleMatch:
		r.RuleIndex = int(index)
		r.RuleID = f.Rules[index].ID
	case kindPrerequisiteFailed:
		r.PrerequisiteKey = f.Prerequisites[index].Key
	}
}

// evaluator holds the inputs of one evaluation. The clock is read at most
// once, and only when a schedule or a before/after clause needs it, so
// evaluations that do not depend on time never pay for it.
type evaluator struct {
	snap    *eval.Snapshot
	ctx     *Context
	clock   func() time.Time
	now     int64
	haveNow bool

	// The attribute looked up last (see attr).
	lastPath *string
	lastLen  int
	lastV    any
	lastOK   bool

	memo   *memo // nil unless the flag evaluated needs one (eval.Flag.NeedsMemo)
	visits int   // segments and prerequisite flags evaluated, memo hits aside: for tests
}

// attr is ctx.lookupFP remembering the last path looked up. The compiler
// shares one Path per attribute among all the flags of a snapshot, so
// AllFlags, which evaluates flag after flag for one context, finds most
// attributes here without scanning the context. A Path is immutable: the
// same backing array and length is the same path.
func (e *evaluator) attr(p eval.Path, fp uint32) (any, bool) {
	if len(p) == 0 {
		return nil, false
	}
	if &p[0] == e.lastPath && len(p) == e.lastLen {
		return e.lastV, e.lastOK
	}
	v, ok := e.ctx.lookupFP(p, fp)
	e.lastPath, e.lastLen, e.lastV, e.lastOK = &p[0], len(p), v, ok
	return v, ok
}

// Evaluate evaluates flag key for ec against a compiled snapshot at the time
// the clock gives (nil clock: time.Now). It is a pure function of its inputs:
// no locks, no I/O, no goroutines. Clients call it on their current
// snapshot; it is exported for tools that hold a snapshot themselves, such as
// `flags eval`.
func Evaluate(snap *Snapshot, key string, ec Context, clock func() time.Time) Result[any] {
	if clock == nil {
		clock = time.Now
	}
	e := evaluator{snap: snap.compiled(), ctx: &ec, clock: clock}
	var ev evaluation
	e.evaluate(&ev, key)
	return anyResult(key, ev, nil)
}

func (e *evaluator) nowMillis() int64 {
	if !e.haveNow {
		e.now = e.clock().UnixMilli()
		e.haveNow = true
	}
	return e.now
}

// evaluate follows SPEC §3, steps 0 to 7. Step 8 (the type check) belongs to
// the typed getters.
func (e *evaluator) evaluate(ev *evaluation, key string) {
	if e.snap == nil {
		*ev = errorEval(nil, errClientNotReady, ErrClientNotReady)
		return
	}
	f := e.snap.Flag(key)
	if f == nil {
		*ev = errorEval(nil, errFlagNotFound, fmt.Errorf("%w: %q", ErrFlagNotFound, key))
		return
	}
	e.evaluateTop(ev, f)
}

// evaluateTop is evaluate once the flag is found. It writes into ev (zero
// on entry), which the getters keep on their stack: returning an evaluation
// by value through two calls cost more than evaluating a simple flag.
func (e *evaluator) evaluateTop(ev *evaluation, f *eval.Flag) {
	switch {
	case f.Err != nil:
		*ev = errorEval(f, errMalformedFlag, fmt.Errorf("%w: %w", ErrMalformedFlag, f.Err))
	case e.ctx.err != nil || e.ctx.attrs == nil:
		*ev = errorEval(f, errInvalidContext, e.ctx.Err())
	case f.Constant && f.On: // spares a call on the most common path
		ev.flag, ev.variation, ev.kind = f, int32(f.Fallthrough.Variation), kindFallthrough
	default:
		d, err := e.decide(f, 0)
		if err != nil {
			*ev = errorEval(f, errMalformedFlag, err)
			return
		}
		// Field by field: assigning a whole evaluation is measurably slower.
		ev.flag, ev.variation, ev.index, ev.kind, ev.rollout = f, d.variation, d.index, d.kind, d.rollout
	}
}

// decide applies SPEC §3 steps 2 to 7 to a well-formed flag and a valid
// context. An error means a malformed segment was reached.
func (e *evaluator) decide(f *eval.Flag, depth int) (decision, error) {
	if f.Constant && f.On {
		return decision{variation: int32(f.Fallthrough.Variation), kind: kindFallthrough}, nil
	}
	if !f.On {
		return decision{variation: int32(f.OffVariation), kind: kindOff}, nil
	}
	if f.NeedsMemo() && e.memo == nil {
		return e.decideMemoized(f, depth)
	}
	for i := range f.Prerequisites {
		if !e.prerequisiteHolds(f, i, depth) {
			return decision{variation: int32(f.OffVariation), kind: kindPrerequisiteFailed, index: int32(i)}, nil
		}
	}
	if len(f.Targets) > 0 {
		if v, ok := e.targeted(f); ok {
			return decision{variation: v, kind: kindTargetMatch}, nil
		}
	}
	if len(f.Rules) > 0 {
		if i, err := e.firstMatchingRule(f); err != nil {
			return decision{}, err
		} else if i >= 0 {
			s := &f.Rules[i].Serve
			if s.Rollout != nil {
				return e.rollout(s.Rollout, kindRuleMatch, int32(i)), nil
			}
			return decision{variation: int32(s.Variation), kind: kindRuleMatch, index: int32(i)}, nil
		}
	}
	if r := f.Fallthrough.Rollout; r != nil {
		return e.rollout(r, kindFallthrough, 0), nil
	}
	return decision{variation: int32(f.Fallthrough.Variation), kind: kindFallthrough}, nil
}

// targeted returns the variation of the first of f's targets that lists
// the context.
func (e *evaluator) targeted(f *eval.Flag) (int32, bool) {
	for i := range f.Targets {
		t := &f.Targets[i]
		if isKey(t.Attribute) { // the usual target list: no attribute lookup
			if t.Values.ContainsHashed(e.ctx.key, e.ctx.keyHash()) {
				return int32(t.Variation), true
			}
			continue
		}
		if v, ok := e.ctx.lookup(t.Attribute); ok && setHas(&t.Values, v) {
			return int32(t.Variation), true
		}
	}
	return 0, false
}

// firstMatchingRule returns the index of the first rule whose clauses all
// match, or -1.
//
// Hot loop (complexity above 15 on purpose): the evaluator's inner loop
// over rules and clauses, with the slot and memo caches inline; split, it
// costs a call per clause.
func (e *evaluator) firstMatchingRule(f *eval.Flag) (int, error) {
	byCost := f.ByCost()
	if len(f.AttributeSlots) == 0 && !f.HasMemos() {
		// The usual clause, which tests an attribute, is evaluated here
		// without a call.
	rules:
		for i := range f.Rules {
			r := &f.Rules[i]
			if r.Unreachable() {
				continue
			}
			clauses := r.Ordered(byCost)
			for j := range clauses {
				c := &clauses[j]
				if c.TestsAttribute() {
					if v, ok := e.attr(c.Attribute, c.AttrFP); !c.Match(v, ok) {
						continue rules
					}
					continue
				}
				match, err := e.otherClauseMatches(c, f.SegmentRefs, 0)
				if err != nil {
					return i, err
				}
				if !match {
					continue rules
				}
			}
			return i, nil
		}
		return -1, nil
	}
	// The same loop with the flag's attribute slots and clause memos.
	var cache attrCache
	slots := f.AttributeSlots
cached:
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.Unreachable() {
			continue
		}
		clauses := r.Ordered(byCost)
		for j := range clauses {
			c := &clauses[j]
			m := c.Memo()
			bit := uint64(1) << (m & 63)
			if m >= 0 && cache.memoDone&bit != 0 {
				if cache.memoMatch&bit == 0 {
					continue cached
				}
				continue
			}
			var match bool
			if c.TestsAttribute() {
				var v any
				var ok bool
				if k := c.Slot; k >= 0 && k < len(slots) {
					v, ok = cache.get(e, slots, k)
				} else {
					v, ok = e.attr(c.Attribute, c.AttrFP)
				}
				match = c.Match(v, ok)
			} else {
				var err error
				if match, err = e.otherClauseMatches(c, f.SegmentRefs, 0); err != nil {
					return i, err
				}
			}
			if m >= 0 {
				cache.memoDone |= bit
				if match {
					cache.memoMatch |= bit
				}
			}
			if !match {
				continue cached
			}
		}
		return i, nil
	}
	return -1, nil
}

// prerequisiteHolds evaluates f's i-th prerequisite flag fully (its own
// prerequisites, targets, rules), or finds it in the evaluation's memo;
// compile-time checks bound the depth.
func (e *evaluator) prerequisiteHolds(f *eval.Flag, i int, depth int) bool {
	pf := f.PrerequisiteFlags[i] // resolved by eval.Compile for this snapshot
	if pf == nil || pf.Err != nil || !pf.On || depth >= rules.MaxPrerequisiteDepth {
		return false
	}
	if e.memo != nil {
		v, ok := e.memoPrerequisite(pf, depth+1)
		return ok && int(v) == f.Prerequisites[i].Variation
	}
	e.visits++
	d, err := e.decide(pf, depth+1)
	return err == nil && int(d.variation) == f.Prerequisites[i].Variation
}

// rollout chooses a variation of a percentage rollout.
func (e *evaluator) rollout(r *eval.Rollout, kind uint8, index int32) decision {
	bucket, fallback := e.bucket(r.BucketBy, r.Salt, r)
	var t int64
	if len(r.Schedule) > 0 {
		t = e.nowMillis()
	}
	bits := bitInRollout
	if r.Experiment {
		bits |= bitInExperiment
	}
	if fallback {
		bits |= bitBucketFallback
	}
	return decision{variation: int32(r.Choose(bucket, t)), kind: kind, index: index, rollout: bits}
}

// bucket computes SPEC §2's bucket of the attribute at path; fallback is set
// when the attribute is absent or not a string or an integer.
//
// A rollout's salt comes prepared (r); segment rules pass r nil.
func (e *evaluator) bucket(path eval.Path, salt string, r *eval.Rollout) (bucket int, fallback bool) {
	if isKey(path) { // the usual bucketBy: no attribute lookup
		if r != nil {
			return r.Bucket(e.ctx.key), false
		}
		return bucketing.Bucket(salt, e.ctx.key), false
	}
	v, ok := e.ctx.lookup(path)
	if !ok {
		return 0, true
	}
	switch x := v.(type) {
	case string:
		if r != nil {
			return r.Bucket(x), false
		}
		return bucketing.Bucket(salt, x), false
	case float64:
		if x == math.Trunc(x) && x >= -9.2e18 && x <= 9.2e18 {
			if r != nil {
				return r.BucketInt(int64(x)), false
			}
			return bucketing.BucketInt(salt, int64(x)), false
		}
		if x == math.Trunc(x) && !math.IsInf(x, 0) { // beyond int64: still plain decimal digits
			return bucketing.Bucket(salt, strconv.FormatFloat(x, 'f', -1, 64)), false
		}
	}
	return 0, true
}

// isKey reports whether path is the context key, which a valid context
// holds as a string in Context.key as well as in its attributes.
func isKey(path eval.Path) bool { return len(path) == 1 && path[0] == "key" }

// attrCache holds the attributes of one flag evaluation's rules, looked up
// once each (see eval.Clause.Slot), and the results of its repeated
// clauses, computed once each (see eval.Clause.Memo).
type attrCache struct {
	vals      [eval.MaxSlots]any
	state     [eval.MaxSlots]uint8 // 0 unknown, 1 absent, 2 present
	memoDone  uint64               // bit i: the clause of memo i was computed
	memoMatch uint64               // bit i: and it matched
}

// get returns the attribute of slot k, looking it up on first use.
func (cache *attrCache) get(e *evaluator, slots []eval.Path, k int) (any, bool) {
	switch cache.state[k] {
	case 0:
		v, ok := e.ctx.lookup(slots[k])
		cache.vals[k] = v
		cache.state[k] = 1
		if ok {
			cache.state[k] = 2
		}
		return v, ok
	case 2:
		return cache.vals[k], true
	}
	return nil, false
}

// clausesMatch ANDs the clauses of a segment rule. An error means a
// malformed segment was reached. refs is the segment's SegmentRefs.
func (e *evaluator) clausesMatch(clauses []eval.Clause, refs []*eval.Segment, depth int) (bool, error) {
	for i := range clauses {
		c := &clauses[i]
		if c.TestsAttribute() { // the usual clause, without a call
			if v, ok := e.attr(c.Attribute, c.AttrFP); !c.Match(v, ok) {
				return false, nil
			}
			continue
		}
		if match, err := e.otherClauseMatches(c, refs, depth); err != nil || !match {
			return false, err
		}
	}
	return true, nil
}

// otherClauseMatches evaluates a clause that tests no attribute (inSegment,
// or a clock clause), negation included.
func (e *evaluator) otherClauseMatches(c *eval.Clause, refs []*eval.Segment, depth int) (bool, error) {
	if c.Op == rules.OpInSegment {
		in, err := e.inAnySegment(c.SegmentRefs(refs), depth)
		return in != c.Negate && err == nil, err
	}
	if c.UsesClock() {
		return c.Match(float64(e.nowMillis()), true), nil
	}
	v, ok := e.ctx.lookup(c.Attribute) // no attribute: absent (Compile reports the clause)
	return c.Match(v, ok), nil
}

func (e *evaluator) inAnySegment(segs []*eval.Segment, depth int) (bool, error) {
	// No depth limit here: Compile makes segments on a cycle or nested
	// deeper than rules.MaxSegmentDepth malformed, so the recursion ends.
	for _, s := range segs {
		if s == nil {
			continue // an unknown segment never matches
		}
		if s.Err != nil {
			return false, fmt.Errorf("%w: segment %q: %w", ErrMalformedFlag, s.Key, s.Err)
		}
		var in bool
		var err error
		if e.memo != nil {
			in, err = e.memoSegment(s, depth)
		} else {
			e.visits++
			in, err = e.inSegment(s, depth)
		}
		if err != nil || in {
			return in, err
		}
	}
	return false, nil
}

// inSegment applies SPEC §1's order: excluded, included, then rules.
func (e *evaluator) inSegment(s *eval.Segment, depth int) (bool, error) {
	if isKey(s.Attribute) {
		if s.Excluded.ContainsHashed(e.ctx.key, e.ctx.keyHash()) {
			return false, nil
		}
		if s.Included.ContainsHashed(e.ctx.key, e.ctx.keyHash()) {
			return true, nil
		}
	} else if v, ok := e.ctx.lookup(s.Attribute); ok {
		if setHas(&s.Excluded, v) {
			return false, nil
		}
		if setHas(&s.Included, v) {
			return true, nil
		}
	}
	byCost := !s.Fallible()
	for i := range s.Rules {
		r := &s.Rules[i]
		match, err := e.clausesMatch(r.Ordered(byCost), s.SegmentRefs, depth+1)
		if err != nil {
			return false, err
		}
		if !match {
			continue
		}
		if r.Weight < 0 {
			return true, nil
		}
		if b, _ := e.bucket(r.BucketBy, r.Salt, nil); int64(b) < r.Weight {
			return true, nil
		}
	}
	return false, nil
}

// setHas matches a scalar, or any element of an array, against a set.
func setHas(s *eval.ValueSet, v any) bool {
	if arr, ok := v.([]any); ok {
		for _, x := range arr {
			if s.Contains(x) {
				return true
			}
		}
		return false
	}
	return s.Contains(v)
}

func errorEval(f *eval.Flag, kind uint8, err error) evaluation {
	return evaluation{flag: f, variation: -1, kind: kindError, errKind: kind, err: err}
}

// anyResult turns an evaluation into a Result[any] holding the variation's
// value, or def when no variation applies.
func anyResult(key string, ev evaluation, def any) Result[any] {
	var r Result[any]
	fillAny(&r, key, &ev, def)
	return r
}

// fillAny writes the Result[any] of ev into r in place (AllFlags fills a
// slice of them: no temporary to copy).
func fillAny(r *Result[any], key string, ev *evaluation, def any) {
	// Field by field, straight into r: building a Result or a Reason first
	// and copying it took twice as long for 1,000 results.
	r.Flag, r.Variation, r.Err = key, int(ev.variation), ev.err
	r.Version = 0
	if ev.flag != nil {
		r.Version = ev.flag.Version
	}
	if v, _ := ev.value(); v != nil {
		r.Value = v.Value
	} else {
		r.Value = def
	}
	ev.fillReason(&r.Reason)
}

// fillDecision is fillAny for what decide decided for a well-formed flag
// and a valid context, AllFlags' usual case, without building an
// evaluation first.
func fillDecision(r *Result[any], f *eval.Flag, d decision) {
	r.Flag, r.Variation, r.Version, r.Err = f.Key, int(d.variation), f.Version, nil
	if d.variation >= 0 {
		r.Value = f.Variations[d.variation].Value
	} else {
		r.Value = nil
	}
	fillReason(&r.Reason, f, d.kind, 0, d.rollout, d.index)
}
