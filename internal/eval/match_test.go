package eval

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// compileClause compiles one clause inside a minimal well-formed flag and
// returns it. The flag must come out well formed.
func compileClause(t *testing.T, clauseJSON string) *Clause {
	t.Helper()
	f := compileOneFlag(t, fmt.Sprintf(`{"on":true,"variations":[false,true],
		"rules":[{"id":"r","clauses":[%s],"serve":{"variation":1}}],
		"fallthrough":{"variation":0}}`, clauseJSON))
	if f.Err != nil {
		t.Fatalf("clause %s: flag is malformed: %v", clauseJSON, f.Err)
	}
	return &f.Rules[0].Clauses[0]
}

// compileOneFlag compiles a document holding flagJSON under key "x".
func compileOneFlag(t *testing.T, flagJSON string) *Flag {
	t.Helper()
	doc, err := ParseDocument([]byte(`{"flags":{"x":` + flagJSON + `}}`))
	if err != nil {
		t.Fatalf("ParseDocument: %v", err)
	}
	return Compile(doc).Flag("x")
}

// clauseJSON writes a clause on attribute "a".
func clauseJSON(op, values string, negate bool) string {
	return fmt.Sprintf(`{"attribute":"a","op":%q,"values":%s,"negate":%v}`, op, values, negate)
}

type matchCase struct {
	op     string
	values string // JSON array
	negate bool
	attr   string // JSON of attribute "a"; "" means absent
	want   bool
}

// runMatchCases compiles each case's clause and matches it against a context
// holding attr under "a", looked up with Path.Lookup as the evaluator does.
func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		name := fmt.Sprintf("%s%s/%s/neg=%v", tc.op, tc.values, tc.attr, tc.negate)
		t.Run(name, func(t *testing.T) {
			c := compileClause(t, clauseJSON(tc.op, tc.values, tc.negate))
			attrs := map[string]any{"key": "k"}
			if tc.attr != "" {
				var v any
				if err := json.Unmarshal([]byte(tc.attr), &v); err != nil {
					t.Fatalf("bad test attr %s: %v", tc.attr, err)
				}
				attrs["a"] = v
			}
			v, ok := c.Attribute.Lookup(attrs)
			if got := c.Match(v, ok); got != tc.want {
				t.Errorf("Match(%s) = %v, want %v (op %s %s, negate %v)", tc.attr, got, tc.want, tc.op, tc.values, tc.negate)
			}
		})
	}
}

func TestMatchIn(t *testing.T) {
	many := `["s0","s1","s2","s3","s4","s5","s6","s7","s8","s9"]` // more than smallSet: hashed
	runMatchCases(t, []matchCase{
		{"in", `["ann","bob"]`, false, `"ann"`, true},
		{"in", `["ann","bob"]`, false, `"bob"`, true},
		{"in", `["ann"]`, false, `"Ann"`, false},
		{"in", `["ann"]`, false, `"ann "`, false},
		{"in", `[1.0]`, false, `1`, true},
		{"in", `[1]`, false, `1.0`, true},
		{"in", `[100]`, false, `1e2`, true},
		{"in", `[0]`, false, `-0`, true},
		{"in", `[1]`, false, `1.5`, false},
		{"in", `[1]`, false, `"1"`, false},
		{"in", `["1"]`, false, `1`, false},
		{"in", `[true]`, false, `true`, true},
		{"in", `[true]`, false, `false`, false},
		{"in", `[false]`, false, `false`, true},
		{"in", `["true"]`, false, `true`, false},
		{"in", `[true]`, false, `"true"`, false},
		{"in", `[0]`, false, `false`, false},
		{"in", `[1]`, false, `true`, false},
		{"in", `["ann"]`, false, ``, false},
		{"in", `["ann"]`, true, ``, false},
		{"in", `["ann"]`, false, `null`, false},
		{"in", `["ann"]`, true, `null`, false},
		{"in", `["ann"]`, true, `"bob"`, true},
		{"in", `["ann"]`, true, `"ann"`, false},
		{"in", `["ann"]`, false, `["x","ann"]`, true},
		{"in", `["ann"]`, false, `["x","y"]`, false},
		{"in", `["ann"]`, true, `["x","ann"]`, false},
		{"in", `["ann"]`, false, `[]`, false},
		{"in", `["ann"]`, true, `[]`, true},
		{"in", `[1]`, false, `["1", 1]`, true},
		{"in", `["ann"]`, false, `[["ann"]]`, false},
		{"in", `["ann"]`, false, `{"ann":true}`, false},
		{"in", `[]`, false, `"ann"`, false},
		{"in", `[]`, true, `"ann"`, true},
		{"in", many, false, `"s9"`, true},
		{"in", many, false, `"s0"`, true},
		{"in", many, false, `"s10"`, false},
		{"in", many, false, `9`, false},
	})
}

