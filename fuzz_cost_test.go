package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/bucketing"
	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// costShape reads a document's shape from fuzz input, a byte at a time
// (0 once the input is exhausted).
type costShape struct {
	data []byte
}

func (s *costShape) next() int {
	if len(s.data) == 0 {
		return 0
	}
	b := s.data[0]
	s.data = s.data[1:]
	return int(b)
}

// costDocument builds a document from fuzz input: up to 24 segments and 20
// flags, whose segments nest through inSegment (forward, so mostly as a DAG,
// or to any segment, cycles included) and whose flags have prerequisites
// (forward or anywhere), targets, rules using segments and attributes,
// fixed variations and rollouts; now and then a malformed one.
//
// Its layout, byte by byte: segments (b % 25), flags (1 + b % 20); per
// segment: members (bits 0-3: u0-u3; bit 4: by email; b >= 224: malformed),
// excluded (bits 0-3), rules (b % 4), per rule clauses (b % 3) then weight
// (b % 4 == 0: (b / 4) * 1600); per flag: on and offVariation (b % 8 != 0
// on; (b >> 3) % 4 the off variation, 3 none; b >= 224: malformed),
// prerequisites (b % 4) each a byte, targets (b % 4 == 0), rules (b % 4),
// per rule clauses (b % 3) and serve, then fallthrough. A clause: b % 4 of
// 0 or 1 inSegment of 1 + (b >> 2) % 2 segments, one byte each; 2 country
// in fr (bit 2: de); 3 email exists; bit 6 negates. A reference byte r: bit
// 7 set, any index r % (n + 1), else the next ones from the owner, i+1 +
// r % (n - i); index n is a key the document does not hold. A serve byte s:
// s % 4 == 0, a 50/50 rollout of variations (s >> 2) % 3 and (s >> 4) % 3;
// else variation (s >> 2) % 3.
func costDocument(data []byte) (doc map[string]any, segments, flags int) {
	s := &costShape{data: data}
	d := &costBuilder{costShape: s}
	d.nSeg, d.nFlag = s.next()%25, 1+s.next()%20
	segs := map[string]any{}
	for i := 0; i < d.nSeg; i++ {
		segs[fmt.Sprint("s", i)] = d.segment(i)
	}
	flagMap := map[string]any{}
	for i := 0; i < d.nFlag; i++ {
		flagMap[fmt.Sprint("f", i)] = d.flag(i)
	}
	return map[string]any{"version": 1, "flags": flagMap, "segments": segs}, d.nSeg, d.nFlag
}

// costBuilder builds the parts of costDocument's document, each reading
// its bytes of the input in the order costDocument's layout gives.
type costBuilder struct {
	*costShape
	nSeg, nFlag int
}

// ref reads a reference byte: a key of prefix among n, forward of owner or
// anywhere, or one the document does not hold.
func (d *costBuilder) ref(prefix string, owner, n int) string {
	r := d.next()
	i := r % (n + 1)
	if r&0x80 == 0 {
		i = owner + 1 + r%max(1, n-owner-1)
	}
	if i >= n {
		return prefix + "-ghost"
	}
	return fmt.Sprint(prefix, i)
}

// clauses reads a count, then that many clauses of a rule of segment owner
// (-1 for a flag's rule).
func (d *costBuilder) clauses(owner int) []any {
	var out []any
	for n := d.next() % 3; n > 0; n-- {
		out = append(out, d.clause(owner))
	}
	return out
}

func (d *costBuilder) clause(owner int) map[string]any {
	t := d.next()
	var c map[string]any
	switch t % 4 {
	case 0, 1:
		var keys []any
		for k := 0; k < 1+(t>>2)%2; k++ {
			keys = append(keys, d.ref("s", owner, d.nSeg))
		}
		c = map[string]any{"op": "inSegment", "values": keys}
	case 2:
		country := "fr"
		if t&4 != 0 {
			country = "de"
		}
		c = map[string]any{"attribute": "country", "op": "in", "values": []any{country}}
	case 3:
		c = map[string]any{"attribute": "email", "op": "exists"}
	}
	if t&0x40 != 0 {
		c["negate"] = true
	}
	return c
}

