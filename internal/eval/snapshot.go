package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Snapshot is a compiled document: immutable, safe for concurrent use, and
// everything evaluation needs is indexed. Build one with Compile.
type Snapshot struct {
	doc      *Document
	flagKeys []string
	flagData []Flag  // in flagKeys order: one allocation for every flag's own fields
	flagList []*Flag // &flagData[i], for Flags
	index    flagIndex
	segments map[string]*Segment
}

// Compile builds a snapshot from a document. It never fails: a flag or
// segment with problems is kept as malformed (its Err set) and the rest of the
// document works, as SPEC §1 requires.
func Compile(doc *Document) *Snapshot {
	return CompileFrom(nil, doc)
}

// parallelFlags is the number of flags from which CompileFrom compiles them
// on several goroutines, at most maxCompileWorkers and GOMAXPROCS: a large
// document loads in a fraction of the time, a small one does not pay for
// goroutines.
const (
	parallelFlags     = 2048
	maxCompileWorkers = 8
)

// compileWorkers is how many goroutines compile a large document (a
// variable so that tests can compare with one).
var compileWorkers = func() int { return min(runtime.GOMAXPROCS(0), maxCompileWorkers) }

// CompileFrom is Compile reusing the work done for prev: flags and segments
// whose JSON did not change are not parsed again. Only the checks that span
// flags (prerequisite cycles and depth, segment cycles) run on everything.
//
// Whether JSON changed is decided by comparing the bytes with prev's
// Document, which is why a Document must not be modified once compiled.
func CompileFrom(prev *Snapshot, doc *Document) *Snapshot {
	s := &Snapshot{
		doc:      doc,
		segments: make(map[string]*Segment, len(doc.Segments)),
		flagKeys: make([]string, 0, len(doc.Flags)),
	}
	raws := make([]json.RawMessage, 0, len(doc.Flags))
	for key, raw := range doc.Flags {
		s.flagKeys = append(s.flagKeys, key)
		raws = append(raws, raw)
	}
	sortKeys(s.flagKeys, raws)
	s.flagData = make([]Flag, len(s.flagKeys))
	s.flagList = make([]*Flag, len(s.flagKeys))
	c := s.compileFlags(prev, raws)
	s.index = newFlagIndex(s.flagData)
	for key, raw := range doc.Segments {
		var g *Segment
		if old := prev.reusableSegment(key, raw); old != nil {
			cp := *old
			g = &cp
		}
		if g == nil {
			g = compileSegment(c, key, raw)
		}
		g.Problems = g.local
		s.segments[key] = g
	}
	graph := s.checkPrerequisites()
	s.checkSegmentDepth(s.checkSegmentCycles())
	for _, g := range s.segments {
		s.resolveSegment(g)
	}
	for _, g := range s.segments {
		markFallible(g)
	}
	for _, f := range s.flagList {
		s.resolveFlag(f, graph[f.Key])
	}
	for _, f := range s.flagList {
		f.Constant, f.folded = f.constLocal, 0
	}
	for _, f := range s.flagList {
		foldPrerequisites(f)
	}
	s.planMemos()
	return s
}

// compileFlags fills s.flagData and s.flagList from raws, the flags' JSON
// in s.flagKeys order, reusing prev's definitions
// of the flags whose JSON did not change, and returns the compiler that
// compiled the flags (on one goroutine) or a new one, for the segments.
func (s *Snapshot) compileFlags(prev *Snapshot, raws []json.RawMessage) *compiler {
	c := newCompiler(s.flagData, raws)
	compileRange := func(c *compiler, from, to int) {
		for i := from; i < to; i++ {
			key, raw := s.flagKeys[i], raws[i]
			f := &s.flagData[i]
			if old := prev.reusableFlag(key, raw); old != nil {
				// The definition is shared; what belongs to a snapshot is
				// resolved again below.
				*f = Flag{Definition: old.Definition, Resolved: unresolved, Key: old.Key, Version: old.Version}
			} else {
				c.flag(i, key, raw)
			}
			s.flagList[i] = f
		}
	}
	n, workers := len(s.flagKeys), compileWorkers()
	if n < parallelFlags || workers <= 1 {
		compileRange(c, 0, n)
		return c
	}
	// Each worker compiles a range of flags with its own compiler (arena,
	// interned values): the flags are independent until the checks that
	// span them.
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for from := 0; from < n; from += chunk {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			wc := newCompiler(s.flagData, raws)
			wc.defs = make(map[uint64]int32, to-from) // its own flags, not all of them
			compileRange(wc, from, to)
		}(from, min(n, from+chunk))
	}
	wg.Wait()
	return c
}

