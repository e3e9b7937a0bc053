package flags

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/rules"
)

// The adversarial corpus: testdata/adversarial holds one file per attack on
// the limits of SPEC §13, each saying what it attacks, what must come of it
// and the bound it must meet. A file holds its document inline or a
// generator spec that the functions below expand, so that a document of
// megabytes costs a few lines in the repository. See
// testdata/adversarial/README.md for the fields.

// adversarialCase is one file of testdata/adversarial.
type adversarialCase struct {
	Attack string `json:"attack"` // what it attacks, in a sentence
	// Expect is what must come of the document (or context):
	//   "invalid"        the document is rejected whole (rules.ErrInvalidDocument)
	//   "malformed"      it loads, and Flag evaluates to MALFORMED_FLAG with an
	//                    error naming a key and a field
	//   "ok"             it loads without any problem and every evaluation succeeds
	//   "bounded"        "malformed" or "ok", but when it loads the bounds hold
	//   "invalidContext" the generated context is refused by ContextFromJSON
	Expect       string `json:"expect"`
	Flag         string `json:"flag"`         // the flag that must be malformed
	ErrorMatches string `json:"errorMatches"` // a regexp the error must match (defaults below)

	Document json.RawMessage   `json:"document"` // the document, inline
	Bytes    map[string]string `json:"bytes"`    // placeholder in Document → hex bytes put in its place
	Generate json.RawMessage   `json:"generate"` // or a generator spec (adversarialSpec)
	// Guard overrides parameters of Generate: a smaller document that must
	// already give Expect. When it does not, the limit is missing and the
	// full case, which would not finish without it, is not run.
	Guard json.RawMessage `json:"guard"`

	Contexts        []json.RawMessage `json:"contexts"`        // default: adversarialContexts
	GenerateContext json.RawMessage   `json:"generateContext"` // a generated context, added last
	Evaluate        []string          `json:"evaluate"`        // flags to evaluate and time; default: all
	Want            []struct {
		Flag    string `json:"flag"`
		Context int    `json:"context"`
		Value   any    `json:"value"`
	} `json:"want"`
	Bound  adversarialBound   `json:"bound"`
	Growth *adversarialGrowth `json:"growth"`
}

// adversarialBound is what a case must cost at most. Zero fields take the
// defaults, which are SPEC §13's figures with room for a slow machine.
type adversarialBound struct {
	EvalNs         float64  `json:"evalNs"`         // ns per evaluation (default 1 ms, SPEC §13)
	AllocsPerEval  *float64 `json:"allocsPerEval"`  // allocations per evaluation (default 0)
	HeapPerDocByte float64  `json:"heapPerDocByte"` // compiled snapshot bytes per document byte (default 20, SPEC §13)
	ParseNsPerByte float64  `json:"parseNsPerByte"` // ns per byte to reject an invalid document (default 1,000)
	// CompileNsPerByte bounds parsing and compiling a document that loads:
	// SPEC §13's "a small, predictable multiple of its size" (default 1,000).
	CompileNsPerByte float64 `json:"compileNsPerByte"`
}

// adversarialGrowth compares the evaluation time of the generated document
// at two sizes: linear evaluation grows with the size, exponential
// evaluation by a factor that a small step already makes obvious.
type adversarialGrowth struct {
	Param    string  `json:"param"` // the generator parameter to vary
	From     int     `json:"from"`
	To       int     `json:"to"`
	MaxRatio float64 `json:"maxRatio"` // ns/op at To over ns/op at From
	Flag     string  `json:"flag"`
	Context  int     `json:"context"`
}

const (
	defaultEvalNs           = 1e6  // SPEC §13: no valid flag makes one evaluation take more than 1 ms
	defaultHeapPerDocByte   = 20   // SPEC §13: nor makes the compiled snapshot larger than 20× the document
	defaultParseNsPerByte   = 5000 // linear, with room for a loaded CI machine: quadratic costs miss it by orders of magnitude
	defaultCompileNsPerByte = 5000
	// heapSlack is added to every heap bound: a snapshot has a fixed cost
	// that a document of a few hundred bytes does not pay for, and
	// ReadMemStats deltas move by tens of kilobytes between runs.
	heapSlack = 256 << 10
	// loadSlack multiplies the evaluation time bounds (see checkEvalBounds).
	loadSlack = 4
	// adversarialBenchtime is -test.benchtime while a case is timed: enough
	// rounds for a median-free estimate far from the 1 ms bound.
	adversarialBenchtime = "10ms"
)

