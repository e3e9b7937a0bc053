package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
	"github.com/google/go-cmp/cmp"
)

func TestContextFromJSON(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantKey    string
		wantCtxErr string // "" when the context must be valid
	}{
		{"key only", `{"key":"u1"}`, "u1", ""},
		{"attributes", `{"key":"u1","email":"a@b.c","n":1,"ok":true,"tags":["x"],"org":{"plan":"pro"},"nil":null}`, "u1", ""},
		{"empty key is a string", `{"key":""}`, "", ""},
		{"whitespace", " \n{\"key\":\"u1\"}\n ", "u1", ""},
		{"no key", `{"email":"a@b.c"}`, "", `flags: invalid context: no "key" attribute`},
		{"null key", `{"key":null}`, "", `flags: invalid context: no "key" attribute`},
		{"number key", `{"key":5}`, "", `flags: invalid context: "key" is a number, want a string`},
		{"object key", `{"key":{"id":"u1"}}`, "", `flags: invalid context: "key" is a object, want a string`},
		{"number out of range", `{"key":"u1","big":1e400}`, "u1", `flags: invalid context: attribute "big": number 1e400 out of range`},
		{"nested out of range", `{"key":"u1","org":{"n":[1,-1e999]}}`, "u1", `flags: invalid context: attribute "org": .n: [1]: number -1e999 out of range`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ContextFromJSON([]byte(tc.in))
			if err != nil {
				t.Fatalf("ContextFromJSON(%s) error %v", tc.in, err)
			}
			if c.Key() != tc.wantKey {
				t.Errorf("Key() = %q, want %q", c.Key(), tc.wantKey)
			}
			gotErr := ""
			if c.Err() != nil {
				gotErr = c.Err().Error()
				if !errors.Is(c.Err(), ErrInvalidContext) {
					t.Errorf("Err() = %v does not match ErrInvalidContext", c.Err())
				}
			}
			if gotErr != tc.wantCtxErr {
				t.Errorf("Err() = %q, want %q", gotErr, tc.wantCtxErr)
			}
		})
	}
}