// costUsers lists the users u0-u3 whose bits are set in mask, by key or by
// email.
func costUsers(mask int, email bool) []any {
	out := []any{}
	for j := 0; j < 4; j++ {
		if mask&(1<<j) == 0 {
			continue
		}
		if email {
			out = append(out, fmt.Sprintf("u%d@x", j))
		} else {
			out = append(out, fmt.Sprint("u", j))
		}
	}
	return out
}

// serve reads a serve byte: a 50/50 rollout or a fixed variation.
func (d *costBuilder) serve() map[string]any {
	b := d.next()
	if b%4 == 0 {
		return map[string]any{"rollout": map[string]any{"variations": []any{
			map[string]any{"variation": (b >> 2) % 3, "weight": 50000},
			map[string]any{"variation": (b >> 4) % 3, "weight": 50000}}}}
	}
	return map[string]any{"variation": (b >> 2) % 3}
}

// segment reads segment i: members, excluded users, rules.
func (d *costBuilder) segment(i int) map[string]any {
	b := d.next()
	g := map[string]any{"included": costUsers(b, b&0x10 != 0), "excluded": costUsers(d.next(), b&0x10 != 0)}
	if b&0x10 != 0 {
		g["attribute"] = "email"
	}
	if b >= 224 {
		g["included"] = "u0" // malformed
	}
	var rs []any
	for n := d.next() % 4; n > 0; n-- {
		r := map[string]any{"clauses": d.clauses(i)}
		if w := d.next(); w%4 == 0 {
			r["weight"] = (w / 4) * 1600 // above 100000 now and then: malformed
		}
		rs = append(rs, r)
	}
	g["rules"] = rs
	return g
}

// flag reads flag i: on and off variation, prerequisites, targets, rules,
// fallthrough.
func (d *costBuilder) flag(i int) map[string]any {
	b := d.next()
	f := map[string]any{"on": b%8 != 0, "variations": []any{"v0", "v1", "v2"}}
	if off := (b >> 3) % 4; off < 3 {
		f["offVariation"] = off
	}
	var ps []any
	for n := d.next() % 4; n > 0; n-- {
		key := d.ref("f", i, d.nFlag)
		ps = append(ps, map[string]any{"flag": key, "variation": (d.next() >> 2) % 3})
	}
	f["prerequisites"] = ps
	if t := d.next(); t%4 == 0 {
		f["targets"] = []any{map[string]any{"values": costUsers(t>>2, false), "variation": (t >> 6) % 3}}
	}
	var rs []any
	for n := d.next() % 4; n > 0; n-- {
		rs = append(rs, map[string]any{"id": fmt.Sprint("r", len(rs)), "clauses": d.clauses(-1), "serve": d.serve()})
	}
	f["rules"] = rs
	f["fallthrough"] = d.serve()
	if b >= 224 {
		f["fallthrough"] = map[string]any{"variation": 7} // malformed
	}
	return f
}

// costContexts are the contexts FuzzCompileEvaluateCost evaluates every
// flag for: members of some segments, with or without the attributes the
// clauses test, and a context without a key.
var costContexts = []Context{
	NewContext("u0").Set("country", "fr").Set("email", "u0@x").Build(),
	NewContext("u1").Set("country", "de").Build(),
	NewContext("u7").Set("email", "u2@x").Build(),
	NewContext("").Build(),
}