// adversarialContexts are the default contexts: the first matches every
// generated rule, the second none.
var adversarialContexts = []json.RawMessage{
	json.RawMessage(`{"key":"user-1","country":"fr","email":"ann@corp.com"}`),
	json.RawMessage(`{"key":"user-2","country":"de","email":"bob@example.com"}`),
}

var adversarialClock = func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }

// TestAdversarialCorpus runs every file of testdata/adversarial: the
// expected outcome, then the bounds on allocations, heap and time.
func TestAdversarialCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("the adversarial corpus times evaluations and measures the heap: full runs only")
	}
	files, err := filepath.Glob("testdata/adversarial/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/adversarial files: %v", err)
	}
	setBenchtime(t, adversarialBenchtime)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			c := loadAdversarialCase(t, file)
			runAdversarialCase(t, c)
		})
	}
}

// setBenchtime sets -test.benchtime, which testing.Benchmark reads, for the
// duration of the test.
func setBenchtime(t *testing.T, d string) {
	t.Helper()
	f := flag.Lookup("test.benchtime")
	if f == nil {
		t.Fatal("no -test.benchtime flag")
	}
	old := f.Value.String()
	if err := f.Value.Set(d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Value.Set(old) })
}

func loadAdversarialCase(t *testing.T, file string) *adversarialCase {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c adversarialCase
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	switch {
	case c.Attack == "":
		t.Fatalf("%s: no \"attack\": say what the file attacks", file)
	case (c.Document == nil) == (c.Generate == nil) && c.Expect != "invalidContext":
		t.Fatalf("%s: want exactly one of \"document\" and \"generate\"", file)
	case c.Expect == "malformed" && c.Flag == "":
		t.Fatalf("%s: a malformed case names its \"flag\"", file)
	case c.Expect == "invalidContext" && c.GenerateContext == nil:
		t.Fatalf("%s: an invalidContext case has a \"generateContext\"", file)
	case c.Guard != nil && (c.Generate == nil || c.Expect != "invalid" && c.Expect != "malformed"):
		t.Fatalf("%s: a guard shrinks a generated case that expects invalid or malformed", file)
	}
	switch c.Expect {
	case "invalid", "malformed", "ok", "bounded", "invalidContext":
	default:
		t.Fatalf("%s: expect %q: want invalid, malformed, ok, bounded or invalidContext", file, c.Expect)
	}
	return &c
}

func runAdversarialCase(t *testing.T, c *adversarialCase) {
	if c.Guard != nil {
		checkAdversarialGuard(t, c)
	}
	if c.Expect == "invalidContext" {
		checkInvalidContext(t, c)
		return
	}
	data := adversarialDocument(t, c, nil)
	ctxs := adversarialContextsOf(t, c)
	t.Logf("%s (%d document bytes)", c.Attack, len(data))
	if c.Expect == "invalid" {
		checkInvalidDocument(t, c, data)
		return
	}
	snap, heap := compiledHeap(t, data)
	if snap == nil {
		t.Fatalf("the document is invalid, want %s", c.Expect)
	}
	checkCompileTime(t, c, data)
	keys := c.Evaluate
	if len(keys) == 0 {
		keys = snap.FlagKeys()
	}
	if !checkLoadedOutcome(t, c, snap, ctxs) {
		return
	}
	checkHeapBound(t, c, heap, len(data))
	checkEvaluationsSucceed(t, c, snap, keys, ctxs)
	checkWantedValues(t, c, snap, ctxs)
	checkEvalBounds(t, c, snap, keys, ctxs)
	if c.Growth != nil {
		checkGrowth(t, c, ctxs)
	}
}

// checkAdversarialGuard runs the case's guard, a smaller document that must
// already give Expect: without the limit, the full case would not finish.
func checkAdversarialGuard(t *testing.T, c *adversarialCase) {
	t.Helper()
	small := adversarialDocument(t, c, c.Guard)
	ctxs := adversarialContextsOf(t, c)
	if got := adversarialOutcome(t, small, c.Flag, ctxs); got != c.Expect {
		t.Fatalf("guard %s: the document is %s, want %s: the limit is not enforced, so the full case "+
			"%s, which could not finish without it, is not run", compact(c.Guard), got, c.Expect, compact(c.Generate))
	}
}

