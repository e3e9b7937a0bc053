package flags

import (
	"errors"
	"strings"
	"testing"

	"github.com/flagstream/flags/rules"
)

// nestedMaps is n maps, each the "a" of the one before, innermost leaf.
func nestedMaps(n int, leaf any) any {
	v := leaf
	for range n {
		v = map[string]any{"a": v}
	}
	return v
}

// TestContextCycleRefused: the finding "A context holding a cycle
// (ContextFromMap) kills the process with a stack overflow". A map or
// slice that contains itself, directly or deeper, makes the context
// invalid: its evaluations return INVALID_CONTEXT with the error.
func TestContextCycleRefused(t *testing.T) {
	self := map[string]any{"key": "u1"}
	self["self"] = self
	a, b := map[string]any{}, map[string]any{}
	a["b"], b["a"] = b, a
	list := make([]any, 1)
	list[0] = list
	pair := make([]any, 2)
	pair[0] = pair[1:] // a slice of it, whose element is the whole
	pair[1] = pair
	deepEntry := nestedMaps(50, nil).(map[string]any) // a cycle of 20 maps entered 50 levels down
	ring := map[string]any{}
	last := ring
	for range 19 {
		next := map[string]any{}
		last["next"] = next
		last = next
	}
	last["next"] = ring
	leaf := deepEntry
	for leaf["a"] != nil {
		leaf = leaf["a"].(map[string]any)
	}
	leaf["a"] = ring
	type named []any // read by reflection, not as []any
	typed := make(named, 1)
	typed[0] = typed
	type tree map[string]tree
	loop := tree{}
	loop["self"] = loop
	var deepArray [1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1]int

	snap := ctxTestSnapshot(t, ctxTestDoc)
	for _, tc := range []struct {
		name string
		ctx  Context
		want string // in the error
	}{
		{"a map holding itself", ContextFromMap(self), `attribute "self": contains itself (a cycle)`},
		{"two maps holding each other", ContextFromMap(map[string]any{"key": "u1", "org": a}), `attribute "org": contains itself (a cycle)`},
		{"a slice holding itself", ContextFromMap(map[string]any{"key": "u1", "l": list}), `attribute "l": contains itself (a cycle)`},
		{"through a slice of a slice", ContextFromMap(map[string]any{"key": "u1", "l": pair}), `attribute "l": contains itself (a cycle)`},
		{"a cycle entered deep", ContextFromMap(map[string]any{"key": "u1", "d": deepEntry}), `attribute "d": `},
		{"ContextBuilder.Set", NewContext("u1").Set("org", a).Build(), `attribute "org": contains itself (a cycle)`},
		{"a named slice holding itself", NewContext("u1").Set("l", typed).Build(), `attribute "l": contains itself (a cycle)`},
		{"a named map holding itself", NewContext("u1").Set("t", loop).Build(), `attribute "t": contains itself (a cycle)`},
		{"arrays too deep", NewContext("u1").Set("a", deepArray).Build(), `attribute "a": ` + rules.ErrTooDeep.Error()},
		{"a cycle beside a good attribute", ContextFromMap(map[string]any{"key": "u1", "org": map[string]any{"plan": "pro"}, "l": list}),
			`attribute "l": contains itself (a cycle)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ctx.Err()
			if !errors.Is(err, ErrInvalidContext) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Err() = %v, want ErrInvalidContext with %q", err, tc.want)
			}
			r := Evaluate(snap, "f", tc.ctx, nil)
			if r.Reason.ErrorKind != ErrorInvalidContext || !errors.Is(r.Err, ErrInvalidContext) || r.Err.Error() != err.Error() {
				t.Errorf("Evaluate: reason %+v, err %v; want INVALID_CONTEXT with %v", r.Reason, r.Err, err)
			}
		})
	}
	// A value shared without a cycle is fine, and kept.
	shared := map[string]any{"plan": "pro"}
	if c := ContextFromMap(map[string]any{"key": "u1", "org": shared, "team": map[string]any{"org": shared}}); c.Err() != nil {
		t.Errorf("a map shared by two attributes: %v", c.Err())
	}
}

// TestContextNestingBounded: SPEC §13, a context nests at most 64 levels
// of objects and arrays, the context itself level 1: deeper, ContextFromJSON
// fails and a context built in Go is invalid. A value built with sharing
// that would take 2^60 copies is refused too, quickly.
func TestContextNestingBounded(t *testing.T) {
	for _, tc := range []struct {
		levels int // of the context, itself included
		ok     bool
	}{{2, true}, {64, true}, {65, false}, {10_000, false}} {
		json := `{"key":"u1","a":` + strings.Repeat(`{"a":`, tc.levels-2) + `[]` + strings.Repeat("}", tc.levels-2) + `}`
		c, err := ContextFromJSON([]byte(json))
		switch {
		case tc.ok && (err != nil || c.Err() != nil):
			t.Errorf("ContextFromJSON of %d levels: %v, %v; want a valid context", tc.levels, err, c.Err())
		case !tc.ok && !errors.Is(err, rules.ErrTooDeep):
			t.Errorf("ContextFromJSON of %d levels: %v; want an error wrapping rules.ErrTooDeep", tc.levels, err)
		}
		// The same in Go: the attribute is level 2, its innermost slice
		// level tc.levels.
		c = ContextFromMap(map[string]any{"key": "u1", "a": nestedMaps(tc.levels-2, []any{})})
		if tc.ok != (c.Err() == nil) || !tc.ok && !errors.Is(c.Err(), rules.ErrTooDeep) {
			t.Errorf("ContextFromMap of %d levels: %v; want valid %v", tc.levels, c.Err(), tc.ok)
		}
	}
	if _, err := ContextFromJSON([]byte(`{"key":"u1","s":"` + strings.Repeat("[", 100) + `"}`)); err != nil {
		t.Errorf("brackets in a string count as nesting: %v", err)
	}

	dag := any("leaf")
	for range 60 {
		dag = map[string]any{"x": dag, "y": dag}
	}
	c := ContextFromMap(map[string]any{"key": "u1", "dag": dag})
	if err := c.Err(); !errors.Is(err, ErrInvalidContext) || !strings.Contains(err.Error(), "holds more than") {
		t.Errorf("a 2^60-value DAG: %v, want an invalid context", err)
	}
}

// TestContextFromMapAllocs: bounding nesting and cycles costs the common
// path nothing: the allocations of ContextFromMap are those of the copy.
func TestContextFromMapAllocs(t *testing.T) {
	m := map[string]any{"key": "u1", "email": "ann@corp.com", "n": 3, "org": map[string]any{"id": "uni-7", "plan": "pro"},
		"tags": []any{"a", "b"}}
	allocs := testing.AllocsPerRun(100, func() { _ = ContextFromMap(m) })
	// The copies of the maps (with their buckets) and of the slice, the
	// attribute list, the boxed float of n: 9, as before the limits.
	if allocs > 9 {
		t.Errorf("ContextFromMap allocates %.0f times, want at most 9", allocs)
	}
}

func BenchmarkContextFromMap(b *testing.B) {
	m := map[string]any{"key": "u1", "email": "ann@corp.com", "n": 3, "org": map[string]any{"id": "uni-7", "plan": "pro"},
		"tags": []any{"a", "b"}}
	b.ReportAllocs()
	for range b.N {
		_ = ContextFromMap(m)
	}
}