func TestMatchStrings(t *testing.T) {
	runMatchCases(t, []matchCase{
		{"startsWith", `["hello"]`, false, `"hello world"`, true},
		{"startsWith", `["Hello"]`, false, `"hello world"`, false},
		{"startsWith", `["world"]`, false, `"hello world"`, false},
		{"startsWith", `["x","he"]`, false, `"hello"`, true},
		{"startsWith", `[""]`, false, `"anything"`, true},
		{"startsWith", `["1"]`, false, `123`, false},
		{"startsWith", `["t"]`, false, `true`, false},
		{"startsWith", `["1"]`, true, `123`, true},
		{"startsWith", `["he"]`, true, `"hello"`, false},
		{"startsWith", `["he"]`, true, ``, false},
		{"startsWith", `["he"]`, false, `null`, false},
		{"startsWith", `["he"]`, false, `["x","hey"]`, true},
		{"startsWith", `["he"]`, false, `[]`, false},
		{"endsWith", `["world"]`, false, `"hello world"`, true},
		{"endsWith", `["World"]`, false, `"hello world"`, false},
		{"endsWith", `["hello"]`, false, `"hello world"`, false},
		{"endsWith", `[".com"]`, false, `["a.org","b.com"]`, true},
		{"endsWith", `["3"]`, false, `123`, false},
		{"endsWith", `["x"]`, true, `"abc"`, true},
		{"contains", `["o w"]`, false, `"hello world"`, true},
		{"contains", `["O W"]`, false, `"hello world"`, false},
		{"contains", `[""]`, false, `""`, true},
		{"contains", `["é"]`, false, `"café"`, true},
		{"contains", `["2"]`, false, `123`, false},
		{"contains", `["a"]`, false, `{"a":"a"}`, false},
		{"contains", `["zz"]`, true, `"abc"`, true},
		{"contains", `["zz"]`, true, `null`, false},
	})
}

func TestMatchRegex(t *testing.T) {
	runMatchCases(t, []matchCase{
		{"matches", `["corp"]`, false, `"ann@corp.com"`, true}, // anywhere, not anchored
		{"matches", `["^corp"]`, false, `"ann@corp.com"`, false},
		{"matches", `["^[a-z]+@corp\\.com$"]`, false, `"ann@corp.com"`, true},
		{"matches", `["^[a-z]+@corp\\.com$"]`, false, `"ann@corpXcom"`, false},
		{"matches", `["CORP"]`, false, `"ann@corp.com"`, false},
		{"matches", `["(?i)CORP"]`, false, `"ann@corp.com"`, true},
		{"matches", `["x","c.rp"]`, false, `"ann@corp.com"`, true},
		{"matches", `[""]`, false, `""`, true},
		{"matches", `["1"]`, false, `123`, false},
		{"matches", `["1"]`, true, `123`, true},
		{"matches", `["corp"]`, true, `"ann@corp.com"`, false},
		{"matches", `["corp"]`, false, `["a@x.org","b@corp.com"]`, true},
		{"matches", `["corp"]`, false, ``, false},
		{"matches", `["corp"]`, true, ``, false},
	})
}