// checkLoadedOutcome checks what a document that loads must give: no
// problems for "ok", a malformed flag for "malformed". It reports whether
// the bounds apply, which they do not to a "bounded" case whose flag turns
// out malformed.
func checkLoadedOutcome(t *testing.T, c *adversarialCase, snap *Snapshot, ctxs []Context) bool {
	t.Helper()
	switch c.Expect {
	case "ok":
		if ps := snap.Problems(); len(ps) > 0 {
			t.Fatalf("the document has %d problems, want none; the first: %v", len(ps), ps[0])
		}
	case "malformed":
		checkMalformed(t, c, snap, ctxs)
	case "bounded":
		if snapshotOutcome(snap, c.Flag, ctxs) == "malformed" {
			t.Logf("%s is malformed", c.Flag)
			checkMalformed(t, c, snap, ctxs)
			return false
		}
	}
	return true
}

// checkHeapBound compares the heap the compiled snapshot holds with the
// case's bound.
func checkHeapBound(t *testing.T, c *adversarialCase, heap int64, docBytes int) {
	t.Helper()
	t.Logf("compiled snapshot: %d bytes, %.1f× the document", heap, float64(heap)/float64(docBytes))
	if limit := heapBound(c, docBytes); heap > limit {
		t.Errorf("the compiled snapshot holds %d bytes for a %d-byte document (%.1f×), want at most %d",
			heap, docBytes, float64(heap)/float64(docBytes), limit)
	}
}

// checkEvaluationsSucceed evaluates every flag of keys for every context:
// no error unless the case expects a malformed flag.
func checkEvaluationsSucceed(t *testing.T, c *adversarialCase, snap *Snapshot, keys []string, ctxs []Context) {
	t.Helper()
	for ci, ec := range ctxs {
		for _, key := range keys {
			r := Evaluate(snap, key, ec, adversarialClock)
			if c.Expect != "malformed" && r.Err != nil {
				t.Errorf("Evaluate(%q, context %d): %v", key, ci, r.Err)
			}
		}
	}
}

// checkWantedValues checks the values the case's "want" lists.
func checkWantedValues(t *testing.T, c *adversarialCase, snap *Snapshot, ctxs []Context) {
	t.Helper()
	for _, w := range c.Want {
		if w.Context >= len(ctxs) {
			t.Fatalf("want: context %d of %d", w.Context, len(ctxs))
		}
		r := Evaluate(snap, w.Flag, ctxs[w.Context], adversarialClock)
		if fmt.Sprint(r.Value) != fmt.Sprint(w.Value) || r.Err != nil {
			t.Errorf("Evaluate(%q, context %d) = %v (%+v, err %v), want %v", w.Flag, w.Context, r.Value, r.Reason, r.Err, w.Value)
		}
	}
}

// adversarialOutcome classifies a document as the cases' Expect does.
func adversarialOutcome(t *testing.T, data []byte, flagKey string, ctxs []Context) string {
	t.Helper()
	doc, err := rules.ParseDocument(data)
	if err != nil {
		return "invalid"
	}
	return snapshotOutcome(Compile(doc), flagKey, ctxs)
}

// snapshotOutcome is adversarialOutcome for a document that loads.
func snapshotOutcome(snap *Snapshot, flagKey string, ctxs []Context) string {
	if f := snap.compiled().Flag(flagKey); f != nil && f.Err != nil {
		return "malformed"
	}
	for _, ec := range ctxs {
		if r := Evaluate(snap, flagKey, ec, adversarialClock); errors.Is(r.Err, ErrMalformedFlag) {
			return "malformed"
		}
	}
	return "ok"
}

