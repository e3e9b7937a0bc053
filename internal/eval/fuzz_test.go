package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flagstream/flags/internal/evalcases"
)

// FuzzCompile feeds arbitrary bytes through ParseDocument and Compile. It
// checks that nothing panics, that an invalid document is reported with
// ErrInvalidDocument, that Problems are sorted and located, that Err agrees
// with Problems, and that every flag and segment compiled without problems
// holds only what evaluation can use safely (indexes in range, weights that
// sum to 100000), since the evaluator trusts well-formed flags.
//
// Seeds: the documents of ../../testdata/eval/*.json and testdata/fuzz/FuzzCompile.
func FuzzCompile(f *testing.F) {
	addEvalDocuments(f)
	f.Add([]byte(`{"flags":{"a":{"on":true,"variations":[1,2],"prerequisites":[{"flag":"a","variation":0}],"fallthrough":{"variation":0}}}}`))
	f.Add([]byte(`{"segments":{"s":{"rules":[{"clauses":[{"op":"inSegment","values":["s"]}],"weight":5}]}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseDocument(data)
		if err != nil {
			if doc != nil || !errors.Is(err, ErrInvalidDocument) || !strings.HasPrefix(err.Error(), "flags: invalid document") {
				t.Fatalf("ParseDocument error %v (doc %v): want nil doc and ErrInvalidDocument", err, doc)
			}
			return
		}
		s := Compile(doc)
		checkSnapshot(t, doc, s)
		checkDangling(t, doc, s)

		// Reuse gives the same answer as a fresh compile, and so does the
		// document re-encoded compactly.
		want := problemStrings(s.Problems())
		if got := problemStrings(CompileFrom(s, doc).Problems()); !slices.Equal(got, want) {
			t.Fatalf("CompileFrom(same doc) problems %q, Compile %q", got, want)
		}
		enc, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("Document.MarshalJSON: %v", err)
		}
		doc2, err := ParseDocument(enc)
		if err != nil {
			t.Fatalf("re-encoded document %s does not parse: %v", enc, err)
		}
		if got := problemStrings(Compile(doc2).Problems()); !slices.Equal(got, want) {
			t.Fatalf("re-encoded document problems %q, want %q", got, want)
		}
		checkCopiesCompileAlike(t, doc)
	})
}

// checkDangling holds DanglingReferences to its promise: each reference is
// made by a well-formed flag or segment of doc and names a key doc does not
// hold, and every key a well-formed flag names as a prerequisite and doc
// lacks is listed.
func checkDangling(t *testing.T, doc *Document, s *Snapshot) {
	t.Helper()
	listed := map[string]bool{}
	for _, d := range s.DanglingReferences() {
		owner := d.Kind == "flag" && s.Flag(d.Key) != nil && s.Flag(d.Key).Err == nil ||
			d.Kind == "segment" && s.Segment(d.Key) != nil && s.Segment(d.Key).Err == nil
		_, isFlag := doc.Flags[d.Name]
		_, isSegment := doc.Segments[d.Name]
		if !owner || d.Missing == "flag" && isFlag || d.Missing == "segment" && isSegment || d.Missing != "flag" && d.Missing != "segment" {
			t.Fatalf("dangling reference %s: made by a well-formed %s %v; %q in the document as a flag %v, as a segment %v", d, d.Kind, owner, d.Name, isFlag, isSegment)
		}
		if d.Missing == "flag" {
			listed[d.Key+"\x00"+d.Name] = true
		}
	}
	for _, f := range s.Flags() {
		if f.Err != nil {
			continue
		}
		for _, p := range f.Prerequisites {
			if _, ok := doc.Flags[p.Key]; !ok && !listed[f.Key+"\x00"+p.Key] {
				t.Fatalf("flag %q names prerequisite %q, which the document lacks, and DanglingReferences does not list it", f.Key, p.Key)
			}
		}
	}
}

// copySuffix ends the key of checkCopiesCompileAlike's copy of a flag.
const copySuffix = "-copy"

// checkCopiesCompileAlike compiles doc with a copy of every flag under
// another key, so that the copies share their originals' definitions
// wherever that is allowed, and checks that each copy compiled as if alone:
// the same problems but for the key, the same values, salts from its own key.
func checkCopiesCompileAlike(t *testing.T, doc *Document) {
	t.Helper()
	withCopies, bump := docWithCopies(doc)
	s := Compile(withCopies)
	for k := range doc.Flags {
		f, c := s.Flag(k), s.Flag(k+copySuffix)
		if c == nil || doc.Flags[k+copySuffix] != nil || ValidKey(k) != ValidKey(k+copySuffix) {
			continue // the copy's key has problems of its own
		}
		checkCopyCompiledAlike(t, k, f, c, bump[k])
		checkCopySalts(t, k, f, c)
	}
}

// docWithCopies returns doc with a copy of every flag under its key and
// copySuffix, when the document has no such key. Where the flag's
// version can be bumped the copy's is, so that copies with a version of
// their own still share the definitions: bump says by how much.
func docWithCopies(doc *Document) (withCopies *Document, bump map[string]int64) {
	withCopies = &Document{Flags: maps.Clone(doc.Flags), Segments: doc.Segments}
	bump = map[string]int64{}
	for k, raw := range doc.Flags {
		if _, taken := doc.Flags[k+copySuffix]; taken {
			continue
		}
		if v := versionOf(raw); v.ok && v.value < 1e17 {
			raw = slices.Concat(raw[:v.start:v.start], []byte(strconv.FormatInt(v.value+7, 10)), raw[v.end:])
			bump[k] = 7
		}
		withCopies.Flags[k+copySuffix] = raw
	}
	return withCopies, bump
}

// definitionShape is what a copy's compiled definition must share with
// its original's.
type definitionShape struct {
	version              int64
	on                   bool
	kind                 Kind
	offVariation         int
	variations, rules    int
	constLocal           bool
	fallthroughVariation int
	fallthroughRollout   bool
}

// shapeOf is f's definitionShape, its version bumped by versionBump.
func shapeOf(f *Flag, versionBump int64) definitionShape {
	return definitionShape{
		version: f.Version + versionBump, on: f.On, kind: f.Kind, offVariation: f.OffVariation,
		variations: len(f.Variations), rules: len(f.Rules), constLocal: f.constLocal,
		fallthroughVariation: f.Fallthrough.Variation, fallthroughRollout: f.Fallthrough.Rollout != nil,
	}
}

// checkCopyCompiledAlike checks that the copy c of flag k (its version
// bumped by bump) has k's problems but for the key, the same definition
// and the same variations.
func checkCopyCompiledAlike(t *testing.T, k string, f, c *Flag, bump int64) {
	t.Helper()
	if got, want := rekeyProblems(c.local, k+copySuffix, k), rekeyProblems(f.local, k+copySuffix, k); !slices.Equal(got, want) {
		t.Fatalf("copy of %q: problems %q, original %q", k, got, want)
	}
	if want, got := shapeOf(f, bump), shapeOf(c, 0); got != want {
		t.Fatalf("copy of %q compiled differently: %+v, want %+v (definition %+v, original %+v)", k, got, want, *c.Definition, *f.Definition)
	}
	for i := range f.Variations {
		if string(f.Variations[i].JSON) != string(c.Variations[i].JSON) {
			t.Fatalf("copy of %q: variation %d = %s, original %s", k, i, c.Variations[i].JSON, f.Variations[i].JSON)
		}
	}
}

// rekeyProblems formats ps with every mention of key from, quoted or
// not, replaced by to.
func rekeyProblems(ps []*Problem, from, to string) []string {
	var out []string
	for _, p := range ps {
		msg := strings.ReplaceAll(p.Error(), fmt.Sprintf("%q", from), fmt.Sprintf("%q", to))
		out = append(out, strings.ReplaceAll(msg, from, to))
	}
	return out
}

// checkCopySalts checks that the copy c of flag k salts with its own key
// where k salts with k's, and with the same salt where k's is explicit.
func checkCopySalts(t *testing.T, k string, f, c *Flag) {
	t.Helper()
	wantSalt := f.Salt()
	if f.Salt() == k && !f.explicitSalt {
		wantSalt = k + copySuffix
	}
	if c.Salt() != wantSalt {
		t.Fatalf("copy of %q: salt %q, want %q", k, c.Salt(), wantSalt)
	}
	if r := f.Fallthrough.Rollout; r != nil && (r.Salt == k) != (c.Fallthrough.Rollout.Salt == k+copySuffix) && !f.explicitSalt {
		t.Fatalf("copy of %q: rollout salt %q, original %q", k, c.Fallthrough.Rollout.Salt, r.Salt)
	}
}

// checkSnapshot checks what FuzzCompile promises of any compiled
// document: problems located and sorted, every flag and segment present,
// and well-formed ones safe to evaluate.
func checkSnapshot(t *testing.T, doc *Document, s *Snapshot) {
	t.Helper()
	checkProblems(t, doc, s.Problems())
	checkSnapshotFlags(t, doc, s)
	checkSnapshotSegments(t, doc, s)
}

// checkProblems checks that every problem is located at a flag or segment
// of doc, wraps ErrMalformed with a cause, and that ps are sorted by kind
// then key.
func checkProblems(t *testing.T, doc *Document, ps []*Problem) {
	t.Helper()
	for i, p := range ps {
		checkProblemLocated(t, doc, p)
		if i > 0 {
			a := ps[i-1]
			if a.Kind > p.Kind || a.Kind == p.Kind && a.Key > p.Key {
				t.Fatalf("Problems not sorted: %q before %q", a.Error(), p.Error())
			}
		}
	}
}

// checkProblemLocated checks that p wraps ErrMalformed with a cause and
// names a flag or segment of doc.
func checkProblemLocated(t *testing.T, doc *Document, p *Problem) {
	t.Helper()
	msg := p.Error()
	if !strings.HasPrefix(msg, "flags.") && !strings.HasPrefix(msg, "segments.") {
		t.Fatalf("problem %q does not start with flags. or segments.", msg)
	}
	if !errors.Is(p, ErrMalformed) || p.Err == nil {
		t.Fatalf("problem %q: not ErrMalformed or no cause", msg)
	}
	switch p.Kind {
	case "flag":
		if _, ok := doc.Flags[p.Key]; !ok {
			t.Fatalf("problem %q names a flag not in the document", msg)
		}
	case "segment":
		if _, ok := doc.Segments[p.Key]; !ok {
			t.Fatalf("problem %q names a segment not in the document", msg)
		}
	default:
		t.Fatalf("problem %q has kind %q", msg, p.Kind)
	}
}

// checkSnapshotFlags checks that FlagKeys lists doc's flags in order, that
// each flag's Err agrees with its Problems, and that each well-formed
// flag is safe to evaluate.
func checkSnapshotFlags(t *testing.T, doc *Document, s *Snapshot) {
	t.Helper()
	keys := s.FlagKeys()
	if len(keys) != len(doc.Flags) {
		t.Fatalf("FlagKeys() has %d keys, document %d", len(keys), len(doc.Flags))
	}
	for i, key := range keys {
		if i > 0 && keys[i-1] >= key {
			t.Fatalf("FlagKeys() not sorted: %q before %q", keys[i-1], key)
		}
		f := s.Flag(key)
		if f == nil || f.Key != key {
			t.Fatalf("Flag(%q) = %v", key, f)
		}
		if (f.Err == nil) != (len(f.Problems) == 0) || f.Err != nil && f.Err != error(f.Problems[0]) {
			t.Fatalf("flag %q: Err %v disagrees with Problems %v", key, f.Err, f.Problems)
		}
		if f.Err == nil {
			checkWellFormedFlag(t, s, f)
		}
	}
}

// checkSnapshotSegments checks that each of doc's segments is compiled,
// its Err agreeing with its Problems, and that well-formed ones have an
// attribute and rules the evaluator can use.
func checkSnapshotSegments(t *testing.T, doc *Document, s *Snapshot) {
	t.Helper()
	for key := range doc.Segments {
		g := s.Segment(key)
		if g == nil || (g.Err == nil) != (len(g.Problems) == 0) {
			t.Fatalf("segment %q: %v", key, g)
		}
		if g.Err != nil {
			continue
		}
		if len(g.Attribute) == 0 || !ValidKey(key) {
			t.Fatalf("well-formed segment %q: attribute %v", key, g.Attribute)
		}
		for _, r := range g.Rules {
			if r.Weight < -1 || r.Weight > TotalWeight || len(r.BucketBy) == 0 {
				t.Fatalf("well-formed segment %q: rule %+v", key, r)
			}
			checkClauses(t, key, r.Clauses)
		}
	}
}

// checkWellFormedFlag checks what the evaluator relies on, and exercises
// the compiled parts it calls (Match, Choose) on a few values.
func checkWellFormedFlag(t *testing.T, s *Snapshot, f *Flag) {
	t.Helper()
	if len(f.Variations) == 0 || f.Kind == 0 || !ValidKey(f.Key) {
		t.Fatalf("well-formed flag %q: %d variations, kind %v", f.Key, len(f.Variations), f.Kind)
	}
	if f.OffVariation != -1 {
		checkVariationIndex(t, f, "offVariation", f.OffVariation)
	}
	for _, p := range f.Prerequisites {
		if p.Key == "" || p.Variation < 0 {
			t.Fatalf("well-formed flag %q: prerequisite %+v", f.Key, p)
		}
		if pf := s.Flag(p.Key); pf != nil && pf.Key == f.Key {
			t.Fatalf("well-formed flag %q is its own prerequisite", f.Key)
		}
	}
	for _, tg := range f.Targets {
		checkVariationIndex(t, f, "target variation", tg.Variation)
		if len(tg.Attribute) == 0 {
			t.Fatalf("well-formed flag %q: target without attribute", f.Key)
		}
	}
	checkWellFormedServe(t, f, f.Fallthrough)
	for _, r := range f.Rules {
		checkWellFormedServe(t, f, r.Serve)
		checkClauses(t, f.Key, r.Clauses)
	}
}

// checkVariationIndex checks that i, which what names, indexes one of f's
// variations.
func checkVariationIndex(t *testing.T, f *Flag, what string, i int) {
	t.Helper()
	if i < 0 || i >= len(f.Variations) {
		t.Fatalf("well-formed flag %q: %s = %d, outside 0..%d", f.Key, what, i, len(f.Variations)-1)
	}
}

// checkWellFormedServe checks that what a well-formed flag f serves (a
// rule's or its fallthrough) is one of its variations, or a rollout whose
// variations, weights and schedule are sound and whose Choose, at any
// bucket and time, picks one of them.
func checkWellFormedServe(t *testing.T, f *Flag, sv Serve) {
	t.Helper()
	if sv.Rollout == nil {
		checkVariationIndex(t, f, "serve variation", sv.Variation)
		return
	}
	r := sv.Rollout
	if len(r.Variations) == 0 || len(r.BucketBy) == 0 {
		t.Fatalf("well-formed flag %q: rollout %+v", f.Key, r)
	}
	for _, v := range r.Variations {
		checkVariationIndex(t, f, "rollout variation", v)
	}
	if len(r.Schedule) == 0 {
		checkRolloutWeights(t, f, "static", r.Weights)
	}
	for i, st := range r.Schedule {
		if len(st.Weights) != len(r.Variations) || i > 0 && st.At <= r.Schedule[i-1].At {
			t.Fatalf("well-formed flag %q: schedule step %d %+v", f.Key, i, st)
		}
		checkRolloutWeights(t, f, "schedule", st.Weights)
	}
	for _, bucket := range []int{0, 1, 49999, 99999} {
		for _, at := range []int64{-1 << 62, 0, 1767225600000, 1 << 62} {
			checkVariationIndex(t, f, "Choose", r.Choose(bucket, at))
		}
	}
}

// checkRolloutWeights checks that the weights ws of one of f's rollouts
// (what: static or schedule) are each in 0..TotalWeight and sum to it.
func checkRolloutWeights(t *testing.T, f *Flag, what string, ws []int64) {
	t.Helper()
	var sum int64
	for _, w := range ws {
		if w < 0 || w > TotalWeight {
			t.Fatalf("well-formed flag %q: %s weight %d outside 0..%d", f.Key, what, w, TotalWeight)
		}
		sum += w
	}
	if sum != TotalWeight {
		t.Fatalf("well-formed flag %q: %s weights sum to %d", f.Key, what, sum)
	}
}

// probeValues are attribute values every clause is matched against.
var probeValues = []any{"x", "", "2026-01-01T00:00:00Z", "1.2.3", 1.0, -0.5, 1e300, true, false,
	[]any{"x", 1.0}, []any{}, map[string]any{"a": 1.0}}

func checkClauses(t *testing.T, key string, cs []Clause) {
	t.Helper()
	for i := range cs {
		c := &cs[i]
		if !c.Op.Known() {
			t.Fatalf("%q: well formed with unknown op %q", key, c.Op)
		}
		if c.Op == OpInSegment {
			continue
		}
		if len(c.Attribute) == 0 && c.Op != OpBefore && c.Op != OpAfter { // before/after without one compare the clock
			t.Fatalf("%q: well-formed clause %+v has no attribute", key, c)
		}
		if c.Match(nil, false) != (c.Op == OpExists && c.Negate) {
			t.Fatalf("%q: clause %s negate=%v matches an absent attribute", key, c.Op, c.Negate)
		}
		for _, v := range probeValues {
			c.Match(v, true)
		}
	}
}

// addEvalDocuments seeds f with the documents of ../../testdata/eval/*.json.
func addEvalDocuments(f *testing.F) {
	for _, doc := range evalDocuments(f) {
		f.Add([]byte(doc))
	}
}

// evalDocuments reads the document of every evaluation case file,
// ../../testdata/eval/*.json, in file name order.
func evalDocuments(tb testing.TB) []json.RawMessage {
	tb.Helper()
	var docs []json.RawMessage
	for _, cf := range evalcases.Read(tb, "../../testdata/eval") {
		docs = append(docs, cf.Document)
	}
	return docs
}
