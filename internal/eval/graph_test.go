package eval

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// segChain builds segments k0 → k1 → ... → k(n-1), each with one rule using
// the next: k0 is n deep.
func segChain(prefix string, n int) map[string]string {
	segs := map[string]string{}
	for i := 0; i < n-1; i++ {
		segs[fmt.Sprint(prefix, i)] = segRule(fmt.Sprint(prefix, i+1))
	}
	segs[fmt.Sprint(prefix, n-1)] = `{"included":["u1"]}`
	return segs
}

func TestSegmentDepth(t *testing.T) {
	s := Compile(docOf(t, 1, nil, segChain("s", MaxSegmentDepth)))
	if ps := s.Problems(); len(ps) != 0 {
		t.Errorf("depth %d: problems %q, want none", MaxSegmentDepth, problemStrings(ps))
	}

	segs := segChain("s", MaxSegmentDepth+1)
	s = Compile(docOf(t, 1, nil, segs))
	want := []string{"segments.s0.rules: segment nesting is 17 deep, more than 16"}
	if diff := cmp.Diff(want, problemStrings(s.Problems())); diff != "" {
		t.Errorf("depth 17: problems (-want +got):\n%s", diff)
	}
	if err := s.Segment("s0").Err; err == nil || err.Error() != want[0] {
		t.Errorf("Segment(s0).Err = %v, want %s", err, want[0])
	}

	// Depth is 1 + the greatest depth of the segments used, in any rule;
	// segments on a cycle count as 1 and unknown keys do not count.
	segs = segChain("s", MaxSegmentDepth)
	segs["top"] = `{"rules":[{"clauses":[{"op":"inSegment","values":["ghost","leaf"]}]},` +
		`{"clauses":[{"attribute":"a","op":"in","values":["x"]},{"op":"inSegment","values":["s0"]}]}]}` // 17
	segs["leaf"] = `{"included":["u1"]}`
	segs["cyc"] = segRule("cyc")
	segs["uses-cyc"] = segRule("cyc", "s1") // 1 + max(1, 15)
	segs["ghosts"] = segRule("ghost")       // 1
	s = Compile(docOf(t, 1, nil, segs))
	want = []string{
		"segments.cyc.rules: segment cycle: cyc → cyc",
		"segments.top.rules: segment nesting is 17 deep, more than 16",
	}
	if diff := cmp.Diff(want, problemStrings(s.Problems())); diff != "" {
		t.Errorf("mixed: problems (-want +got):\n%s", diff)
	}

	// A long chain (far deeper than the limit) must not blow the stack.
	s = Compile(docOf(t, 1, nil, segChain("s", 5000)))
	if g := s.Segment("s0"); g.Err == nil || !strings.Contains(g.Err.Error(), "5000 deep") {
		t.Errorf("chain of 5000: s0.Err = %v, want 5000 deep", g.Err)
	}
	if g := s.Segment("s4984"); g.Err != nil {
		t.Errorf("chain of 5000: s4984 (depth 16) Err = %v, want nil", g.Err)
	}
	if g := s.Segment("s4983"); g.Err == nil {
		t.Errorf("chain of 5000: s4983 (depth 17) Err = nil")
	}
}

// TestCompileFromSegmentDepth: a reused segment at the top of a chain
// becomes too deep when the chain below it grows, and well formed again
// when it shrinks; the previous snapshot is never written.
func TestCompileFromSegmentDepth(t *testing.T) {
	segs := segChain("s", MaxSegmentDepth)
	s1 := Compile(docOf(t, 1, nil, segs))
	last := fmt.Sprint("s", MaxSegmentDepth-1)
	segs[last] = segRule("extra")
	segs["extra"] = `{"included":["u1"]}`
	s2 := CompileFrom(s1, docOf(t, 2, nil, segs))
	segs[last] = `{"included":["u1"]}`
	delete(segs, "extra")
	s3 := CompileFrom(s2, docOf(t, 3, nil, segs))
	for i, s := range []*Snapshot{s1, s2, s3} {
		if bad := s.Segment("s0").Err != nil; bad != (i == 1) {
			t.Errorf("snapshot %d: s0.Err = %v, want malformed only in snapshot 1", i, s.Segment("s0").Err)
		}
	}
}