func checkInvalidDocument(t *testing.T, c *adversarialCase, data []byte) {
	t.Helper()
	doc, err := rules.ParseDocument(data)
	if err == nil {
		n := 0
		if doc != nil {
			n = len(rules.Validate(doc))
		}
		t.Fatalf("ParseDocument accepted the document (%d problems), want it rejected whole with ErrInvalidDocument", n)
	}
	if !errors.Is(err, rules.ErrInvalidDocument) {
		t.Errorf("ParseDocument: %v, want an error wrapping ErrInvalidDocument", err)
	}
	if c.ErrorMatches != "" && !regexp.MustCompile(c.ErrorMatches).MatchString(err.Error()) {
		t.Errorf("ParseDocument: %v, want an error matching %s", err, c.ErrorMatches)
	}
	if client, err := New(WithDocument(data)); err == nil {
		client.Close()
		t.Errorf("New(WithDocument) accepted a document ParseDocument rejects")
	}
	perByte := c.Bound.ParseNsPerByte
	if perByte == 0 {
		perByte = defaultParseNsPerByte
	}
	perByte *= raceSlowdown
	res := testing.Benchmark(func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rules.ParseDocument(data)
		}
	})
	if ns := float64(res.NsPerOp()); ns > perByte*float64(len(data)) {
		t.Errorf("rejecting the document takes %.0f ns (%.0f ns a byte), want at most %.0f a byte", ns, ns/float64(len(data)), perByte)
	}
}

func checkInvalidContext(t *testing.T, c *adversarialCase) {
	t.Helper()
	data := generateAdversarialContext(t, c.GenerateContext)
	if _, err := ContextFromJSON(data); err == nil {
		t.Fatalf("ContextFromJSON accepted the %d-byte context, want an error", len(data))
	} else if c.ErrorMatches != "" && !regexp.MustCompile(c.ErrorMatches).MatchString(err.Error()) {
		t.Errorf("ContextFromJSON: %v, want an error matching %s", err, c.ErrorMatches)
	}
}

// checkMalformed: the flag evaluates to MALFORMED_FLAG for every context,
// with an error that names a key and a field in it, e.g.
// flags.f.rules[0].clauses[0].values[1000] or segments.s0.rules[1].
func checkMalformed(t *testing.T, c *adversarialCase, snap *Snapshot, ctxs []Context) {
	t.Helper()
	pattern := c.ErrorMatches
	if pattern == "" {
		pattern = `flags\.` + regexp.QuoteMeta(c.Flag) + `(\.[a-zA-Z]|\[)`
	}
	re := regexp.MustCompile(pattern)
	for ci, ec := range ctxs {
		r := Evaluate(snap, c.Flag, ec, adversarialClock)
		if r.Reason.ErrorKind != ErrorMalformedFlag || !errors.Is(r.Err, ErrMalformedFlag) {
			t.Fatalf("Evaluate(%q, context %d) = %+v (err %v), want MALFORMED_FLAG", c.Flag, ci, r.Reason, r.Err)
		}
		if !re.MatchString(r.Err.Error()) {
			t.Errorf("Evaluate(%q, context %d): error %q does not name the key and field (want a match for %s)",
				c.Flag, ci, r.Err, pattern)
		}
	}
}

// compiledHeap parses and compiles data and returns the snapshot (nil for
// an invalid document) and the heap it holds, the document bytes aside.
func compiledHeap(t *testing.T, data []byte) (*Snapshot, int64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	doc, err := rules.ParseDocument(data)
	if err != nil {
		return nil, 0
	}
	snap := Compile(doc)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(snap)
	return snap, int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// checkCompileTime times parsing and compiling the document.
func checkCompileTime(t *testing.T, c *adversarialCase, data []byte) {
	t.Helper()
	perByte := c.Bound.CompileNsPerByte
	if perByte == 0 {
		perByte = defaultCompileNsPerByte
	}
	perByte *= raceSlowdown
	ns := nsPerOp(func() {
		doc, err := rules.ParseDocument(data)
		if err == nil {
			Compile(doc)
		}
	})
	t.Logf("parse and compile: %.0f ns, %.0f ns a byte", ns, ns/float64(len(data)))
	if ns > perByte*float64(len(data)) {
		t.Errorf("parsing and compiling the document takes %.0f ns (%.0f ns a byte), want at most %.0f a byte",
			ns, ns/float64(len(data)), perByte)
	}
}

func heapBound(c *adversarialCase, docBytes int) int64 {
	per := c.Bound.HeapPerDocByte
	if per == 0 {
		per = defaultHeapPerDocByte
	}
	return int64(per*float64(docBytes)) + heapSlack
}

// checkEvalBounds times and counts the allocations of every evaluation of
// the case: each flag for each context.
func checkEvalBounds(t *testing.T, c *adversarialCase, snap *Snapshot, keys []string, ctxs []Context) {
	t.Helper()
	maxNs := c.Bound.EvalNs
	if maxNs == 0 {
		maxNs = defaultEvalNs
	}
	// SPEC's 1 ms is on a quiet reference machine; the suite runs beside
	// other packages' tests on 2 cores, so time bounds get 4× room. The
	// shapes this corpus guards against (exponential, quadratic) miss by
	// far more.
	maxNs *= raceSlowdown * loadSlack
	maxAllocs := 0.0
	if c.Bound.AllocsPerEval != nil {
		maxAllocs = *c.Bound.AllocsPerEval
	}
	slowest, mostAllocs := 0.0, 0.0
	for ci, ec := range ctxs {
		for _, key := range keys {
			eval := func() { Evaluate(snap, key, ec, adversarialClock) }
			ns := nsPerOp(eval)
			slowest = max(slowest, ns)
			if ns > maxNs {
				t.Errorf("Evaluate(%q, context %d) takes %.0f ns, want at most %.0f", key, ci, ns, maxNs)
				continue // a slow evaluation is not run again for its allocations
			}
			n := testing.AllocsPerRun(20, eval)
			mostAllocs = max(mostAllocs, n)
			if n > maxAllocs && !raceEnabled {
				t.Errorf("Evaluate(%q, context %d) allocates %v times, want at most %v", key, ci, n, maxAllocs)
			}
		}
	}
	t.Logf("slowest evaluation: %.0f ns; most allocations: %v", slowest, mostAllocs)
}

// nsPerOp times fn with testing.Benchmark (at adversarialBenchtime).
func nsPerOp(fn func()) float64 {
	res := testing.Benchmark(func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fn()
		}
	})
	return float64(res.T.Nanoseconds()) / float64(res.N)
}