// resolveFlag resolves what f refers to in s, and its problems: its own and
// extra, the one its graph has (nil for none).
func (s *Snapshot) resolveFlag(f *Flag, extra *Problem) {
	r := Resolved{Problems: f.local}
	if extra != nil {
		r.Problems = appendProblem(r.Problems, extra)
	}
	if len(f.Prerequisites) > 0 {
		r.PrerequisiteFlags = make([]*Flag, len(f.Prerequisites))
		for i, p := range f.Prerequisites {
			r.PrerequisiteFlags[i] = s.Flag(p.Key)
		}
	}
	r.SegmentRefs = resolveSegmentRefs(s.segments, clauseLists(f.Rules, ruleClauses))
	for _, g := range r.SegmentRefs {
		r.fallibleSegments = r.fallibleSegments || g != nil && g.Fallible()
	}
	f.Resolved = unresolved
	if r.Problems != nil || r.PrerequisiteFlags != nil || r.SegmentRefs != nil {
		own := r // only this copy escapes: most flags allocate nothing here
		f.Resolved = &own
	}
	f.Err = nil
	if len(f.Problems) > 0 {
		f.Err = f.Problems[0]
	}
}

// resolveSegment resolves the segments g's rules refer to in s, and its
// Err.
func (s *Snapshot) resolveSegment(g *Segment) {
	g.Err = nil
	if len(g.Problems) > 0 {
		g.Err = g.Problems[0]
	}
	g.SegmentRefs = resolveSegmentRefs(s.segments, clauseLists(g.Rules, segmentRuleClauses))
	g.fallible = 0 // a segment reused from the previous snapshot carries its answer there
}

// markFallible works out g.Fallible once every segment of the snapshot is
// resolved. A cycle makes its segments malformed (checkSegmentCycles), so
// one met while working it out is fallible already.
func markFallible(g *Segment) bool {
	switch g.fallible {
	case 1, 3:
		return true
	case 2:
		return false
	}
	g.fallible = 1
	fallible := g.Err != nil
	for _, ref := range g.SegmentRefs {
		if !fallible && ref != nil {
			fallible = markFallible(ref)
		}
	}
	g.fallible = 2
	if fallible {
		g.fallible = 3
	}
	return fallible
}

// clauseLists yields the clauses of each of rs, a flag's or a segment's
// rules.
func clauseLists[R any](rs []R, clauses func(*R) []Clause) func(yield func([]Clause) bool) {
	return func(yield func([]Clause) bool) {
		for i := range rs {
			if !yield(clauses(&rs[i])) {
				return
			}
		}
	}
}

func ruleClauses(r *Rule) []Clause               { return r.Clauses }
func segmentRuleClauses(r *SegmentRule) []Clause { return r.Clauses }

// reusableFlag returns the flag key of s, the previous snapshot, when its
// JSON is raw: its definition can be reused. s may be nil.
func (s *Snapshot) reusableFlag(key string, raw json.RawMessage) *Flag {
	if s == nil {
		return nil
	}
	if old := s.Flag(key); old != nil && bytes.Equal(s.doc.Flags[key], raw) {
		return old
	}
	return nil
}

// reusableSegment is reusableFlag for segments.
func (s *Snapshot) reusableSegment(key string, raw json.RawMessage) *Segment {
	if s == nil {
		return nil
	}
	if old := s.segments[key]; old != nil && bytes.Equal(s.doc.Segments[key], raw) {
		return old
	}
	return nil
}

// foldPrerequisites makes constant a flag that is on with a fixed
// fallthrough and no targets or rules, and whose prerequisites are all such
// flags serving the variations required: every valid context gets its
// fallthrough, so the evaluator need not walk the chain (a prerequisite
// chain of kill switches costs what one flag costs). Prerequisites that
// fail are not folded: their reason names the failing prerequisite.
func foldPrerequisites(f *Flag) bool {
	if f.Constant {
		return f.On && f.Err == nil
	}
	if f.folded != 0 { // shared prerequisites are walked once
		return f.folded > 0
	}
	f.folded = -1
	if !f.On || f.Err != nil || len(f.Targets) > 0 || len(f.Rules) > 0 || f.Fallthrough.Rollout != nil {
		return false
	}
	for i, p := range f.Prerequisites {
		pf := f.PrerequisiteFlags[i]
		// Compile refuses cycles and chains deeper than MaxPrerequisiteDepth
		// (their flags have Err set), so the recursion ends.
		if pf == nil || !foldPrerequisites(pf) || pf.Fallthrough.Variation != p.Variation {
			return false
		}
	}
	f.Constant, f.folded = true, 1
	return true
}