func TestMatchNumeric(t *testing.T) {
	runMatchCases(t, []matchCase{
		{"lessThan", `[6]`, false, `5`, true},
		{"lessThan", `[6]`, false, `6`, false},
		{"lessThan", `[6]`, false, `6.0000001`, false},
		{"lessThan", `[0]`, false, `-1.5`, true},
		{"lessThanOrEqual", `[6]`, false, `6`, true},
		{"lessThanOrEqual", `[6.0]`, false, `6`, true},
		{"lessThanOrEqual", `[6]`, false, `7`, false},
		{"greaterThan", `[6]`, false, `7`, true},
		{"greaterThan", `[6]`, false, `6`, false},
		{"greaterThan", `[999.9]`, false, `1e3`, true},
		{"greaterThanOrEqual", `[6]`, false, `6`, true},
		{"greaterThanOrEqual", `[6]`, false, `5.999`, false},
		{"lessThan", `[6]`, false, `"5"`, false}, // strings are not coerced
		{"greaterThan", `[1]`, false, `"5"`, false},
		{"lessThan", `[6]`, false, `true`, false},
		{"lessThan", `[6]`, false, `null`, false},
		{"lessThan", `[6]`, false, ``, false},
		{"lessThan", `[6]`, true, ``, false},
		{"lessThan", `[6]`, true, `7`, true},
		{"lessThan", `[6]`, true, `5`, false},
		{"lessThan", `[6]`, true, `"5"`, true},
		{"lessThan", `[1, 10]`, false, `5`, true},   // any value
		{"lessThan", `[5]`, false, `[10, 1]`, true}, // any element
		{"lessThan", `[5]`, false, `[10, 11]`, false},
		{"lessThan", `[5]`, false, `["1", 10]`, false},
		{"greaterThan", `[5]`, false, `[]`, false},
	})
}

func TestMatchTime(t *testing.T) {
	const (
		jan   = `"2026-01-01T00:00:00Z"`
		janMs = `1767225600000`
		jun   = `"2026-06-01T00:00:00Z"`
		junMs = `1780272000000`
	)
	runMatchCases(t, []matchCase{
		{"before", `[` + jun + `]`, false, jan, true},
		{"before", `[` + jan + `]`, false, jun, false},
		{"after", `[` + jan + `]`, false, jun, true},
		{"after", `[` + jun + `]`, false, jan, false},
		{"before", `[` + jan + `]`, false, jan, false}, // equal is neither
		{"after", `[` + jan + `]`, false, jan, false},
		{"before", `[` + jun + `]`, false, janMs, true}, // ms attribute, RFC 3339 value
		{"after", `[` + janMs + `]`, false, jun, true},  // RFC 3339 attribute, ms value
		{"before", `[` + junMs + `]`, false, janMs, true},
		{"after", `[` + junMs + `]`, false, janMs, false},
		{"before", `[` + janMs + `]`, false, jan, false},
		{"after", `[` + janMs + `]`, false, janMs, false},
		{"before", `[` + janMs + `]`, false, `1767225599999`, true},
		{"after", `[` + janMs + `]`, false, `"2026-01-01T00:00:00.001Z"`, true},
		{"before", `[` + jan + `]`, false, `"2026-01-01T01:00:00+02:00"`, true}, // 2025-12-31T23:00Z
		{"after", `[` + jan + `]`, false, `"2025-12-31T20:00:00-05:00"`, true},  // 2026-01-01T01:00Z
		{"before", `[` + jan + `]`, false, `-1000`, true},                       // before 1970
		{"before", `[` + jun + `]`, false, `"yesterday"`, false},
		{"after", `[` + jan + `]`, false, `"2026-06-01"`, false}, // date only: not RFC 3339
		{"after", `[` + jan + `]`, false, `"2026-06-01 00:00:00Z"`, false},
		{"before", `[` + jun + `]`, false, `true`, false},
		{"before", `[` + jun + `]`, false, `{"t":1}`, false},
		{"before", `[` + jun + `]`, false, ``, false},
		{"before", `[` + jun + `]`, true, ``, false},
		{"before", `[` + jun + `]`, true, jan, false},
		{"before", `[` + jan + `]`, true, jun, true},
		{"before", `[` + jun + `]`, false, `["yesterday",` + jan + `]`, true},
		{"before", `["not a time"]`, false, jan, false}, // unparsable value never matches
		{"after", `["not a time"]`, false, jan, false},
		{"after", `["not a time",` + jan + `]`, false, jun, true},
		{"before", `["2026-13-01T00:00:00Z"]`, false, jan, false},
	})
}

// semverOrder is SemVer 2.0 §11's example of precedence, plus releases.
var semverOrder = []string{
	"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
	"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0", "2.9.0", "2.10.1", "10.0.0",
}

func TestMatchSemverPrecedence(t *testing.T) {
	for i, a := range semverOrder {
		for j, b := range semverOrder {
			for _, op := range []string{"semVerLessThan", "semVerEqual", "semVerGreaterThan"} {
				want := op == "semVerLessThan" && i < j || op == "semVerEqual" && i == j || op == "semVerGreaterThan" && i > j
				c := compileClause(t, clauseJSON(op, fmt.Sprintf("[%q]", b), false))
				if got := c.Match(a, true); got != want {
					t.Errorf("%s %s: Match(%q) = %v, want %v", op, b, a, got, want)
				}
			}
		}
	}
}

