package eval

import (
	"fmt"
	"sort"
)

// MaxSegmentDepth is the deepest segment nesting (SPEC §13). A segment
// whose rules use no inSegment has depth 1; one whose rules use segments has
// 1 + their greatest depth. A deeper segment is malformed, and so is an
// evaluation that reaches it.
const MaxSegmentDepth = 16

// maxTreeVisits bounds planMemos' walk of one flag's graph: a flag whose
// evaluation could visit more segments and prerequisite flags than this
// gets a memo without further search, so that planning costs at most this
// much per flag however the flags share their graphs.
const maxTreeVisits = 64

// Node is the number of the flag or segment in its snapshot: flags are
// numbered from 0 in key order, segments after them. An evaluation's memo
// (see NeedsMemo) is keyed by it.
func (f *Flag) Node() int32 { return f.node }

// Node is the number of the segment in its snapshot (see Flag.Node).
func (s *Segment) Node() int32 { return s.node }

// NeedsMemo reports whether one evaluation of the flag may reach a segment
// or a prerequisite flag more than once: its rules, its prerequisites' rules
// and their segments share some (a graph with diamonds), or the graph is
// large. Such an evaluation must remember what it evaluated (SPEC §13:
// each segment and prerequisite is evaluated at most once per evaluation)
// or its cost could grow exponentially with the nesting. Every other
// evaluation reaches each one by a single path at most, and needs no memo.
func (f *Flag) NeedsMemo() bool { return f.needsMemo }

// checkSegmentDepth marks as malformed the segments nested deeper than
// MaxSegmentDepth through inSegment. Segments on a cycle (cyclic, from
// checkSegmentCycles) are malformed already and have no depth: a segment
// that uses one counts it as depth 1. Unknown segment keys do not count.
func (s *Snapshot) checkSegmentDepth(cyclic map[string][]string) {
	adj := map[string][]string{}
	for key, g := range s.segments {
		for i := range g.Rules {
			for j := range g.Rules[i].Clauses {
				c := &g.Rules[i].Clauses[j]
				if c.code != opInSegment {
					continue
				}
				for _, ref := range c.Segments() {
					if _, ok := s.segments[ref]; ok {
						adj[key] = append(adj[key], ref)
					}
				}
			}
		}
	}
	if len(adj) == 0 {
		return
	}
	keys := make([]string, 0, len(adj))
	for key := range adj {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for key, d := range segmentDepths(keys, adj, cyclic) {
		if d > MaxSegmentDepth {
			g := s.segments[key]
			g.Problems = appendProblem(g.Problems, &Problem{Kind: "segment", Key: key, Field: "rules",
				Err: fmt.Errorf("segment nesting is %d deep, more than %d", d, MaxSegmentDepth)})
		}
	}
}

// segmentDepths returns the depth of every segment of roots and of every
// segment they reach through adj, except the cyclic ones, which count as
// depth 1 and are not followed. The walk is iterative: a chain of any
// length cannot overflow the stack.
func segmentDepths(roots []string, adj map[string][]string, cyclic map[string][]string) map[string]int {
	depth := make(map[string]int, len(adj))
	depthOf := func(key string) int {
		if _, bad := cyclic[key]; bad {
			return 1
		}
		return depth[key]
	}
	type frame struct {
		key  string
		next int // the next of adj[key] to descend into
	}
	var stack []frame
	for _, root := range roots {
		if _, done := depth[root]; done {
			continue
		}
		if _, bad := cyclic[root]; bad {
			continue
		}
		stack = append(stack[:0], frame{key: root})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			refs := adj[top.key]
			if top.next < len(refs) {
				ref := refs[top.next]
				top.next++
				_, done := depth[ref]
				_, bad := cyclic[ref]
				if !done && !bad {
					// Without cycles among the others, ref is not on the stack.
					stack = append(stack, frame{key: ref})
				}
				continue
			}
			d := 1
			for _, ref := range refs {
				d = max(d, 1+depthOf(ref))
			}
			depth[top.key] = d
			stack = stack[:len(stack)-1]
		}
	}
	return depth
}

// planMemos numbers the snapshot's flags and segments (Node) and decides
// which flags need a memo (NeedsMemo). It runs once Err, Constant and the
// resolved references of every flag and segment are final.
//
// A flag's evaluation graph is walked from the flag exactly as evaluation
// would walk it at most (every reference followed, in every rule), marking
// what it reaches: the flag needs a memo when the walk reaches something
// twice, or takes more than maxTreeVisits steps.
func (s *Snapshot) planMemos() {
	for i, f := range s.flagList {
		f.node, f.needsMemo = int32(i), false
	}
	n := int32(len(s.flagList))
	for _, g := range s.segments {
		g.node = n
		n++
	}
	var w treeWalk
	for i, f := range s.flagList {
		if f.Err != nil || f.Constant || !f.On || len(f.PrerequisiteFlags) == 0 && len(f.SegmentRefs) == 0 {
			continue
		}
		if w.seen == nil {
			w.seen = make([]int32, n)
		}
		w.stamp, w.budget = int32(i)+1, maxTreeVisits
		f.needsMemo = !w.flag(f)
	}
}

// treeWalk walks one flag's evaluation graph for planMemos.
type treeWalk struct {
	seen   []int32 // by node: the stamp of the last walk that reached it
	stamp  int32   // this walk's
	budget int     // steps left
}

// flag reports whether everything the evaluation of f may reach (its
// prerequisites, evaluated in full, and its rules' segments) is reached once,
// within budget.
func (w *treeWalk) flag(f *Flag) bool {
	for _, pf := range f.PrerequisiteFlags {
		if w.budget--; w.budget < 0 {
			return false
		}
		// The evaluator evaluates a prerequisite that exists, is well
		// formed and on; a constant one serves without going further.
		if pf == nil || pf.Err != nil || !pf.On {
			continue
		}
		if !w.reach(pf.node) || !pf.Constant && !w.flag(pf) {
			return false
		}
	}
	return w.segments(f.SegmentRefs)
}

// segments is flag for the segments of inSegment clauses.
func (w *treeWalk) segments(refs []*Segment) bool {
	for _, g := range refs {
		if w.budget--; w.budget < 0 {
			return false
		}
		// An unknown segment never matches; a malformed one ends the
		// evaluation with an error. Neither is evaluated.
		if g == nil || g.Err != nil {
			continue
		}
		if !w.reach(g.node) || !w.segments(g.SegmentRefs) {
			return false
		}
	}
	return true
}

// reach marks node as reached, and reports whether it was not yet.
func (w *treeWalk) reach(node int32) bool {
	if w.seen[node] == w.stamp {
		return false
	}
	w.seen[node] = w.stamp
	return true
}