// FuzzCompileEvaluateCost checks SPEC §13's "evaluation is linear" on
// documents built from fuzz input (see costDocument): one evaluation
// evaluates at most as many segments and prerequisite flags as the
// document has, whatever their nesting and sharing; its result is what a
// plain reading of SPEC §1 and §3 gives (costReference); segments nested
// deeper than 16 are malformed; Evaluate, the typed getters and AllFlags
// agree.
func FuzzCompileEvaluateCost(f *testing.F) {
	chain16, chain17, diamond := costSeeds()
	for _, seed := range [][]byte{nil, chain16, chain17, diamond} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docMap, nSeg, nFlag := costDocument(data)
		raw, err := json.Marshal(docMap)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := rules.ParseDocument(raw)
		if err != nil {
			t.Fatalf("generated document is invalid: %v\n%s", err, raw)
		}
		snap := Compile(doc)
		checkSegmentDepths(t, snap, nSeg, raw)
		at := defaultFuzzTime
		clock := func() time.Time { return at }
		c, err := New(WithDocument(raw), WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		bound := nSeg + nFlag
		for _, ec := range costContexts {
			ref := costReference{snap: snap, ec: ec, now: at.UnixMilli(),
				segments: map[string]costSegment{}, flags: map[string]costFlag{}}
			all := c.AllFlags(ctx, ec).AppendTo(nil)
			for i, key := range snap.FlagKeys() {
				r, visits := evaluateCounting(snap, key, ec, clock)
				if visits > bound {
					t.Fatalf("%s for %q: %d segment and prerequisite evaluations, more than the %d segments and flags\n%s",
						key, ec.Key(), visits, bound, raw)
				}
				want := ref.evaluate(key)
				got := costFlag{variation: r.Variation, kind: r.Reason.Kind, index: r.Reason.RuleIndex,
					prereq: r.Reason.PrerequisiteKey, errKind: r.Reason.ErrorKind}
				if want != got {
					t.Fatalf("%s for %q: evaluated %+v, the reference gives %+v\n%s", key, ec.Key(), got, want, raw)
				}
				checkFuzzResult(t, snap, key, ec, at.UnixMilli(), r)
				if e := Evaluate(snap, key, ec, clock); !sameResult(r, e) {
					t.Fatalf("%s: Evaluate gives %+v, counted %+v", key, e, r)
				}
				if !sameResult(r, all[i]) {
					t.Fatalf("%s: AllFlags gives %+v, Evaluate %+v", key, all[i], r)
				}
				d := c.StringDetail(ctx, key, ec, "default")
				if d.Variation != r.Variation || d.Reason != r.Reason {
					t.Fatalf("%s: StringDetail %+v, Evaluate %+v", key, d, r)
				}
				if v := c.String(ctx, key, ec, "default"); v != d.Value {
					t.Fatalf("%s: String = %q, StringDetail = %q", key, v, d.Value)
				}
			}
		}
	})
}

// sameResult compares two results of a costDocument flag (whose values are
// strings), errors by message.
func sameResult(a, b Result[any]) bool {
	return a.Flag == b.Flag && a.Value == b.Value && a.Variation == b.Variation && a.Version == b.Version &&
		a.Reason == b.Reason && (a.Err == nil) == (b.Err == nil) && (a.Err == nil || a.Err.Error() == b.Err.Error())
}

// checkSegmentDepths compares the snapshot's segment problems with a
// direct reading of SPEC §13: a segment deeper than 16 is malformed, one
// that is not (and is not on a cycle) is not for its depth.
func checkSegmentDepths(t *testing.T, snap *Snapshot, nSeg int, raw []byte) {
	t.Helper()
	depth := map[string]int{}
	var depthOf func(key string, path []string) int // 0: on or through a cycle
	depthOf = func(key string, path []string) int {
		for _, k := range path {
			if k == key {
				return 0
			}
		}
		if d, ok := depth[key]; ok {
			return d
		}
		g := snap.compiled().Segment(key)
		d := 1
		for _, r := range g.Rules {
			for _, c := range r.Clauses {
				if c.Op != rules.OpInSegment {
					continue
				}
				for _, k := range c.Segments() {
					if snap.compiled().Segment(k) == nil {
						continue
					}
					sub := depthOf(k, append(path, key))
					if sub == 0 {
						return 0
					}
					d = max(d, 1+sub)
				}
			}
		}
		depth[key] = d
		return d
	}
	for i := 0; i < nSeg; i++ {
		key := fmt.Sprint("s", i)
		d := depthOf(key, nil)
		tooDeep := false
		for _, p := range snap.compiled().Segment(key).Problems {
			tooDeep = tooDeep || strings.Contains(p.Err.Error(), "segment nesting is")
		}
		if d > 0 && tooDeep != (d > rules.MaxSegmentDepth) {
			t.Fatalf("segment %s is %d deep; problems %v\n%s", key, d, snap.compiled().Segment(key).Problems, raw)
		}
	}
}

