package eval

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSharedDefinitions: flags whose JSON is byte for byte the same share
// one Definition, unless it depends on their key; each flag still has its
// own key, salt and values.
func TestSharedDefinitions(t *testing.T) {
	const simple = `{"on":true,"variations":[false,true],"fallthrough":{"variation":1}}`
	const salted = `{"on":true,"salt":"s","variations":[false,true],"fallthrough":{"rollout":{"variations":[{"variation":0,"weight":50000},{"variation":1,"weight":50000}]}}}`
	const keyedRollout = `{"on":true,"variations":[false,true],"fallthrough":{"rollout":{"variations":[{"variation":0,"weight":50000},{"variation":1,"weight":50000}]}}}`
	const bad = `{"on":true,"variations":[false,true]}`
	s := Compile(docOf(t, 1, map[string]string{
		"a": simple, "b": simple, "bad key": simple,
		"s1": salted, "s2": salted,
		"k1": keyedRollout, "k2": keyedRollout,
		"m1": bad, "m2": bad,
	}, nil))
	get := func(key string) *Flag {
		f := s.Flag(key)
		if f == nil {
			t.Fatalf("Flag(%q) = nil", key)
		}
		return f
	}
	a, b := get("a"), get("b")
	if a.Definition != b.Definition {
		t.Errorf("a and b, the same bytes: definitions not shared")
	}
	if a.Key != "a" || b.Key != "b" || a.Salt() != "a" || b.Salt() != "b" || !b.On || b.Fallthrough.Variation != 1 || !b.Variations[1].Bool || !b.Constant {
		t.Errorf("b = key %q salt %q on %v fallthrough %+v constant %v", b.Key, b.Salt(), b.On, b.Fallthrough, b.Constant)
	}
	if bk := get("bad key"); bk.Definition == a.Definition || bk.Err == nil {
		t.Errorf("flag under an invalid key shares a's definition or has no error: %v", bk.Err)
	}
	if a.Err != nil || b.Err != nil {
		t.Errorf("a, b errors: %v, %v", a.Err, b.Err)
	}
	s1, s2 := get("s1"), get("s2")
	if s1.Definition != s2.Definition || s1.Salt() != "s" || s2.Salt() != "s" || s2.Fallthrough.Rollout.Salt != "s" {
		t.Errorf("explicitly salted flags: shared %v, salts %q %q", s1.Definition == s2.Definition, s1.Salt(), s2.Salt())
	}
	k1, k2 := get("k1"), get("k2")
	if k1.Definition == k2.Definition || k1.Fallthrough.Rollout.Salt != "k1" || k2.Fallthrough.Rollout.Salt != "k2" {
		t.Errorf("rollouts salted with the key: shared %v, salts %q %q", k1.Definition == k2.Definition,
			k1.Fallthrough.Rollout.Salt, k2.Fallthrough.Rollout.Salt)
	}
	m1, m2 := get("m1"), get("m2")
	if m1.Definition == m2.Definition || m1.Err == nil || m2.Err == nil {
		t.Fatalf("malformed flags share a definition (%v) or lack errors", m1.Definition == m2.Definition)
	}
	if want := `flags.m2.fallthrough: missing (required)`; m2.Err.Error() != want {
		t.Errorf("m2.Err = %q, want %q", m2.Err, want)
	}
	// The shared empty parts were never written to.
	if noMetadata.Description != "" || noMetadata.Tags != nil || noMetadata.Deprecated || noMetadata.local != nil {
		t.Errorf("the shared empty Metadata was written: %+v", *noMetadata)
	}
	if unresolved.PrerequisiteFlags != nil || unresolved.SegmentRefs != nil || unresolved.Problems != nil {
		t.Errorf("the shared empty Resolved was written: %+v", *unresolved)
	}
}