func TestMatchSemver(t *testing.T) {
	runMatchCases(t, []matchCase{
		{"semVerEqual", `["2.0.0"]`, false, `"v2.0.0"`, true},
		{"semVerEqual", `["v2.0.0"]`, false, `"2.0.0"`, true},
		{"semVerEqual", `["2.0.0"]`, false, `"2"`, true},
		{"semVerEqual", `["2"]`, false, `"2.0.0"`, true},
		{"semVerEqual", `["2.3.0"]`, false, `"2.3"`, true},
		{"semVerEqual", `["2.3"]`, false, `"v2.3"`, true},
		{"semVerEqual", `["2.3.0"]`, false, `"2.3.1"`, false},
		{"semVerLessThan", `["2.3.1"]`, false, `"2.3"`, true},
		{"semVerGreaterThan", `["2"]`, false, `"2.0.1"`, true},
		{"semVerLessThan", `["2.10.0"]`, false, `"2.9.9"`, true}, // numeric, not lexical
		{"semVerEqual", `["1.0.0"]`, false, `"1.0.0+build.5"`, true},
		{"semVerEqual", `["1.0.0+a"]`, false, `"1.0.0+b"`, true},
		{"semVerLessThan", `["1.0.0+b"]`, false, `"1.0.0+a"`, false},
		{"semVerGreaterThan", `["1.0.0+a"]`, false, `"1.0.0+b"`, false},
		{"semVerEqual", `["1.0.0-beta"]`, false, `"1.0.0-beta+exp.sha.5114f85"`, true},
		{"semVerLessThan", `["1.0.0-alpha"]`, false, `"1.0.0-0"`, true}, // numeric < alphanumeric
		{"semVerLessThan", `["1.0.0-alpha-b"]`, false, `"1.0.0-alpha-a"`, true},
		{"semVerEqual", `["1.0.0-x-y-z.--"]`, false, `"1.0.0-x-y-z.--"`, true},
		{"semVerEqual", `["1.0.0-alpha"]`, false, `"1.0.0-Alpha"`, false}, // case-sensitive ASCII
		{"semVerLessThan", `["1.0.0-alpha"]`, false, `"1.0.0-Alpha"`, true},
		{"semVerGreaterThan", `["0.0.0"]`, false, `"9999999999999999999.0.0"`, true},
		{"semVerEqual", `["1.0.0","2.0.0"]`, false, `"2.0.0"`, true},
		{"semVerEqual", `["2.0.0"]`, false, `["1.0.0","2"]`, true},
		{"semVerEqual", `["2.0.0"]`, true, `"1.0.0"`, true},
		{"semVerEqual", `["2.0.0"]`, true, `"2.0.0"`, false},
		{"semVerEqual", `["2.0.0"]`, false, ``, false},
		{"semVerEqual", `["2.0.0"]`, true, ``, false},
		{"semVerEqual", `["2.0.0"]`, false, `2`, false}, // a number is not a version string
		{"semVerGreaterThan", `["1.0.0"]`, false, `2.5`, false},
		{"semVerEqual", `["2.0.0"]`, false, `true`, false},
		{"semVerEqual", `["not-a-version"]`, false, `"not-a-version"`, false}, // dropped at compile
		{"semVerLessThan", `["bad", "3.0.0"]`, false, `"2.0.0"`, true},
	})
}