// Version is the snapshot version of the document.
func (s *Snapshot) Version() int64 { return s.doc.Version }

// Document is the document the snapshot was compiled from.
func (s *Snapshot) Document() *Document { return s.doc }

// Flag returns the compiled flag, or nil when there is none under key.
func (s *Snapshot) Flag(key string) *Flag { return s.index.find(s.flagData, key) }

// Segment returns the compiled segment, or nil when there is none under key.
func (s *Snapshot) Segment(key string) *Segment { return s.segments[key] }

// Flags returns every flag, in key order. The slice is shared: do not
// modify it.
func (s *Snapshot) Flags() []*Flag { return s.flagList }

// FlagKeys returns every flag key, sorted. The slice is shared: do not modify it.
func (s *Snapshot) FlagKeys() []string { return s.flagKeys }

// Problems lists every problem of every flag and segment, sorted by kind,
// key and field path.
func (s *Snapshot) Problems() []*Problem {
	var out []*Problem
	for _, f := range s.flagList {
		out = append(out, f.Problems...)
	}
	for _, g := range s.segments {
		out = append(out, g.Problems...)
	}
	// By kind and key; within one flag or segment, in the order the
	// document has the fields (the parser's order), so rules[2] comes
	// before rules[10].
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Key < b.Key
	})
	return out
}

// checkPrerequisites finds the flags on a prerequisite cycle, and the flags
// whose prerequisite chain is deeper than MaxPrerequisiteDepth, and returns
// their problem by key (nil when there is none).
func (s *Snapshot) checkPrerequisites() map[string]*Problem {
	// Most documents have few prerequisites: the graph holds only the flags
	// that have some, and nothing is done when none has.
	adj := map[string][]string{}
	for _, f := range s.flagList {
		key := f.Key
		for _, p := range f.Prerequisites {
			if p.Key != "" && s.Flag(p.Key) != nil {
				adj[key] = append(adj[key], p.Key)
			}
		}
	}
	if len(adj) == 0 {
		return nil
	}
	found := map[string]*Problem{}
	edges := func(key string) []string { return adj[key] }
	nodes := make([]string, 0, len(adj))
	for key := range adj {
		nodes = append(nodes, key)
	}
	sort.Strings(nodes)
	cyclic := findCycles(nodes, edges)
	for key, cycle := range cyclic {
		found[key] = &Problem{Kind: "flag", Key: key, Field: "prerequisites",
			Err: fmt.Errorf("prerequisite cycle: %s", strings.Join(cycle, " → "))}
	}
	for key, d := range prerequisiteDepths(nodes, adj, cyclic, len(s.flagData)) {
		if d > MaxPrerequisiteDepth {
			found[key] = &Problem{Kind: "flag", Key: key, Field: "prerequisites",
				Err: fmt.Errorf("prerequisite chain is %d deep, more than %d", d, MaxPrerequisiteDepth)}
		}
	}
	return found
}

// checkSegmentCycles marks segments that reach themselves through inSegment
// clauses in their rules as malformed, and returns them (nil when there is
// none).
func (s *Snapshot) checkSegmentCycles() map[string][]string {
	adj := map[string][]string{}
	for key, g := range s.segments {
		for _, r := range g.Rules {
			for i := range r.Clauses {
				if r.Clauses[i].Op == OpInSegment {
					for _, ref := range r.Clauses[i].Segments() {
						if _, ok := s.segments[ref]; ok {
							adj[key] = append(adj[key], ref)
						}
					}
				}
			}
		}
	}
	if len(adj) == 0 {
		return nil
	}
	keys := make([]string, 0, len(adj))
	for k := range adj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	edges := func(key string) []string { return adj[key] }
	cyclic := findCycles(keys, edges)
	for key, cycle := range cyclic {
		g := s.segments[key]
		g.Problems = appendProblem(g.Problems, &Problem{Kind: "segment", Key: key, Field: "rules",
			Err: fmt.Errorf("segment cycle: %s", strings.Join(cycle, " → "))})
	}
	return cyclic
}