// checkGrowth evaluates the generated document at two sizes: evaluation
// that is linear in the document grows by about To/From, exponential
// evaluation by far more.
func checkGrowth(t *testing.T, c *adversarialCase, ctxs []Context) {
	t.Helper()
	g := c.Growth
	if g.Context >= len(ctxs) || g.Flag == "" || g.To <= g.From || g.MaxRatio <= 1 {
		t.Fatalf("growth %+v: want a flag, a context of the case, from < to and maxRatio > 1", *g)
	}
	var ns [2]float64
	for i, size := range []int{g.From, g.To} {
		data := adversarialDocument(t, c, json.RawMessage(fmt.Sprintf(`{%q: %d}`, g.Param, size)))
		doc, err := rules.ParseDocument(data)
		if err != nil {
			t.Fatalf("growth: %s %d: %v", g.Param, size, err)
		}
		snap := Compile(doc)
		ec := ctxs[g.Context]
		if r := Evaluate(snap, g.Flag, ec, adversarialClock); r.Err != nil {
			t.Fatalf("growth: %s %d: Evaluate(%q): %v", g.Param, size, g.Flag, r.Err)
		}
		ns[i] = nsPerOp(func() { Evaluate(snap, g.Flag, ec, adversarialClock) })
	}
	if ratio := ns[1] / ns[0]; ratio > g.MaxRatio {
		t.Errorf("Evaluate(%q, context %d): %.0f ns with %s %d, %.0f ns with %d: ×%.1f, want at most ×%.1f (linear growth)",
			g.Flag, g.Context, ns[0], g.Param, g.From, ns[1], g.To, ratio, g.MaxRatio)
	}
}

func adversarialContextsOf(t *testing.T, c *adversarialCase) []Context {
	t.Helper()
	raw := c.Contexts
	if raw == nil {
		raw = adversarialContexts
	}
	var out []Context
	for i, r := range raw {
		ec, err := ContextFromJSON(r)
		if err != nil || ec.Err() != nil {
			t.Fatalf("context %d: %v %v", i, err, ec.Err())
		}
		out = append(out, ec)
	}
	if c.GenerateContext != nil && c.Expect != "invalidContext" {
		data := generateAdversarialContext(t, c.GenerateContext)
		ec, err := ContextFromJSON(data)
		if err != nil {
			t.Fatalf("generated context: %v", err)
		}
		out = append(out, ec)
	}
	return out
}