// TestInternedVariations: flags with the same variations share one list;
// lists that differ in any value, spelling or order do not.
func TestInternedVariations(t *testing.T) {
	flag := func(variations string, serve int) string {
		return fmt.Sprintf(`{"on":true,"variations":%s,"fallthrough":{"variation":%d}}`, variations, serve)
	}
	s := Compile(docOf(t, 1, map[string]string{
		"ft0": flag(`[false,true]`, 0), "ft1": flag(`[false, true]`, 1),
		"tf": flag(`[true,false]`, 0),
		"n1": flag(`[1,2]`, 0), "n1.0": flag(`[1.0,2]`, 1), "n1b": flag(`[1,2]`, 1),
		"s": flag(`["a,b"]`, 0), "s2": flag(`["a","b"]`, 1), "s3": flag(`["\u0061,b"]`, 0),
		"j1": flag(`[{"k":[1]}]`, 0), "j2": flag(`[{"k":[1]} ]`, 0),
	}, nil))
	same := func(a, b string, want bool) {
		t.Helper()
		fa, fb := s.Flag(a), s.Flag(b)
		if fa.Err != nil || fb.Err != nil {
			t.Fatalf("%s, %s: %v, %v", a, b, fa.Err, fb.Err)
		}
		if got := &fa.Variations[0] == &fb.Variations[0]; got != want {
			t.Errorf("%s and %s share their variations: %v, want %v", a, b, got, want)
		}
		if want && (fa.Kind != fb.Kind || cmp.Diff(fa.Variations, fb.Variations) != "") {
			t.Errorf("%s and %s: shared variations differ", a, b)
		}
	}
	same("ft0", "ft1", true)
	same("ft0", "tf", false)
	same("n1", "n1b", true)
	same("n1", "n1.0", false) // the JSON keeps the document's spelling
	same("s", "s2", false)
	same("s", "s3", true)
	same("j1", "j2", true)
	if f := s.Flag("tf"); f.Variations[0].Bool != true || string(f.Variations[1].JSON) != "false" || f.Kind != KindBool {
		t.Errorf("tf variations = %+v", f.Variations)
	}
	if f := s.Flag("n1.0"); string(f.Variations[0].JSON) != "1.0" || f.Variations[0].Number != 1 || f.Variations[1].Value != 2.0 {
		t.Errorf("n1.0 variations = %+v", f.Variations)
	}
	if f := s.Flag("s2"); f.Variations[1].String != "b" || string(f.Variations[1].JSON) != `"b"` {
		t.Errorf("s2 variations = %+v", f.Variations)
	}
	if f := s.Flag("j2"); cmp.Diff(map[string]any{"k": []any{1.0}}, f.Variations[0].Value) != "" || string(f.Variations[0].JSON) != `{"k":[1]}` {
		t.Errorf("j2 variations = %+v", f.Variations)
	}
}

// TestFlagIndex: Flag finds every key of small and large snapshots, and
// nothing else.
func TestFlagIndex(t *testing.T) {
	for _, n := range []int{0, 1, smallIndex, smallIndex + 1, 1000} {
		flags := map[string]json.RawMessage{}
		for i := range n {
			flags[fmt.Sprintf("f%d", i)] = json.RawMessage(`{"on":true,"variations":[false,true],"fallthrough":{"variation":0}}`)
		}
		s := Compile(&Document{Flags: flags})
		for i := range n {
			key := fmt.Sprintf("f%d", i)
			if f := s.Flag(key); f == nil || f.Key != key {
				t.Fatalf("%d flags: Flag(%q) = %v", n, key, f)
			}
		}
		for _, key := range []string{"", "f", fmt.Sprintf("f%d", n), "f-1", "F0"} {
			if f := s.Flag(key); f != nil {
				t.Errorf("%d flags: Flag(%q) = %q, want nil", n, key, f.Key)
			}
		}
		if len(s.Flags()) != n || len(s.FlagKeys()) != n {
			t.Errorf("%d flags: Flags() has %d, FlagKeys() %d", n, len(s.Flags()), len(s.FlagKeys()))
		}
		for i, f := range s.Flags() {
			if f != s.Flag(s.FlagKeys()[i]) {
				t.Errorf("%d flags: Flags()[%d] is not Flag(FlagKeys()[%d])", n, i, i)
			}
		}
	}
}

