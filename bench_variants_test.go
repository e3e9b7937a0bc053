package flags

import (
	"context"
	"fmt"
	"testing"
)

// Variants of S3, S7 and S8 without the shapes the compiler exploits. In
// S3 the nine rules that do not match are identical (the compiler skips
// eight of them as unreachable and computes their clauses once); in S7 every
// flag of the chain is constant (the chain is folded); in S8 all 1,000 flags
// are alike. These variants make every rule and every flag distinct and
// nothing constant, so that docs/PERFORMANCE.md can report what those
// optimizations are worth and what a document without them costs.

func distinctScenarios() []scenario {
	user := NewContext("user-500").Set("email", "ann@corp.com").Set("country", "fr").
		Set("appVersion", "2.10.1").Build()
	var rs []any
	for i := 0; i < 10; i++ {
		suffix, countries := fmt.Sprintf("@corp%d.com", i), []any{"de", fmt.Sprintf("c%d", i), "es"}
		if i == 9 {
			suffix, countries = "@corp.com", []any{"de", "fr", "es"}
		}
		rs = append(rs, map[string]any{"id": fmt.Sprintf("r%d", i), "clauses": []any{
			map[string]any{"attribute": "email", "op": "endsWith", "values": []any{suffix}},
			map[string]any{"attribute": "country", "op": "in", "values": countries},
		}, "serve": map[string]any{"variation": 1}})
	}
	allFlags := map[string]any{}
	for i := 0; i < 1000; i++ {
		allFlags[fmt.Sprintf("flag-%04d", i)] = boolFlag(map[string]any{"rules": []any{map[string]any{
			"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []any{"fr", fmt.Sprintf("x%d", i)}}},
			"serve":   map[string]any{"variation": 1}}}})
	}
	// S7 with a rule in each prerequisite (country in [fr], which the user
	// matches): nothing is constant, so the chain is walked.
	ruled := func(prereq string) map[string]any {
		extra := map[string]any{"rules": []any{map[string]any{
			"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []any{"fr"}}},
			"serve":   map[string]any{"variation": 1}}}}
		if prereq != "" {
			extra["prerequisites"] = []any{map[string]any{"flag": prereq, "variation": 1}}
		}
		return boolFlag(extra)
	}
	return []scenario{
		{name: "S7_UnfoldedChain", flag: "f0", ctxs: []Context{user}, want: true,
			doc: flagDoc(map[string]any{"f0": ruled("f1"), "f1": ruled("f2"), "f2": ruled("f3"), "f3": ruled("")}, nil)},
		{name: "S3_10DistinctRules", flag: "f", ctxs: []Context{user}, want: true,
			doc: flagDoc(map[string]any{"f": boolFlag(map[string]any{"rules": rs})}, nil)},
		{name: "S8_AllFlags1000Distinct", ctxs: []Context{user}, doc: flagDoc(allFlags, nil)},
	}
}

// TestDistinctScenariosAreDistinct guards the variants: nothing in them is
// skipped or shared, so they measure the evaluator without those shortcuts.
func TestDistinctScenariosAreDistinct(t *testing.T) {
	for _, s := range distinctScenarios() {
		c := s.client(t)
		s.check(t, c)
		for _, f := range c.Snapshot().compiled().Flags() {
			if f.Constant {
				t.Errorf("%s: flag %s is constant", s.name, f.Key)
			}
			if f.HasMemos() {
				t.Errorf("%s: flag %s has repeated clauses", s.name, f.Key)
			}
			for i := range f.Rules {
				if f.Rules[i].Unreachable() {
					t.Errorf("%s: flag %s rule %d is unreachable", s.name, f.Key, i)
				}
			}
		}
	}
}

func BenchmarkEvaluateDistinct(b *testing.B) {
	ctx := context.Background()
	for _, s := range distinctScenarios() {
		b.Run(s.name, func(b *testing.B) {
			c := s.client(b)
			s.check(b, c)
			b.ReportAllocs()
			if s.flag == "" {
				buf := c.AppendAllFlags(ctx, nil, s.ctxs[0])
				for b.Loop() {
					buf = c.AppendAllFlags(ctx, buf[:0], s.ctxs[0])
				}
				return
			}
			for b.Loop() {
				_ = c.Bool(ctx, s.flag, s.ctxs[0], false)
			}
		})
	}
}
