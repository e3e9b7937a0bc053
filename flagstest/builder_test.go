package flagstest_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
	"github.com/flagstream/flags/rules"
)

// TestBuilderMistakes checks the message a builder mistake fails the test
// with: it names the flag or segment and the field.
func TestBuilderMistakes(t *testing.T) {
	dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		item flagstest.Item
		want string
	}{
		{"bad index", flagstest.Bool("new-checkout", true).Fallthrough(flagstest.Variation(2)),
			`flagstest: flag "new-checkout": fallthrough.variation: index 2 out of range: the flag has 2 variations`},
		{"weights", flagstest.Bool("new-checkout", true).Fallthrough(flagstest.Rollout().Weight(0, 50000).Weight(1, 40000)),
			`flagstest: flag "new-checkout": fallthrough.rollout.variations: weights sum to 90000, want 100000`},
		{"unknown op", flagstest.Bool("new-checkout", true).Rule("staff", flagstest.Variation(1), flagstest.Clause("email", "eq", "x")),
			`flagstest: flag "new-checkout": rules[0].clauses[0].op: unknown operator "eq"`},
		{"bad regex", flagstest.Bool("b", true).Rule("r", flagstest.Variation(1), flagstest.In("k", "x"), flagstest.Matches("email", "(")),
			"flagstest: flag \"b\": rules[0].clauses[1].values[0]: invalid regular expression: error parsing regexp: missing closing ): `(`"},
		{"mixed types", flagstest.String("s", "a").ForKey("user-1", 2),
			`flagstest: flag "s": variations[1]: is a number but variations[0] is a string: all variations must have one type`},
		{"JSON of a string", flagstest.JSON("j", "text"),
			`flagstest: flag "j": variations[0]: JSON flag value "text": want an object or an array`},
		{"unencodable value", flagstest.Bool("c", true).TargetAttr("plan", 1, make(chan int)),
			`flagstest: flag "c": targets[0].values[0]: json: unsupported type: chan int`},
		{"unencodable clause value", flagstest.Bool("c", true).Rule("r", flagstest.Variation(1), flagstest.In("plan", "a", make(chan int))),
			`flagstest: flag "c": rules[0].clauses[0].values[1]: json: unsupported type: chan int`},
		{"unencodable segment value", flagstest.Segment("beta").Included("a").Excluded(make(chan int)),
			`flagstest: segment "beta": excluded[0]: json: unsupported type: chan int`},
		{"rule without serve", flagstest.Bool("r", true).Rule("x", nil),
			`flagstest: flag "r": rules[0].serve: no serve: use flagstest.Variation(i) or flagstest.Rollout()`},
		{"description of no rule", flagstest.Bool("d", true).Rule("a", flagstest.Variation(1)).RuleDescription("b", "text"),
			`flagstest: flag "d": rules: RuleDescription: no rule has id "b"`},
		{"schedule", flagstest.Bool("ramp", true).Fallthrough(flagstest.Rollout().Step(dec1, 60000, 60000)),
			`flagstest: flag "ramp": fallthrough.rollout.schedule[0].weights: sum to 120000, want 100000`},
		{"prerequisite cycle", flagstest.Bool("p", true).Prerequisite("p", 1),
			`flagstest: flag "p": prerequisites: prerequisite cycle: p → p`},
		{"bad key", flagstest.Bool("new checkout", true),
			`flagstest: flag "new checkout": invalid key "new checkout": want 1-256 characters of A-Z a-z 0-9 . _ -`},
		{"segment weight", flagstest.Segment("beta").Rules(flagstest.SegmentRule("half").Weight(150000)),
			`flagstest: segment "beta": rules[0].weight: 150000 is outside 0..100000`},
		{"two mistakes", flagstest.Flag("empty"),
			"flagstest: flag \"empty\": variations: missing (at least one variation is required)\n" +
				`flagstest: flag "empty": fallthrough: missing (required)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// New reports it...
			ftb := &fakeTB{}
			defer ftb.finish()
			flagstest.New(ftb, tt.item)
			if got := ftb.failures(); got != tt.want {
				t.Errorf("New: failed with\n%s\nwant\n%s", got, tt.want)
			}

			// ... Set reports it and changes nothing ...
			ftb = &fakeTB{}
			defer ftb.finish()
			td := flagstest.New(ftb, flagstest.Bool("ok", true))
			td.Set(flagstest.Bool("ok", false), tt.item)
			if got := ftb.failures(); got != tt.want {
				t.Errorf("Set: failed with\n%s\nwant\n%s", got, tt.want)
			}
			if !td.Client.Bool(bg, "ok", ann, false) || td.Version() != 1 {
				t.Error("a Set with a mistake changed the flags")
			}

			// ... and Document returns it as a *BuildError.
			_, err := flagstest.Document(tt.item).JSON()
			var be *flagstest.BuildError
			if !errors.As(err, &be) || err.Error() != tt.want {
				t.Errorf("Document.JSON: error %v, want a *BuildError %q", err, tt.want)
			}
			var p *rules.Problem
			if !errors.Is(err, rules.ErrMalformed) || !errors.As(err, &p) || !strings.Contains(tt.want, p.Key) {
				t.Errorf("Document.JSON: error %v does not unwrap to a *rules.Problem naming the key", err)
			}
		})
	}
}

// TestMistakeInOtherFlagsIgnored: a malformed flag that came from a
// document is kept (a test may want one); only what builders make is
// checked, but in the context of the whole document.
func TestMistakeInOtherFlagsIgnored(t *testing.T) {
	td := flagstest.New(t, flagstest.FromJSON(t, []byte(`{"flags":{"broken":{"on":true,"variations":[1],"fallthrough":{"variation":3}}}}`)))
	td.Set(flagstest.Bool("fine", true))
	if !td.Client.Bool(bg, "fine", ann, false) {
		t.Error("Set of a good flag was refused because of another, malformed, flag")
	}
	ftb := &fakeTB{}
	defer ftb.finish()
	td = flagstest.New(ftb, flagstest.Bool("a", true).Prerequisite("b", 1))
	td.Set(flagstest.Bool("b", true).Prerequisite("a", 1))
	want := `flagstest: flag "b": prerequisites: prerequisite cycle: b → a → b`
	if got := ftb.failures(); got != want {
		t.Errorf("a cycle through an earlier flag: failed with\n%s\nwant\n%s", got, want)
	}
}

// TestDanglingReferencesLogged: a prerequisite flag or a segment that no
// item defines is valid (it may come later), so the test goes on, but the
// log says which key is missing: a misspelt segment otherwise shows only
// as a rule that never matches.
func TestDanglingReferencesLogged(t *testing.T) {
	ftb := &fakeTB{}
	defer ftb.finish()
	td := flagstest.New(ftb,
		flagstest.Segment("beta").Included("ann"),
		flagstest.Bool("a", false).
			Prerequisite("payments", 0).
			Rule("beta", flagstest.Variation(1), flagstest.InSegment("beta", "btea")))
	td.Set(flagstest.Segment("gamma").Rule("in-delta", flagstest.InSegment("delta")))
	td.Set(flagstest.Bool("payments", false), flagstest.Segment("delta")) // now defined: nothing logged
	if got := ftb.failures(); got != "" {
		t.Fatalf("failed the test: %s", got)
	}
	var got []string
	for _, l := range ftb.logs {
		if strings.HasPrefix(l, "flagstest: ") {
			got = append(got, l)
		}
	}
	want := []string{
		`flagstest: flag "a": prerequisites[0].flag: flag "payments" is not in the document, so this prerequisite always fails (not an error: it may be set later)`,
		`flagstest: flag "a": rules[0].clauses[0].values[1]: segment "btea" is not in the document, so no context is in it (not an error: it may be set later)`,
		`flagstest: segment "gamma": rules[0].clauses[0].values[0]: segment "delta" is not in the document, so no context is in it (not an error: it may be set later)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
}

// TestDocumentJSON checks every builder against the document it writes.
func TestDocumentJSON(t *testing.T) {
	dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	data := flagstest.Document(
		flagstest.Flag("new-checkout").
			Variations(false, true).
			On(true).
			OffVariation(0).
			Prerequisite("payments-v2", 1).
			Target(1, "vip-42", "vip-43").
			TargetAttr("org.id", 0, "uni-9").
			Rule("staff", flagstest.Variation(1), flagstest.EndsWith("email", "@corp.com")).
			RuleDescription("staff", "employees first").
			Rule("beta", flagstest.Rollout().Weight(0, 50000).Weight(1, 50000).BucketBy("org.id").Salt("s1").Experiment(true),
				flagstest.InSegment("beta-testers"), flagstest.Exists("org").Negate()).
			Rule("ramp", flagstest.Rollout().Step(dec1, 100000, 0).Step(dec1.Add(time.Hour), 0, 100000)).
			Fallthrough(flagstest.Variation(0)).
			Salt("checkout").
			Version(3).
			Description("the new checkout").
			Tags("payments", "web").
			Deprecated(true),
		flagstest.Segment("beta-testers").
			Included("user-7").
			Excluded("user-9").
			Attribute("key").
			Rule("ent", flagstest.In("org.plan", "enterprise")).
			Rules(flagstest.SegmentRule("half", flagstest.GreaterThan("seats", 10)).Weight(50000).BucketBy("org.id").Salt("b")).
			Version(2),
		flagstest.Bool("payments-v2", true),
	).Version(17).Bytes(t)

	want := `{
	  "version": 17,
	  "flags": {
	    "new-checkout": {
	      "version": 3, "on": true, "variations": [false, true], "offVariation": 0,
	      "prerequisites": [{"flag": "payments-v2", "variation": 1}],
	      "targets": [{"values": ["vip-42", "vip-43"], "variation": 1}, {"attribute": "org.id", "values": ["uni-9"], "variation": 0}],
	      "rules": [
	        {"id": "staff", "description": "employees first",
	         "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@corp.com"]}], "serve": {"variation": 1}},
	        {"id": "beta", "clauses": [{"op": "inSegment", "values": ["beta-testers"]}, {"attribute": "org", "op": "exists", "values": [], "negate": true}],
	         "serve": {"rollout": {"bucketBy": "org.id", "salt": "s1", "experiment": true,
	                   "variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}},
	        {"id": "ramp", "clauses": [],
	         "serve": {"rollout": {"variations": [{"variation": 0}, {"variation": 1}],
	                   "schedule": [{"at": "2026-12-01T00:00:00Z", "weights": [100000, 0]}, {"at": "2026-12-01T01:00:00Z", "weights": [0, 100000]}]}}}
	      ],
	      "fallthrough": {"variation": 0},
	      "salt": "checkout", "description": "the new checkout", "tags": ["payments", "web"], "deprecated": true
	    },
	    "payments-v2": {"on": true, "variations": [false, true], "fallthrough": {"variation": 1}}
	  },
	  "segments": {
	    "beta-testers": {
	      "version": 2, "included": ["user-7"], "excluded": ["user-9"], "attribute": "key",
	      "rules": [
	        {"id": "ent", "clauses": [{"attribute": "org.plan", "op": "in", "values": ["enterprise"]}]},
	        {"id": "half", "clauses": [{"attribute": "seats", "op": "greaterThan", "values": [10]}], "weight": 50000, "bucketBy": "org.id", "salt": "b"}
	      ]
	    }
	  }
	}`
	var gotV, wantV any
	if err := json.Unmarshal(data, &gotV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantV, gotV); diff != "" {
		t.Errorf("Document JSON mismatch (-want +got):\n%s", diff)
	}
	doc, err := rules.ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	if ps := rules.Validate(doc); len(ps) != 0 {
		t.Errorf("the built document has problems: %v", ps)
	}
}

// TestClauses evaluates one rule per operator, so that every clause builder
// is checked against the evaluator, not only against its JSON.
func TestClauses(t *testing.T) {
	dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	user := flags.NewContext("user-1").
		Set("email", "ann@corp.com").
		Set("seats", 12).
		Set("joined", "2026-11-15T10:00:00Z").
		Set("app", "2.10.1").
		Set("org", map[string]any{"plan": "enterprise"}).
		Build()
	tests := []struct {
		clause *flagstest.ClauseBuilder
		want   bool
	}{
		{flagstest.In("org.plan", "free", "enterprise"), true},
		{flagstest.In("seats", 12), true},
		{flagstest.In("seats", "12"), false},
		{flagstest.In("org.plan", "enterprise").Negate(), false},
		{flagstest.StartsWith("email", "ann@"), true},
		{flagstest.EndsWith("email", "@example.com"), false},
		{flagstest.Contains("email", "corp"), true},
		{flagstest.Matches("email", `^[a-z]+@corp\.com$`), true},
		{flagstest.LessThan("seats", 12), false},
		{flagstest.LessThanOrEqual("seats", 12), true},
		{flagstest.GreaterThan("seats", 11.5), true},
		{flagstest.GreaterThanOrEqual("seats", 13), false},
		{flagstest.Before("joined", dec1), true},
		{flagstest.After("joined", "2026-11-20T00:00:00Z"), false},
		{flagstest.After("joined", dec1.Add(-30*24*time.Hour).UnixMilli()), true},
		{flagstest.SemVerEqual("app", "v2.10.1"), true},
		{flagstest.SemVerLessThan("app", "2.9"), false},
		{flagstest.SemVerGreaterThan("app", "2.9"), true},
		{flagstest.InSegment("enterprise"), true},
		{flagstest.InSegment("nobody", "no-such-segment"), false},
		{flagstest.Exists("org.plan"), true},
		{flagstest.Exists("phone"), false},
		{flagstest.Exists("phone").Negate(), true},
		{flagstest.Clause("email", rules.OpEndsWith, "@corp.com"), true},
	}
	for _, tt := range tests {
		raw := flagstest.Document(flagstest.Bool("f", false).Rule("r", flagstest.Variation(1), tt.clause)).Bytes(t)
		td := flagstest.New(t,
			flagstest.Segment("enterprise").Rule("ent", flagstest.In("org.plan", "enterprise")),
			flagstest.Segment("nobody"),
			flagstest.Bool("f", false).Rule("r", flagstest.Variation(1), tt.clause),
		)
		if got := td.Client.Bool(bg, "f", user, !tt.want); got != tt.want {
			t.Errorf("rule %s: Bool = %v, want %v", raw, got, tt.want)
		}
	}
}

func TestSegmentsAndRollouts(t *testing.T) {
	td := flagstest.New(t,
		flagstest.Segment("beta").
			Included("user-1").
			Excluded("user-2").
			Rules(flagstest.SegmentRule("quarter").Weight(25000)),
		flagstest.Bool("beta-feature", false).Rule("beta", flagstest.Variation(1), flagstest.InSegment("beta")),
		flagstest.Bool("exp", false).Fallthrough(flagstest.Rollout().Weight(0, 0).Weight(1, 100000).Experiment(true)),
		flagstest.Bool("by-org", false).Fallthrough(flagstest.Rollout().Weight(0, 50000).Weight(1, 50000).BucketBy("org.id")),
		flagstest.Bool("off", true).On(false).OffVariation(0),
		flagstest.Bool("needs-off", true).Prerequisite("off", 1).OffVariation(0),
	)
	if !td.Client.Bool(bg, "beta-feature", ann, false) {
		t.Error("an included context is not in the segment")
	}
	if td.Client.Bool(bg, "beta-feature", bob, true) {
		t.Error("an excluded context is in the segment")
	}
	checkSegmentRuleShare(t, td.Client, "beta-feature")
	r := td.Client.BoolDetail(bg, "exp", ann, false)
	if !r.Value || !r.Reason.InRollout || !r.Reason.InExperiment {
		t.Errorf("BoolDetail(exp) = %+v, want true in an experiment", r)
	}
	r = td.Client.BoolDetail(bg, "by-org", ann, false) // ann has no org: bucket 0
	if r.Value || !r.Reason.BucketFallback {
		t.Errorf("BoolDetail(by-org) without org.id = %+v, want false with bucketFallback", r)
	}
	if r := td.Client.BoolDetail(bg, "off", ann, true); r.Value || r.Reason.Kind != flags.ReasonOff {
		t.Errorf("BoolDetail(off) = %+v, want false by OFF", r)
	}
	if r := td.Client.BoolDetail(bg, "needs-off", ann, true); r.Value || r.Reason.PrerequisiteKey != "off" {
		t.Errorf("BoolDetail(needs-off) = %+v, want false by PREREQUISITE_FAILED on off", r)
	}
}

// checkSegmentRuleShare checks that flag, served true to a segment whose
// only rule has weight 25000, is true for a quarter of 4000 contexts.
func checkSegmentRuleShare(t *testing.T, c *flags.Client, flag string) {
	t.Helper()
	in := 0
	for i := range 4000 {
		if c.Bool(bg, flag, flags.NewContext("k"+strconv.Itoa(i)).Build(), false) {
			in++
		}
	}
	// A 25 % share of 4000: sd = sqrt(4000 * 0.25 * 0.75) ≈ 27, so ±5 sd is ±137.
	if in < 1000-137 || in > 1000+137 {
		t.Errorf("a weight-25000 segment rule took %d of 4000 contexts, want 1000 ± 137", in)
	}
}

func TestForKey(t *testing.T) {
	f := flagstest.String("banner", "Hello").
		ForKey("user-1", "Hi Ann").
		ForKey("user-2", "Hello").
		ForKey("user-3", "Hi Ann").
		ForKey("user-1", "Bonjour") // replaces the first
	td := flagstest.New(t, f)
	for key, want := range map[string]string{"user-1": "Bonjour", "user-2": "Hello", "user-3": "Hi Ann", "user-4": "Hello"} {
		if got := td.Client.String(bg, "banner", flags.NewContext(key).Build(), ""); got != want {
			t.Errorf("String(banner) for %s = %q, want %q", key, got, want)
		}
	}
	var doc struct {
		Flags map[string]struct {
			Variations []string
			Targets    []struct {
				Values    []string
				Variation int
			}
		}
	}
	if err := json.Unmarshal(flagstest.Document(f).Bytes(t), &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Flags["banner"]
	if want := []string{"Hello", "Hi Ann", "Bonjour"}; !cmp.Equal(got.Variations, want) {
		t.Errorf("variations = %q, want %q (equal values shared)", got.Variations, want)
	}
	if len(got.Targets) != 3 {
		t.Errorf("targets = %+v, want three: user-3 on 1, user-2 on 0, user-1 on 2", got.Targets)
	}
}