func TestContextFromJSONNotAnObject(t *testing.T) {
	tests := []struct {
		in   string
		want string
		bug  string
	}{
		{``, "flags: context: EOF", ""},
		{`{`, "flags: context: unexpected EOF", ""},
		{`[]`, "flags: context: got array, want a JSON object", ""},
		{`"u1"`, "flags: context: got string, want a JSON object", ""},
		{`null`, "flags: context: got null, want a JSON object", ""},
		{`17`, "flags: context: got number, want a JSON object", ""},
		{`{} {}`, "flags: context: trailing data after the JSON object", ""},
		{`{"key":"a"} x`, "flags: context: trailing data after the JSON object", ""},
		{`{"key":"a"}]`, "flags: context: trailing data after the JSON object",
			"context.go ContextFromJSON: dec.More() is false before ']' or '}', so a trailing ']' or '}' is accepted"},
		{`{"key":"a"}}`, "flags: context: trailing data after the JSON object",
			"context.go ContextFromJSON: dec.More() is false before ']' or '}', so a trailing ']' or '}' is accepted"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			c, err := ContextFromJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("ContextFromJSON(%q) = %v, nil; want error %q", tc.in, c, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("ContextFromJSON(%q) error %q, want %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestContextBuilderSetTypes(t *testing.T) {
	type custom string
	tests := []struct {
		name  string
		value any
		want  any
	}{
		{"string", "s", "s"},
		{"bool", true, true},
		{"nil", nil, nil},
		{"int", 7, 7.0},
		{"named string", custom("x"), "x"},
		{"int8", int8(-8), -8.0},
		{"int16", int16(16), 16.0},
		{"int32", int32(-32), -32.0},
		{"int64", int64(1) << 53, float64(int64(1) << 53)},
		{"uint", uint(1), 1.0},
		{"uint8", uint8(255), 255.0},
		{"uint16", uint16(16), 16.0},
		{"uint32", uint32(32), 32.0},
		{"uint64", uint64(math.MaxUint64), float64(math.MaxUint64)},
		{"float32", float32(1.5), 1.5},
		{"float64", 2.25, 2.25},
		{"json.Number", json.Number("12.5"), 12.5},
		{"[]string", []string{"a", "b"}, []any{"a", "b"}},
		{"[]int", []int{1, 2}, []any{1.0, 2.0}},
		{"[]float64", []float64{0.5}, []any{0.5}},
		{"[]any nested", []any{1, "x", []any{int8(2)}, map[string]any{"k": uint(3)}}, []any{1.0, "x", []any{2.0}, map[string]any{"k": 3.0}}},
		{"map[string]string", map[string]string{"plan": "pro"}, map[string]any{"plan": "pro"}},
		{"map[string]any nested", map[string]any{"a": map[string]any{"b": int64(4)}, "n": nil},
			map[string]any{"a": map[string]any{"b": 4.0}, "n": nil}},
		{"empty slice", []string{}, []any{}},
		{"[]int64", []int64{1, 2}, []any{1.0, 2.0}},
		{"[]bool", []bool{true, false}, []any{true, false}},
		{"[]float32", []float32{0.5}, []any{0.5}},
		{"named slice", []custom{"x"}, []any{"x"}},
		{"array", [2]string{"a", "b"}, []any{"a", "b"}},
		{"[][]string", [][]string{{"a"}, {}}, []any{[]any{"a"}, []any{}}},
		{"[]map[string]any", []map[string]any{{"k": 1}}, []any{map[string]any{"k": 1.0}}},
		{"map[string]int", map[string]int{"a": 1}, map[string]any{"a": 1.0}},
		{"map[string]bool", map[string]bool{"b": true}, map[string]any{"b": true}},
		{"map[string][]string", map[string][]string{"g": {"x"}}, map[string]any{"g": []any{"x"}}},
		{"named map", map[custom]int{"a": 2}, map[string]any{"a": 2.0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewContext("u1").Set("v", tc.value).Build()
			if c.Err() != nil {
				t.Fatalf("Set(v, %#v): Err() = %v", tc.value, c.Err())
			}
			got, ok := c.Get("v")
			if tc.want == nil {
				if ok {
					t.Errorf("Get(v) = %#v, true; want absent (null)", got)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || !ok {
				t.Errorf("Set(v, %#v): Get(v) mismatch, ok=%v (-want +got):\n%s", tc.value, ok, diff)
			}
		})
	}
	bad := []struct {
		name  string
		value any
		want  string
	}{
		{"struct", struct{}{}, `flags: invalid context: attribute "v": unsupported type struct {}`},
		{"[]byte", []byte("x"), `flags: invalid context: attribute "v": unsupported type []uint8 (bytes: set string(b) for text)`},
		{"map[int]string", map[int]string{1: "a"}, `flags: invalid context: attribute "v": unsupported type map[int]string (a map's keys must be strings)`},
		{"[]struct", []struct{}{{}}, `flags: invalid context: attribute "v": [0]: unsupported type struct {}`},
		{"pointer", new(string), `flags: invalid context: attribute "v": unsupported type *string`},
		{"nested", map[string]any{"a": []any{1, make(chan int)}}, `flags: invalid context: attribute "v": .a: [1]: unsupported type chan int`},
		{"bad json.Number", json.Number("1e999"), `flags: invalid context: attribute "v": number 1e999 out of range`},
	}
	for _, tc := range bad {
		t.Run("bad "+tc.name, func(t *testing.T) {
			c := NewContext("u1").Set("v", tc.value).Build()
			if c.Err() == nil || !errors.Is(c.Err(), ErrInvalidContext) || c.Err().Error() != tc.want {
				t.Errorf("Set(v, %T): Err() = %v, want %q wrapping ErrInvalidContext", tc.value, c.Err(), tc.want)
			}
			if c.Key() != "u1" {
				t.Errorf("Key() = %q, want u1 even when invalid", c.Key())
			}
		})
	}
}

func TestContextBuilderNames(t *testing.T) {
	for _, name := range []string{"", "org.plan", ".", "a."} {
		c := NewContext("u1").Set(name, "x").Build()
		if c.Err() == nil || !errors.Is(c.Err(), ErrInvalidContext) || !strings.Contains(c.Err().Error(), "contain no dot") {
			t.Errorf("Set(%q): Err() = %v, want an invalid context naming the rule", name, c.Err())
		}
	}
	// Two problems are both reported.
	c := NewContext("u1").Set("a.b", 1).Set("c", struct{}{}).Build()
	if msg := c.Err().Error(); !strings.Contains(msg, `"a.b"`) || !strings.Contains(msg, `"c"`) {
		t.Errorf("Err() = %q, want both problems", msg)
	}
	// Setting "key" replaces the key; a non-string key is invalid.
	if c := NewContext("u1").Set("key", "u2").Build(); c.Key() != "u2" || c.Err() != nil {
		t.Errorf("Set(key, u2): Key() = %q, Err() = %v", c.Key(), c.Err())
	}
	if c := NewContext("u1").Set("key", 3).Build(); c.Err() == nil || c.Key() != "" {
		t.Errorf("Set(key, 3): Key() = %q, Err() = %v; want invalid", c.Key(), c.Err())
	}
	if c := NewContext("u1").Set("a", 1).Set("a", 2).Build(); !ctxHas(c, "a", 2.0) {
		t.Errorf("Set twice: last value should win")
	}
}

func ctxHas(c Context, path string, want any) bool {
	got, ok := c.Get(path)
	return ok && cmp.Equal(want, got)
}

func TestContextIsolation(t *testing.T) {
	org := map[string]any{"plan": "pro"}
	tags := []any{"a"}
	strs := []string{"s"}
	b := NewContext("u1").Set("org", org).Set("tags", tags).Set("strs", strs)
	c1 := b.Build()
	org["plan"], tags[0], strs[0] = "free", "z", "z" // the caller's values change afterwards
	b.Set("org", map[string]any{"plan": "other"}).Set("extra", 1)
	c2 := b.Build()
	if !ctxHas(c1, "org.plan", "pro") || !ctxHas(c1, "tags", []any{"a"}) || !ctxHas(c1, "strs", []any{"s"}) {
		t.Errorf("c1 changed with the caller's values or the builder: %s", mustJSON(t, c1))
	}
	if _, ok := c1.Get("extra"); ok {
		t.Errorf("c1 sees an attribute set after it was built")
	}
	if !ctxHas(c2, "org.plan", "other") || !ctxHas(c2, "extra", 1.0) {
		t.Errorf("c2 = %s", mustJSON(t, c2))
	}
	m := map[string]any{"key": "u1", "org": map[string]any{"plan": "pro"}}
	c3 := ContextFromMap(m)
	m["key"] = "u2"
	m["org"].(map[string]any)["plan"] = "free"
	if c3.Key() != "u1" || !ctxHas(c3, "org.plan", "pro") {
		t.Errorf("ContextFromMap context follows the caller's map: %s", mustJSON(t, c3))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func TestContextGet(t *testing.T) {
	c, err := ContextFromJSON([]byte(`{"key":"u1","org":{"plan":"pro","nil":null,"deep":{"x":1}},"n":null,"list":[{"a":1}],"s":"str"}`))
	if err != nil || c.Err() != nil {
		t.Fatal(err, c.Err())
	}
	tests := []struct {
		path   string
		want   any
		wantOK bool
	}{
		{"key", "u1", true}, {"org.plan", "pro", true}, {"org.deep.x", 1.0, true},
		{"org.nil", nil, false}, {"n", nil, false}, {"missing", nil, false}, {"missing.x", nil, false},
		{"s.x", nil, false}, {"list.a", nil, false}, {"org.deep.x.y", nil, false}, {"", nil, false}, {"org.", nil, false},
	}
	for _, tc := range tests {
		got, ok := c.Get(tc.path)
		if ok != tc.wantOK || !cmp.Equal(tc.want, got) {
			t.Errorf("Get(%q) = %#v, %v; want %#v, %v", tc.path, got, ok, tc.want, tc.wantOK)
		}
	}
}

// TestContextDottedTopLevelName: ContextFromMap keeps a top-level name with a
// dot, documented as unreachable by any path; Get must agree with evaluation,
// where "org.plan" always means attribute plan of object org.
func TestContextDottedTopLevelName(t *testing.T) {
	c := ContextFromMap(map[string]any{"key": "u1", "org.plan": "dotted", "org": map[string]any{"plan": "nested"}})
	if c.Err() != nil {
		t.Fatalf("Err() = %v, want the dotted name kept", c.Err())
	}
	snap := ctxTestSnapshot(t, `{"flags":{"f":{"on":true,"variations":["no","yes"],
		"rules":[{"id":"r","clauses":[{"attribute":"org.plan","op":"in","values":["nested"]}],"serve":{"variation":1}}],
		"fallthrough":{"variation":0}}}}`)
	if r := Evaluate(snap, "f", c, nil); r.Value != "yes" {
		t.Errorf("evaluation of org.plan = %v (%+v), want yes (the nested attribute)", r.Value, r.Reason)
	}
	if got, _ := c.Get("org.plan"); got != "nested" {
		t.Errorf("Get(%q) = %v, want %q as evaluation and ContextFromMap's doc say", "org.plan", got, "nested")
	}
}

func TestContextMarshalJSON(t *testing.T) {
	c := NewContext("u1").Set("n", 2).Set("org", map[string]string{"plan": "pro"}).Set("tags", []string{"a"}).Build()
	want := `{"key":"u1","n":2,"org":{"plan":"pro"},"tags":["a"]}`
	if got := mustJSON(t, c); got != want {
		t.Errorf("MarshalJSON = %s, want %s", got, want)
	}
	back, err := ContextFromJSON([]byte(want))
	if err != nil || back.Err() != nil {
		t.Fatal(err, back.Err())
	}
	if diff := cmp.Diff(c.attrs.toMap(), back.attrs.toMap()); diff != "" {
		t.Errorf("round trip (-built +decoded):\n%s", diff)
	}
	if got := mustJSON(t, Context{}); got != `{}` {
		t.Errorf("zero Context MarshalJSON = %s, want {}", got)
	}
}

func ctxTestSnapshot(t *testing.T, doc string) *Snapshot {
	t.Helper()
	d, err := rules.ParseDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return Compile(d)
}

const ctxTestDoc = `{"flags":{
	"f": {"version":3,"on":true,"variations":[false,true],
		"targets":[{"values":["vip"],"variation":1}],
		"rules":[{"id":"pro","clauses":[{"attribute":"org.plan","op":"in","values":["pro"]},
			{"attribute":"n","op":"greaterThan","values":[1]}],"serve":{"variation":1}}],
		"fallthrough":{"variation":0}},
	"bad": {"on":true,"variations":[]}}}`

// TestEvaluateContextValidity: SPEC §3's order — not found, then malformed,
// then an invalid context — and contexts built by each constructor agree.
func TestEvaluateContextValidity(t *testing.T) {
	snap := ctxTestSnapshot(t, ctxTestDoc)
	noKey, _ := ContextFromJSON([]byte(`{"org":{"plan":"pro"}}`))
	tests := []struct {
		name string
		flag string
		ctx  Context
		want Reason
		val  any
	}{
		{"not found before invalid context", "nope", noKey, Reason{Kind: ReasonError, ErrorKind: ErrorFlagNotFound}, nil},
		{"malformed before invalid context", "bad", noKey, Reason{Kind: ReasonError, ErrorKind: ErrorMalformedFlag}, nil},
		{"invalid context", "f", noKey, Reason{Kind: ReasonError, ErrorKind: ErrorInvalidContext}, nil},
		{"unsupported attribute", "f", NewContext("vip").Set("x", struct{}{}).Build(), Reason{Kind: ReasonError, ErrorKind: ErrorInvalidContext}, nil},
		{"target", "f", NewContext("vip").Build(), Reason{Kind: ReasonTargetMatch}, true},
		{"builder rule", "f", NewContext("u1").Set("org", map[string]string{"plan": "pro"}).Set("n", uint8(2)).Build(),
			Reason{Kind: ReasonRuleMatch, RuleID: "pro"}, true},
		{"json rule", "f", ctxMust(t, `{"key":"u1","org":{"plan":"pro"},"n":2.0}`), Reason{Kind: ReasonRuleMatch, RuleID: "pro"}, true},
		{"map rule", "f", ContextFromMap(map[string]any{"key": "u1", "org": map[string]any{"plan": "pro"}, "n": int64(2)}),
			Reason{Kind: ReasonRuleMatch, RuleID: "pro"}, true},
		{"string number not coerced", "f", ctxMust(t, `{"key":"u1","org":{"plan":"pro"},"n":"2"}`), Reason{Kind: ReasonFallthrough}, false},
		{"empty key is valid", "f", NewContext("").Build(), Reason{Kind: ReasonFallthrough}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(snap, tc.flag, tc.ctx, nil)
			if diff := cmp.Diff(tc.want, r.Reason); diff != "" {
				t.Errorf("Evaluate(%q) reason (-want +got):\n%s", tc.flag, diff)
			}
			if r.Value != tc.val {
				t.Errorf("Evaluate(%q) = %v, want %v", tc.flag, r.Value, tc.val)
			}
			if tc.want.ErrorKind == ErrorInvalidContext && !errors.Is(r.Err, ErrInvalidContext) {
				t.Errorf("Err = %v, want ErrInvalidContext", r.Err)
			}
		})
	}
}

func ctxMust(t *testing.T, s string) Context {
	t.Helper()
	c, err := ContextFromJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestZeroContextIsInvalid: the zero Context has no key, so SPEC §3 asks for
// INVALID_CONTEXT; it must not be evaluated as a context with an empty key.
func TestZeroContextIsInvalid(t *testing.T) {
	snap := ctxTestSnapshot(t, ctxTestDoc)
	var zero Context
	r := Evaluate(snap, "f", zero, nil)
	if zero.Err() == nil || r.Reason.ErrorKind != ErrorInvalidContext {
		t.Errorf("the zero Context{}: Err() = %v, evaluation reason %+v; want an error and ERROR/INVALID_CONTEXT: it has no key", zero.Err(), r.Reason)
	}
}

// TestIntGetterRange: an Int request of a number that no int can hold is
// WRONG_TYPE (SPEC §3 step 8), never a wrapped value.
func TestIntGetterRange(t *testing.T) {
	c, err := New(WithDocument([]byte(`{"flags":{
		"two63": {"on":true,"variations":[9223372036854775808],"fallthrough":{"variation":0}},
		"huge":  {"on":true,"variations":[1e300],"fallthrough":{"variation":0}},
		"min":   {"on":true,"variations":[-9223372036854775808],"fallthrough":{"variation":0}},
		"exact": {"on":true,"variations":[9007199254740992],"fallthrough":{"variation":0}}}}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, user := context.Background(), NewContext("u1").Build()
	for key, want := range map[string]int{"min": math.MinInt64, "exact": 1 << 53} {
		if r := c.IntDetail(ctx, key, user, 7); r.Value != want || r.Err != nil {
			t.Errorf("IntDetail(%q) = %d, %v; want %d", key, r.Value, r.Err, want)
		}
	}
	if r := c.IntDetail(ctx, "huge", user, 7); r.Value != 7 || r.Reason.ErrorKind != ErrorWrongType {
		t.Errorf("IntDetail(huge) = %d, %+v; want the default with WRONG_TYPE", r.Value, r.Reason)
	}
	if r := c.IntDetail(ctx, "two63", user, 7); r.Value != 7 || r.Reason.ErrorKind != ErrorWrongType || !errors.Is(r.Err, ErrWrongType) {
		t.Errorf("IntDetail(two63) = %d, %+v; want default 7 with WRONG_TYPE (2^63 does not fit an int)", r.Value, r.Reason)
	}
}

// TestContextSizes: contexts of few attributes (held in a slice) and of
// many (held in a map) answer the same lookups, evaluations and JSON.
func TestContextSizes(t *testing.T) {
	doc, err := rules.ParseDocument([]byte(`{"flags":{"f":{"on":true,"variations":[false,true],"fallthrough":{"variation":0},
		"rules":[{"clauses":[{"attribute":"a3","op":"in","values":["v3"]},{"attribute":"org.plan","op":"in","values":["pro"]},{"attribute":"nil","op":"exists","values":[]}],"serve":{"variation":1}},
		{"clauses":[{"attribute":"a3","op":"in","values":["v3"]},{"attribute":"org.plan","op":"in","values":["pro"]}],"serve":{"variation":1}}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	snap := Compile(doc)
	for _, n := range []int{4, smallContext - 2, smallContext + 5} {
		b := NewContext("u").Set("org", map[string]any{"plan": "pro"}).Set("nil", nil)
		for i := 0; i < n-3; i++ {
			b.Set(fmt.Sprintf("a%d", i+3), fmt.Sprintf("v%d", i+3))
		}
		ec := b.Build()
		if got := len(ec.attrs.toMap()); got != n {
			t.Fatalf("%d attributes built, %d held", n, got)
		}
		if v, ok := ec.Get("org.plan"); !ok || v != "pro" {
			t.Errorf("%d attributes: Get(org.plan) = %v, %v", n, v, ok)
		}
		if _, ok := ec.Get("nil"); ok {
			t.Errorf("%d attributes: a null attribute is present", n)
		}
		if _, ok := ec.Get("nowhere"); ok {
			t.Errorf("%d attributes: an attribute never set is present", n)
		}
		if r := Evaluate(snap, "f", ec, nil); r.Reason.Kind != ReasonRuleMatch || r.Reason.RuleIndex != 1 {
			t.Errorf("%d attributes: %+v, want rule 1 (a null attribute does not exist)", n, r.Reason)
		}
		data, err := json.Marshal(ec)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ContextFromJSON(data)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ec.attrs.toMap(), back.attrs.toMap()); diff != "" {
			t.Errorf("%d attributes: JSON round trip (-built +decoded):\n%s", n, diff)
		}
	}
}

type plan string
type tier int
type ratio float32
type flagged bool

// ip is an encoding.TextMarshaler.
type ip [4]byte

func (a ip) MarshalText() ([]byte, error) {
	return fmt.Appendf(nil, "%d.%d.%d.%d", a[0], a[1], a[2], a[3]), nil
}

type badText struct{}

func (badText) MarshalText() ([]byte, error) { return nil, errors.New("no text") }

// TestContextSetConvertibleTypes: time.Time as RFC 3339 (UTC), text
// marshalers as their text, named basic types as what they hold; and they
// work in rules.
func TestContextSetConvertibleTypes(t *testing.T) {
	signup := time.Date(2026, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600))
	ec := NewContext("u").Set("signup", signup).Set("ip", ip{10, 0, 0, 7}).Set("plan", plan("pro")).
		Set("tier", tier(3)).Set("ratio", ratio(0.5)).Set("beta", flagged(true)).Build()
	if err := ec.Err(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]any{"signup": "2026-03-01T11:30:00Z", "ip": "10.0.0.7", "plan": "pro",
		"tier": 3.0, "ratio": 0.5, "beta": true} {
		if got, _ := ec.Get(name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	c := newTestClient(t, `{"flags": {"f": {"on": true, "variations": [false, true], "fallthrough": {"variation": 0},
	  "rules": [{"clauses": [{"attribute": "signup", "op": "before", "values": ["2026-06-01T00:00:00Z"]},
	                         {"attribute": "plan", "op": "in", "values": ["pro"]},
	                         {"attribute": "tier", "op": "greaterThan", "values": [2]}], "serve": {"variation": 1}}]}}}`)
	if !c.Bool(context.Background(), "f", ec, false) {
		t.Error("the rule on converted attributes did not match")
	}
	if err := NewContext("u").Set("x", badText{}).Build().Err(); err == nil || !strings.Contains(err.Error(), "no text") {
		t.Errorf("a failing MarshalText: %v", err)
	}
	if err := NewContext("u").Set("x", struct{}{}).Build().Err(); err == nil {
		t.Error("a struct was accepted")
	}
}

// TestAttributeSlots: every attribute of a context as large as a slice
// holds is found through the fingerprint slots, names whose fingerprints
// collide (same length, first and last byte) included, and an absent name
// is not, whether or not its fingerprint is taken.
func TestAttributeSlots(t *testing.T) {
	b := NewContext("k")
	var names []string
	for i := range smallContext - 1 { // "key" is the 16th
		name := fmt.Sprintf("a%cz", 'a'+i) // one fingerprint for all 15
		b.Set(name, i)
		names = append(names, name)
	}
	c := b.Build()
	if c.attrs.m != nil {
		t.Fatalf("a context of %d attributes is a map, want the slice", smallContext)
	}
	for i, name := range names {
		if v, ok := c.lookup(eval.Path{name}); !ok || v != float64(i) {
			t.Errorf("lookup(%q) = %v, %v; want %d", name, v, ok, i)
		}
	}
	if v, ok := c.lookup(eval.Path{"key"}); !ok || v != "k" {
		t.Errorf("lookup(key) = %v, %v", v, ok)
	}
	for _, absent := range []string{"a_z", "azz", "b", "keys", ""} {
		if v, ok := c.lookup(eval.Path{absent}); ok {
			t.Errorf("lookup(%q) = %v, want absent", absent, v)
		}
	}
}

// TestIntBeyondRangeSaysSo: an Int of a whole number beyond int says it is
// out of range, not that it has a fraction.
func TestIntBeyondRangeSaysSo(t *testing.T) {
	c := newTestClient(t, `{"flags": {"huge": {"on": true, "variations": [1e20], "fallthrough": {"variation": 0}},
	  "half": {"on": true, "variations": [2.5], "fallthrough": {"variation": 0}}}}`)
	u := NewContext("u1").Build()
	if r := c.IntDetail(context.Background(), "huge", u, 7); r.Value != 7 || !errors.Is(r.Err, ErrWrongType) || !strings.Contains(r.Err.Error(), "1e+20, beyond the range of int") {
		t.Errorf("IntDetail(huge) = %d, %v", r.Value, r.Err)
	}
	if r := c.IntDetail(context.Background(), "half", u, 7); r.Value != 7 || !strings.Contains(fmt.Sprint(r.Err), "with a fraction") {
		t.Errorf("IntDetail(half) = %d, %v", r.Value, r.Err)
	}
}
