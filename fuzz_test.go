package flags

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/internal/evalcases"
	"github.com/flagstream/flags/rules"
	"github.com/google/go-cmp/cmp"
)

// fuzzSnapshots compiles the document of every testdata/eval file, plus one
// document merging them all (the first file to define a key wins), and
// returns the case seeds: (document index, flag, context, at).
func fuzzSnapshots(tb testing.TB) ([]*Snapshot, []func(*testing.F)) {
	tb.Helper()
	files := evalcases.Read(tb, "testdata/eval")
	merged := &rules.Document{Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	var snaps []*Snapshot
	var seeds []func(*testing.F)
	for _, cf := range files {
		file := cf.Path
		doc, err := rules.ParseDocument(cf.Document)
		if err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		for k, v := range doc.Flags {
			if _, ok := merged.Flags[k]; !ok {
				merged.Flags[k] = v
			}
		}
		for k, v := range doc.Segments {
			if _, ok := merged.Segments[k]; !ok {
				merged.Segments[k] = v
			}
		}
		idx := uint8(len(snaps))
		snaps = append(snaps, Compile(doc))
		for _, c := range cf.Cases {
			at := defaultFuzzTime.UnixMilli()
			if t, err := time.Parse(time.RFC3339Nano, c.At); err == nil {
				at = t.UnixMilli()
			}
			flag, ctx := c.Flag, []byte(c.Context)
			seeds = append(seeds, func(f *testing.F) { f.Add(idx, flag, ctx, at) })
		}
	}
	snaps = append(snaps, Compile(merged))
	return snaps, seeds
}

var defaultFuzzTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fuzzReasonKinds are the six reason kinds Evaluate may give (overrides are a
// client feature, not the evaluator's).
var fuzzReasonKinds = map[ReasonKind]bool{ReasonOff: true, ReasonTargetMatch: true, ReasonRuleMatch: true,
	ReasonPrerequisiteFailed: true, ReasonFallthrough: true, ReasonError: true}

var fuzzErrorKinds = map[ErrorKind]error{ErrorClientNotReady: ErrClientNotReady, ErrorFlagNotFound: ErrFlagNotFound,
	ErrorMalformedFlag: ErrMalformedFlag, ErrorInvalidContext: ErrInvalidContext}

// FuzzEvaluate evaluates flags of fixed rich documents (testdata/eval) for
// arbitrary context JSON, flag key and time. Evaluate must not panic or hang,
// and every result must be coherent: a valid variation index or -1, one of
// the six reason kinds, reason fields only where they apply, an error exactly
// when the reason is ERROR, the value of the variation served.
func FuzzEvaluate(f *testing.F) {
	snaps, seeds := fuzzSnapshots(f)
	for _, seed := range seeds {
		seed(f)
	}
	f.Fuzz(func(t *testing.T, which uint8, key string, ctxJSON []byte, at int64) {
		snap := snaps[int(which)%len(snaps)]
		ec, err := ContextFromJSON(ctxJSON)
		if err != nil {
			// Not an object: evaluate with the bytes as the key instead.
			ec = NewContext(string(ctxJSON)).Build()
		}
		clock := func() time.Time { return time.UnixMilli(at) }
		keys := append([]string{key}, snap.FlagKeys()...)
		results := make([]Result[any], len(keys))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i, k := range keys {
				results[i] = Evaluate(snap, k, ec, clock)
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second): // a liveness guard, not a performance check
			t.Fatalf("Evaluate hung (document %d, context %q)", int(which)%len(snaps), ctxJSON)
		}
		for i, k := range keys {
			checkFuzzResult(t, snap, k, ec, at, results[i])
			again := Evaluate(snap, k, ec, clock)
			if again.Variation != results[i].Variation || again.Reason != results[i].Reason {
				t.Fatalf("%q: not deterministic: %+v then %+v", k, results[i].Reason, again.Reason)
			}
		}
		if res := Evaluate(nil, key, ec, clock); res.Reason.ErrorKind != ErrorClientNotReady || res.Variation != -1 {
			t.Fatalf("Evaluate(nil snapshot) = %+v, want CLIENT_NOT_READY", res)
		}
	})
}

// checkFuzzResult checks one result of FuzzEvaluate for coherence with the
// flag it evaluated and with itself.
func checkFuzzResult(t *testing.T, snap *Snapshot, key string, ec Context, now int64, r Result[any]) {
	t.Helper()
	f := snap.compiled().Flag(key)
	checkFuzzResultIdentity(t, f, key, r)
	checkFuzzErrorConsistent(t, key, r)
	if !checkFuzzErrorForFlag(t, f, key, ec, r.Reason) {
		return // an absent flag has nothing more to compare with
	}
	checkFuzzServedValue(t, f, key, r)
	checkFuzzReasonAgreesWithFlag(t, f, key, r)
	checkFuzzReasonFieldsApply(t, key, r.Reason)
	b, err := json.Marshal(r)
	if err != nil || !json.Valid(b) {
		t.Fatalf("%q: result does not encode: %s, %v", key, b, err)
	}
	if kind, rule, ok := naiveOutcome(f, ec, now); ok && (kind != r.Reason.Kind || kind == ReasonRuleMatch && rule != r.Reason.RuleIndex) {
		t.Fatalf("%q: evaluated %s rule %d, a plain walk of targets and rules gives %s rule %d", key, r.Reason.Kind, r.Reason.RuleIndex, kind, rule)
	}
}

// checkFuzzResultIdentity: the result names the flag asked for, gives one of
// the six reason kinds and a variation the flag has (-1 for none).
func checkFuzzResultIdentity(t *testing.T, f *eval.Flag, key string, r Result[any]) {
	t.Helper()
	if !fuzzReasonKinds[r.Reason.Kind] {
		t.Fatalf("%q: reason kind %q is not one of the six", key, r.Reason.Kind)
	}
	if r.Flag != key {
		t.Fatalf("%q: Result.Flag = %q", key, r.Flag)
	}
	if r.Variation < -1 || f != nil && r.Variation >= len(f.Variations) || f == nil && r.Variation != -1 {
		t.Fatalf("%q: variation %d out of range", key, r.Variation)
	}
}

// checkFuzzErrorConsistent: Err is set exactly when the reason is ERROR, and
// then wraps the sentinel of its ErrorKind and serves no value.
func checkFuzzErrorConsistent(t *testing.T, key string, r Result[any]) {
	t.Helper()
	reason := r.Reason
	if (reason.Kind == ReasonError) != (r.Err != nil) {
		t.Fatalf("%q: reason %s with Err %v", key, reason.Kind, r.Err)
	}
	if reason.Kind != ReasonError {
		if reason.ErrorKind != "" {
			t.Fatalf("%q: ErrorKind %q on a %s result", key, reason.ErrorKind, reason.Kind)
		}
		return
	}
	sentinel, ok := fuzzErrorKinds[reason.ErrorKind]
	if !ok || !errors.Is(r.Err, sentinel) || r.Variation != -1 || r.Value != nil {
		t.Fatalf("%q: error result %+v (err %v)", key, reason, r.Err)
	}
}

// checkFuzzErrorForFlag: an absent flag, a malformed flag and an invalid
// context each give their error kind. It reports whether the flag exists.
func checkFuzzErrorForFlag(t *testing.T, f *eval.Flag, key string, ec Context, reason Reason) bool {
	t.Helper()
	switch {
	case f == nil:
		if reason.ErrorKind != ErrorFlagNotFound {
			t.Fatalf("%q: absent flag gave %+v", key, reason)
		}
		return false
	case f.Err != nil:
		if reason.ErrorKind != ErrorMalformedFlag {
			t.Fatalf("%q: malformed flag gave %+v", key, reason)
		}
	case ec.Err() != nil:
		if reason.ErrorKind != ErrorInvalidContext {
			t.Fatalf("%q: invalid context (%v) gave %+v", key, ec.Err(), reason)
		}
	}
	return true
}

// checkFuzzServedValue: the result carries the flag's version and the value
// of the variation it names, or no value without one.
func checkFuzzServedValue(t *testing.T, f *eval.Flag, key string, r Result[any]) {
	t.Helper()
	if r.Version != f.Version {
		t.Fatalf("%q: version %d, flag has %d", key, r.Version, f.Version)
	}
	if r.Variation >= 0 {
		if diff := cmp.Diff(f.Variations[r.Variation].Value, r.Value); diff != "" {
			t.Fatalf("%q: value is not variation %d's (-want +got):\n%s", key, r.Variation, diff)
		}
	} else if r.Value != nil {
		t.Fatalf("%q: value %v with no variation and no default", key, r.Value)
	}
}

// checkFuzzReasonAgreesWithFlag: OFF, RULE_MATCH and PREREQUISITE_FAILED
// point at what the flag has: its off state, one of its rules, one of its
// prerequisites.
func checkFuzzReasonAgreesWithFlag(t *testing.T, f *eval.Flag, key string, r Result[any]) {
	t.Helper()
	reason := r.Reason
	switch reason.Kind {
	case ReasonOff:
		if f.On || r.Variation != f.OffVariation {
			t.Fatalf("%q: OFF for an on flag, or variation %d != offVariation %d", key, r.Variation, f.OffVariation)
		}
	case ReasonRuleMatch:
		if reason.RuleIndex < 0 || reason.RuleIndex >= len(f.Rules) || reason.RuleID != f.Rules[reason.RuleIndex].ID {
			t.Fatalf("%q: rule match %+v", key, reason)
		}
	case ReasonPrerequisiteFailed:
		found := false
		for _, p := range f.Prerequisites {
			found = found || p.Key == reason.PrerequisiteKey
		}
		if !found || r.Variation != f.OffVariation {
			t.Fatalf("%q: prerequisite failed %+v, variation %d", key, reason, r.Variation)
		}
	}
}

// checkFuzzReasonFieldsApply: the rule, prerequisite and rollout fields of
// a reason appear only on the kinds they belong to.
func checkFuzzReasonFieldsApply(t *testing.T, key string, reason Reason) {
	t.Helper()
	if reason.Kind != ReasonRuleMatch && (reason.RuleIndex != 0 || reason.RuleID != "") {
		t.Fatalf("%q: rule fields on a %s result: %+v", key, reason.Kind, reason)
	}
	if reason.Kind != ReasonPrerequisiteFailed && reason.PrerequisiteKey != "" {
		t.Fatalf("%q: prerequisiteKey on a %s result", key, reason.Kind)
	}
	if (reason.InExperiment || reason.BucketFallback) && !reason.InRollout {
		t.Fatalf("%q: experiment or fallback outside a rollout: %+v", key, reason)
	}
	if reason.InRollout && reason.Kind != ReasonRuleMatch && reason.Kind != ReasonFallthrough {
		t.Fatalf("%q: inRollout on a %s result", key, reason.Kind)
	}
}

// naiveOutcome is a reference for flags without prerequisites or segments:
// it walks targets and rules looking every attribute up afresh (no caches).
// ok is false when the flag is outside what it models.
func naiveOutcome(f *eval.Flag, ec Context, now int64) (ReasonKind, int, bool) {
	if f.Err != nil || ec.Err() != nil || !f.On || len(f.Prerequisites) > 0 {
		return "", 0, false
	}
	for _, tg := range f.Targets {
		if v, ok := ec.lookup(tg.Attribute); ok && setHas(&tg.Values, v) {
			return ReasonTargetMatch, 0, true
		}
	}
	for i, r := range f.Rules {
		all := true
		for j := range r.Clauses {
			c := &r.Clauses[j]
			switch {
			case c.Op == rules.OpInSegment:
				return "", 0, false
			case c.UsesClock():
				all = all && c.Match(float64(now), true)
			default:
				v, ok := ec.lookup(c.Attribute)
				all = all && c.Match(v, ok)
			}
		}
		if all {
			return ReasonRuleMatch, i, true
		}
	}
	return ReasonFallthrough, 0, true
}

// TestFuzzEvaluateSeedsCoverEveryFile guards the seed loader: every case
// file contributes a document and the merged document holds every flag.
func TestFuzzEvaluateSeedsCoverEveryFile(t *testing.T) {
	snaps, seeds := fuzzSnapshots(t)
	files, _ := filepath.Glob("testdata/eval/*.json")
	if len(snaps) != len(files)+1 || len(seeds) == 0 {
		t.Fatalf("%d snapshots, %d seeds for %d files", len(snaps), len(seeds), len(files))
	}
	all := map[string]bool{}
	for _, s := range snaps[:len(snaps)-1] {
		for _, k := range s.FlagKeys() {
			all[k] = true
		}
	}
	var want []string
	for k := range all {
		want = append(want, k)
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, snaps[len(snaps)-1].FlagKeys()); diff != "" {
		t.Errorf("merged document flags (-want +got):\n%s", diff)
	}
}

// TestEvaluateDepthLimits pins the evaluation of the deepest legal graphs:
// a prerequisite chain 16 deep evaluates, and so does a flag using a segment
// nested 16 deep (SPEC §13; TestSegmentDepthOver16IsMalformed covers 17): a
// flag the snapshot reports as well formed must not evaluate to
// MALFORMED_FLAG.
func TestEvaluateDepthLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"flags":{`)
	for i := 0; i < rules.MaxPrerequisiteDepth; i++ {
		fmt.Fprintf(&b, `"c%d":{"on":true,"variations":[false,true],"prerequisites":[{"flag":"c%d","variation":1}],"fallthrough":{"variation":1}},`, i, i+1)
	}
	fmt.Fprintf(&b, `"c%d":{"on":true,"variations":[false,true],"fallthrough":{"variation":1}},`, rules.MaxPrerequisiteDepth)
	b.WriteString(`"seg":{"on":true,"variations":[false,true],"rules":[{"id":"deep","clauses":[{"op":"inSegment","values":["s0"]}],"serve":{"variation":1}}],"fallthrough":{"variation":0}}},"segments":{`)
	const segs = rules.MaxSegmentDepth - 1 // s0 → ... → s15: s0 is 16 deep
	for i := 0; i < segs; i++ {
		fmt.Fprintf(&b, `"s%d":{"rules":[{"clauses":[{"op":"inSegment","values":["s%d"]}]}]},`, i, i+1)
	}
	fmt.Fprintf(&b, `"s%d":{"included":["u1"]}}}`, segs)
	doc, err := rules.ParseDocument([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	snap := Compile(doc)
	user := NewContext("u1").Build()
	if r := Evaluate(snap, "c0", user, nil); r.Reason.Kind != ReasonFallthrough || r.Value != true {
		t.Errorf("prerequisite chain %d deep: %+v (%v), want FALLTHROUGH true", rules.MaxPrerequisiteDepth, r.Reason, r.Err)
	}
	if snap.compiled().Flag("seg").Err != nil || snap.compiled().Segment("s0").Err != nil {
		t.Fatalf("segments nested %d deep reported malformed at compile: %v", segs+1, snap.compiled().Segment("s0").Err)
	}
	if r := Evaluate(snap, "seg", user, nil); r.Reason.Kind != ReasonRuleMatch {
		t.Errorf("segments nested %d deep (acyclic, well formed per Compile and lint) evaluate to %+v (%v); want RULE_MATCH", segs+1, r.Reason, r.Err)
	}
}