func TestMatchSemverInvalidNeverMatches(t *testing.T) {
	invalid := []string{
		"", "v", "V1.0.0", "vv1.0.0", "1.", ".1", "1..0", "1.0.", "a.b.c", "1.0.0.0", "1.2.3.4",
		"01.0.0", "1.02.0", "1.0.03", "1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-alpha..1", "1.0.0-alpha.",
		"1.0.0+build..1", "1.0.0-alpha_beta", "1.0.0-é", " 1.0.0", "1.0.0 ", "-1.0.0", "1.-1.0",
		"+1.0.0", "1.0.0++b", "99999999999999999999.0.0", "1.0x.0",
	}
	ops := []string{"semVerEqual", "semVerLessThan", "semVerGreaterThan"}
	for _, s := range invalid {
		if _, ok := parseSemver(s); ok {
			t.Errorf("parseSemver(%q) ok, want invalid", s)
		}
		for _, op := range ops {
			for _, value := range []string{"0.0.0", "1.0.0", "999.0.0"} {
				c := compileClause(t, clauseJSON(op, fmt.Sprintf("[%q]", value), false))
				if c.Match(s, true) {
					t.Errorf("%s %s: Match(%q) = true, want false", op, value, s)
				}
			}
		}
	}
	valid := []string{"0.0.0", "1", "1.2", "v1.2.3", "1.0.0-0", "1.0.0-0.3.7", "1.0.0-alpha+001",
		"1.0.0+20130313144700", "1.0.0+0.build.01", "9999999999999999999.0.0"}
	for _, s := range valid {
		if _, ok := parseSemver(s); !ok {
			t.Errorf("parseSemver(%q) invalid, want ok", s)
		}
	}
}

func TestMatchExists(t *testing.T) {
	runMatchCases(t, []matchCase{
		{"exists", `[]`, false, `"x"`, true},
		{"exists", `[]`, false, `""`, true},
		{"exists", `[]`, false, `false`, true},
		{"exists", `[]`, false, `0`, true},
		{"exists", `[]`, false, `[]`, true},
		{"exists", `[]`, false, `{}`, true},
		{"exists", `[]`, false, ``, false},
		{"exists", `[]`, false, `null`, false},
		{"exists", `[]`, true, ``, true}, // the exception: absent + negate = match
		{"exists", `[]`, true, `null`, true},
		{"exists", `[]`, true, `"x"`, false},
		{"exists", `["ignored"]`, false, `"x"`, true},
	})
	// values may be omitted entirely
	c := compileClause(t, `{"attribute":"a","op":"exists"}`)
	if !c.Match("x", true) || c.Match(nil, false) {
		t.Errorf("exists without values: Match(x) = %v, Match(absent) = %v, want true, false", c.Match("x", true), c.Match(nil, false))
	}
}

