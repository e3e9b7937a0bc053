package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flagstream/flags/rules"
	"github.com/google/go-cmp/cmp"
)

// linearDoc holds the documents of the linearity tests.
type linearDoc struct {
	flags    map[string]any
	segments map[string]any
}

func newLinearDoc() *linearDoc {
	return &linearDoc{flags: map[string]any{}, segments: map[string]any{}}
}

func (d *linearDoc) json(tb testing.TB) []byte {
	tb.Helper()
	data, err := json.Marshal(flagDoc(d.flags, d.segments))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func (d *linearDoc) snapshot(tb testing.TB) *Snapshot {
	tb.Helper()
	doc, err := rules.ParseDocument(d.json(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return Compile(doc)
}

// client is a client of the document, closed when the test ends.
func (d *linearDoc) client(tb testing.TB) *Client {
	tb.Helper()
	c, err := New(WithDocument(d.json(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// wellFormed is snapshot, failing the test when the document has problems.
func (d *linearDoc) wellFormed(tb testing.TB) *Snapshot {
	tb.Helper()
	snap := d.snapshot(tb)
	if ps := snap.Problems(); len(ps) > 0 {
		tb.Fatalf("problems: %v", ps)
	}
	return snap
}

func inSegmentRule(id string, keys ...string) map[string]any {
	vals := make([]any, len(keys))
	for i, k := range keys {
		vals[i] = k
	}
	return map[string]any{"id": id, "clauses": []any{map[string]any{"op": "inSegment", "values": vals}},
		"serve": map[string]any{"variation": 1}}
}

// segmentChain adds segments p0 → p1 → ... → p(depth-1), each with
// rulesEach rules that all use the next one (the finding's shape), the last
// including "member", and a flag f(prefix) serving true to the members of p0.
// p0 is depth deep. Without a memo an outsider's evaluation visits
// rulesEach^depth segments.
func (d *linearDoc) segmentChain(prefix string, depth, rulesEach int) {
	for i := 0; i < depth-1; i++ {
		var rs []any
		for r := 0; r < rulesEach; r++ {
			rs = append(rs, map[string]any{"id": fmt.Sprint("r", r), "clauses": []any{
				map[string]any{"op": "inSegment", "values": []any{fmt.Sprint(prefix, i+1)}}}})
		}
		d.segments[fmt.Sprint(prefix, i)] = map[string]any{"rules": rs}
	}
	d.segments[fmt.Sprint(prefix, depth-1)] = map[string]any{"included": []any{"member"}}
	d.flags["f"+prefix] = boolFlag(map[string]any{"rules": []any{inSegmentRule("seg", prefix+"0")}})
}

// segmentLayers adds layers × width segments, each using every segment of
// the next layer (the last layer includes "member"), and a flag f(prefix)
// using every segment of the first: a wide DAG, width^layers paths.
func (d *linearDoc) segmentLayers(prefix string, layers, width int) {
	layer := func(i int) []string {
		var keys []string
		for j := 0; j < width; j++ {
			keys = append(keys, fmt.Sprintf("%s%d-%d", prefix, i, j))
		}
		return keys
	}
	for i := 0; i < layers; i++ {
		for _, key := range layer(i) {
			if i == layers-1 {
				d.segments[key] = map[string]any{"included": []any{"member"}}
				continue
			}
			d.segments[key] = map[string]any{"rules": []any{
				map[string]any{"clauses": inSegmentRule("", layer(i+1)...)["clauses"]}}}
		}
	}
	d.flags["f"+prefix] = boolFlag(map[string]any{"rules": []any{inSegmentRule("seg", layer(0)...)}})
}

var (
	outsider = NewContext("outsider").Set("country", "fr").Build()
	member   = NewContext("member").Set("country", "fr").Build()
)

// TestSegmentChainIsLinear is the finding "segments that each have two
// rules inSegment the next one: depth 26 takes 4 s per evaluation": every
// segment is evaluated at most once per evaluation, through Evaluate, the
// typed getters and AllFlags, and the results do not change.
func TestSegmentChainIsLinear(t *testing.T) {
	d := newLinearDoc()
	d.segmentChain("c", rules.MaxSegmentDepth, 2)  // 2^16 paths
	d.segmentChain("t", rules.MaxSegmentDepth, 3)  // 3^16
	d.segmentLayers("w", rules.MaxSegmentDepth, 8) // 8^16, 128 segments: the memo outgrows the stack
	d.segmentLayers("n", 3, 1)                     // a plain chain: no memo needed
	d.flags["fn2"] = d.flags["fn"]                 // another flag using n0-0: not a reason for a memo
	snap := d.wellFormed(t)
	tests := []segmentGraphCase{
		{"fc", true, rules.MaxSegmentDepth},
		{"ft", true, rules.MaxSegmentDepth},
		{"fw", true, rules.MaxSegmentDepth * 8},
		{"fn", false, 3},
		{"fn2", false, 3},
	}
	for _, tc := range tests {
		t.Run(tc.flag, func(t *testing.T) { checkSegmentVisits(t, snap, tc) })
	}

	// The getters and AllFlags share the evaluator: were they exponential,
	// fw alone (8^16 paths) would not finish.
	c := d.client(t)
	t.Run("getters agree with Evaluate", func(t *testing.T) { checkBoolGettersAgree(t, c, snap, tests) })
	t.Run("AllFlags agrees with Evaluate", func(t *testing.T) {
		for _, ec := range []Context{outsider, member} {
			checkAllFlagsAgree(t, c, snap, ec)
		}
	})
	t.Run("memo does not allocate", func(t *testing.T) { checkSegmentMemoAllocations(t, c) })
}

// segmentGraphCase is a flag of TestSegmentChainIsLinear's document.
type segmentGraphCase struct {
	flag   string
	memo   bool
	visits int // by an outsider: every segment of the graph, once
}

// checkSegmentVisits: the flag needs a memo when its graph is shared, and
// an evaluation visits each of its segments at most once, all of them for
// an outsider.
func checkSegmentVisits(t *testing.T, snap *Snapshot, tc segmentGraphCase) {
	t.Helper()
	if got := snap.compiled().Flag(tc.flag).NeedsMemo(); got != tc.memo {
		t.Errorf("Flag(%q).NeedsMemo() = %v, want %v", tc.flag, got, tc.memo)
	}
	r, visits := evaluateCounting(snap, tc.flag, outsider, nil)
	if r.Reason.Kind != ReasonFallthrough || r.Value != false {
		t.Errorf("%s for an outsider: %+v (%v), want FALLTHROUGH false", tc.flag, r.Reason, r.Err)
	}
	if visits != tc.visits {
		t.Errorf("%s for an outsider: %d segment evaluations, want %d (each segment once)", tc.flag, visits, tc.visits)
	}
	r, visits = evaluateCounting(snap, tc.flag, member, nil)
	if r.Reason.Kind != ReasonRuleMatch || r.Value != true {
		t.Errorf("%s for a member: %+v (%v), want RULE_MATCH true", tc.flag, r.Reason, r.Err)
	}
	if visits > tc.visits {
		t.Errorf("%s for a member: %d segment evaluations, more than the %d segments", tc.flag, visits, tc.visits)
	}
}

// checkBoolGettersAgree: Bool and BoolDetail give what Evaluate gives, for
// an outsider and a member.
func checkBoolGettersAgree(t *testing.T, c *Client, snap *Snapshot, tests []segmentGraphCase) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range tests {
		for _, ec := range []Context{outsider, member} {
			want := Evaluate(snap, tc.flag, ec, nil)
			if got := c.Bool(ctx, tc.flag, ec, !want.Value.(bool)); got != want.Value {
				t.Errorf("Bool(%q, %s) = %v, want %v", tc.flag, ec.Key(), got, want.Value)
			}
			if got := c.BoolDetail(ctx, tc.flag, ec, false); got.Value != want.Value || got.Reason != want.Reason {
				t.Errorf("BoolDetail(%q, %s) = %+v, want %+v", tc.flag, ec.Key(), got, want)
			}
		}
	}
}

// checkAllFlagsAgree: every result of AllFlags for ec is Evaluate's.
func checkAllFlagsAgree(t *testing.T, c *Client, snap *Snapshot, ec Context) {
	t.Helper()
	for got := range c.AllFlags(context.Background(), ec).All() {
		want := Evaluate(snap, got.Flag, ec, nil)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AllFlags: %s for %s (-Evaluate +AllFlags):\n%s", got.Flag, ec.Key(), diff)
		}
	}
}

// checkSegmentMemoAllocations: the memo lives on the stack (or in a pool
// beyond it): no allocation.
func checkSegmentMemoAllocations(t *testing.T, c *Client) {
	t.Helper()
	ctx := context.Background()
	for _, flag := range []string{"fc", "ft"} {
		if n := testing.AllocsPerRun(100, func() { c.Bool(ctx, flag, outsider, false) }); n != 0 {
			t.Errorf("Bool(%q) allocates %.0f times, want 0", flag, n)
		}
		if n := testing.AllocsPerRun(100, func() { c.BoolDetail(ctx, flag, outsider, false) }); n != 0 {
			t.Errorf("BoolDetail(%q) allocates %.0f times, want 0", flag, n)
		}
	}
	// fw's 128 segments outgrow the stack: its table comes from a pool,
	// which a GC (or the race detector) may empty; at worst the table's two
	// allocations, however large the graph.
	if n := testing.AllocsPerRun(100, func() { c.Bool(ctx, "fw", outsider, false) }); n > 2 {
		t.Errorf(`Bool("fw") allocates %.0f times, want at most 2 (a pooled memo table, when the pool is empty)`, n)
	}
}

// TestSegmentChainCostGrowsLinearly measures the getters and AllFlags,
// which the visit counter does not reach: doubling the depth of the
// finding's chain must about double the cost of evaluating it, where it
// multiplied it by 2^6 before. The margin is wide: the machine may be noisy.
func TestSegmentChainCostGrowsLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("measures with testing.Benchmark")
	}
	ctx := context.Background()
	// cost is the time of one Bool, one BoolDetail and one AppendAllFlags
	// of the chain's flag (the document's only one) for an outsider.
	cost := func(depth int) float64 {
		d := newLinearDoc()
		d.segmentChain("c", depth, 2)
		c, err := New(WithDocument(d.json(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]Result[any], 0, 1)
		r := testing.Benchmark(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.Bool(ctx, "fc", outsider, false)
				c.BoolDetail(ctx, "fc", outsider, false)
				buf = c.AppendAllFlags(ctx, buf[:0], outsider)
			}
		})
		return float64(r.T.Nanoseconds()) / float64(max(r.N, 1))
	}
	short, long := cost(6), cost(12)
	if ratio := long / short; ratio > 8 {
		t.Errorf("depth 12 costs %.0f ns, depth 6 %.0f ns: %.1f times, want about 2 (at most 8)", long, short, ratio)
	}
}

// TestPrerequisiteDiamondIsLinear is the finding "a flag with two
// prerequisites both on the next flag, chained": every prerequisite flag
// is evaluated at most once per evaluation.
func TestPrerequisiteDiamondIsLinear(t *testing.T) {
	d := newLinearDoc()
	d.prerequisiteDiamondChain()
	d.prerequisiteLayers()
	// Prerequisites and rules sharing one segment, which fails the last
	// prerequisite: the segment is evaluated once.
	d.segments["s"] = map[string]any{"rules": []any{map[string]any{"clauses": []any{
		map[string]any{"attribute": "country", "op": "in", "values": []any{"fr"}}}}}}
	d.flags["uses-s"] = boolFlag(map[string]any{"rules": []any{inSegmentRule("s", "s")}})
	d.flags["mixed"] = boolFlag(map[string]any{"prerequisites": prerequisitesOn("uses-s", "uses-s"),
		"rules": []any{inSegmentRule("s", "s")}, "offVariation": 0})
	snap := d.wellFormed(t)
	tests := []prerequisiteGraphCase{
		{"p0", rules.MaxPrerequisiteDepth, ReasonFallthrough, true},
		{"top", 4 * rules.MaxPrerequisiteDepth, ReasonFallthrough, true},
		{"mixed", 2, ReasonRuleMatch, true},
	}
	for _, tc := range tests {
		t.Run(tc.flag, func(t *testing.T) { checkPrerequisiteVisits(t, snap, tc) })
	}
	t.Run("mixed with a failed prerequisite", func(t *testing.T) {
		// A context for which uses-s serves false: mixed's prerequisites fail.
		de := NewContext("u").Set("country", "de").Build()
		if r, visits := evaluateCounting(snap, "mixed", de, nil); r.Reason.Kind != ReasonPrerequisiteFailed ||
			r.Reason.PrerequisiteKey != "uses-s" || visits != 2 {
			t.Errorf("mixed for de: %+v after %d evaluations, want PREREQUISITE_FAILED uses-s after 2", r.Reason, visits)
		}
	})

	c := d.client(t)
	t.Run("Bool serves the value within the allocation budget", func(t *testing.T) {
		for _, tc := range tests {
			checkPooledBool(t, c, tc.flag, tc.value)
		}
	})
	t.Run("AllFlags agrees with Evaluate", func(t *testing.T) {
		for got := range c.AllFlags(context.Background(), outsider).All() {
			if want := Evaluate(snap, got.Flag, outsider, nil); !cmp.Equal(want, got) {
				t.Errorf("AllFlags: %s = %+v, Evaluate gives %+v", got.Flag, got, want)
			}
		}
	})
}

// prerequisiteGraphCase is a flag of TestPrerequisiteDiamondIsLinear's
// document and what an outsider's evaluation of it gives.
type prerequisiteGraphCase struct {
	flag   string
	visits int
	kind   ReasonKind
	value  bool
}

// nobodyRules is a rule nobody matches: it keeps the flags from being folded
// into constants.
var nobodyRules = []any{map[string]any{"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []any{"xx"}}},
	"serve": map[string]any{"variation": 0}}}

// prerequisitesOn requires variation 1 of each of keys.
func prerequisitesOn(keys ...string) []any {
	var out []any
	for _, k := range keys {
		out = append(out, map[string]any{"flag": k, "variation": 1})
	}
	return out
}

// prerequisiteDiamondChain adds p0 ⇉ p1 ⇉ ... ⇉ p16: two prerequisites on
// the next flag, 2^16 paths.
func (d *linearDoc) prerequisiteDiamondChain() {
	for i := 0; i < rules.MaxPrerequisiteDepth; i++ {
		next := fmt.Sprint("p", i+1)
		d.flags[fmt.Sprint("p", i)] = boolFlag(map[string]any{"prerequisites": prerequisitesOn(next, next), "rules": nobodyRules,
			"fallthrough": map[string]any{"variation": 1}})
	}
	d.flags[fmt.Sprint("p", rules.MaxPrerequisiteDepth)] = boolFlag(map[string]any{"rules": nobodyRules,
		"fallthrough": map[string]any{"variation": 1}})
}

// prerequisiteLayers adds top ⇉ 16 layers of 4 flags, each on all 4 of the
// next: 4^16 paths.
func (d *linearDoc) prerequisiteLayers() {
	layer := func(i int) []string {
		return []string{fmt.Sprintf("q%d-a", i), fmt.Sprintf("q%d-b", i), fmt.Sprintf("q%d-c", i), fmt.Sprintf("q%d-d", i)}
	}
	const layers = rules.MaxPrerequisiteDepth
	for i := 0; i < layers; i++ {
		for _, key := range layer(i) {
			f := map[string]any{"rules": nobodyRules, "fallthrough": map[string]any{"variation": 1}}
			if i < layers-1 {
				f["prerequisites"] = prerequisitesOn(layer(i + 1)...)
			}
			d.flags[key] = boolFlag(f)
		}
	}
	d.flags["top"] = boolFlag(map[string]any{"prerequisites": prerequisitesOn(layer(0)...), "rules": nobodyRules,
		"fallthrough": map[string]any{"variation": 1}})
}

// checkPrerequisiteVisits: the flag needs a memo, and an outsider's
// evaluation gives the case's result after evaluating each segment and
// prerequisite flag once.
func checkPrerequisiteVisits(t *testing.T, snap *Snapshot, tc prerequisiteGraphCase) {
	t.Helper()
	if !snap.compiled().Flag(tc.flag).NeedsMemo() {
		t.Errorf("Flag(%q).NeedsMemo() = false", tc.flag)
	}
	r, visits := evaluateCounting(snap, tc.flag, outsider, nil)
	if r.Reason.Kind != tc.kind || r.Value != tc.value {
		t.Errorf("%s: %+v = %v (%v), want %s %v", tc.flag, r.Reason, r.Value, r.Err, tc.kind, tc.value)
	}
	if visits != tc.visits {
		t.Errorf("%s: %d segment and prerequisite evaluations, want %d (each once)", tc.flag, visits, tc.visits)
	}
}

// checkPooledBool: Bool serves want to an outsider, allocating at most the
// two allocations of a pooled memo table.
func checkPooledBool(t *testing.T, c *Client, flag string, want bool) {
	t.Helper()
	ctx := context.Background()
	if got := c.Bool(ctx, flag, outsider, !want); got != want {
		t.Errorf("Bool(%q) = %v, want %v", flag, got, want)
	}
	if n := testing.AllocsPerRun(100, func() { c.Bool(ctx, flag, outsider, false) }); n > 2 {
		t.Errorf("Bool(%q) allocates %.0f times, want at most 2 (a pooled memo table, when the pool is empty)", flag, n)
	}
}

// TestSegmentDepthOver16IsMalformed: a segment nested 17 deep is malformed
// (its problem names it and its depth, lint lists it), an evaluation that
// reaches it is MALFORMED_FLAG, and 16 deep is fine (SPEC §13).
func TestSegmentDepthOver16IsMalformed(t *testing.T) {
	d := newLinearDoc()
	d.segmentChain("s", rules.MaxSegmentDepth+1, 1) // s0 is 17 deep, s1 16
	d.flags["f1"] = boolFlag(map[string]any{"rules": []any{inSegmentRule("seg", "s1")}})
	d.flags["unrelated"] = boolFlag(nil)
	snap := d.snapshot(t)

	checkSegmentDepthReported(t, snap)

	r := Evaluate(snap, "fs", member, nil)
	if r.Reason.Kind != ReasonError || r.Reason.ErrorKind != ErrorMalformedFlag || r.Variation != -1 {
		t.Errorf("flag using s0: %+v, want ERROR MALFORMED_FLAG", r.Reason)
	}
	if !errors.Is(r.Err, ErrMalformedFlag) || !errors.Is(r.Err, rules.ErrMalformed) || !strings.Contains(r.Err.Error(), `"s0"`) {
		t.Errorf("flag using s0: Err = %v, want ErrMalformedFlag naming s0", r.Err)
	}
	if r := Evaluate(snap, "f1", member, nil); r.Reason.Kind != ReasonRuleMatch || r.Value != true {
		t.Errorf("flag using s1 (16 deep): %+v (%v), want RULE_MATCH true", r.Reason, r.Err)
	}
	if r := Evaluate(snap, "unrelated", member, nil); r.Err != nil {
		t.Errorf("unrelated flag: %v", r.Err)
	}
}

// checkSegmentDepthReported: compiling marks s0, 17 deep, malformed with
// a problem naming it and its depth, and s1, 16 deep, well formed; the
// snapshot's problems (what flags lint prints) list s0's alone.
func checkSegmentDepthReported(t *testing.T, snap *Snapshot) {
	t.Helper()
	s0 := snap.compiled().Segment("s0")
	if s0.Err == nil || !strings.Contains(s0.Err.Error(), "segments.s0") || !strings.Contains(s0.Err.Error(), "17 deep") {
		t.Fatalf("Segment(s0).Err = %v, want a problem naming segments.s0 and its depth 17", s0.Err)
	}
	if err := snap.compiled().Segment("s1").Err; err != nil {
		t.Errorf("Segment(s1) (16 deep).Err = %v, want nil", err)
	}
	var listed []string
	for _, p := range snap.Problems() {
		listed = append(listed, p.Error())
	}
	want := []string{"segments.s0.rules: segment nesting is 17 deep, more than 16"}
	if diff := cmp.Diff(want, listed); diff != "" {
		t.Errorf("Problems() (what flags lint prints) (-want +got):\n%s", diff)
	}
}

// BenchmarkEvaluateSharedGraph evaluates the findings' shapes for a
// context in none of their segments, so that every rule is tried: before
// evaluations were memoized they cost 2^16, 8^16 and 2^16 visits.
func BenchmarkEvaluateSharedGraph(b *testing.B) {
	d := newLinearDoc()
	d.segmentChain("c", rules.MaxSegmentDepth, 2)
	d.segmentLayers("w", rules.MaxSegmentDepth, 8)
	nobody := []any{map[string]any{"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []any{"xx"}}},
		"serve": map[string]any{"variation": 0}}}
	for i := 0; i < rules.MaxPrerequisiteDepth; i++ {
		next := map[string]any{"flag": fmt.Sprint("p", i+1), "variation": 1}
		d.flags[fmt.Sprint("p", i)] = boolFlag(map[string]any{"prerequisites": []any{next, next}, "rules": nobody,
			"fallthrough": map[string]any{"variation": 1}})
	}
	d.flags[fmt.Sprint("p", rules.MaxPrerequisiteDepth)] = boolFlag(map[string]any{"rules": nobody,
		"fallthrough": map[string]any{"variation": 1}})
	c, err := New(WithDocument(d.json(b)))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, bc := range []struct{ name, flag string }{
		{"SegmentChain16x2", "fc"}, {"SegmentLayers16x8", "fw"}, {"PrerequisiteDiamond16", "p0"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.Bool(ctx, bc.flag, outsider, false)
			}
		})
	}
}