// TestCompileFromReuseExact: a definition is reused only for the same key
// with the same bytes (a one-byte change, even whitespace, recompiles), and
// what the new snapshot resolves is its own.
func TestCompileFromReuseExact(t *testing.T) {
	const a = `{"on":true,"variations":[false,true],"prerequisites":[{"flag":"b","variation":1}],"fallthrough":{"variation":1}}`
	d1 := docOf(t, 1, map[string]string{"a": a, "b": prereqFlag(), "c": prereqFlag()}, nil)
	s1 := Compile(d1)
	d2 := d1.Apply(&Patch{Version: 2, Flags: map[string]json.RawMessage{
		"c": json.RawMessage(prereqFlag() + " "), "b": json.RawMessage(prereqFlag())}})
	s2 := CompileFrom(s1, d2)
	if s1.Flag("a").Definition != s2.Flag("a").Definition || s1.Flag("b").Definition != s2.Flag("b").Definition {
		t.Errorf("unchanged a, b: definitions not reused")
	}
	if s1.Flag("c").Definition == s2.Flag("c").Definition {
		t.Errorf("c with a byte added: definition reused")
	}
	if s1.Flag("a").Resolved == s2.Flag("a").Resolved || s2.Flag("a").PrerequisiteFlags[0] != s2.Flag("b") ||
		s1.Flag("a").PrerequisiteFlags[0] != s1.Flag("b") {
		t.Errorf("a's prerequisites are not resolved in each snapshot")
	}
}

// TestSortKeys: sortKeys sorts as slices.Sort does, whatever the keys share.
func TestSortKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"ab", "a\x00b", "0123456789", "flag-.xyzXYZ\xff\x00"}
	for round := range 300 {
		n := 1 + r.IntN(2000)
		prefix := strings.Repeat("flag-", r.IntN(3))
		alpha := alphabets[round%len(alphabets)]
		keys := make([]string, n)
		for i := range keys {
			b := []byte(prefix)
			for range r.IntN(14) {
				b = append(b, alpha[r.IntN(len(alpha))])
			}
			keys[i] = string(b)
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		sortKeys(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("round %d: sortKeys differs from slices.Sort on %d keys", round, n)
		}
	}
}

// TestParsedValuesOwnOrShared: a clause with patterns, numbers, instants or
// versions has its own parsedValues; the others share the empty one, which
// is never written.
func TestParsedValuesOwnOrShared(t *testing.T) {
	s := mustCompile(t, `{"flags":{"f":{"on":true,"variations":[false,true],"rules":[{"clauses":[
		{"attribute":"email","op":"endsWith","values":["@corp.com"]},
		{"attribute":"email","op":"matches","values":["^a"]},
		{"attribute":"n","op":"lessThan","values":[3]},
		{"attribute":"t","op":"before","values":[5]},
		{"attribute":"v","op":"semVerEqual","values":["1.2"]},
		{"attribute":"v","op":"semVerEqual","values":["not a version"]}],"serve":{"variation":1}}],
		"fallthrough":{"variation":0}}}}`)
	cs := s.Flag("f").Rules[0].Clauses
	if cs[0].parsedValues != noParsed || cs[5].parsedValues != noParsed {
		t.Errorf("clauses without parsed values do not share the empty parsedValues")
	}
	for i := 1; i <= 4; i++ {
		if cs[i].parsedValues == noParsed {
			t.Errorf("clause %d (%s) has no parsed values of its own", i, cs[i].Op)
		}
	}
	if len(cs[1].patterns) != 1 || len(cs[2].numbers) != 1 || len(cs[3].instants) != 1 || len(cs[4].versions) != 1 {
		t.Errorf("parsed values: %d patterns, %d numbers, %d instants, %d versions",
			len(cs[1].patterns), len(cs[2].numbers), len(cs[3].instants), len(cs[4].versions))
	}
	if noParsed.patterns != nil || noParsed.numbers != nil || noParsed.instants != nil || noParsed.versions != nil {
		t.Errorf("the shared empty parsedValues was written: %+v", *noParsed)
	}
	if !cs[0].Match("ann@corp.com", true) || !cs[1].Match("ab", true) || !cs[2].Match(2.0, true) ||
		!cs[3].Match(4.0, true) || !cs[4].Match("1.2.0", true) || cs[5].Match("1.2.0", true) {
		t.Errorf("clauses do not match as compiled")
	}
}
