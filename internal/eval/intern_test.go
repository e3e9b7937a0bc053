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
	t.Run("same bytes", func(t *testing.T) { checkSameBytesShare(t, flagOf(t, s, "a"), flagOf(t, s, "b")) })
	t.Run("invalid key", func(t *testing.T) {
		if bk := flagOf(t, s, "bad key"); bk.Definition == flagOf(t, s, "a").Definition || bk.Err == nil {
			t.Errorf("flag under an invalid key shares a's definition or has no error: %v", bk.Err)
		}
	})
	t.Run("explicit salt", func(t *testing.T) {
		s1, s2 := flagOf(t, s, "s1"), flagOf(t, s, "s2")
		if s1.Definition != s2.Definition || s1.Salt() != "s" || s2.Salt() != "s" || s2.Fallthrough.Rollout.Salt != "s" {
			t.Errorf("explicitly salted flags: shared %v, salts %q %q", s1.Definition == s2.Definition, s1.Salt(), s2.Salt())
		}
	})
	t.Run("rollouts salted with the key", func(t *testing.T) {
		k1, k2 := flagOf(t, s, "k1"), flagOf(t, s, "k2")
		if k1.Definition == k2.Definition || k1.Fallthrough.Rollout.Salt != "k1" || k2.Fallthrough.Rollout.Salt != "k2" {
			t.Errorf("rollouts salted with the key: shared %v, salts %q %q", k1.Definition == k2.Definition,
				k1.Fallthrough.Rollout.Salt, k2.Fallthrough.Rollout.Salt)
		}
	})
	t.Run("malformed", func(t *testing.T) { checkMalformedNotShared(t, flagOf(t, s, "m1"), flagOf(t, s, "m2")) })
	t.Run("shared empty parts unwritten", checkSharedEmptyPartsUnwritten)
}

// flagOf is s.Flag(key), which must exist.
func flagOf(t *testing.T, s *Snapshot, key string) *Flag {
	t.Helper()
	f := s.Flag(key)
	if f == nil {
		t.Fatalf("Flag(%q) = nil", key)
	}
	return f
}

// checkSameBytesShare checks that a and b, compiled from the same bytes
// of TestSharedDefinitions, share their definition but not their keys or
// salts.
func checkSameBytesShare(t *testing.T, a, b *Flag) {
	t.Helper()
	if a.Definition != b.Definition {
		t.Errorf("a and b, the same bytes: definitions not shared")
	}
	if a.Key != "a" || b.Key != "b" || a.Salt() != "a" || b.Salt() != "b" || !b.On || b.Fallthrough.Variation != 1 || !b.Variations[1].Bool || !b.Constant {
		t.Errorf("b = key %q salt %q on %v fallthrough %+v constant %v", b.Key, b.Salt(), b.On, b.Fallthrough, b.Constant)
	}
	if a.Err != nil || b.Err != nil {
		t.Errorf("a, b errors: %v, %v", a.Err, b.Err)
	}
}

// checkMalformedNotShared checks that malformed flags of the same bytes
// do not share a definition: each problem names its own flag.
func checkMalformedNotShared(t *testing.T, m1, m2 *Flag) {
	t.Helper()
	if m1.Definition == m2.Definition || m1.Err == nil || m2.Err == nil {
		t.Fatalf("malformed flags share a definition (%v) or lack errors", m1.Definition == m2.Definition)
	}
	if want := `flags.m2.fallthrough: missing (required)`; m2.Err.Error() != want {
		t.Errorf("m2.Err = %q, want %q", m2.Err, want)
	}
}

// checkSharedEmptyPartsUnwritten checks that compiling never wrote to the
// empty parts every plain flag and clause shares.
func checkSharedEmptyPartsUnwritten(t *testing.T) {
	t.Helper()
	if noMetadata.Description != "" || noMetadata.Tags != nil || noMetadata.Deprecated || noMetadata.local != nil {
		t.Errorf("the shared empty Metadata was written: %+v", *noMetadata)
	}
	if unresolved.PrerequisiteFlags != nil || unresolved.SegmentRefs != nil || unresolved.Problems != nil {
		t.Errorf("the shared empty Resolved was written: %+v", *unresolved)
	}
	if noParsed.patterns != nil || noParsed.numbers != nil || noParsed.instants != nil || noParsed.versions != nil {
		t.Errorf("the shared empty parsedValues was written: %+v", *noParsed)
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
	checkSharedVariations(t, s, "ft0", "ft1", true)
	checkSharedVariations(t, s, "ft0", "tf", false)
	checkSharedVariations(t, s, "n1", "n1b", true)
	checkSharedVariations(t, s, "n1", "n1.0", false) // the JSON keeps the document's spelling
	checkSharedVariations(t, s, "s", "s2", false)
	checkSharedVariations(t, s, "s", "s3", true)
	checkSharedVariations(t, s, "j1", "j2", true)
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

// checkSharedVariations checks that flags a and b of s share their
// variations list exactly when want says so, and that a shared list
// serves both alike.
func checkSharedVariations(t *testing.T, s *Snapshot, a, b string, want bool) {
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

// TestSortKeys: sortKeys sorts as slices.Sort does, whatever the keys share,
// and moves the raws with their keys.
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
		var raws []json.RawMessage // each key's own bytes, which must follow it
		if round%2 == 1 {
			for _, k := range keys {
				raws = append(raws, json.RawMessage(k))
			}
		}
		sortKeys(keys, raws)
		if !slices.Equal(keys, want) {
			t.Fatalf("round %d: sortKeys differs from slices.Sort on %d keys", round, n)
		}
		for i := range raws {
			if string(raws[i]) != keys[i] {
				t.Fatalf("round %d: raw %q sorted to key %q", round, raws[i], keys[i])
			}
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
	checkSharedEmptyPartsUnwritten(t)
	for i, m := range []struct {
		value any
		want  bool
	}{{"ann@corp.com", true}, {"ab", true}, {2.0, true}, {4.0, true}, {"1.2.0", true}, {"1.2.0", false}} {
		if got := cs[i].Match(m.value, true); got != m.want {
			t.Errorf("clauses do not match as compiled: clause %d (%s %v) Match(%v) = %v, want %v",
				i, cs[i].Op, cs[i].Values, m.value, got, m.want)
		}
	}
}