// TestClausesCheapestFirst checks the order clauses are evaluated in
// (eval.Flag.ByCost): cheapest first, so that a rule whose cheap clause
// fails never evaluates its segment; as written wherever a segment the
// rule names can be an error, so that which clauses an evaluation reaches,
// and so whether it errors, is what the flag says. Visits count the
// well-formed segments evaluated.
func TestClausesCheapestFirst(t *testing.T) {
	country := map[string]any{"attribute": "country", "op": "in", "values": []any{"xx"}}
	inSeg := func(key string) map[string]any {
		return map[string]any{"op": "inSegment", "values": []any{key}}
	}
	rule := func(clauses ...any) map[string]any {
		return map[string]any{"id": "r", "clauses": clauses, "serve": map[string]any{"variation": 1}}
	}
	d := newLinearDoc()
	d.segments["members"] = map[string]any{"included": []any{"u1"}}
	d.segments["bad"] = map[string]any{"rules": []any{map[string]any{"clauses": []any{}, "weight": 200000}}}
	d.segments["wraps-bad"] = map[string]any{"rules": []any{map[string]any{"clauses": []any{inSeg("bad")}}}}
	d.segments["members-and-country"] = map[string]any{"rules": []any{map[string]any{"clauses": []any{inSeg("members"), country}}}}
	flag := func(r map[string]any) map[string]any {
		return map[string]any{"on": true, "variations": []any{false, true}, "fallthrough": map[string]any{"variation": 0},
			"rules": []any{r}}
	}
	d.flags["members-then-country"] = flag(rule(inSeg("members"), country))
	d.flags["bad-then-country"] = flag(rule(inSeg("bad"), country))
	d.flags["country-then-bad"] = flag(rule(country, inSeg("bad")))
	d.flags["wraps-bad-then-country"] = flag(rule(inSeg("wraps-bad"), country))
	d.flags["segment-rule"] = flag(rule(inSeg("members-and-country")))
	ec := NewContext("u1").Set("country", "de").Build()
	check := func(snap *Snapshot, key string, kind ReasonKind, visits int) {
		t.Helper()
		r, n := evaluateCounting(snap, key, ec, nil)
		if r.Reason.Kind != kind || n != visits || kind == ReasonError && !errors.Is(r.Err, ErrMalformedFlag) {
			t.Errorf("%s: %s (%v) after %d segments, want %s after %d", key, r.Reason.Kind, r.Err, n, kind, visits)
		}
	}
	snap := d.snapshot(t)
	check(snap, "members-then-country", ReasonFallthrough, 0) // country fails first: the segment is never evaluated
	check(snap, "segment-rule", ReasonFallthrough, 1)         // likewise inside a segment's rule
	check(snap, "bad-then-country", ReasonError, 0)           // as written: the malformed segment is reached
	check(snap, "country-then-bad", ReasonFallthrough, 0)     // as written: it is not
	check(snap, "wraps-bad-then-country", ReasonError, 1)     // a segment naming a malformed one can fail too

	// The flags' definitions are reused by the next snapshot, where
	// members is malformed: its flag is evaluated as written there.
	d.segments["members"] = map[string]any{"included": []any{"u1"}, "rules": []any{map[string]any{"clauses": []any{}, "weight": -1}}}
	doc, err := rules.ParseDocument(d.json(t))
	if err != nil {
		t.Fatal(err)
	}
	next := compileFrom(snap, doc)
	check(next, "members-then-country", ReasonError, 0)
	check(next, "segment-rule", ReasonError, 1)
	check(snap, "members-then-country", ReasonFallthrough, 0) // the first snapshot is unchanged
}