// flagUsing is a well-formed flag with one rule per inSegment list given.
func flagUsing(prereqs []string, segLists ...[]string) string {
	var rs []string
	for _, l := range segLists {
		q := make([]string, len(l))
		for i, k := range l {
			q[i] = fmt.Sprintf("%q", k)
		}
		rs = append(rs, `{"clauses":[{"op":"inSegment","values":[`+strings.Join(q, ",")+`]}],"serve":{"variation":1}}`)
	}
	var ps []string
	for _, p := range prereqs {
		ps = append(ps, fmt.Sprintf(`{"flag":%q,"variation":1}`, p))
	}
	return `{"on":true,"variations":[false,true],"prerequisites":[` + strings.Join(ps, ",") + `],"rules":[` +
		strings.Join(rs, ",") + `],"fallthrough":{"variation":0}}`
}

func TestNeedsMemo(t *testing.T) {
	wide := make([]string, maxTreeVisits+1)
	for i := range wide {
		wide[i] = fmt.Sprint("leaf", i)
	}
	segs := map[string]string{
		"a": segRule("b", "c"), "b": segRule("d"), "c": segRule("d"), "d": `{"included":["u1"]}`, // a diamond under a
		"b2": segRule("d"), "lone": `{"included":["u1"]}`, "bad": `{"included":"u1"}`,
	}
	for _, k := range wide {
		segs[k] = `{"included":["u1"]}`
	}
	flags := map[string]string{
		"tree":         flagUsing(nil, []string{"b"}, []string{"lone", "ghost"}),
		"tree-too":     flagUsing(nil, []string{"b"}), // b is shared by flags, not within one
		"diamond":      flagUsing(nil, []string{"a"}),
		"twice":        flagUsing(nil, []string{"lone"}, []string{"lone"}),
		"via-two":      flagUsing(nil, []string{"b", "b2"}), // d twice
		"malformed-ok": flagUsing(nil, []string{"bad"}, []string{"bad"}),
		"wide":         flagUsing(nil, wide),
		"prereq-twice": flagUsing([]string{"tree", "tree"}),
		"prereq-seg":   flagUsing([]string{"tree"}, []string{"lone"}), // lone via tree and itself
		"prereq-tree":  flagUsing([]string{"tree-too"}, []string{"lone"}),
		"off":          `{"on":false,"variations":[false,true],"prerequisites":[{"flag":"tree","variation":1},{"flag":"tree","variation":1}],"fallthrough":{"variation":0}}`,
		"const":        prereqFlag("k", "k"), // both on a constant: folded
		"k":            prereqFlag(),
		"prereq-off":   flagUsing([]string{"off", "off"}, []string{"lone"}),
	}
	s := Compile(docOf(t, 1, flags, segs))
	want := map[string]bool{"diamond": true, "twice": true, "via-two": true, "wide": true, "prereq-twice": true,
		"prereq-seg": true}
	for key := range flags {
		if got := s.Flag(key).NeedsMemo(); got != want[key] {
			t.Errorf("Flag(%q).NeedsMemo() = %v, want %v", key, got, want[key])
		}
	}

	// Nodes number every flag and segment once.
	seen := map[int32]string{}
	for _, f := range s.Flags() {
		seen[f.Node()] = "flag " + f.Key
	}
	for key := range segs {
		n := s.Segment(key).Node()
		if other, dup := seen[n]; dup {
			t.Errorf("segment %s has node %d, like %s", key, n, other)
		}
		seen[n] = "segment " + key
	}
	if len(seen) != len(flags)+len(segs) {
		t.Errorf("%d distinct nodes for %d flags and segments", len(seen), len(flags)+len(segs))
	}
}