// adversarialDocument returns the case's document: inline with its byte
// substitutions, or generated from Generate with override's parameters on
// top.
func adversarialDocument(t *testing.T, c *adversarialCase, override json.RawMessage) []byte {
	t.Helper()
	if c.Document != nil {
		data := []byte(c.Document)
		for placeholder, hx := range c.Bytes {
			b, err := hex.DecodeString(hx)
			if err != nil || !bytes.Contains(data, []byte(placeholder)) {
				t.Fatalf("bytes %q: %q: %v (or the placeholder is not in the document)", placeholder, hx, err)
			}
			data = bytes.ReplaceAll(data, []byte(placeholder), b)
		}
		return data
	}
	spec := decodeSpec(t, c.Generate, override)
	return generateAdversarialDocument(t, spec)
}

// adversarialSpec holds every generator's parameters; each kind reads its own.
type adversarialSpec struct {
	Kind string `json:"kind"`
	// segmentChain: segment s0 to s<depth-1>, each s<i> with rulesPerSegment
	// rules that all test inSegment s<i+1> (the last tests country in [fr]);
	// flag f serves true to contexts in s0.
	Depth           int `json:"depth"`
	RulesPerSegment int `json:"rulesPerSegment"`
	// prerequisiteLayers: levels of width flags p<level>-<k>; every flag of a
	// level requires (variation 1) every flag of the next, and serves
	// variation 1 by a rule country in [fr]. Prerequisite depth: levels-1.
	Levels int `json:"levels"`
	Width  int `json:"width"`
	// deepNesting: a value nested depth levels deep (objects), placed where:
	// "variation" (both variations of flag f) or "unknownField" (a top-level
	// field a parser may skip). Counted from the value itself, so the
	// document nests depth+4 ("variation") or depth+1 ("unknownField") levels.
	Where string `json:"where"`
	// regexClause: flag f, one rule, one matches clause on email holding
	// patterns values: pattern repeated repeat times, then the value's index
	// (so that no two are alike).
	Patterns int    `json:"patterns"`
	Pattern  string `json:"pattern"`
	Repeat   int    `json:"repeat"`
	// targets / segmentIncluded: keys keys k0…, then user-1, in one target of
	// flag f or in the included list of segment s used by flag f.
	Keys int `json:"keys"`
	// manyRules: flag f with rules rules, rule i email endsWith @corp<i>.com,
	// the last endsWith @corp.com; with reordered, each rule also tests
	// country in [fr], after its endsWith: a rule the compiler keeps a
	// second copy of, its clauses cheapest first.
	Rules     int  `json:"rules"`
	Reordered bool `json:"reordered"`
	// longStrings: flag f with a string variation and contains, in and
	// startsWith clauses on attribute name, each about bytes long, none
	// matching a context value of bytes a's; flag g serves the long string.
	// longAttribute (a context): attribute name, bytes long.
	Bytes int `json:"bytes"`
}

func decodeSpec(t *testing.T, base, override json.RawMessage) adversarialSpec {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal(base, &m); err != nil {
		t.Fatalf("generate: %v", err)
	}
	if override != nil {
		o := map[string]any{}
		if err := json.Unmarshal(override, &o); err != nil {
			t.Fatalf("guard: %v", err)
		}
		maps.Copy(m, o)
	}
	merged, _ := json.Marshal(m)
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	var s adversarialSpec
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("generator spec %s: %v", merged, err)
	}
	return s
}

// The generated documents are written as text, not marshalled: a nesting
// of 10,000 levels is beyond encoding/json, and the text shows what the
// parser meets.

// adversarialGenerators write the document of each generator kind (see
// adversarialSpec for what each builds from its parameters).
var adversarialGenerators = map[string]func(*testing.T, *bytes.Buffer, adversarialSpec){
	"segmentChain":       writeSegmentChain,
	"prerequisiteLayers": writePrerequisiteLayers,
	"deepNesting":        writeDeepNesting,
	"regexClause":        writeRegexClause,
	"targets":            writeTargetKeys,
	"segmentIncluded":    writeTargetKeys,
	"manyRules":          writeManyRules,
	"longStrings":        writeLongStrings,
}

func generateAdversarialDocument(t *testing.T, s adversarialSpec) []byte {
	t.Helper()
	generate, ok := adversarialGenerators[s.Kind]
	if !ok {
		t.Fatalf("generate: unknown kind %q", s.Kind)
	}
	var b bytes.Buffer
	generate(t, &b, s)
	return b.Bytes()
}