// costFlag is a flag's result as costReference computes it.
type costFlag struct {
	variation int
	kind      ReasonKind
	index     int // RULE_MATCH's rule
	prereq    string
	errKind   ErrorKind
}

type costSegment struct{ in, bad bool }

// costReference evaluates flags as SPEC §1 and §3 read, directly over the
// compiled model (the operators' matching is eval.Clause.Match's): segments
// and prerequisites by key, each result kept in a map, which is a plain way
// of evaluating each once. A malformed segment reached makes the flag's
// evaluation an error, which a prerequisite turns into its failure.
type costReference struct {
	snap     *Snapshot
	ec       Context
	now      int64
	segments map[string]costSegment
	flags    map[string]costFlag
}

// evaluate gives the top-level result of flag key.
func (r *costReference) evaluate(key string) costFlag {
	f := r.snap.compiled().Flag(key)
	switch {
	case f == nil:
		return costFlag{variation: -1, kind: ReasonError, errKind: ErrorFlagNotFound}
	case f.Err != nil:
		return costFlag{variation: -1, kind: ReasonError, errKind: ErrorMalformedFlag}
	case r.ec.Err() != nil:
		return costFlag{variation: -1, kind: ReasonError, errKind: ErrorInvalidContext}
	}
	out := r.flag(f)
	if out.kind == ReasonError {
		out.variation = -1
	}
	return out
}

// flag evaluates a well-formed flag (SPEC §3 steps 3 to 7).
func (r *costReference) flag(f *eval.Flag) costFlag {
	if out, ok := r.flags[f.Key]; ok {
		return out
	}
	out := r.decide(f)
	r.flags[f.Key] = out
	return out
}

func (r *costReference) decide(f *eval.Flag) costFlag {
	if !f.On {
		return costFlag{variation: f.OffVariation, kind: ReasonOff}
	}
	for _, p := range f.Prerequisites {
		pf := r.snap.compiled().Flag(p.Key)
		ok := pf != nil && pf.Err == nil && pf.On
		if ok {
			out := r.flag(pf)
			ok = out.kind != ReasonError && out.variation == p.Variation
		}
		if !ok {
			return costFlag{variation: f.OffVariation, kind: ReasonPrerequisiteFailed, prereq: p.Key}
		}
	}
	for _, tg := range f.Targets {
		if v, ok := r.ec.lookup(tg.Attribute); ok && tg.Values.Contains(v) {
			return costFlag{variation: tg.Variation, kind: ReasonTargetMatch}
		}
	}
	for i := range f.Rules {
		match, bad := r.clauses(f.Rules[i].Clauses)
		if bad {
			return costFlag{kind: ReasonError, errKind: ErrorMalformedFlag}
		}
		if match {
			return costFlag{variation: r.serve(&f.Rules[i].Serve), kind: ReasonRuleMatch, index: i}
		}
	}
	return costFlag{variation: r.serve(&f.Fallthrough), kind: ReasonFallthrough}
}

func (r *costReference) serve(s *eval.Serve) int {
	if s.Rollout == nil {
		return s.Variation
	}
	return s.Rollout.Choose(bucketing.Bucket(s.Rollout.Salt, r.ec.Key()), r.now)
}

// clauses ANDs clauses in order, stopping at the first that does not match;
// bad means a malformed segment was reached.
func (r *costReference) clauses(cs []eval.Clause) (match, bad bool) {
	for i := range cs {
		c := &cs[i]
		var m bool
		if c.Op == rules.OpInSegment {
			for _, key := range c.Segments() {
				g := r.snap.compiled().Segment(key)
				if g == nil {
					continue
				}
				out := r.segment(g)
				if out.bad {
					return false, true
				}
				if out.in {
					m = true
					break
				}
			}
			m = m != c.Negate
		} else {
			v, ok := r.ec.lookup(c.Attribute)
			m = c.Match(v, ok)
		}
		if !m {
			return false, false
		}
	}
	return true, false
}