// appendProblem copies before appending so a reused local problem list is
// never shared with another snapshot's additions.
func appendProblem(list []*Problem, p *Problem) []*Problem {
	out := make([]*Problem, len(list), len(list)+1)
	copy(out, list)
	return append(out, p)
}

// prerequisiteDepths returns the depth of the prerequisite chains of
// nodes that are in no cycle; adj holds each flag's prerequisites, and a
// walk deeper than limit (the number of flags) is cut short.
func prerequisiteDepths(nodes []string, adj, cyclic map[string][]string, limit int) map[string]int {
	depth := make(map[string]int, len(adj))
	var walk func(key string, seen int) int
	walk = func(key string, seen int) int {
		if d, ok := depth[key]; ok {
			return d
		}
		if _, bad := cyclic[key]; bad || seen > limit {
			return 0
		}
		d := 0
		for _, p := range adj[key] {
			d = max(d, walk(p, seen+1)+1)
		}
		depth[key] = d
		return d
	}
	out := make(map[string]int, len(nodes))
	for _, key := range nodes {
		if _, bad := cyclic[key]; !bad {
			out[key] = walk(key, 0)
		}
	}
	return out
}

// findCycles returns, for every node on a cycle, one cycle through it
// (starting and ending at the node). It is Tarjan's strongly connected
// components algorithm, iterative so that long chains cannot overflow the stack.
func findCycles(nodes []string, edges func(string) []string) map[string][]string {
	t := &tarjan{edges: edges, index: map[string]int{}, low: map[string]int{},
		onStack: map[string]bool{}, out: map[string][]string{}}
	for _, root := range nodes {
		if _, seen := t.index[root]; !seen {
			t.visit(root)
		}
	}
	return t.out
}

// tarjan is the state of Tarjan's strongly connected components algorithm,
// run with an explicit stack (no recursion, whatever the depth).
type tarjan struct {
	edges      func(string) []string
	index, low map[string]int
	onStack    map[string]bool
	stack      []string
	next       int
	out        map[string][]string
}

// push numbers v and puts it on the stack.
func (t *tarjan) push(v string) {
	t.index[v], t.low[v] = t.next, t.next
	t.next++
	t.stack = append(t.stack, v)
	t.onStack[v] = true
}

// visit runs the depth-first search from root.
func (t *tarjan) visit(root string) {
	type frame struct {
		node string
		succ []string
		i    int
	}
	t.push(root)
	work := []frame{{node: root, succ: t.edges(root)}}
	for len(work) > 0 {
		top := &work[len(work)-1]
		if top.i < len(top.succ) {
			w := top.succ[top.i]
			top.i++
			if _, seen := t.index[w]; !seen {
				t.push(w)
				work = append(work, frame{node: w, succ: t.edges(w)})
			} else if t.onStack[w] {
				t.low[top.node] = min(t.low[top.node], t.index[w])
			}
			continue
		}
		v := top.node
		work = work[:len(work)-1]
		if len(work) > 0 {
			parent := work[len(work)-1].node
			t.low[parent] = min(t.low[parent], t.low[v])
		}
		if t.low[v] == t.index[v] {
			t.component(v)
		}
	}
}

// component pops the component whose root is v and records, for each of
// its nodes, a cycle through it when the component is a cycle (more than
// one node, or a node that is its own prerequisite).
func (t *tarjan) component(v string) {
	var comp []string
	for {
		w := t.stack[len(t.stack)-1]
		t.stack = t.stack[:len(t.stack)-1]
		t.onStack[w] = false
		comp = append(comp, w)
		if w == v {
			break
		}
	}
	if len(comp) == 1 && !slices.Contains(t.edges(v), v) {
		return
	}
	in := map[string]bool{}
	for _, c := range comp {
		in[c] = true
	}
	for _, c := range comp {
		t.out[c] = cyclePath(c, in, t.edges)
	}
}

// cyclePath finds a path from start back to itself inside one component.
func cyclePath(start string, in map[string]bool, edges func(string) []string) []string {
	prev := map[string]string{}
	queue := []string{start}
	visited := map[string]bool{}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range edges(v) {
			if !in[w] {
				continue
			}
			if w == start {
				path := []string{start}
				for x := v; x != start; x = prev[x] {
					path = append(path, x)
				}
				// path is start, then the nodes back from v; reverse all but the first
				for i, j := 1, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return append(path, start)
			}
			if !visited[w] {
				visited[w] = true
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []string{start, start}
}
