package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mustCompile parses and compiles a document that must parse.
func mustCompile(t *testing.T, doc string) *Snapshot {
	t.Helper()
	d, err := ParseDocument([]byte(doc))
	if err != nil {
		t.Fatalf("ParseDocument: %v", err)
	}
	return Compile(d)
}

// problemStrings formats problems as Error() strings, in order.
func problemStrings(ps []*Problem) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

// withGood builds a flag object from extra fields and those of a minimal
// well-formed flag that extra does not write itself (a member named twice
// is a problem of its own).
func withGood(extra string) string {
	var members []string
	for _, m := range []string{`"on":true`, `"variations":[false,true]`, `"fallthrough":{"variation":0}`} {
		if name, _, _ := strings.Cut(m, ":"); !strings.HasPrefix(extra, name+":") && !strings.Contains(extra, ","+name+":") {
			members = append(members, m)
		}
	}
	if extra != "" {
		members = append(members, extra)
	}
	return "{" + strings.Join(members, ",") + "}"
}

func TestCompileFlagProblems(t *testing.T) {
	rule := func(clause string) string {
		return withGood(`"rules":[{"id":"r","clauses":[` + clause + `],"serve":{"variation":1}}]`)
	}
	ro := func(rollout string) string {
		return `{"on":true,"variations":[false,true],"fallthrough":{"rollout":` + rollout + `}}`
	}
	const c0 = "flags.x.rules[0].clauses[0]"
	const fr = "flags.x.fallthrough.rollout"
	tests := []struct {
		name string
		flag string
		want []string
	}{
		{"not an object", `[]`, []string{`flags.x: got an array, want an object`}},
		{"null", `null`, []string{`flags.x: got null, want an object`}},
		{"string", `"on"`, []string{`flags.x: got a string, want an object`}},
		{"version string", withGood(`"version":"3"`), []string{`flags.x.version: got a string, want an integer`}},
		{"version negative", withGood(`"version":-1`), []string{`flags.x.version: must be >= 0`}},
		{"version fraction", withGood(`"version":1.5`), []string{`flags.x.version: 1.5 is not an integer`}},
		{"on string", withGood(`"on":"yes"`), []string{`flags.x.on: got a string, want a bool`}},
		{"variations missing", `{"on":true,"fallthrough":{"variation":0}}`,
			[]string{`flags.x.variations: missing (at least one variation is required)`}},
		{"variations empty", `{"variations":[],"fallthrough":{"variation":0}}`,
			[]string{`flags.x.variations: empty (at least one variation is required)`}},
		{"variations object", `{"variations":{"a":1},"fallthrough":{"variation":0}}`,
			[]string{`flags.x.variations: got an object, want an array`}},
		{"variations mixed", `{"variations":[true,"a",1],"fallthrough":{"variation":0}}`, []string{
			`flags.x.variations[1]: is a string but variations[0] is a bool: all variations must have one type`,
			`flags.x.variations[2]: is a number but variations[0] is a bool: all variations must have one type`}},
		{"variation null", `{"variations":[null],"fallthrough":{"variation":0}}`,
			[]string{`flags.x.variations[0]: got null, want a bool, string, number, object or array`}},
		{"variation out of range", `{"variations":[1e400],"fallthrough":{"variation":0}}`,
			[]string{`flags.x.variations[0]: number 1e400 out of range`}},
		{"offVariation too big", withGood(`"offVariation":2`),
			[]string{`flags.x.offVariation: index 2 out of range: the flag has 2 variations`}},
		{"offVariation negative", withGood(`"offVariation":-1`),
			[]string{`flags.x.offVariation: index -1 out of range: the flag has 2 variations`}},
		{"offVariation string", withGood(`"offVariation":"0"`), []string{`flags.x.offVariation: got a string, want an integer`}},
		{"offVariation fraction", withGood(`"offVariation":0.5`), []string{`flags.x.offVariation: 0.5 is not an integer`}},
		{"fallthrough missing", `{"variations":[1]}`, []string{`flags.x.fallthrough: missing (required)`}},
		{"fallthrough both", `{"variations":[1],"fallthrough":{"variation":0,"rollout":{}}}`,
			[]string{`flags.x.fallthrough: has both variation and rollout: want exactly one`}},
		{"fallthrough neither", `{"variations":[1],"fallthrough":{}}`,
			[]string{`flags.x.fallthrough: has neither variation nor rollout: want exactly one`}},
		{"fallthrough number", `{"variations":[1],"fallthrough":0}`, []string{`flags.x.fallthrough: got a number, want an object`}},
		{"fallthrough index", `{"variations":[1],"fallthrough":{"variation":5}}`,
			[]string{`flags.x.fallthrough.variation: index 5 out of range: the flag has 1 variations`}},
		{"salt number", withGood(`"salt":7`), []string{`flags.x.salt: got a number, want a string`}},
		{"metadata types", withGood(`"description":1,"deprecated":"no","tags":["a",2]`), []string{
			`flags.x.deprecated: got a string, want a bool`, `flags.x.description: got a number, want a string`,
			`flags.x.tags[1]: got a number, want a string`}},
		{"prerequisites object", withGood(`"prerequisites":{}`), []string{`flags.x.prerequisites: got an object, want an array`}},
		{"prerequisite string", withGood(`"prerequisites":["y"]`), []string{`flags.x.prerequisites[0]: got a string, want an object`}},
		{"prerequisite no flag", withGood(`"prerequisites":[{"variation":0}]`), []string{`flags.x.prerequisites[0].flag: missing flag key`}},
		{"prerequisite no variation", withGood(`"prerequisites":[{"flag":"y"}]`), []string{`flags.x.prerequisites[0].variation: missing`}},
		{"prerequisite negative", withGood(`"prerequisites":[{"flag":"y","variation":-1}]`),
			[]string{`flags.x.prerequisites[0].variation: must be >= 0`}},
		{"target no variation", withGood(`"targets":[{"values":["u1"]}]`), []string{`flags.x.targets[0].variation: missing`}},
		{"target value object", withGood(`"targets":[{"values":["u1",{}],"variation":1}]`),
			[]string{`flags.x.targets[0].values[1]: got an object, want a string, number or bool`}},
		{"target bad path", withGood(`"targets":[{"attribute":"a..b","values":["u1"],"variation":1}]`),
			[]string{`flags.x.targets[0].attribute: invalid attribute path "a..b"`}},
		{"target path number", withGood(`"targets":[{"attribute":1,"values":["u1"],"variation":1}]`),
			[]string{`flags.x.targets[0].attribute: got a number, want an attribute path`}},
		{"target index", withGood(`"targets":[{"values":["u1"],"variation":2}]`),
			[]string{`flags.x.targets[0].variation: index 2 out of range: the flag has 2 variations`}},
		{"rule number", withGood(`"rules":[1]`), []string{`flags.x.rules[0]: got a number, want an object`}},
		{"rule no serve", withGood(`"rules":[{"id":"r"}]`), []string{`flags.x.rules[0].serve: missing`}},
		{"rule id number", withGood(`"rules":[{"id":1,"serve":{"variation":0}}]`), []string{`flags.x.rules[0].id: got a number, want a string`}},
		{"clauses object", withGood(`"rules":[{"clauses":{},"serve":{"variation":0}}]`),
			[]string{`flags.x.rules[0].clauses: got an object, want an array`}},
		{"unknown op in rule 2", withGood(`"rules":[{"serve":{"variation":0}},{"serve":{"variation":0}},
			{"clauses":[{"attribute":"a","op":"eq","values":[1]}],"serve":{"variation":1}}]`),
			[]string{`flags.x.rules[2].clauses[0].op: unknown operator "eq"`}},
		{"op missing", rule(`{"attribute":"a","values":[1]}`), []string{c0 + `.op: missing`}},
		{"attribute missing", rule(`{"op":"in","values":[1]}`), []string{c0 + `.attribute: missing`}},
		{"attribute empty", rule(`{"attribute":"","op":"in","values":[1]}`), []string{c0 + `.attribute: invalid attribute path ""`}},
		{"attribute trailing dot", rule(`{"attribute":"org.","op":"in","values":[1]}`), []string{c0 + `.attribute: invalid attribute path "org."`}},
		{"values missing", rule(`{"attribute":"a","op":"in"}`), []string{c0 + `.values: missing`}},
		{"values string", rule(`{"attribute":"a","op":"in","values":"x"}`), []string{c0 + `.values: got a string, want an array`}},
		{"in object", rule(`{"attribute":"a","op":"in","values":[{}]}`), []string{c0 + `.values[0]: got an object, want a string, number or bool`}},
		{"in null", rule(`{"attribute":"a","op":"in","values":["a",null]}`), []string{c0 + `.values[1]: got null, want a string, number or bool`}},
		{"startsWith number", rule(`{"attribute":"a","op":"startsWith","values":["a",1]}`), []string{c0 + `.values[1]: got a number, want a string`}},
		{"endsWith bool", rule(`{"attribute":"a","op":"endsWith","values":[true]}`), []string{c0 + `.values[0]: got a bool, want a string`}},
		{"contains array", rule(`{"attribute":"a","op":"contains","values":[["a"]]}`), []string{c0 + `.values[0]: got an array, want a string`}},
		{"matches number", rule(`{"attribute":"a","op":"matches","values":[1]}`), []string{c0 + `.values[0]: got a number, want a string`}},
		{"matches bad regex", rule(`{"attribute":"a","op":"matches","values":["ok","("]}`),
			[]string{c0 + ".values[1]: invalid regular expression: error parsing regexp: missing closing ): `(`"}},
		{"lessThan string", rule(`{"attribute":"a","op":"lessThan","values":["6"]}`), []string{c0 + `.values[0]: got a string, want a number`}},
		{"gte bool", rule(`{"attribute":"a","op":"greaterThanOrEqual","values":[true]}`), []string{c0 + `.values[0]: got a bool, want a number`}},
		{"before bool", rule(`{"attribute":"a","op":"before","values":[true]}`),
			[]string{c0 + `.values[0]: got a bool, want an RFC 3339 string or Unix milliseconds`}},
		{"after object", rule(`{"attribute":"a","op":"after","values":[{}]}`),
			[]string{c0 + `.values[0]: got an object, want an RFC 3339 string or Unix milliseconds`}},
		{"semver number", rule(`{"attribute":"a","op":"semVerEqual","values":[1]}`), []string{c0 + `.values[0]: got a number, want a version string`}},
		{"inSegment number", rule(`{"op":"inSegment","values":[1]}`), []string{c0 + `.values[0]: got a number, want a string`}},
		{"negate string", rule(`{"attribute":"a","op":"in","values":[1],"negate":"yes"}`), []string{c0 + `.negate: got a string, want a bool`}},
		{"clause number", rule(`3`), []string{c0 + `: got a number, want an object`}},
		{"rollout weights sum", ro(`{"variations":[{"variation":0,"weight":50000},{"variation":1,"weight":49999}]}`),
			[]string{fr + `.variations: weights sum to 99999, want 100000`}},
		{"rollout weight missing", ro(`{"variations":[{"variation":0,"weight":100000},{"variation":1}]}`),
			[]string{fr + `.variations[1].weight: missing`}},
		{"rollout weight out of range", ro(`{"variations":[{"variation":0,"weight":100001},{"variation":1,"weight":-1}]}`),
			[]string{fr + `.variations[0].weight: 100001 is outside 0..100000`, fr + `.variations[1].weight: -1 is outside 0..100000`}},
		{"rollout weight fraction", ro(`{"variations":[{"variation":0,"weight":100000.5}]}`),
			[]string{fr + `.variations: weights sum to 0, want 100000`, fr + `.variations[0].weight: 100000.5 is not an integer`}},
		{"rollout index", ro(`{"variations":[{"variation":7,"weight":100000}]}`),
			[]string{fr + `.variations[0].variation: index 7 out of range: the flag has 2 variations`}},
		{"rollout no variations", ro(`{"variations":[]}`), []string{fr + `.variations: want at least one weighted variation`}},
		{"rollout bucketBy", ro(`{"bucketBy":"a..b","variations":[{"variation":0,"weight":100000}]}`),
			[]string{fr + `.bucketBy: invalid attribute path "a..b"`}},
		{"rollout experiment", ro(`{"experiment":1,"variations":[{"variation":0,"weight":100000}]}`),
			[]string{fr + `.experiment: got a number, want a bool`}},
		{"rollout string", ro(`"50/50"`), []string{fr + `: got a string, want an object`}},
		{"schedule at", ro(`{"variations":[{"variation":0},{"variation":1}],"schedule":[{"at":"soon","weights":[0,100000]}]}`),
			[]string{fr + `.schedule[0].at: "soon" is not an RFC 3339 time or Unix milliseconds`}},
		{"schedule at missing", ro(`{"variations":[{"variation":0},{"variation":1}],"schedule":[{"weights":[0,100000]}]}`),
			[]string{fr + `.schedule[0].at: missing`}},
		{"schedule order", ro(`{"variations":[{"variation":0},{"variation":1}],"schedule":[
			{"at":"2026-02-01T00:00:00Z","weights":[0,100000]},{"at":"2026-01-01T00:00:00Z","weights":[100000,0]}]}`),
			[]string{fr + `.schedule[1].at: steps must be in increasing time order`}},
		{"schedule same instant", ro(`{"variations":[{"variation":0},{"variation":1}],"schedule":[
			{"at":1000,"weights":[0,100000]},{"at":1000,"weights":[100000,0]}]}`),
			[]string{fr + `.schedule[1].at: steps must be in increasing time order`}},
		{"schedule weights count", ro(`{"variations":[{"variation":0},{"variation":1}],"schedule":[{"at":0,"weights":[100000]}]}`),
			[]string{fr + `.schedule[0].weights: has 1 weights for 2 variations`}},
		{"schedule weights sum", ro(`{"variations":[{"variation":0},{"variation":1}],"schedule":[{"at":0,"weights":[2,3]}]}`),
			[]string{fr + `.schedule[0].weights: sum to 5, want 100000`}},
		{"schedule weight out of range", ro(`{"variations":[{"variation":0},{"variation":1}],"schedule":[{"at":0,"weights":[100001,-1]}]}`),
			[]string{fr + `.schedule[0].weights[0]: 100001 is outside 0..100000`, fr + `.schedule[0].weights[1]: -1 is outside 0..100000`}},
		{"schedule empty", ro(`{"variations":[{"variation":0},{"variation":1}],"schedule":[]}`),
			[]string{fr + `.schedule: empty: omit it or give at least one step`}},
		{"schedule with bad static weights", ro(`{"variations":[{"variation":0,"weight":1},{"variation":1,"weight":1}],
			"schedule":[{"at":0,"weights":[0,100000]}]}`), []string{fr + `.variations: weights sum to 2, want 100000`}},
		{"rule rollout", withGood(`"rules":[{"serve":{"rollout":{"variations":[{"variation":0,"weight":1}]}}}]`),
			[]string{`flags.x.rules[0].serve.rollout.variations: weights sum to 1, want 100000`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := compileOneFlag(t, tc.flag)
			got := problemStrings(f.Problems)
			// Problems are in the order found; compare as a set, sorted.
			if diff := cmp.Diff(sortedStrings(tc.want), sortedStrings(got)); diff != "" {
				t.Errorf("flag %s: problems mismatch (-want +got):\n%s", tc.flag, diff)
			}
			if f.Err == nil || f.Err != error(f.Problems[0]) {
				t.Errorf("Err = %v, want the first problem %v", f.Err, f.Problems)
			}
			if !errors.Is(f.Err, ErrMalformed) {
				t.Errorf("errors.Is(%v, ErrMalformed) = false", f.Err)
			}
		})
	}
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestCompileWellFormed lists shapes that must not be problems.
func TestCompileWellFormed(t *testing.T) {
	tests := []struct{ name, flag string }{
		{"minimal", `{"variations":["a"],"fallthrough":{"variation":0}}`},
		{"json variations mix objects and arrays", `{"variations":[{"a":1},[1,2],{}],"fallthrough":{"variation":2}}`},
		{"number variations", `{"variations":[1,2.5,-3e2],"fallthrough":{"variation":1}}`},
		{"null optional fields", withGood(`"version":null,"salt":null,"offVariation":null,"prerequisites":null,
			"targets":null,"rules":null,"tags":null,"description":null`)},
		{"unknown fields everywhere", withGood(`"future":{"x":[1]},"targets":[{"values":["u"],"variation":1,"why":"vip"}],
			"rules":[{"id":"r","color":"red","clauses":[{"attribute":"a","op":"in","values":[1],"hint":1}],
			"serve":{"variation":1,"note":"x"}}],"prerequisites":[{"flag":"x2","variation":0,"since":3}]`)},
		{"exists without values", withGood(`"rules":[{"clauses":[{"attribute":"a","op":"exists"}],"serve":{"variation":1}}]`)},
		{"inSegment without attribute", withGood(`"rules":[{"clauses":[{"op":"inSegment","values":["nope"]}],"serve":{"variation":1}}]`)},
		{"inSegment ignores attribute", withGood(`"rules":[{"clauses":[{"attribute":7,"op":"inSegment","values":["s"]}],"serve":{"variation":1}}]`)},
		{"rule without clauses", withGood(`"rules":[{"serve":{"variation":1}}]`)},
		{"unparsable instant and version values", withGood(`"rules":[{"clauses":[
			{"attribute":"a","op":"before","values":["junk"]},{"attribute":"a","op":"semVerEqual","values":["x.y"]}],
			"serve":{"variation":1}}]`)},
		{"prerequisite on unknown flag", withGood(`"prerequisites":[{"flag":"ghost","variation":9}]`)},
		{"schedule without static weights", `{"variations":[false,true],"on":true,"fallthrough":{"rollout":{
			"variations":[{"variation":0},{"variation":1}],
			"schedule":[{"at":"2026-12-01T00:00:00Z","weights":[100000,0]},{"at":1796688000000,"weights":[0,100000]}]}}}`},
		{"zero weights", `{"variations":[false,true],"fallthrough":{"rollout":{
			"variations":[{"variation":0,"weight":0},{"variation":1,"weight":100000}]}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := compileOneFlag(t, tc.flag)
			if len(f.Problems) != 0 || f.Err != nil {
				t.Errorf("flag %s: problems %q, want none", tc.flag, problemStrings(f.Problems))
			}
		})
	}
}

// TestCompileWeightOverflow: weights that wrap int64 must not add up to 100000.
func TestCompileWeightOverflow(t *testing.T) {
	const max = "9223372036854775807"
	tests := []struct{ name, flag string }{
		{"static", `{"variations":[0,1,2],"fallthrough":{"rollout":{"variations":[
			{"variation":0,"weight":` + max + `},{"variation":1,"weight":` + max + `},{"variation":2,"weight":100002}]}}}`},
		{"schedule", `{"variations":[0,1,2],"fallthrough":{"rollout":{"variations":[{"variation":0},{"variation":1},{"variation":2}],
			"schedule":[{"at":0,"weights":[` + max + `,` + max + `,100002]}]}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := compileOneFlag(t, tc.flag)
			if f.Err == nil {
				t.Errorf("weights [2^63-1, 2^63-1, 100002] (wrapping to 100000 in int64): Err = nil, want malformed")
			}
		})
	}
}

// TestCompileFields checks every field a compiled flag carries, for a
// flag of each kind, against the document that wrote it.
func TestCompileFields(t *testing.T) {
	s := mustCompile(t, `{"flags":{
		"f": {"version":4,"on":true,"salt":"s1","variations":["a","b","c"],"offVariation":2,
			"description":"d","tags":["t1","t2"],"deprecated":true,
			"prerequisites":[{"flag":"g","variation":1}],
			"targets":[{"values":["u1",2,true],"variation":1},{"attribute":"org.id","values":["o"],"variation":2}],
			"rules":[{"id":"r0","description":"rd","clauses":[{"attribute":"a","op":"in","values":[1]}],
				"serve":{"rollout":{"variations":[{"variation":0,"weight":40000},{"variation":1,"weight":60000}]}}},
				{"id":"r1","serve":{"rollout":{"salt":"rs","bucketBy":"org.id","experiment":true,
				"variations":[{"variation":2,"weight":100000}]}}}],
			"fallthrough":{"variation":1}},
		"g": {"variations":[{"k":1},[2]],"fallthrough":{"rollout":{"variations":[{"variation":1,"weight":100000}]}}},
		"h": {"variations":[1.5,-2],"fallthrough":{"variation":0}},
		"i": {"variations":[true,false],"fallthrough":{"variation":0}}}}`)
	f := s.Flag("f")
	if f.Err != nil {
		t.Fatalf("f: %v", f.Err)
	}
	t.Run("header", func(t *testing.T) {
		checkFlagHeader(t, f, flagHeader{Key: "f", Version: 4, On: true, Kind: KindString, OffVariation: 2, Salt: "s1",
			Description: "d", Deprecated: true, Tags: []string{"t1", "t2"}})
	})
	t.Run("prerequisites", func(t *testing.T) {
		if diff := cmp.Diff([]Prerequisite{{Key: "g", Variation: 1}}, f.Prerequisites); diff != "" {
			t.Errorf("prerequisites (-want +got):\n%s", diff)
		}
	})
	t.Run("targets", func(t *testing.T) { checkCompiledTargets(t, f.Targets) })
	t.Run("rules", func(t *testing.T) {
		want := []compiledRule{
			// Rule 0's rollout takes the flag's salt, s1, and buckets by key.
			{ID: "r0", Description: "rd", Clauses: 1, Rollout: &compiledRollout{Salt: "s1", BucketBy: "key",
				Variations: []int{0, 1}, Weights: []int64{40000, 60000}}},
			{ID: "r1", Rollout: &compiledRollout{Salt: "rs", BucketBy: "org.id", Experiment: true,
				Variations: []int{2}, Weights: []int64{100000}}},
		}
		if diff := cmp.Diff(want, compiledRules(f.Rules)); diff != "" {
			t.Errorf("rules (-want +got):\n%s", diff)
		}
	})
	t.Run("fallthrough", func(t *testing.T) {
		if f.Fallthrough.Rollout != nil || f.Fallthrough.Variation != 1 {
			t.Errorf("fallthrough = %+v", f.Fallthrough)
		}
	})
	t.Run("string variations", func(t *testing.T) {
		wantVars := []Variation{{Value: "a", JSON: json.RawMessage(`"a"`), String: "a"},
			{Value: "b", JSON: json.RawMessage(`"b"`), String: "b"}, {Value: "c", JSON: json.RawMessage(`"c"`), String: "c"}}
		if diff := cmp.Diff(wantVars, f.Variations); diff != "" {
			t.Errorf("f variations (-want +got):\n%s", diff)
		}
	})
	t.Run("json flag with defaults", func(t *testing.T) { checkCompiledJSONFlag(t, s.Flag("g")) })
	t.Run("number variations", func(t *testing.T) {
		checkVariations(t, s.Flag("h"), KindNumber, []Variation{{Value: 1.5, JSON: json.RawMessage(`1.5`), Number: 1.5},
			{Value: -2.0, JSON: json.RawMessage(`-2`), Number: -2}})
	})
	t.Run("bool variations", func(t *testing.T) {
		checkVariations(t, s.Flag("i"), KindBool, []Variation{{Value: true, JSON: json.RawMessage(`true`), Bool: true},
			{Value: false, JSON: json.RawMessage(`false`)}})
	})
}

// TestKindString: every Kind has its name, and anything else is unknown.
func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindBool: "bool", KindString: "string", KindNumber: "number", KindJSON: "json", 0: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// flagHeader is a compiled flag's scalar fields and tags, compared as one.
type flagHeader struct {
	Key               string
	Version           int64
	On                bool
	Kind              Kind
	OffVariation      int
	Salt, Description string
	Deprecated        bool
	Tags              []string
}

// checkFlagHeader compares f's scalar fields and tags with want.
func checkFlagHeader(t *testing.T, f *Flag, want flagHeader) {
	t.Helper()
	got := flagHeader{Key: f.Key, Version: f.Version, On: f.On, Kind: f.Kind, OffVariation: f.OffVariation,
		Salt: f.Salt(), Description: f.Description, Deprecated: f.Deprecated, Tags: f.Tags}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s header (-want +got):\n%s", f.Key, diff)
	}
}

// checkCompiledTargets checks TestCompileFields' two targets: u1, 2 and
// true by key on variation 1, o by org.id on variation 2.
func checkCompiledTargets(t *testing.T, targets []Target) {
	t.Helper()
	if len(targets) != 2 {
		t.Fatalf("targets = %+v, want 2", targets)
	}
	if targets[0].Attribute.String() != "key" || targets[1].Attribute.String() != "org.id" ||
		targets[0].Variation != 1 || targets[1].Variation != 2 {
		t.Errorf("targets = %+v, want key on variation 1, org.id on variation 2", targets)
	}
	for _, v := range []any{"u1", 2.0, true} {
		if !targets[0].Values.Contains(v) {
			t.Errorf("target 0 values %+v lack %v", targets[0].Values, v)
		}
	}
	if targets[0].Values.Len() != 3 || !targets[1].Values.Contains("o") || targets[1].Values.Len() != 1 {
		t.Errorf("targets = %+v, want values u1, 2, true and o", targets)
	}
}

// compiledRule is what a compiled rule holds, its clauses counted, for
// comparison.
type compiledRule struct {
	ID, Description string
	Clauses         int
	Rollout         *compiledRollout
}

// compiledRollout is what a compiled rollout resolves, for comparison.
type compiledRollout struct {
	Salt, BucketBy string
	Experiment     bool
	Variations     []int
	Weights        []int64
}

// compiledRules is what rules hold, for comparison.
func compiledRules(rules []Rule) []compiledRule {
	out := make([]compiledRule, 0, len(rules))
	for _, r := range rules {
		rf := compiledRule{ID: r.ID, Description: r.Description, Clauses: len(r.Clauses)}
		if ro := r.Serve.Rollout; ro != nil {
			rf.Rollout = &compiledRollout{Salt: ro.Salt, BucketBy: ro.BucketBy.String(), Experiment: ro.Experiment,
				Variations: ro.Variations, Weights: ro.Weights}
		}
		out = append(out, rf)
	}
	return out
}

// checkCompiledJSONFlag checks TestCompileFields' flag g: of JSON kind,
// without offVariation or salt (its salt, and its rollout's, is its key).
func checkCompiledJSONFlag(t *testing.T, g *Flag) {
	t.Helper()
	if g.Err != nil || g.Kind != KindJSON || g.OffVariation != -1 || g.Salt() != "g" || g.Fallthrough.Rollout.Salt != "g" {
		t.Errorf("g = %+v, want json kind, no offVariation, salt defaults to key", *g)
	}
	if diff := cmp.Diff([]Variation{{Value: map[string]any{"k": 1.0}, JSON: json.RawMessage(`{"k":1}`)},
		{Value: []any{2.0}, JSON: json.RawMessage(`[2]`)}}, g.Variations); diff != "" {
		t.Errorf("g variations (-want +got):\n%s", diff)
	}
}

// checkVariations checks f's kind and variations.
func checkVariations(t *testing.T, f *Flag, kind Kind, want []Variation) {
	t.Helper()
	if f.Kind != kind {
		t.Errorf("%s kind = %v, want %v", f.Key, f.Kind, kind)
	}
	if diff := cmp.Diff(want, f.Variations); diff != "" {
		t.Errorf("%s variations (-want +got):\n%s", f.Key, diff)
	}
}

func TestCompileSegments(t *testing.T) {
	s := mustCompile(t, `{"segments":{
		"ok": {"version":3,"included":["u1",7],"excluded":["u9"],"attribute":"email",
			"rules":[{"id":"r1","clauses":[{"attribute":"plan","op":"in","values":["pro"]}],"weight":25000,"bucketBy":"org.id","salt":"x"},
				{"id":"r2"}]},
		"defaults": {},
		"bad": {"version":-2,"included":[{}],"attribute":"..","rules":[{"weight":100001},{"weight":1.5},{"salt":3},
			{"clauses":[{"attribute":"a","op":"eq","values":[1]}]}, "r"]},
		"arr": [],
		"bad key!": {}}}`)
	t.Run("ok", func(t *testing.T) { checkCompiledSegmentOK(t, s.Segment("ok")) })
	if d := s.Segment("defaults"); d.Err != nil || d.Attribute.String() != "key" || d.Included.Len() != 0 {
		t.Errorf("defaults = %+v", *d)
	}
	want := []string{
		`segments.arr: got an array, want an object`,
		`segments.bad key!: invalid key "bad key!": want 1-256 characters of A-Z a-z 0-9 . _ -`,
		`segments.bad.attribute: invalid attribute path ".."`, // reported at the field "attribute"
		`segments.bad.included[0]: got an object, want a string, number or bool`,
		`segments.bad.rules[0].weight: 100001 is outside 0..100000`,
		`segments.bad.rules[1].weight: 1.5 is not an integer`,
		`segments.bad.rules[2].salt: got a number, want a string`,
		`segments.bad.rules[3].clauses[0].op: unknown operator "eq"`,
		`segments.bad.rules[4]: got a string, want an object`,
		`segments.bad.version: must be >= 0`,
	}
	if diff := cmp.Diff(sortedStrings(want), sortedStrings(problemStrings(s.Problems()))); diff != "" {
		t.Errorf("segment problems (-want +got):\n%s", diff)
	}
}

// compiledSegmentRule is what a compiled segment rule holds, its clauses
// counted, for comparison.
type compiledSegmentRule struct {
	ID, BucketBy, Salt string
	Weight             int64
	Clauses            int
}

// checkCompiledSegmentOK checks TestCompileSegments' segment ok, whose
// second rule has every default: no weight, bucketBy key, the segment's
// key as salt.
func checkCompiledSegmentOK(t *testing.T, ok *Segment) {
	t.Helper()
	if ok.Err != nil || ok.Version != 3 || ok.Attribute.String() != "email" || !ok.Included.Contains("u1") ||
		!ok.Included.Contains(7.0) || !ok.Excluded.Contains("u9") || len(ok.Rules) != 2 {
		t.Fatalf("ok = %+v", *ok)
	}
	var got []compiledSegmentRule
	for _, r := range ok.Rules {
		got = append(got, compiledSegmentRule{ID: r.ID, BucketBy: r.BucketBy.String(), Salt: r.Salt, Weight: r.Weight, Clauses: len(r.Clauses)})
	}
	want := []compiledSegmentRule{
		{ID: "r1", BucketBy: "org.id", Salt: "x", Weight: 25000, Clauses: 1},
		{ID: "r2", BucketBy: "key", Salt: "ok", Weight: -1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ok rules (-want +got):\n%s", diff)
	}
}

func TestValidKey(t *testing.T) {
	long := strings.Repeat("k", MaxKeyLength)
	tests := []struct {
		key  string
		want bool
	}{
		{"a", true}, {"new-checkout", true}, {"A.b_c-9", true}, {long, true},
		{"", false}, {long + "k", false}, {"bad key", false}, {"a/b", false}, {"é", false},
		{"a:b", false}, {"a\x00", false}, {"tab\t", false}, {"a+b", false},
	}
	for _, tc := range tests {
		if got := ValidKey(tc.key); got != tc.want {
			t.Errorf("ValidKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestCompileInvalidKeys(t *testing.T) {
	long := strings.Repeat("k", MaxKeyLength+1)
	s := mustCompile(t, `{"flags":{"bad key":`+withGood("")+`,"":`+withGood("")+`,"`+long[:MaxKeyLength]+`":`+withGood("")+
		`,"`+long+`":`+withGood("")+`,"ok":`+withGood("")+`}}`)
	want := []string{
		`flags.: invalid key "": want 1-256 characters of A-Z a-z 0-9 . _ -`,
		`flags.bad key: invalid key "bad key": want 1-256 characters of A-Z a-z 0-9 . _ -`,
		`flags.` + long + `: invalid key "` + long + `": want 1-256 characters of A-Z a-z 0-9 . _ -`,
	}
	if diff := cmp.Diff(want, problemStrings(s.Problems())); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if f := s.Flag("bad key"); f == nil || f.Err == nil {
		t.Errorf("flag under an invalid key: %v, want kept as malformed", f)
	}
	if s.Flag("ok").Err != nil || s.Flag(long[:MaxKeyLength]).Err != nil {
		t.Errorf("valid keys next to invalid ones are malformed")
	}
}

// TestCompileMalformedIsolated: one malformed flag or segment harms no other.
func TestCompileMalformedIsolated(t *testing.T) {
	s := mustCompile(t, `{"version":9,"flags":{
		"good": {"on":true,"variations":[false,true],"rules":[{"clauses":[{"op":"inSegment","values":["seg"]}],
			"serve":{"variation":1}}],"fallthrough":{"variation":0}},
		"bad": {"on":true,"variations":[false,true],"rules":[{"clauses":[{"attribute":"a","op":"matches","values":["("]}],
			"serve":{"variation":1}}],"fallthrough":{"variation":0}},
		"uses-bad-segment": {"variations":[1],"rules":[{"clauses":[{"op":"inSegment","values":["broken"]}],"serve":{"variation":0}}],
			"fallthrough":{"variation":0}},
		"nul": null},
		"segments":{"seg":{"included":["u1"]},"broken":{"included":"u1"}}}`)
	for key, wantErr := range map[string]bool{"good": false, "bad": true, "uses-bad-segment": false, "nul": true} {
		f := s.Flag(key)
		if f == nil {
			t.Fatalf("Flag(%q) = nil", key)
		}
		if (f.Err != nil) != wantErr {
			t.Errorf("Flag(%q).Err = %v, want error: %v", key, f.Err, wantErr)
		}
	}
	if s.Segment("seg").Err != nil || s.Segment("broken").Err == nil {
		t.Errorf("segments: seg.Err = %v, broken.Err = %v", s.Segment("seg").Err, s.Segment("broken").Err)
	}
	if s.Version() != 9 {
		t.Errorf("Version() = %d, want 9", s.Version())
	}
	for _, p := range s.Problems() {
		if p.Key != "bad" && p.Key != "nul" && p.Key != "broken" {
			t.Errorf("problem %v on a well-formed flag or segment", p)
		}
	}
}

func TestProblemError(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Kind: "flag", Key: "x", Field: "rules[2].clauses[0].op", Err: cause}, "flags.x.rules[2].clauses[0].op: boom"},
		{Problem{Kind: "flag", Key: "x", Err: cause}, "flags.x: boom"},
		{Problem{Kind: "segment", Key: "s", Field: "included[0]", Err: cause}, "segments.s.included[0]: boom"},
		{Problem{Kind: "segment", Key: "s", Field: "[0]", Err: cause}, "segments.s[0]: boom"},
	}
	for _, tc := range tests {
		p := tc.p
		if got := p.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		var err error = &p
		var target *Problem
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, cause) || !errors.As(err, &target) || target.Key != p.Key {
			t.Errorf("%v: errors.Is(ErrMalformed), errors.Is(cause) or errors.As(*Problem) failed", err)
		}
		if errors.Is(err, ErrInvalidDocument) {
			t.Errorf("%v matches ErrInvalidDocument", err)
		}
	}
}

func TestRolloutChoose(t *testing.T) {
	compileRollout := func(t *testing.T, rollout string, nvar int) *Rollout {
		t.Helper()
		vars := make([]string, nvar)
		for i := range vars {
			vars[i] = fmt.Sprint(i)
		}
		f := compileOneFlag(t, `{"variations":[`+strings.Join(vars, ",")+`],"fallthrough":{"rollout":`+rollout+`}}`)
		if f.Err != nil {
			t.Fatalf("rollout %s: %v", rollout, f.Err)
		}
		return f.Fallthrough.Rollout
	}
	static := compileRollout(t, `{"variations":[{"variation":2,"weight":0},{"variation":1,"weight":40000},{"variation":0,"weight":60000}]}`, 3)
	sched := compileRollout(t, `{"variations":[{"variation":0},{"variation":1}],
		"schedule":[{"at":1000,"weights":[100000,0]},{"at":4000,"weights":[0,100000]}]}`, 2)
	tests := []struct {
		name   string
		r      *Rollout
		bucket int
		at     int64
		want   int
	}{
		{"zero weight never chosen", static, 0, 0, 1},
		{"first band end", static, 39999, 0, 1},
		{"second band start", static, 40000, 0, 0},
		{"last bucket", static, 99999, 0, 0},
		{"before the first step", sched, 99999, 0, 0},
		{"at the first step", sched, 99999, 1000, 0},
		{"one ms in: w0 = 100000 - 33 (truncated)", sched, 99966, 1001, 0},
		{"one ms in: just past w0", sched, 99967, 1001, 1},
		{"half way", sched, 49999, 2500, 0},
		{"half way, next bucket", sched, 50000, 2500, 1},
		{"at the last step", sched, 0, 4000, 1},
		{"long after", sched, 0, 1 << 62, 1},
	}
	for _, tc := range tests {
		if got := tc.r.Choose(tc.bucket, tc.at); got != tc.want {
			t.Errorf("%s: Choose(%d, %d) = %d, want %d", tc.name, tc.bucket, tc.at, got, tc.want)
		}
	}

	// More variations than the stack buffer, with a schedule.
	var vs, w0, w1 []string
	for i := 0; i < 20; i++ {
		vs = append(vs, fmt.Sprintf(`{"variation":%d}`, i))
		w0 = append(w0, map[bool]string{true: "100000", false: "0"}[i == 0])
		w1 = append(w1, map[bool]string{true: "100000", false: "0"}[i == 19])
	}
	big := compileRollout(t, `{"variations":[`+strings.Join(vs, ",")+`],"schedule":[{"at":0,"weights":[`+strings.Join(w0, ",")+
		`]},{"at":10,"weights":[`+strings.Join(w1, ",")+`]}]}`, 20)
	if got := big.Choose(99999, 5); got != 19 {
		t.Errorf("20 variations half way, bucket 99999: Choose = %d, want 19", got)
	}
	if got := big.Choose(0, 5); got != 0 {
		t.Errorf("20 variations half way, bucket 0: Choose = %d, want 0", got)
	}

	// A Rollout built by hand (not compiled) works too.
	hand := &Rollout{Variations: []int{0, 1}, Schedule: []Step{{At: 0, Weights: []int64{100000, 0}}, {At: 100, Weights: []int64{0, 100000}}}}
	if got := hand.Choose(50000, 50); got != 1 {
		t.Errorf("hand-built rollout: Choose(50000, 50) = %d, want 1", got)
	}
	if got := (&Rollout{}).Choose(0, 0); got != -1 {
		t.Errorf("empty rollout: Choose = %d, want -1", got)
	}
}

// TestAttributeSlots: each rule attribute tested by more than one clause
// gets one slot, shared by every clause testing it, up to MaxSlots;
// attributes tested once, inSegment and clock clauses get none, and a flag
// without a repeated attribute has no slots at all.
func TestAttributeSlots(t *testing.T) {
	var rs []string
	for i := 0; i < MaxSlots+2; i++ {
		rs = append(rs, fmt.Sprintf(`{"clauses":[{"attribute":"a%d","op":"exists"},{"attribute":"org.plan","op":"in","values":["x"]}],"serve":{"variation":1}}`, i))
	}
	rs = append(rs, `{"clauses":[{"op":"inSegment","values":["s"]},{"op":"after","values":[0]},{"attribute":"a1","op":"exists"}],"serve":{"variation":1}}`)
	f := compileOneFlag(t, withGood(`"rules":[`+strings.Join(rs, ",")+`]`))
	if f.Err != nil {
		t.Fatal(f.Err)
	}
	var slots []string
	for _, p := range f.AttributeSlots {
		slots = append(slots, p.String())
	}
	want := []string{"org.plan", "a1"}
	if diff := cmp.Diff(want, slots); diff != "" {
		t.Errorf("AttributeSlots (-want +got):\n%s", diff)
	}
	once := compileOneFlag(t, withGood(`"rules":[{"clauses":[{"attribute":"a","op":"exists"},{"attribute":"b","op":"exists"}],"serve":{"variation":1}}]`))
	if len(once.AttributeSlots) != 0 || once.Rules[0].Clauses[0].Slot != -1 {
		t.Errorf("attributes tested once: slots %v, want none", once.AttributeSlots)
	}
	for i, r := range f.Rules {
		for j, c := range r.Clauses {
			wantSlot := -1
			for k, p := range f.AttributeSlots {
				if p.String() == c.Attribute.String() && len(c.Attribute) > 0 {
					wantSlot = k
				}
			}
			if c.Slot != wantSlot {
				t.Errorf("rules[%d].clauses[%d] (%s %s): Slot = %d, want %d", i, j, c.Op, c.Attribute, c.Slot, wantSlot)
			}
		}
	}
}

// TestDuplicateMembersMalformed: a member named twice in one object of a
// flag or a segment makes it malformed, the problem naming where: RFC 8259
// leaves what a duplicate means to each reader, so SDKs in other languages
// (first wins, or refuse) would serve another flag than this one.
func TestDuplicateMembersMalformed(t *testing.T) {
	flag := func(body string) string {
		return `{"on":true,"variations":[false,true],"fallthrough":{"variation":1}` + body + `}`
	}
	s := Compile(docOf(t, 1, map[string]string{
		"on":      flag(`,"on":false`),
		"clause":  flag(`,"rules":[{"clauses":[{"attribute":"a","op":"in","op":"startsWith","values":["x"]}],"serve":{"variation":0}}]`),
		"escaped": flag(`,"\u006fn":false`),
		"json":    `{"on":true,"variations":[{"a":1,"a":2}],"fallthrough":{"variation":0}}`,
		"big":     `{"on":true,"variations":[{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k3":2}],"fallthrough":{"variation":0}}`,
		"fine":    flag(`,"rules":[{"clauses":[{"attribute":"a","op":"in","values":["x"]}],"serve":{"variation":0}}]`),
	}, map[string]string{"seg": `{"included":["u1"],"included":["u2"]}`}))
	for key, want := range map[string]string{
		"on": "flags.on.on: named twice", "clause": "flags.clause.rules[0].clauses[0].op: named twice",
		"escaped": "flags.escaped.on: named twice", "json": "flags.json.variations[0].a: named twice",
		"big": "flags.big.variations[0].k3: named twice",
	} {
		if f := s.Flag(key); f.Err == nil || !strings.Contains(f.Err.Error(), want) {
			t.Errorf("%s: error %v, want %q", key, f.Err, want)
		}
	}
	if f := s.Flag("fine"); f.Err != nil {
		t.Errorf("fine: %v", f.Err)
	}
	if seg := s.Segment("seg"); seg.Err == nil || !strings.Contains(seg.Err.Error(), "segments.seg.included: named twice") {
		t.Errorf("seg: error %v", seg.Err)
	}
}