func TestMatchNestedPath(t *testing.T) {
	tests := []struct {
		path   string
		op     string
		values string
		negate bool
		ctx    string
		want   bool
	}{
		{"org.plan", "in", `["enterprise"]`, false, `{"org":{"plan":"enterprise"}}`, true},
		{"org.plan", "in", `["enterprise"]`, false, `{"org":{"plan":"free"}}`, false},
		{"org.plan", "in", `["enterprise"]`, true, `{"org":{"plan":"free"}}`, true},
		{"org.plan", "in", `["enterprise"]`, false, `{"org":"enterprise"}`, false},
		{"org.plan", "in", `["enterprise"]`, true, `{"org":"enterprise"}`, false}, // absent: no negate
		{"org.plan", "in", `["enterprise"]`, true, `{"org":{"plan":null}}`, false},
		{"org.plan", "in", `["enterprise"]`, false, `{"org.plan":"enterprise"}`, false},
		{"org.plan", "exists", `[]`, true, `{"org":{}}`, true},
		{"org.plan", "exists", `[]`, false, `{"org":{"plan":"x"}}`, true},
		{"a.b.c", "greaterThan", `[1]`, false, `{"a":{"b":{"c":2}}}`, true},
		{"a.b.c", "greaterThan", `[1]`, false, `{"a":{"b":[{"c":2}]}}`, false},
		{"items.x", "in", `[1]`, false, `{"items":[{"x":1}]}`, false}, // arrays are not traversed
		{"org", "in", `["enterprise"]`, false, `{"org":{"plan":"enterprise"}}`, false},
		{"tags", "in", `["beta"]`, false, `{"tags":["alpha","beta"]}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.path+"/"+tc.ctx, func(t *testing.T) {
			c := compileClause(t, fmt.Sprintf(`{"attribute":%q,"op":%q,"values":%s,"negate":%v}`, tc.path, tc.op, tc.values, tc.negate))
			var attrs map[string]any
			if err := json.Unmarshal([]byte(tc.ctx), &attrs); err != nil {
				t.Fatal(err)
			}
			v, ok := c.Attribute.Lookup(attrs)
			if got := c.Match(v, ok); got != tc.want {
				t.Errorf("Match(%s at %s) = %v, want %v", tc.ctx, tc.path, got, tc.want)
			}
		})
	}
}

func TestPathLookup(t *testing.T) {
	attrs := map[string]any{
		"key": "u1", "n": nil, "org": map[string]any{"plan": "pro", "nil": nil, "deep": map[string]any{"x": 1.0}},
		"list": []any{"a"},
	}
	tests := []struct {
		path   Path
		want   any
		wantOK bool
	}{
		{Path{"key"}, "u1", true},
		{Path{"org", "plan"}, "pro", true},
		{Path{"org", "deep", "x"}, 1.0, true},
		{Path{"org", "deep", "x", "y"}, nil, false},
		{Path{"org", "nil"}, nil, false},
		{Path{"n"}, nil, false},
		{Path{"missing"}, nil, false},
		{Path{"missing", "x"}, nil, false},
		{Path{"key", "x"}, nil, false},
		{Path{"list", "0"}, nil, false},
		{Path{"list"}, []any{"a"}, true},
		{Path{}, nil, false},
		{nil, nil, false},
	}
	for _, tc := range tests {
		got, ok := tc.path.Lookup(attrs)
		if ok != tc.wantOK || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Path%q.Lookup = %v, %v; want %v, %v", []string(tc.path), got, ok, tc.want, tc.wantOK)
		}
	}
	if _, ok := (Path{"key"}).Lookup(nil); ok {
		t.Errorf("Lookup(nil map) found a value")
	}
	for _, p := range []Path{{"key"}, {"org", "plan"}, {"a", "b", "c"}} {
		if got, want := p.String(), strings.Join(p, "."); got != want {
			t.Errorf("Path%q.String() = %q, want %q", []string(p), got, want)
		}
	}
}

func TestOpKnown(t *testing.T) {
	known := []Op{OpIn, OpStartsWith, OpEndsWith, OpContains, OpMatches, OpLessThan, OpLessThanOrEqual,
		OpGreaterThan, OpGreaterThanOrEqual, OpBefore, OpAfter, OpSemVerEqual, OpSemVerLessThan,
		OpSemVerGreaterThan, OpInSegment, OpExists}
	if len(known) != 16 {
		t.Fatalf("%d operators listed, SPEC has 16", len(known))
	}
	for _, op := range known {
		if !op.Known() {
			t.Errorf("Op(%q).Known() = false, want true", op)
		}
		if b, err := op.MarshalText(); err != nil || string(b) != string(op) {
			t.Errorf("Op(%q).MarshalText() = %q, %v", op, b, err)
		}
	}
	for _, op := range []Op{"", "eq", "In", "IN", "semverEqual", "notIn", "exists "} {
		if op.Known() {
			t.Errorf("Op(%q).Known() = true, want false", op)
		}
	}
}

func TestValueSet(t *testing.T) {
	s := NewValueSet([]any{"a", 1.0, true, map[string]any{}, []any{1.0}})
	if got := s.Len(); got != 5 {
		t.Errorf("Len() = %d, want 5", got)
	}
	tests := []struct {
		v    any
		want bool
	}{
		{"a", true}, {"b", false}, {1.0, true}, {2.0, false}, {true, true}, {false, false},
		{"1", false}, {"true", false}, {nil, false}, {[]any{1.0}, false}, {map[string]any{}, false},
		{1, false}, // Go int is not a normalized value
	}
	for _, tc := range tests {
		if got := s.Contains(tc.v); got != tc.want {
			t.Errorf("Contains(%#v) = %v, want %v", tc.v, got, tc.want)
		}
	}
	if !s.ContainsString("a") || s.ContainsString("A") {
		t.Errorf("ContainsString: case-insensitive or missing")
	}
	var empty ValueSet
	if empty.Contains("a") || empty.Contains(0.0) || empty.Contains(false) || empty.Len() != 0 {
		t.Errorf("zero ValueSet is not empty")
	}
}

// TestClausePreparsed checks values are parsed once, at compile time.
func TestClausePreparsed(t *testing.T) {
	c := compileClause(t, clauseJSON("matches", `["^a","b$","^a+$"]`, false))
	if len(c.patterns) != 3 || c.patterns[0] != (pattern{lit: "a", kind: patPrefix}) ||
		c.patterns[1] != (pattern{lit: "b", kind: patSuffix}) || c.patterns[2].re == nil {
		t.Errorf("matches: patterns = %+v, want 3 compiled: a prefix, a suffix, a regexp", c.patterns)
	}
	c = compileClause(t, clauseJSON("before", `["2026-01-01T00:00:00Z", 5, "junk"]`, false))
	if len(c.instants) != 2 || c.instants[0] != (moment{1767225600, 0}) || c.instants[1] != (moment{0, 5e6}) {
		t.Errorf("before: instants = %v, want [{1767225600 0} {0 5000000}]", c.instants)
	}
	if len(c.Values) != 3 {
		t.Errorf("before: Values = %v, want all 3 as written", c.Values)
	}
	c = compileClause(t, clauseJSON("semVerEqual", `["v1.2", "junk"]`, false))
	if len(c.versions) != 1 || c.versions[0] != (semver{major: 1, minor: 2}) {
		t.Errorf("semver: versions = %+v, want [1.2.0]", c.versions)
	}
	c = compileClause(t, `{"op":"inSegment","values":["s1","s2"]}`)
	if got := c.Segments(); fmt.Sprint(got) != "[s1 s2]" || c.Attribute != nil {
		t.Errorf("inSegment: Segments() = %v, Attribute = %v; want [s1 s2], nil", got, c.Attribute)
	}
}

// TestClockClauses: before/after written without an attribute compare the
// evaluation time (time-boxed rules); no other operator may omit it.
func TestClockClauses(t *testing.T) {
	for _, js := range []string{
		`{"op":"after","values":["2026-12-01T00:00:00Z"]}`,
		`{"op":"before","values":[1796083200000],"negate":true}`,
		`{"attribute":null,"op":"before","values":[0]}`,
	} {
		c := compileClause(t, js)
		if !c.UsesClock() || c.Attribute != nil || c.Slot != -1 {
			t.Errorf("%s: UsesClock() = %v, Attribute = %v, Slot = %d; want true, nil, -1", js, c.UsesClock(), c.Attribute, c.Slot)
		}
	}
	c := compileClause(t, `{"op":"after","values":["2026-12-01T00:00:00Z"]}`)
	for _, tc := range []struct {
		now  float64
		want bool
	}{{1796083200000 - 1, false}, {1796083200000, false}, {1796083200000 + 1, true}} {
		if got := c.Match(tc.now, true); got != tc.want {
			t.Errorf("clock after 2026-12-01: Match(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
	if c := compileClause(t, clauseJSON("after", `[0]`, false)); c.UsesClock() {
		t.Errorf("after with an attribute: UsesClock() = true")
	}
	for _, op := range []string{"in", "exists", "lessThan", "semVerEqual", "matches"} {
		f := compileOneFlag(t, withGood(`"rules":[{"clauses":[{"op":"`+op+`","values":[]}],"serve":{"variation":1}}]`))
		want := []string{"flags.x.rules[0].clauses[0].attribute: missing"}
		if diff := cmp.Diff(want, problemStrings(f.Problems)); diff != "" {
			t.Errorf("%s without attribute (-want +got):\n%s", op, diff)
		}
	}
	f := compileOneFlag(t, withGood(`"rules":[{"clauses":[{"attribute":"","op":"before","values":[0]}],"serve":{"variation":1}}]`))
	if diff := cmp.Diff([]string{`flags.x.rules[0].clauses[0].attribute: invalid attribute path ""`}, problemStrings(f.Problems)); diff != "" {
		t.Errorf("before with an empty attribute (-want +got):\n%s", diff)
	}
}

// TestMatchTimeSubMillisecond: RFC 3339 instants on both sides are compared
// as instants, not truncated to milliseconds first.
func TestMatchTimeSubMillisecond(t *testing.T) {
	after := compileClause(t, clauseJSON("after", `["2026-01-01T00:00:00Z"]`, false))
	before := compileClause(t, clauseJSON("before", `["2026-01-01T00:00:00.0009Z"]`, false))
	gotAfter := after.Match("2026-01-01T00:00:00.0005Z", true)
	gotBefore := before.Match("2026-01-01T00:00:00.0001Z", true)
	if !gotAfter || !gotBefore {
		t.Errorf("RFC 3339 instants must keep sub-millisecond precision: "+
			"00:00:00.0005Z after 00:00:00Z = %v, 00:00:00.0001Z before 00:00:00.0009Z = %v; want true, true", gotAfter, gotBefore)
	}
}

// FuzzPlainSemver checks parseSemver's one-pass path against the full
// parser: whenever the fast path accepts a version, the full parser accepts
// it too and reads the same numbers.
func FuzzPlainSemver(f *testing.F) {
	for _, s := range []string{"2.10.1", "0.0.0", "1", "1.2", "01.2.3", "1.2.3.4", "1..2", "1.2.", ".1",
		"18446744073709551615.0.0", "9999999999999999999.1.1", "99999999999999999999.1.1", "1.2.3-rc.1", "v1.2.3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := parsePlainSemver(s)
		if !ok {
			return
		}
		full, fullOK := parseFullSemver(s)
		if !fullOK || full != fast {
			t.Fatalf("%q: fast path %+v, full parser %+v (ok %v)", s, fast, full, fullOK)
		}
	})
}

func TestUTCSecondsAgreesWithTimeParse(t *testing.T) {
	check := func(v string) {
		t.Helper()
		sec, ok := utcSeconds(v)
		tm, err := time.Parse(time.RFC3339Nano, v)
		if ok && (err != nil || tm.Unix() != sec || tm.Nanosecond() != 0) {
			t.Errorf("utcSeconds(%q) = %d, true; time.Parse: %v, %v", v, sec, tm.Unix(), err)
		}
		if !ok && err == nil && len(v) == 20 && v[19] == 'Z' && v[10] == 'T' {
			t.Errorf("utcSeconds(%q) refused what time.Parse reads as %v", v, tm)
		}
	}
	for _, v := range []string{
		"1970-01-01T00:00:00Z", "2026-12-04T04:31:45Z", "2000-02-29T23:59:59Z", "1900-02-29T00:00:00Z",
		"2100-02-28T12:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-13-01T00:00:00Z",
		"2024-04-31T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z",
		"2024-01-01t00:00:00Z", "2024-01-01T00:00:00z", "2024-01-01 00:00:00Z", "2024-1-01T00:00:00Z",
		"20x4-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00", "2024-01-00T00:00:00Z", "1969-12-31T23:59:59Z",
	} {
		check(v)
	}
	// Every day of four centuries around the epoch, at a second that
	// varies: the calendar arithmetic against the standard library's.
	for d := time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2200; d = d.AddDate(0, 0, 1) {
		check(d.Add(time.Duration(d.YearDay()*7919%86400) * time.Second).Format(time.RFC3339))
	}
}

func FuzzUTCSeconds(f *testing.F) {
	f.Add("2026-12-04T04:31:45Z")
	f.Add("2000-02-29T23:59:59Z")
	f.Fuzz(func(t *testing.T, v string) {
		sec, ok := utcSeconds(v)
		tm, err := time.Parse(time.RFC3339Nano, v)
		if ok && (err != nil || tm.Unix() != sec) {
			t.Fatalf("utcSeconds(%q) = %d; time.Parse = %v, %v", v, sec, tm, err)
		}
	})
}

// TestValueSetStrings: sets of every size up to well past smallSet, with
// repeated values, find each of their strings and no other, by
// ContainsString and by ContainsHashed with the string's KeyHash.
func TestValueSetStrings(t *testing.T) {
	for n := 0; n <= 3*smallSet+40; n += 1 + n/4 {
		var values []any
		for i := range n {
			values = append(values, fmt.Sprintf("user-%d", i), fmt.Sprintf("user-%d", i/2)) // repeats
		}
		s := NewValueSet(values)
		for i := range 2*n + 10 {
			v := fmt.Sprintf("user-%d", i)
			want := i < n
			if got := s.ContainsString(v); got != want {
				t.Fatalf("%d strings: ContainsString(%q) = %v", n, v, got)
			}
			if got := s.ContainsHashed(v, KeyHash(v)); got != want {
				t.Fatalf("%d strings: ContainsHashed(%q) = %v", n, v, got)
			}
		}
		if s.ContainsString("") || s.ContainsString("user-") {
			t.Fatalf("%d strings: found what is not there", n)
		}
	}
	// A small set compares first bytes before strings: strings of one
	// length that differ in their first or only in a later byte, the empty
	// string, and a first byte of a longer UTF-8 character.
	small := NewValueSet([]any{"", "de", "fr", "FR", "é"})
	for v, want := range map[string]bool{"": true, "de": true, "fr": true, "FR": true, "Fr": false, "dd": false,
		"ed": false, "df": false, "é": true, "\xc3": false, "e": false} {
		if got := small.ContainsString(v); got != want {
			t.Errorf("ContainsString(%q) = %v, want %v", v, got, want)
		}
	}
}