// writeBoolFlagOpen writes a boolean flag serving false, up to its closing
// brace, so that the caller can add rules, targets or prerequisites.
func writeBoolFlagOpen(b *bytes.Buffer, key string) {
	fmt.Fprintf(b, `%q:{"on":true,"variations":[false,true],"offVariation":0,"fallthrough":{"variation":0}`, key)
}

// adversarialFrRule serves variation 1 to the contexts in France, which the
// first default context is and the second is not.
const adversarialFrRule = `{"clauses":[{"attribute":"country","op":"in","values":["fr"]}],"serve":{"variation":1}}`

func writeSegmentChain(t *testing.T, b *bytes.Buffer, s adversarialSpec) {
	t.Helper()
	need(t, s.Depth >= 1 && s.RulesPerSegment >= 1, "segmentChain: depth and rulesPerSegment ≥ 1")
	b.WriteString(`{"version":1,"flags":{`)
	writeBoolFlagOpen(b, "f")
	b.WriteString(`,"rules":[{"clauses":[{"op":"inSegment","values":["s0"]}],"serve":{"variation":1}}]}},"segments":{`)
	for i := 0; i < s.Depth; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `"s%d":{"rules":[`, i)
		for r := 0; r < s.RulesPerSegment; r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			switch {
			case i == s.Depth-1:
				fmt.Fprintf(b, `{"clauses":[{"attribute":"country","op":"in","values":["fr","r%d"]}]}`, r)
			case r == 0:
				fmt.Fprintf(b, `{"clauses":[{"op":"inSegment","values":["s%d"]}]}`, i+1)
			default: // tests the next segment again, then fails: no memo, twice the work
				fmt.Fprintf(b, `{"clauses":[{"op":"inSegment","values":["s%d"]},{"attribute":"country","op":"in","values":["r%d"]}]}`, i+1, r)
			}
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`}}`)
}

func writePrerequisiteLayers(t *testing.T, b *bytes.Buffer, s adversarialSpec) {
	t.Helper()
	need(t, s.Levels >= 1 && s.Width >= 1, "prerequisiteLayers: levels and width ≥ 1")
	b.WriteString(`{"version":1,"flags":{`)
	for l := 0; l < s.Levels; l++ {
		for k := 0; k < s.Width; k++ {
			if l > 0 || k > 0 {
				b.WriteByte(',')
			}
			writeBoolFlagOpen(b, fmt.Sprintf("p%d-%d", l, k))
			b.WriteString(`,"rules":[` + adversarialFrRule + `]`)
			if l+1 < s.Levels {
				b.WriteString(`,"prerequisites":[`)
				for n := 0; n < s.Width; n++ {
					if n > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(b, `{"flag":"p%d-%d","variation":1}`, l+1, n)
				}
				b.WriteByte(']')
			}
			b.WriteByte('}')
		}
	}
	b.WriteString(`}}`)
}

func writeDeepNesting(t *testing.T, b *bytes.Buffer, s adversarialSpec) {
	t.Helper()
	need(t, s.Depth >= 1, "deepNesting: depth ≥ 1")
	nested := strings.Repeat(`{"a":`, s.Depth-1) + `{}` + strings.Repeat(`}`, s.Depth-1)
	switch s.Where {
	case "variation":
		fmt.Fprintf(b, `{"version":1,"flags":{"f":{"on":true,"variations":[%s,{"b":1}],"fallthrough":{"variation":0}}}}`, nested)
	case "unknownField":
		fmt.Fprintf(b, `{"version":1,"x":%s,"flags":{"f":{"on":true,"variations":[false,true],"fallthrough":{"variation":1}}}}`, nested)
	default:
		t.Fatalf("deepNesting: where %q: want variation or unknownField", s.Where)
	}
}

func writeRegexClause(t *testing.T, b *bytes.Buffer, s adversarialSpec) {
	t.Helper()
	need(t, s.Patterns >= 1 && s.Pattern != "", "regexClause: patterns ≥ 1 and a pattern")
	repeat := max(s.Repeat, 1)
	b.WriteString(`{"version":1,"flags":{`)
	writeBoolFlagOpen(b, "f")
	b.WriteString(`,"rules":[{"clauses":[{"attribute":"email","op":"matches","values":[`)
	body := strings.Repeat(s.Pattern, repeat)
	for i := 0; i < s.Patterns; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		q, _ := json.Marshal(fmt.Sprintf("%s%d", body, i))
		b.Write(q)
	}
	b.WriteString(`]}],"serve":{"variation":1}}]}}}`)
}

