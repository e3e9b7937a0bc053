package flags

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/flagstream/flags/rules"
)

// The benchmark scenarios S1–S8 of the Core issue, shared with the
// allocation test so that the numbers published and the budget asserted are
// for the same code.

type scenario struct {
	name string
	doc  map[string]any
	flag string
	ctxs []Context // evaluated round-robin; one context for most scenarios
	want any       // the value every evaluation must return
}

func flagDoc(flags map[string]any, segments map[string]any) map[string]any {
	if segments == nil {
		segments = map[string]any{}
	}
	return map[string]any{"version": 1, "flags": flags, "segments": segments}
}

func boolFlag(extra map[string]any) map[string]any {
	f := map[string]any{"on": true, "variations": []any{false, true}, "fallthrough": map[string]any{"variation": 0}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func scenarios() []scenario {
	user := NewContext("user-500").Set("email", "ann@corp.com").Set("country", "fr").
		Set("appVersion", "2.10.1").Build()

	targets := make([]any, 1000)
	for i := range targets {
		targets[i] = fmt.Sprintf("user-%d", i)
	}
	var rs []any
	for i := 0; i < 10; i++ {
		country := []any{"de", "it", "es"}
		if i == 9 {
			country = []any{"de", "fr", "es"}
		}
		rs = append(rs, map[string]any{"id": fmt.Sprintf("r%d", i), "clauses": []any{
			map[string]any{"attribute": "email", "op": "endsWith", "values": []any{"@corp.com"}},
			map[string]any{"attribute": "country", "op": "in", "values": country},
		}, "serve": map[string]any{"variation": 1}})
	}
	rollCtxs := make([]Context, 1024)
	for i := range rollCtxs {
		rollCtxs[i] = NewContext(fmt.Sprintf("user-%d", i)).Build()
	}
	included := make([]any, 10000)
	for i := range included {
		included[i] = fmt.Sprintf("member-%d", i)
	}
	allFlags := map[string]any{}
	for i := 0; i < 1000; i++ {
		allFlags[fmt.Sprintf("flag-%04d", i)] = boolFlag(map[string]any{"rules": []any{map[string]any{
			"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []any{"fr"}}},
			"serve":   map[string]any{"variation": 1}}}})
	}
	return []scenario{
		{name: "S1_BoolOn", flag: "f", ctxs: []Context{user}, want: false,
			doc: flagDoc(map[string]any{"f": boolFlag(nil)}, nil)},
		{name: "S2_Target1000Hit", flag: "f", ctxs: []Context{user}, want: true,
			doc: flagDoc(map[string]any{"f": boolFlag(map[string]any{
				"targets": []any{map[string]any{"values": targets, "variation": 1}}})}, nil)},
		{name: "S3_10Rules2Clauses", flag: "f", ctxs: []Context{user}, want: true,
			doc: flagDoc(map[string]any{"f": boolFlag(map[string]any{"rules": rs})}, nil)},
		{name: "S4_Rollout5050", flag: "f", ctxs: rollCtxs,
			doc: flagDoc(map[string]any{"f": boolFlag(map[string]any{"fallthrough": map[string]any{"rollout": map[string]any{
				"variations": []any{map[string]any{"variation": 0, "weight": 50000}, map[string]any{"variation": 1, "weight": 50000}}}}})}, nil)},
		{name: "S5_Segment10000PlusRule", flag: "f", ctxs: []Context{user}, want: true,
			doc: flagDoc(map[string]any{"f": boolFlag(map[string]any{"rules": []any{map[string]any{
				"clauses": []any{map[string]any{"op": "inSegment", "values": []any{"seg"}}},
				"serve":   map[string]any{"variation": 1}}}})},
				map[string]any{"seg": map[string]any{"included": included, "rules": []any{map[string]any{
					"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []any{"fr"}}}}}}})},
		{name: "S6_SemVerGreaterThan", flag: "f", ctxs: []Context{user}, want: true,
			doc: flagDoc(map[string]any{"f": boolFlag(map[string]any{"rules": []any{map[string]any{
				"clauses": []any{map[string]any{"attribute": "appVersion", "op": "semVerGreaterThan", "values": []any{"2.9.0"}}},
				"serve":   map[string]any{"variation": 1}}}})}, nil)},
		{name: "S7_PrerequisiteDepth3", flag: "f0", ctxs: []Context{user}, want: true,
			doc: flagDoc(map[string]any{
				"f0": boolFlag(map[string]any{"prerequisites": []any{map[string]any{"flag": "f1", "variation": 1}}, "fallthrough": map[string]any{"variation": 1}}),
				"f1": boolFlag(map[string]any{"prerequisites": []any{map[string]any{"flag": "f2", "variation": 1}}, "fallthrough": map[string]any{"variation": 1}}),
				"f2": boolFlag(map[string]any{"prerequisites": []any{map[string]any{"flag": "f3", "variation": 1}}, "fallthrough": map[string]any{"variation": 1}}),
				"f3": boolFlag(map[string]any{"fallthrough": map[string]any{"variation": 1}}),
			}, nil)},
		{name: "S8_AllFlags1000", ctxs: []Context{user}, doc: flagDoc(allFlags, nil)},
	}
}

func (s scenario) client(tb testing.TB) *Client {
	tb.Helper()
	data, err := json.Marshal(s.doc)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := New(WithDocument(data))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if probs := c.Snapshot().Problems(); len(probs) > 0 {
		tb.Fatalf("%s: document has problems: %v", s.name, probs)
	}
	return c
}

// check asserts the scenario's answer before anything is timed.
func (s scenario) check(tb testing.TB, c *Client) {
	tb.Helper()
	ctx := context.Background()
	if s.flag == "" {
		all := c.AllFlags(ctx, s.ctxs[0])
		for r := range all.All() {
			if r.Value != true || r.Reason.Kind != ReasonRuleMatch {
				tb.Fatalf("%s: %s = %v (%v), want true by RULE_MATCH", s.name, r.Flag, r.Value, r.Reason.Kind)
			}
		}
		return
	}
	trues := 0
	for _, ec := range s.ctxs {
		r := c.BoolDetail(ctx, s.flag, ec, false)
		if r.Err != nil {
			tb.Fatalf("%s: %v", s.name, r.Err)
		}
		if s.want != nil && r.Value != s.want {
			tb.Fatalf("%s: Bool(%q) = %v, want %v (%+v)", s.name, s.flag, r.Value, s.want, r.Reason)
		}
		if r.Value {
			trues++
		}
	}
	if s.want == nil { // the 50/50 rollout: both halves must be populated
		if trues < 400 || trues > 624 {
			tb.Fatalf("%s: %d of %d contexts got true, want about half", s.name, trues, len(s.ctxs))
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, s := range scenarios() {
		b.Run(s.name, func(b *testing.B) {
			c := s.client(b)
			s.check(b, c)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			if s.flag == "" {
				for i := 0; i < b.N; i++ {
					_ = c.AllFlags(ctx, s.ctxs[0])
				}
				return
			}
			n := len(s.ctxs)
			for i := 0; i < b.N; i++ {
				_ = c.Bool(ctx, s.flag, s.ctxs[i%n], false)
			}
		})
	}
}

// BenchmarkAppendAllFlags is S8 with a reused result buffer.
func BenchmarkAppendAllFlags(b *testing.B) {
	s := scenarios()[7]
	c := s.client(b)
	s.check(b, c)
	ctx := context.Background()
	buf := c.AppendAllFlags(ctx, nil, s.ctxs[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = c.AppendAllFlags(ctx, buf[:0], s.ctxs[0])
	}
}

// TestEvaluateAllocations is the allocation budget of the hot path: S1–S7
// allocate nothing when the caller reuses its context, and evaluating all
// flags allocates only the decisions' slice and its holder, whatever the
// number of flags.
func TestEvaluateAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation budgets are checked in full runs")
	}
	ctx := context.Background()
	for _, s := range scenarios() {
		c := s.client(t)
		s.check(t, c)
		var allocs float64
		budget := 0.0
		if s.flag == "" {
			budget = 2
			allocs = testing.AllocsPerRun(100, func() { _ = c.AllFlags(ctx, s.ctxs[0]) })
			buf := c.AppendAllFlags(ctx, nil, s.ctxs[0])
			if n := testing.AllocsPerRun(100, func() { buf = c.AppendAllFlags(ctx, buf[:0], s.ctxs[0]) }); n != 0 {
				t.Errorf("AppendAllFlags with a reused buffer: %v allocations, want 0", n)
			}
		} else {
			i := 0
			allocs = testing.AllocsPerRun(1000, func() {
				_ = c.BoolDetail(ctx, s.flag, s.ctxs[i%len(s.ctxs)], false)
				i++
			})
		}
		if allocs > budget {
			t.Errorf("%s: %v allocations per evaluation, want <= %v", s.name, allocs, budget)
		}
	}
}

// loadDocument is an n-flag document of simple and ruled flags, half each.
func loadDocument(n int) []byte { return documentOf(n, 2, false) }

// simpleDocument is an n-flag document of simple flags only (on, two bool
// variations, a fixed fallthrough: the most common flag).
func simpleDocument(n int) []byte { return documentOf(n, 0, false) }

// versionedDocument is loadDocument with a distinct version in every flag,
// as a server writes them: no two flags have the same bytes, so none share
// a compiled definition.
func versionedDocument(n int) []byte { return documentOf(n, 2, true) }

// versionedSimpleDocument is simpleDocument with distinct versions.
func versionedSimpleDocument(n int) []byte { return documentOf(n, 0, true) }

// distinctDocument is versionedDocument in which every rule tests a value
// of its own: no two flags with a rule compile to the same definition (the
// simple ones differ only in their versions, and share one).
func distinctDocument(n int) []byte { return documentOf(n, 2, true, true) }

// documentOf builds an n-flag document in which every ruledEvery-th flag
// (0: none) has one rule (testing a value of its own when distinct), and,
// when versioned, flag i has version i+1.
func documentOf(n, ruledEvery int, versioned bool, distinct ...bool) []byte {
	fl := map[string]any{}
	for i := 0; i < n; i++ {
		f := boolFlag(nil)
		if versioned {
			f["version"] = i + 1
		}
		if ruledEvery > 0 && i%ruledEvery == ruledEvery-1 {
			suffix := "@corp.com"
			if len(distinct) > 0 && distinct[0] {
				suffix = fmt.Sprintf("@corp-%05d.com", i)
			}
			f["rules"] = []any{map[string]any{"id": "r", "clauses": []any{
				map[string]any{"attribute": "email", "op": "endsWith", "values": []any{suffix}}},
				"serve": map[string]any{"variation": 1}}}
		}
		fl[fmt.Sprintf("flag-%05d", i)] = f
	}
	data, _ := json.Marshal(flagDoc(fl, nil))
	return data
}

// BenchmarkLoad10000 measures parsing and compiling a 10,000-flag document
// from bytes, the cost of every full snapshot a client receives.
func BenchmarkLoad10000(b *testing.B) { benchmarkLoad(b, loadDocument(10000)) }

// BenchmarkLoad10000Versioned is BenchmarkLoad10000 with a distinct version
// in every flag, as a server writes them: flags that differ only in their
// versions still share a definition.
func BenchmarkLoad10000Versioned(b *testing.B) { benchmarkLoad(b, versionedDocument(10000)) }

// BenchmarkLoad10000Distinct is BenchmarkLoad10000Versioned with a value of
// its own in every rule: the 5,000 flags with a rule are each compiled.
func BenchmarkLoad10000Distinct(b *testing.B) { benchmarkLoad(b, distinctDocument(10000)) }

// BenchmarkLoad10000DistinctPhases is BenchmarkLoad10000Distinct in its two
// steps: reading the document (one goroutine) and compiling it (on up to
// GOMAXPROCS).
func BenchmarkLoad10000DistinctPhases(b *testing.B) {
	data := distinctDocument(10000)
	doc, err := rules.ParseDocument(data)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ParseDocument", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for range b.N {
			if _, err := rules.ParseDocument(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Compile", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			Compile(doc)
		}
	})
}

func benchmarkLoad(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer() // building data is not part of it
	for i := 0; i < b.N; i++ {
		doc, err := rules.ParseDocument(data)
		if err != nil {
			b.Fatal(err)
		}
		if s := Compile(doc); len(s.FlagKeys()) != 10000 {
			b.Fatal("wrong flag count")
		}
	}
}

// BenchmarkHeapPerFlag reports, as held-B/flag, the heap a loaded snapshot
// keeps reachable per flag (its Document included), for a document of
// simple flags and for the mixed document of BenchmarkLoad10000, and for
// both with a distinct version in every flag (no flag shares its compiled
// definition with another). A client holds one snapshot for its lifetime,
// so this is its steady memory cost.
func BenchmarkHeapPerFlag(b *testing.B) {
	for _, c := range []struct {
		name string
		data func(int) []byte
	}{{"Simple", simpleDocument}, {"Mixed", loadDocument},
		{"SimpleVersioned", versionedSimpleDocument}, {"MixedVersioned", versionedDocument}} {
		b.Run(c.name, func(b *testing.B) {
			var total float64
			for i := 0; i < b.N; i++ {
				total += heapPerFlag(b, c.data, 10000)
			}
			b.ReportMetric(total/float64(b.N), "held-B/flag")
		})
	}
}

// TestHeapPerFlag is the memory budget of a loaded snapshot: under 300
// bytes held per simple flag, Document included, whether the flags are
// byte for byte the same or each has a version of its own (BenchmarkHeapPerFlag
// reports the numbers).
func TestHeapPerFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("memory budgets are checked in full runs")
	}
	const budget = 300
	for name, gen := range map[string]func(int) []byte{"simple": simpleDocument, "simple, versioned": versionedSimpleDocument} {
		var held []float64
		for range 3 { // the median, in case another test's goroutine allocates meanwhile
			held = append(held, heapPerFlag(t, gen, 10000))
		}
		slices.Sort(held)
		if held[1] >= budget {
			t.Errorf("a snapshot of 10,000 %s flags holds %.0f bytes a flag, want < %d", name, held[1], budget)
		}
	}
}

// heapPerFlag loads an n-flag document built by gen and returns the heap
// held afterwards per flag: the input bytes are dropped before measuring,
// the snapshot is kept alive.
func heapPerFlag(tb testing.TB, gen func(int) []byte, n int) float64 {
	tb.Helper()
	var before, after runtime.MemStats
	// Two collections each time: a sync.Pool (encoding/json's buffers)
	// frees its garbage only in the second.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	snap := loadSnapshot(tb, gen(n)) // the input is garbage once loaded
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(snap)
	if len(snap.FlagKeys()) != n {
		tb.Fatalf("loaded %d flags, want %d", len(snap.FlagKeys()), n)
	}
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
}

// loadSnapshot is ParseDocument and Compile, in a function of its own so
// that nothing of data outlives it.
//
//go:noinline
func loadSnapshot(tb testing.TB, data []byte) *Snapshot {
	doc, err := rules.ParseDocument(data)
	if err != nil {
		tb.Fatal(err)
	}
	return Compile(doc)
}

// BenchmarkEvaluateDetail is S1–S7 through BoolDetail, which also returns
// the variation, reason and version.
func BenchmarkEvaluateDetail(b *testing.B) {
	ctx := context.Background()
	for _, s := range scenarios() {
		if s.flag == "" {
			continue
		}
		b.Run(s.name, func(b *testing.B) {
			c := s.client(b)
			s.check(b, c)
			b.ReportAllocs()
			n, i := len(s.ctxs), 0
			for b.Loop() {
				_ = c.BoolDetail(ctx, s.flag, s.ctxs[i%n], false)
				i++
			}
		})
	}
}
