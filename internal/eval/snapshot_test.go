package eval

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// prereqFlag is a well-formed flag with the given prerequisites.
func prereqFlag(prereqs ...string) string {
	var ps []string
	for _, p := range prereqs {
		ps = append(ps, fmt.Sprintf(`{"flag":%q,"variation":1}`, p))
	}
	return `{"on":true,"variations":[false,true],"prerequisites":[` + strings.Join(ps, ",") + `],"fallthrough":{"variation":1}}`
}

// docOf builds a document from flag key → flag JSON and segment key → segment JSON.
func docOf(t *testing.T, version int64, flags, segments map[string]string) *Document {
	t.Helper()
	d := &Document{Version: version, Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	for k, v := range flags {
		d.Flags[k] = json.RawMessage(v)
	}
	for k, v := range segments {
		d.Segments[k] = json.RawMessage(v)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatalf("test document does not marshal: %v", err)
	}
	out, err := ParseDocument(b)
	if err != nil {
		t.Fatalf("ParseDocument: %v", err)
	}
	return out
}

// problemsByKey maps each key with problems to its problem strings.
func problemsByKey(s *Snapshot) map[string][]string {
	out := map[string][]string{}
	for _, p := range s.Problems() {
		out[p.Kind+"s."+p.Key] = append(out[p.Kind+"s."+p.Key], p.Error())
	}
	return out
}

func TestPrerequisiteCycles(t *testing.T) {
	const ok = `{"on":true,"variations":[false,true],"fallthrough":{"variation":1}}`
	tests := []struct {
		name  string
		flags map[string]string
		want  map[string][]string
	}{
		{"self", map[string]string{"a": prereqFlag("a"), "b": prereqFlag("a")},
			map[string][]string{"flags.a": {"flags.a.prerequisites: prerequisite cycle: a → a"}}},
		{"two", map[string]string{"a": prereqFlag("b"), "b": prereqFlag("a"), "c": prereqFlag("a"), "ok": ok},
			map[string][]string{
				"flags.a": {"flags.a.prerequisites: prerequisite cycle: a → b → a"},
				"flags.b": {"flags.b.prerequisites: prerequisite cycle: b → a → b"}}},
		{"three", map[string]string{"a": prereqFlag("b"), "b": prereqFlag("c"), "c": prereqFlag("a"), "d": prereqFlag("c", "ok"), "ok": ok},
			map[string][]string{
				"flags.a": {"flags.a.prerequisites: prerequisite cycle: a → b → c → a"},
				"flags.b": {"flags.b.prerequisites: prerequisite cycle: b → c → a → b"},
				"flags.c": {"flags.c.prerequisites: prerequisite cycle: c → a → b → c"}}},
		{"two cycles sharing nothing", map[string]string{"a": prereqFlag("b"), "b": prereqFlag("a"), "x": prereqFlag("y"), "y": prereqFlag("x")},
			map[string][]string{
				"flags.a": {"flags.a.prerequisites: prerequisite cycle: a → b → a"},
				"flags.b": {"flags.b.prerequisites: prerequisite cycle: b → a → b"},
				"flags.x": {"flags.x.prerequisites: prerequisite cycle: x → y → x"},
				"flags.y": {"flags.y.prerequisites: prerequisite cycle: y → x → y"}}},
		{"diamond is not a cycle", map[string]string{"a": prereqFlag("b", "c"), "b": prereqFlag("d"), "c": prereqFlag("d"), "d": ok},
			map[string][]string{}},
		{"prerequisite listed twice", map[string]string{"a": prereqFlag("b", "b"), "b": ok}, map[string][]string{}},
		{"unknown prerequisite", map[string]string{"a": prereqFlag("ghost")}, map[string][]string{}},
		{"cycle through a malformed flag", map[string]string{"a": prereqFlag("b"),
			"b": `{"on":true,"prerequisites":[{"flag":"a","variation":0}],"fallthrough":{"variation":0}}`},
			map[string][]string{
				"flags.a": {"flags.a.prerequisites: prerequisite cycle: a → b → a"},
				"flags.b": {"flags.b.variations: missing (at least one variation is required)",
					"flags.b.prerequisites: prerequisite cycle: b → a → b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Compile(docOf(t, 1, tc.flags, nil))
			got := problemsByKey(s)
			for k := range got {
				sort.Strings(got[k])
			}
			for k := range tc.want {
				sort.Strings(tc.want[k])
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			for key := range tc.flags {
				_, bad := tc.want["flags."+key]
				if f := s.Flag(key); (f.Err != nil) != bad {
					t.Errorf("Flag(%q).Err = %v, want malformed: %v", key, f.Err, bad)
				}
			}
		})
	}
}

// chain builds flags c0 → c1 → ... → cN: c0 has depth N.
func chain(n int) map[string]string {
	flags := map[string]string{}
	for i := 0; i < n; i++ {
		flags[fmt.Sprintf("c%d", i)] = prereqFlag(fmt.Sprintf("c%d", i+1))
	}
	flags[fmt.Sprintf("c%d", n)] = prereqFlag()
	return flags
}

func TestPrerequisiteDepth(t *testing.T) {
	s := Compile(docOf(t, 1, chain(MaxPrerequisiteDepth), nil))
	if ps := s.Problems(); len(ps) != 0 {
		t.Errorf("depth %d: problems %q, want none", MaxPrerequisiteDepth, problemStrings(ps))
	}

	s = Compile(docOf(t, 1, chain(MaxPrerequisiteDepth+1), nil))
	want := []string{"flags.c0.prerequisites: prerequisite chain is 17 deep, more than 16"}
	if diff := cmp.Diff(want, problemStrings(s.Problems())); diff != "" {
		t.Errorf("depth 17: problems (-want +got):\n%s", diff)
	}

	// Everything that depends on a too-deep flag is too deep too.
	flags := chain(MaxPrerequisiteDepth + 1)
	flags["top"] = prereqFlag("c0")
	flags["side"] = prereqFlag("c1") // depth 17 through c1 (depth 16)
	s = Compile(docOf(t, 1, flags, nil))
	want = []string{
		"flags.c0.prerequisites: prerequisite chain is 17 deep, more than 16",
		"flags.side.prerequisites: prerequisite chain is 17 deep, more than 16",
		"flags.top.prerequisites: prerequisite chain is 18 deep, more than 16",
	}
	if diff := cmp.Diff(want, problemStrings(s.Problems())); diff != "" {
		t.Errorf("depth 18: problems (-want +got):\n%s", diff)
	}

	// A long chain (far deeper than the limit) must not blow the stack.
	s = Compile(docOf(t, 1, chain(5000), nil))
	if f := s.Flag("c0"); f.Err == nil || !strings.Contains(f.Err.Error(), "5000 deep") {
		t.Errorf("chain of 5000: c0.Err = %v, want 5000 deep", f.Err)
	}
	if f := s.Flag("c4984"); f.Err != nil {
		t.Errorf("chain of 5000: c4984 (depth 16) Err = %v, want nil", f.Err)
	}

	// A flag depending on a cycle is not itself malformed, whatever the depth.
	flags = chain(3)
	flags["c3"] = prereqFlag("c2") // c2 ⇄ c3
	s = Compile(docOf(t, 1, flags, nil))
	for key, bad := range map[string]bool{"c0": false, "c1": false, "c2": true, "c3": true} {
		if f := s.Flag(key); (f.Err != nil) != bad {
			t.Errorf("%s.Err = %v, want malformed: %v", key, f.Err, bad)
		}
	}
}

func segRule(refs ...string) string {
	var rs []string
	for _, r := range refs {
		rs = append(rs, fmt.Sprintf(`{"clauses":[{"op":"inSegment","values":[%q]}]}`, r))
	}
	return `{"rules":[` + strings.Join(rs, ",") + `]}`
}

func TestSegmentCycles(t *testing.T) {
	s := Compile(docOf(t, 1, nil, map[string]string{
		"self": segRule("self"),
		"s1":   segRule("s2"), "s2": segRule("s1"),
		"t1": segRule("t2"), "t2": segRule("t3"), "t3": segRule("ok", "t1"),
		"uses-cycle": segRule("s1"), "ok": `{"included":["u1"]}`, "unknown-ref": segRule("ghost"),
		"negated": `{"rules":[{"clauses":[{"op":"inSegment","values":["negated"],"negate":true}]}]}`,
	}))
	want := map[string][]string{
		"segments.self":    {"segments.self.rules: segment cycle: self → self"},
		"segments.s1":      {"segments.s1.rules: segment cycle: s1 → s2 → s1"},
		"segments.s2":      {"segments.s2.rules: segment cycle: s2 → s1 → s2"},
		"segments.t1":      {"segments.t1.rules: segment cycle: t1 → t2 → t3 → t1"},
		"segments.t2":      {"segments.t2.rules: segment cycle: t2 → t3 → t1 → t2"},
		"segments.t3":      {"segments.t3.rules: segment cycle: t3 → t1 → t2 → t3"},
		"segments.negated": {"segments.negated.rules: segment cycle: negated → negated"},
	}
	if diff := cmp.Diff(want, problemsByKey(s)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	for _, key := range []string{"uses-cycle", "ok", "unknown-ref"} {
		if g := s.Segment(key); g.Err != nil {
			t.Errorf("Segment(%q).Err = %v, want nil", key, g.Err)
		}
	}
}

func TestFindCyclesComplexGraph(t *testing.T) {
	// Two strongly connected components joined by a one-way edge, a tail, and a
	// component with a chord: every member of a component is reported, no one else.
	g := map[string][]string{
		"a": {"b"}, "b": {"c", "x"}, "c": {"a", "b"},
		"x": {"y"}, "y": {"x", "z"}, "z": {},
		"tail": {"a"}, "lone": {"lone2"}, "lone2": {},
	}
	nodes := make([]string, 0, len(g))
	for k := range g {
		nodes = append(nodes, k)
	}
	sort.Strings(nodes)
	got := findCycles(nodes, func(k string) []string { return g[k] })
	var keys []string
	for k, cycle := range got {
		keys = append(keys, k)
		if cycle[0] != k || cycle[len(cycle)-1] != k || len(cycle) < 2 {
			t.Errorf("cycle for %s = %v: want it to start and end at %s", k, cycle, k)
		}
		for i := 0; i+1 < len(cycle); i++ {
			found := false
			for _, e := range g[cycle[i]] {
				found = found || e == cycle[i+1]
			}
			if !found {
				t.Errorf("cycle for %s = %v: %s → %s is not an edge", k, cycle, cycle[i], cycle[i+1])
			}
		}
	}
	sort.Strings(keys)
	if diff := cmp.Diff([]string{"a", "b", "c", "x", "y"}, keys); diff != "" {
		t.Errorf("cyclic nodes (-want +got):\n%s", diff)
	}
}

func TestSnapshotAccessors(t *testing.T) {
	s := Compile(docOf(t, 42, map[string]string{"b": prereqFlag(), "a": prereqFlag(), "c": `[]`},
		map[string]string{"s": `{}`}))
	if s.Version() != 42 || s.Document() == nil || s.Document().Version != 42 {
		t.Errorf("Version() = %d, Document() = %v", s.Version(), s.Document())
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, s.FlagKeys()); diff != "" {
		t.Errorf("FlagKeys() (-want +got):\n%s", diff)
	}
	if s.Flag("zz") != nil || s.Segment("zz") != nil || s.Segment("s") == nil || s.Flag("c") == nil {
		t.Errorf("Flag/Segment lookups wrong")
	}
	empty := Compile(&Document{})
	if len(empty.FlagKeys()) != 0 || len(empty.Problems()) != 0 || empty.Flag("a") != nil {
		t.Errorf("empty document: %v keys, %v problems", empty.FlagKeys(), empty.Problems())
	}
}

func TestProblemsSorted(t *testing.T) {
	s := Compile(docOf(t, 1, map[string]string{
		"z": `{"variations":[],"on":"x"}`, "a": `{"variations":[1],"fallthrough":{"variation":3},"version":-1}`, "m": `1`,
	}, map[string]string{"b": `{"included":"x","rules":{}}`, "a": `[]`}))
	got := problemStrings(s.Problems())
	want := []string{
		"flags.a.version: must be >= 0",
		"flags.a.fallthrough.variation: index 3 out of range: the flag has 1 variations",
		"flags.m: got a number, want an object",
		"flags.z.on: got a string, want a bool",
		"flags.z.variations: empty (at least one variation is required)",
		"flags.z.fallthrough: missing (required)",
		"segments.a: got an array, want an object",
		"segments.b.included: got a string, want an array",
		"segments.b.rules: got an object, want an array",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Problems() (-want +got):\n%s", diff)
	}
	// Err is the first problem of each flag, in the order found.
	if err := s.Flag("z").Err; err == nil || s.Flag("z").Problems[0] != err {
		t.Errorf("z.Err = %v, want its first problem", err)
	}
}

// TestCompileFromReuse: CompileFrom reuses the compiled parts of flags
// and segments whose bytes did not change, and recompiles the others.
func TestCompileFromReuse(t *testing.T) {
	const re = `{"on":true,"variations":[false,true],"rules":[{"clauses":[{"attribute":"email","op":"matches","values":["@corp\\.com$"]}],
		"serve":{"rollout":{"variations":[{"variation":0,"weight":50000},{"variation":1,"weight":50000}]}}}],"fallthrough":{"variation":0}}`
	d1 := docOf(t, 1, map[string]string{"a": re, "b": re, "bad": `{"variations":[]}`},
		map[string]string{"s": `{"included":["u1"],"rules":[{"clauses":[{"attribute":"x","op":"matches","values":["y"]}]}]}`})
	s1 := Compile(d1)
	d2 := d1.Apply(&Patch{Version: 2, Flags: map[string]json.RawMessage{"b": json.RawMessage(strings.Replace(re, "corp", "corp2", 1))}})
	s2 := CompileFrom(s1, d2)

	t.Run("unchanged flag", func(t *testing.T) { checkFlagReused(t, s1.Flag("a"), s2.Flag("a")) })
	t.Run("changed flag", func(t *testing.T) { checkFlagRecompiled(t, s1.Flag("b"), s2.Flag("b"), `@corp2.com`) })
	if g1, g2 := s1.Segment("s"), s2.Segment("s"); g1 == g2 || &g1.Rules[0] != &g2.Rules[0] {
		t.Errorf("unchanged segment: not a copy sharing its compiled rules")
	}
	if diff := cmp.Diff(problemStrings(s1.Flag("bad").Problems), problemStrings(s2.Flag("bad").Problems)); diff != "" || s2.Flag("bad").Err == nil {
		t.Errorf("reused malformed flag: Err = %v, problems (-before +after):\n%s", s2.Flag("bad").Err, diff)
	}
	if s2.Version() != 2 || s1.Version() != 1 {
		t.Errorf("versions %d, %d; want 1, 2", s1.Version(), s2.Version())
	}
	// The same key with the same bytes under a new key is compiled, not looked up by content.
	d3 := d2.Apply(&Patch{Version: 3, Flags: map[string]json.RawMessage{"c": json.RawMessage(re)}})
	s3 := CompileFrom(s2, d3)
	t.Run("new key with the same bytes", func(t *testing.T) { checkNewKeyCompiled(t, s3.Flag("c"), s3.Flag("a")) })
	// Reusing across a deletion: a deleted flag disappears.
	s4 := CompileFrom(s3, d3.Apply(&Patch{Version: 4, Flags: map[string]json.RawMessage{"a": nil}}))
	if s4.Flag("a") != nil || s4.Flag("c") == nil {
		t.Errorf("after deleting a: Flag(a) = %v, Flag(c) = %v", s4.Flag("a"), s4.Flag("c"))
	}
	// CompileFrom(nil, d) is Compile(d).
	if diff := cmp.Diff(problemStrings(Compile(d1).Problems()), problemStrings(CompileFrom(nil, d1).Problems())); diff != "" {
		t.Errorf("CompileFrom(nil) differs from Compile (-want +got):\n%s", diff)
	}
}

// checkFlagReused checks that a2, flag a compiled again from the same
// bytes, is a copy of a1 sharing its rules, patterns and rollouts.
func checkFlagReused(t *testing.T, a1, a2 *Flag) {
	t.Helper()
	if a1 == a2 {
		t.Fatalf("unchanged flag: CompileFrom returned the previous snapshot's *Flag itself, want a copy")
	}
	if &a1.Rules[0] != &a2.Rules[0] || &a1.Rules[0].Clauses[0].patterns[0] != &a2.Rules[0].Clauses[0].patterns[0] ||
		a1.Rules[0].Serve.Rollout != a2.Rules[0].Serve.Rollout {
		t.Errorf("unchanged flag a was recompiled: rules, patterns or rollouts not shared")
	}
}

// checkFlagRecompiled checks that b2, flag b compiled from new bytes,
// shares nothing with b1 and matches its new pattern, wantPattern.
func checkFlagRecompiled(t *testing.T, b1, b2 *Flag, wantPattern string) {
	t.Helper()
	if &b1.Rules[0] == &b2.Rules[0] || &b1.Rules[0].Clauses[0].patterns[0] == &b2.Rules[0].Clauses[0].patterns[0] {
		t.Errorf("changed flag b was reused")
	}
	if got := b2.Rules[0].Clauses[0].patterns[0].lit; got != wantPattern {
		t.Errorf("b recompiled pattern = %q, want the new one", got)
	}
}

// checkNewKeyCompiled checks that c, a new flag with a's bytes, has its
// own key, salt and rules.
func checkNewKeyCompiled(t *testing.T, c, a *Flag) {
	t.Helper()
	if c.Key != "c" || &c.Rules[0] == &a.Rules[0] || c.Salt() != "c" || c.Rules[0].Serve.Rollout.Salt != "c" {
		t.Errorf("new flag c with a's bytes: key %q salt %q, shares a's rules: %v", c.Key, c.Salt(), &c.Rules[0] == &a.Rules[0])
	}
}

// TestCompileFromGraphProblemsNotLeaked: graph problems (cycles, depth) are
// recomputed for reused flags, in both directions, and never written into
// the previous snapshot.
func TestCompileFromGraphProblemsNotLeaked(t *testing.T) {
	const own = `{"on":"bad","variations":[false,true],"prerequisites":[{"flag":"b","variation":1}],"fallthrough":{"variation":1}}`
	flags := map[string]string{"a": own, "b": prereqFlag()}
	s1 := Compile(docOf(t, 1, flags, nil))
	flags["b"] = prereqFlag("a") // a ⇄ b: a is reused, b changed
	s2 := CompileFrom(s1, docOf(t, 2, flags, nil))
	flags["b"] = prereqFlag() // fixed again: a still reused
	s3 := CompileFrom(s2, docOf(t, 3, flags, nil))
	s4 := CompileFrom(s3, docOf(t, 4, flags, nil)) // nothing changed at all

	ownProblem := "flags.a.on: got a string, want a bool"
	tests := []struct {
		name  string
		snap  *Snapshot
		wantA []string
		wantB []string
	}{
		{"before", s1, []string{ownProblem}, nil},
		{"cycle", s2, []string{ownProblem, "flags.a.prerequisites: prerequisite cycle: a → b → a"},
			[]string{"flags.b.prerequisites: prerequisite cycle: b → a → b"}},
		{"fixed", s3, []string{ownProblem}, nil},
		{"unchanged", s4, []string{ownProblem}, nil},
	}
	for _, tc := range tests {
		a, b := tc.snap.Flag("a"), tc.snap.Flag("b")
		if diff := cmp.Diff(tc.wantA, problemStrings(a.Problems)); diff != "" {
			t.Errorf("%s: a problems (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(append([]string{}, tc.wantB...), problemStrings(b.Problems)); diff != "" {
			t.Errorf("%s: b problems (-want +got):\n%s", tc.name, diff)
		}
		if a.Err == nil || a.Err.Error() != ownProblem {
			t.Errorf("%s: a.Err = %v, want its own first problem", tc.name, a.Err)
		}
		if (b.Err != nil) != (len(tc.wantB) > 0) {
			t.Errorf("%s: b.Err = %v", tc.name, b.Err)
		}
	}

	// Depth: a reused flag at the top of a chain becomes too deep when the
	// chain below it grows, and well formed again when it shrinks.
	deep := chain(MaxPrerequisiteDepth)
	d1 := Compile(docOf(t, 1, deep, nil))
	deep[fmt.Sprintf("c%d", MaxPrerequisiteDepth)] = prereqFlag("extra")
	deep["extra"] = prereqFlag()
	d2 := CompileFrom(d1, docOf(t, 2, deep, nil))
	deep[fmt.Sprintf("c%d", MaxPrerequisiteDepth)] = prereqFlag()
	delete(deep, "extra")
	d3 := CompileFrom(d2, docOf(t, 3, deep, nil))
	for i, s := range []*Snapshot{d1, d2, d3} {
		if bad := s.Flag("c0").Err != nil; bad != (i == 1) {
			t.Errorf("snapshot %d: c0.Err = %v, want malformed only in snapshot 1", i, s.Flag("c0").Err)
		}
	}
}

// TestCompileFromConcurrentReaders: building a snapshot from a previous one
// never writes to it, so readers of the previous one race with nothing (-race).
func TestCompileFromConcurrentReaders(t *testing.T) {
	flags := map[string]string{"a": prereqFlag("b"), "b": prereqFlag(), "c": `{"variations":[]}`}
	s1 := Compile(docOf(t, 1, flags, map[string]string{"s": segRule("s")}))
	flags["b"] = prereqFlag("a")
	d2 := docOf(t, 2, flags, map[string]string{"s": segRule("s")})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, k := range s1.FlagKeys() {
					f := s1.Flag(k)
					_ = f.Err
					_ = len(f.Problems)
				}
				_ = s1.Segment("s").Err
				_ = s1.Problems()
			}
		}()
	}
	for i := 0; i < 20; i++ {
		s2 := CompileFrom(s1, d2)
		if s2.Flag("a").Err == nil {
			t.Errorf("round %d: a.Err = nil in the cyclic snapshot", i)
		}
	}
	close(stop)
	wg.Wait()
	if s1.Flag("a").Err != nil || len(s1.Flag("a").Problems) != 0 {
		t.Errorf("previous snapshot changed: a.Err = %v", s1.Flag("a").Err)
	}
}

// TestProblemsDocumentOrder: problems of one flag are listed in document
// order, so rules[2] comes before rules[10] (what `flags lint` prints).
func TestProblemsDocumentOrder(t *testing.T) {
	var rs []string
	for i := 0; i < 11; i++ {
		rs = append(rs, `{"serve":{"variation":9}}`)
	}
	s := Compile(docOf(t, 1, map[string]string{"x": withGood(`"rules":[` + strings.Join(rs, ",") + `]`)}, nil))
	var got []string
	for _, p := range s.Problems() {
		got = append(got, p.Field)
	}
	want := []string{"rules[0].serve.variation", "rules[1].serve.variation", "rules[2].serve.variation",
		"rules[3].serve.variation", "rules[4].serve.variation", "rules[5].serve.variation", "rules[6].serve.variation",
		"rules[7].serve.variation", "rules[8].serve.variation", "rules[9].serve.variation", "rules[10].serve.variation"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Problems() must list one flag's problems in document order (-want +got):\n%s", diff)
	}
}

// TestPrerequisiteFolding: a flag whose prerequisites are all constant,
// on, and serving the variation required is constant itself (evaluated like
// a kill switch); a failing, ruled or missing prerequisite stops the fold,
// and a reused flag is folded afresh in every snapshot.
func TestPrerequisiteFolding(t *testing.T) {
	const ruled = `{"on":true,"variations":[false,true],"rules":[{"clauses":[{"attribute":"a","op":"in","values":["x"]}],"serve":{"variation":1}}],"fallthrough":{"variation":1}}`
	const serves0 = `{"on":true,"variations":[false,true],"fallthrough":{"variation":0}}`
	d1 := docOf(t, 1, map[string]string{
		"top": prereqFlag("mid", "leaf"), "mid": prereqFlag("leaf"), "leaf": prereqFlag(),
		"on-ruled": prereqFlag("ruled"), "ruled": ruled,
		"on-missing": prereqFlag("nowhere"),
		"on-zero":    prereqFlag("zero"), "zero": serves0,
	}, nil)
	s1 := Compile(d1)
	for key, want := range map[string]bool{"top": true, "mid": true, "leaf": true, "on-ruled": false,
		"ruled": false, "on-missing": false, "on-zero": false, "zero": true} {
		if got := s1.Flag(key).Constant; got != want {
			t.Errorf("snapshot 1: %s.Constant = %v, want %v", key, got, want)
		}
	}
	d2 := docOf(t, 2, map[string]string{"top": prereqFlag("mid", "leaf"), "mid": prereqFlag("leaf"), "leaf": serves0}, nil)
	s2 := CompileFrom(s1, d2)
	for _, key := range []string{"top", "mid"} {
		if s2.Flag(key).Constant {
			t.Errorf("snapshot 2: %s is constant, but its prerequisite leaf now serves variation 0", key)
		}
		if !s1.Flag(key).Constant {
			t.Errorf("snapshot 1's %s changed when snapshot 2 was compiled", key)
		}
	}
}

// TestRepeatedClausesShareMemo: clauses repeated across a flag's rules get
// one memo index; distinct clauses and flags without repetition get none.
func TestRepeatedClausesShareMemo(t *testing.T) {
	f := compileOneFlag(t, `{"on":true,"variations":[false,true],"fallthrough":{"variation":0},"rules":[
		{"clauses":[{"attribute":"email","op":"endsWith","values":["@corp.com"]},{"attribute":"country","op":"in","values":["de"]}],"serve":{"variation":1}},
		{"clauses":[{"attribute":"email","op":"endsWith","values":["@corp.com"]},{"attribute":"country","op":"in","values":["fr"]}],"serve":{"variation":1}},
		{"clauses":[{"attribute":"email","op":"endsWith","values":["@corp.com"],"negate":true}],"serve":{"variation":1}},
		{"clauses":[{"attribute":"country","op":"in","values":["de"]}],"serve":{"variation":1}}]}`)
	memo := func(r, c int) int { return f.Rules[r].Clauses[c].Memo() }
	if !f.HasMemos() {
		t.Fatal("HasMemos() = false, want true")
	}
	if memo(0, 0) < 0 || memo(0, 0) != memo(1, 0) {
		t.Errorf("the repeated endsWith clause: memos %d and %d, want one index", memo(0, 0), memo(1, 0))
	}
	if memo(0, 1) < 0 || memo(0, 1) != memo(3, 0) || memo(0, 1) == memo(0, 0) {
		t.Errorf("the repeated country in [de] clause: memos %d and %d (endsWith has %d)", memo(0, 1), memo(3, 0), memo(0, 0))
	}
	if memo(1, 1) != -1 || memo(2, 0) != -1 {
		t.Errorf("clauses written once (country in [fr], the negated endsWith): memos %d and %d, want -1", memo(1, 1), memo(2, 0))
	}
	plain := compileOneFlag(t, `{"on":true,"variations":[false,true],"fallthrough":{"variation":0},"rules":[
		{"clauses":[{"attribute":"a","op":"in","values":["x"]}],"serve":{"variation":1}},
		{"clauses":[{"attribute":"a","op":"in","values":["y"]}],"serve":{"variation":1}}]}`)
	if plain.HasMemos() {
		t.Error("a flag without repeated clauses: HasMemos() = true")
	}
}

// TestSegmentRefsFollowSnapshots: a flag reused unchanged sees the segments
// of the snapshot it is evaluated in, including one added or removed later.
func TestSegmentRefsFollowSnapshots(t *testing.T) {
	const flag = `{"on":true,"variations":[false,true],"fallthrough":{"variation":0},"rules":[{"clauses":[{"op":"inSegment","values":["missing","beta"]}],"serve":{"variation":1}}]}`
	s1 := Compile(docOf(t, 1, map[string]string{"f": flag}, nil))
	s2 := CompileFrom(s1, docOf(t, 2, map[string]string{"f": flag}, map[string]string{"beta": `{"included":["u"]}`}))
	s3 := CompileFrom(s2, docOf(t, 3, map[string]string{"f": flag}, nil))
	refs := func(s *Snapshot) []*Segment {
		f := s.Flag("f")
		return f.Rules[0].Clauses[0].SegmentRefs(f.SegmentRefs)
	}
	if r := refs(s1); len(r) != 2 || r[0] != nil || r[1] != nil {
		t.Errorf("snapshot 1: refs %v, want [nil nil]", r)
	}
	if r := refs(s2); len(r) != 2 || r[0] != nil || r[1] != s2.Segment("beta") {
		t.Errorf("snapshot 2: refs %v, want [nil beta]", r)
	}
	if r := refs(s3); len(r) != 2 || r[1] != nil {
		t.Errorf("snapshot 3: refs %v, want beta gone", r)
	}
}

// TestUnreachableRules: a rule is skipped only when an earlier rule tests a
// subset of its clauses; rules with inSegment clauses are always evaluated.
func TestUnreachableRules(t *testing.T) {
	const a, b, seg = `{"attribute":"a","op":"in","values":["x"]}`, `{"attribute":"b","op":"endsWith","values":["@corp.com"]}`, `{"op":"inSegment","values":["s"]}`
	rule := func(clauses ...string) string {
		return `{"clauses":[` + strings.Join(clauses, ",") + `],"serve":{"variation":1}}`
	}
	for _, tc := range []struct {
		name  string
		rules []string
		want  []bool
	}{
		{"identical rules", []string{rule(a, b), rule(b, a)}, []bool{false, true}},
		{"later superset", []string{rule(a), rule(a, b)}, []bool{false, true}},
		{"later subset", []string{rule(a, b), rule(a)}, []bool{false, false}},
		{"disjoint", []string{rule(a), rule(b)}, []bool{false, false}},
		{"no clauses first", []string{rule(), rule(a), rule(b)}, []bool{false, true, true}},
		{"with inSegment", []string{rule(a), rule(a, seg)}, []bool{false, false}},
		{"shadowed by a shadowed rule's shadow", []string{rule(a), rule(a, b), rule(b, a)}, []bool{false, true, true}},
	} {
		f := compileOneFlag(t, `{"on":true,"variations":[false,true],"fallthrough":{"variation":0},"rules":[`+strings.Join(tc.rules, ",")+`]}`)
		var got []bool
		for i := range f.Rules {
			got = append(got, f.Rules[i].Unreachable())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: unreachable %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestParallelCompile: a document large enough to compile on several
// goroutines compiles to what one goroutine makes of it: the same problems,
// and flags alike in every field evaluation reads. Run with -race.
func TestParallelCompile(t *testing.T) {
	flags, segments := map[string]string{}, map[string]string{"seg": `{"included":["u1"]}`}
	for i := 0; i < 3*parallelFlags; i++ {
		key := fmt.Sprintf("flag-%05d", i)
		switch i % 6 {
		case 0: // alike: shares a definition
			flags[key] = `{"on":true,"variations":[false,true],"fallthrough":{"variation":0}}`
		case 1:
			flags[key] = fmt.Sprintf(`{"version":%d,"on":true,"variations":["a","b"],"rules":[{"clauses":[{"attribute":"email","op":"endsWith","values":["@x%d.com"]}],"serve":{"variation":1}}],"fallthrough":{"variation":0}}`, i, i)
		case 2:
			flags[key] = prereqFlag(fmt.Sprintf("flag-%05d", i-2))
		case 3: // a problem
			flags[key] = fmt.Sprintf(`{"on":true,"variations":[1,2],"fallthrough":{"variation":%d}}`, i)
		case 4:
			flags[key] = `{"on":true,"variations":[false,true],"rules":[{"clauses":[{"op":"inSegment","values":["seg"]}],"serve":{"variation":1}}],"fallthrough":{"rollout":{"variations":[{"variation":0,"weight":50000},{"variation":1,"weight":50000}]}}}`
		default: // a cycle with its neighbour
			flags[key] = prereqFlag(fmt.Sprintf("flag-%05d", i-5), fmt.Sprintf("flag-%05d", i+1))
		}
	}
	doc := docOf(t, 1, flags, segments)
	parallel := Compile(doc)
	defer func(f func() int) { compileWorkers = f }(compileWorkers)
	compileWorkers = func() int { return 1 }
	serial := Compile(doc)
	if diff := cmp.Diff(problemStrings(serial.Problems()), problemStrings(parallel.Problems())); diff != "" {
		t.Errorf("problems differ (-serial +parallel):\n%s", diff)
	}
	type view struct {
		On, Constant                  bool
		Version                       int64
		Kind                          Kind
		Values                        []any
		Rules, Prerequisites, Targets int
		SegmentRefs                   []string
		Err                           string
	}
	see := func(f *Flag) view {
		v := view{On: f.On, Constant: f.Constant, Version: f.Version, Kind: f.Kind,
			Rules: len(f.Rules), Prerequisites: len(f.Prerequisites), Targets: len(f.Targets)}
		for _, x := range f.Variations {
			v.Values = append(v.Values, x.Value)
		}
		for _, g := range f.SegmentRefs {
			v.SegmentRefs = append(v.SegmentRefs, g.Key)
		}
		if f.Err != nil {
			v.Err = f.Err.Error()
		}
		return v
	}
	for _, key := range serial.FlagKeys() {
		if diff := cmp.Diff(see(serial.Flag(key)), see(parallel.Flag(key))); diff != "" {
			t.Fatalf("flag %s differs (-serial +parallel):\n%s", key, diff)
		}
	}
}

// TestMemoIndexesStopAt64: a memo is a bit of a uint64, so a flag with more
// than 64 repeated clauses numbers the first 64 and evaluates the rest
// each time.
func TestMemoIndexesStopAt64(t *testing.T) {
	var rs []string
	for i := 0; i < 70; i++ {
		c := fmt.Sprintf(`{"attribute":"a","op":"in","values":["v%d"]}`, i)
		rs = append(rs, `{"clauses":[`+c+`,{"attribute":"b","op":"in","values":["x"]}],"serve":{"variation":1}}`,
			`{"clauses":[`+c+`,{"attribute":"b","op":"in","values":["y"]}],"serve":{"variation":1}}`)
	}
	f := compileOneFlag(t, `{"on":true,"variations":[false,true],"fallthrough":{"variation":0},"rules":[`+strings.Join(rs, ",")+`]}`)
	seen := map[int]bool{}
	for i := range f.Rules {
		for j := range f.Rules[i].Clauses {
			if m := f.Rules[i].Clauses[j].Memo(); m >= 0 {
				seen[m] = true
			}
		}
	}
	if len(seen) != 64 || !seen[0] || !seen[63] {
		t.Errorf("%d distinct memo indexes, want 0 to 63", len(seen))
	}
	if m := f.Rules[139].Clauses[0].Memo(); m != -1 {
		t.Errorf("the 70th repeated clause has memo %d, want -1", m)
	}
}