// writeTargetKeys writes the targets and segmentIncluded kinds: the same
// keys, in a target of the flag or in the included list of its segment.
func writeTargetKeys(t *testing.T, b *bytes.Buffer, s adversarialSpec) {
	t.Helper()
	need(t, s.Keys >= 1, s.Kind+": keys ≥ 1")
	var keys bytes.Buffer
	for i := 0; i < s.Keys; i++ {
		fmt.Fprintf(&keys, `"k%d",`, i)
	}
	keys.WriteString(`"user-1"`)
	b.WriteString(`{"version":1,"flags":{`)
	writeBoolFlagOpen(b, "f")
	if s.Kind == "targets" {
		fmt.Fprintf(b, `,"targets":[{"values":[%s],"variation":1}]}}}`, keys.Bytes())
	} else {
		fmt.Fprintf(b, `,"rules":[{"clauses":[{"op":"inSegment","values":["s"]}],"serve":{"variation":1}}]}},`+
			`"segments":{"s":{"included":[%s]}}}`, keys.Bytes())
	}
}

func writeManyRules(t *testing.T, b *bytes.Buffer, s adversarialSpec) {
	t.Helper()
	need(t, s.Rules >= 1, "manyRules: rules ≥ 1")
	b.WriteString(`{"version":1,"flags":{`)
	writeBoolFlagOpen(b, "f")
	b.WriteString(`,"rules":[`)
	for i := 0; i < s.Rules; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		suffix := fmt.Sprintf("@corp%d.com", i)
		if i == s.Rules-1 {
			suffix = "@corp.com"
		}
		country := ""
		if s.Reordered {
			country = `,{"attribute":"country","op":"in","values":["fr"]}`
		}
		fmt.Fprintf(b, `{"id":"r%d","clauses":[{"attribute":"email","op":"endsWith","values":[%q]}%s],"serve":{"variation":1}}`, i, suffix, country)
	}
	b.WriteString(`]}}}`)
}

func writeLongStrings(t *testing.T, b *bytes.Buffer, s adversarialSpec) {
	t.Helper()
	need(t, s.Bytes >= 2, "longStrings: bytes ≥ 2")
	long := strings.Repeat("a", s.Bytes)
	// Against a context value of a's, values that match almost all the
	// way: the worst case of a naive substring search and of a compare.
	needle := strings.Repeat("a", s.Bytes/2) + "b"
	prefix := strings.Repeat("a", s.Bytes-1) + "b"
	fmt.Fprintf(b, `{"version":1,"flags":{"f":{"on":true,"variations":["short",%q],"fallthrough":{"variation":0},"rules":[`+
		`{"clauses":[{"attribute":"name","op":"contains","values":[%q]}],"serve":{"variation":1}},`+
		`{"clauses":[{"attribute":"name","op":"in","values":[%q]}],"serve":{"variation":1}},`+
		`{"clauses":[{"attribute":"name","op":"startsWith","values":[%q]}],"serve":{"variation":1}}]},`+
		`"g":{"on":true,"variations":["short",%q],"fallthrough":{"variation":1}}}}`,
		long, needle, prefix, prefix, long)
}

// generateAdversarialContext expands a context generator: nestedContext
// (attribute a nested so that the context nests depth levels, counting its
// top-level object) or longAttribute (attribute name of bytes a's).
func generateAdversarialContext(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	s := decodeSpec(t, raw, nil)
	switch s.Kind {
	case "nestedContext":
		need(t, s.Depth >= 2, "nestedContext: depth ≥ 2")
		inner := strings.Repeat(`{"a":`, s.Depth-2) + `{}` + strings.Repeat(`}`, s.Depth-2)
		return []byte(`{"key":"user-3","country":"fr","a":` + inner + `}`)
	case "longAttribute":
		need(t, s.Bytes >= 1, "longAttribute: bytes ≥ 1")
		return []byte(`{"key":"user-3","country":"fr","name":"` + strings.Repeat("a", s.Bytes) + `"}`)
	}
	t.Fatalf("generateContext: unknown kind %q", s.Kind)
	return nil
}

// compact is raw JSON on one line, for messages.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if !ok {
		t.Fatalf("generator: want %s", what)
	}
}