// segment applies SPEC §1's order: excluded, included, rules.
func (r *costReference) segment(g *eval.Segment) costSegment {
	if out, ok := r.segments[g.Key]; ok {
		return out
	}
	out := costSegment{bad: g.Err != nil}
	if !out.bad {
		out = r.membership(g)
	}
	r.segments[g.Key] = out
	return out
}

func (r *costReference) membership(g *eval.Segment) costSegment {
	if v, ok := r.ec.lookup(g.Attribute); ok {
		if g.Excluded.Contains(v) {
			return costSegment{}
		}
		if g.Included.Contains(v) {
			return costSegment{in: true}
		}
	}
	for i := range g.Rules {
		sr := &g.Rules[i]
		match, bad := r.clauses(sr.Clauses)
		if bad {
			return costSegment{bad: true}
		}
		if match && (sr.Weight < 0 || int64(bucketing.Bucket(sr.Salt, r.ec.Key())) < sr.Weight) {
			return costSegment{in: true}
		}
	}
	return costSegment{}
}

// costSeeds builds, in costDocument's layout, the findings' shapes: a
// chain of segments n deep, each with two rules on the next (the last
// includes u0), and a flag f0 using s0; and 17 flags, each with two
// prerequisites on the next and a rule nobody from de matches (so that
// they are not folded into constants).
func costSeeds() (chain16, chain17, diamond []byte) {
	chain := func(n int) []byte {
		b := []byte{byte(n), 0}
		for i := 0; i < n-1; i++ {
			b = append(b, 0, 0, 2, 1, 0, 0, 1, 1, 0, 0, 1)
		}
		b = append(b, 1, 0, 0)                      // the last: includes u0
		return append(b, 1, 0, 1, 1, 1, 0, 0, 5, 1) // f0: on, a rule inSegment s0 serving v1, fallthrough v0
	}
	diamond = []byte{0, 16}
	for i := 0; i < 16; i++ {
		diamond = append(diamond, 1, 2, 0, 4, 0, 4, 1, 1, 1, 2, 1, 5)
	}
	diamond = append(diamond, 1, 0, 1, 1, 1, 2, 1, 5)
	return chain(rules.MaxSegmentDepth), chain(rules.MaxSegmentDepth + 1), diamond
}

// TestCostReferenceSeesTheFindings guards the fuzzer's generator: its seeds
// build the findings' shapes, and their evaluation is linear.
func TestCostReferenceSeesTheFindings(t *testing.T) {
	chain16, chain17, diamond := costSeeds()
	for _, tc := range []struct {
		name   string
		data   []byte
		visits int
		kind   ReasonKind
	}{
		{"segment chain 16 deep", chain16, rules.MaxSegmentDepth, ReasonFallthrough},
		{"segment chain 17 deep", chain17, 0, ReasonError},
		{"prerequisite diamond", diamond, rules.MaxPrerequisiteDepth, ReasonFallthrough},
	} {
		docMap, _, _ := costDocument(tc.data)
		raw, _ := json.Marshal(docMap)
		doc, err := rules.ParseDocument(raw)
		if err != nil {
			t.Fatal(err)
		}
		snap := Compile(doc)
		if !snap.compiled().Flag("f0").NeedsMemo() && tc.kind != ReasonError {
			t.Errorf("%s: f0 needs no memo\n%s", tc.name, raw)
		}
		r, visits := evaluateCounting(snap, "f0", costContexts[1], nil)
		if visits != tc.visits || r.Reason.Kind != tc.kind || tc.kind == ReasonError && !errors.Is(r.Err, ErrMalformedFlag) {
			t.Errorf("%s: f0 = %+v (%v) after %d evaluations, want %s after %d\n%s",
				tc.name, r.Reason, r.Err, visits, tc.kind, tc.visits, raw)
		}
	}
}
