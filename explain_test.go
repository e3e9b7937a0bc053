package flags

import (
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/evalcases"
)

// TestExplainAgreesWithEvaluate: for every document and context of the
// conformance cases, the variation the explanation arrives at is the one
// Evaluate serves, and every flag's explanation has steps.
func TestExplainAgreesWithEvaluate(t *testing.T) {
	files := evalcases.Read(t, "testdata/eval")
	clock := func() time.Time { return defaultFuzzTime }
	checked := 0
	for _, cf := range files {
		c, err := New(WithDocument(cf.Document), WithClock(clock))
		if err != nil {
			t.Fatalf("%s: %v", cf.Path, err)
		}
		snap := c.Snapshot()
		for _, tc := range cf.Cases {
			ec, err := ContextFromJSON(tc.Context)
			if err != nil {
				continue
			}
			for _, key := range append(snap.FlagKeys(), "no-such-flag") {
				x := Explain(snap, key, ec, clock)
				if len(x.Steps) == 0 {
					t.Fatalf("%s: %s: no steps", cf.Path, key)
				}
				if x.Result.Err == nil && x.Variation != x.Result.Variation {
					t.Errorf("%s: %s for %s: explained variation %d, Evaluate serves %d\n%s",
						cf.Path, key, tc.Context, x.Variation, x.Result.Variation, strings.Join(x.Steps, "\n"))
				}
				checked++
			}
		}
		c.Close()
	}
	if checked < 1000 {
		t.Errorf("only %d explanations checked", checked)
	}
}

func TestExplainSteps(t *testing.T) {
	c := newTestClient(t, `{"flags": {
	  "pre": {"on": true, "variations": [false, true], "fallthrough": {"variation": 1}},
	  "f": {"on": true, "variations": ["a", "b", "c"], "offVariation": 0,
	    "prerequisites": [{"flag": "pre", "variation": 1}],
	    "targets": [{"values": ["vip"], "variation": 2}],
	    "rules": [{"id": "fr", "clauses": [{"attribute": "country", "op": "in", "values": ["fr"]}], "serve": {"variation": 1}}],
	    "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}}}}`)
	x := Explain(c.Snapshot(), "f", NewContext("ann").Set("country", "de").Build(), nil)
	got := strings.Join(x.Steps, "\n")
	for _, want := range []string{
		"prerequisite pre must serve variation 1: it serves variation 1 → holds",
		`target 0: key = "ann" is not one of the 1 targeted values → no match`,
		`rule 0 (fr), clause 0: country = "de" in ["fr"] → does not match`,
		"no target or rule matched: the fallthrough's rollout decides",
		"bucket ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q:\n%s", want, got)
		}
	}
}

// TestExplainNamesMissingKeys: a prerequisite flag or a segment the
// snapshot does not hold is named as missing, not only as failing: it is
// most often a misspelt key.
func TestExplainNamesMissingKeys(t *testing.T) {
	c := newTestClient(t, `{"flags": {
	  "f": {"on": true, "variations": [false, true], "offVariation": 0,
	    "prerequisites": [{"flag": "paymnets", "variation": 1}], "fallthrough": {"variation": 1}},
	  "g": {"on": true, "variations": [false, true],
	    "rules": [{"id": "beta", "clauses": [{"op": "inSegment", "values": ["beta", "btea", "gamma"]}], "serve": {"variation": 1}}],
	    "fallthrough": {"variation": 0}}},
	  "segments": {"beta": {"included": ["bob"]}}}`)
	for flag, want := range map[string]string{
		"f": "prerequisite paymnets must serve variation 1: it is not in the document → fails",
		"g": `rule 0 (beta), clause 0: the context is in a segment of ["beta","btea","gamma"] ("btea", "gamma" are not in the document) → does not match`,
	} {
		x := Explain(c.Snapshot(), flag, NewContext("ann").Build(), nil)
		if got := strings.Join(x.Steps, "\n"); !strings.Contains(got, want) {
			t.Errorf("explanation of %s lacks %q:\n%s", flag, want, got)
		}
	}
}
