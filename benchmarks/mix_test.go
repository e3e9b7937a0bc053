package benchmarks

import (
	"bytes"
	"slices"
	"testing"
	"time"

	flags "github.com/flagstream/flags"
)

// TestRealisticMixCoversEveryKind checks that the mix is what R1 claims:
// 300 distinct flags, 1,000 distinct users, every pair once in a shuffled
// order, and every kind of rule not only present but deciding some
// answers (flagstream's reasons say which rule or target decided each).
func TestRealisticMixCoversEveryKind(t *testing.T) {
	m := realisticMix()
	refs, err := mixReference()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Flags) != MixFlags || len(m.Users) != MixUsers || len(m.Segments) != MixSegments {
		t.Fatalf("mix has %d flags, %d users, %d segments; want %d, %d, %d",
			len(m.Flags), len(m.Users), len(m.Segments), MixFlags, MixUsers, MixSegments)
	}
	distinct := func(what string, keys []string) {
		t.Helper()
		if s := slices.Compact(slices.Sorted(slices.Values(keys))); len(s) != len(keys) {
			t.Errorf("%d %s keys but %d distinct", len(keys), what, len(s))
		}
	}
	var userKeys []string
	for _, u := range m.Users {
		userKeys = append(userKeys, u.Key)
	}
	distinct("flag", fsMixFlagKeys(m))
	distinct("user", userKeys)

	// Every pair exactly once, and no run of one flag or one user.
	seen := make([]bool, len(m.Flags)*len(m.Users))
	sameFlag, sameUser := 0, 0
	for i, p := range m.Pairs {
		k := int(p.Flag)*len(m.Users) + int(p.User)
		if seen[k] {
			t.Fatalf("pair %d (flag %d, user %d) comes twice", i, p.Flag, p.User)
		}
		seen[k] = true
		if i > 0 && p.Flag == m.Pairs[i-1].Flag {
			sameFlag++
		}
		if i > 0 && p.User == m.Pairs[i-1].User {
			sameUser++
		}
	}
	if len(m.Pairs) != len(seen) {
		t.Fatalf("%d pairs, want %d", len(m.Pairs), len(seen))
	}
	// Shuffled, a flag follows itself about once in 300 steps and a user
	// once in 1,000.
	if sameFlag > len(m.Pairs)/100 || sameUser > len(m.Pairs)/300 {
		t.Errorf("order not shuffled: %d steps stay on one flag, %d on one user, of %d", sameFlag, sameUser, len(m.Pairs))
	}

	// What decided each answer.
	decided := map[string]int{}
	count := func(kind string) { decided[kind]++ }
	now := time.Now()
	trues := 0
	for fi, f := range m.Flags {
		for ui, u := range m.Users {
			ref := refs[fi*len(m.Users)+ui]
			if ref.Value {
				trues++
			}
			r := ref.Reason
			switch r.Kind {
			case flags.ReasonOff:
				count("off")
			case flags.ReasonPrerequisiteFailed:
				count("prerequisite failed")
			case flags.ReasonTargetMatch:
				count("target " + map[bool]string{true: "true", false: "false"}[ref.Value])
			case flags.ReasonRuleMatch:
				for _, c := range f.Rules[r.RuleIndex].Clauses {
					count("op " + c.Op)
					if c.Negate {
						count("negated clause")
					}
					if c.Op == "inSegment" && !c.Negate {
						for _, k := range c.Values {
							if s, _ := m.segmentByKey(k.(string)); slices.Contains(s.Included, u.Key) {
								count("segment by included key")
							} else if len(s.Rules) > 0 {
								count("segment by rule")
							}
						}
					}
				}
			}
			if len(f.Prerequisites) > 0 && r.Kind != flags.ReasonPrerequisiteFailed && r.Kind != flags.ReasonOff {
				count("prerequisites met")
			}
			if ro := ref.Rollout; ro != nil {
				count("rollout by " + ro.BucketBy)
				if len(ro.Steps) > 0 {
					if w := ro.TrueWeightAt(now); w != ro.Steps[0].TrueWeight && w != ro.Steps[len(ro.Steps)-1].TrueWeight {
						count("progressive rollout mid-way")
					}
				}
			}
		}
	}
	kinds := []string{"off", "prerequisite failed", "prerequisites met", "target true", "target false",
		"negated clause", "segment by included key", "segment by rule",
		"rollout by key", "rollout by orgId", "rollout by deviceId", "progressive rollout mid-way"}
	for _, op := range mixOps {
		kinds = append(kinds, "op "+op)
	}
	for _, k := range kinds {
		if decided[k] == 0 {
			t.Errorf("no answer of the mix was decided by: %s", k)
		}
	}
	if n := len(refs); trues < n/5 || trues > n*4/5 {
		t.Errorf("%d of %d answers true: want a mix of both", trues, n)
	}

	// Structure the reasons cannot show: chains 1–3 deep, segments naming
	// segments, excluded keys, users lacking attributes.
	depth := map[string]int{}
	depths := map[int]bool{}
	for _, f := range m.Flags {
		d := 0
		for _, p := range f.Prerequisites {
			pd, ok := depth[p]
			if !ok {
				t.Fatalf("flag %s requires %s, which does not come before it", f.Key, p)
			}
			d = max(d, pd+1)
		}
		depth[f.Key] = d
		depths[d] = true
	}
	for d := 1; d <= 3; d++ {
		if !depths[d] {
			t.Errorf("no flag has prerequisites %d deep", d)
		}
	}
	nested, excluded := false, false
	for _, s := range m.Segments {
		excluded = excluded || len(s.Excluded) > 0
		for _, r := range s.Rules {
			nested = nested || slices.ContainsFunc(r, func(c mixClause) bool { return c.Op == "inSegment" })
		}
	}
	if !nested || !excluded {
		t.Errorf("segments: one naming another %v, one with excluded keys %v; want both", nested, excluded)
	}
	for _, attr := range []string{"email", "appVersion", "age", "groups"} {
		lacking := 0
		for _, u := range m.Users {
			if _, ok := u.Attrs[attr]; !ok {
				lacking++
			}
		}
		if lacking == 0 || lacking == len(m.Users) {
			t.Errorf("%d of %d users lack %s: want some", lacking, len(m.Users), attr)
		}
	}
}

// TestRealisticMixIsDeterministic: the same seed gives the same document
// and order, another seed another.
func TestRealisticMixIsDeterministic(t *testing.T) {
	a, b, c := buildMix(MixSeed), buildMix(MixSeed), buildMix(MixSeed+1)
	docA, err := fsMixDoc(a)
	if err != nil {
		t.Fatal(err)
	}
	docB, _ := fsMixDoc(b)
	docC, _ := fsMixDoc(c)
	if !bytes.Equal(docA, docB) || !slices.Equal(a.Pairs, b.Pairs) {
		t.Error("two mixes from one seed differ")
	}
	if bytes.Equal(docA, docC) {
		t.Error("mixes from two seeds are the same document")
	}
}

// TestMixTrueWeightAt checks the schedule arithmetic the translations use
// against SPEC §1's formula, worked by hand.
func TestMixTrueWeightAt(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2030, 1, d, 0, 0, 0, 0, time.UTC) }
	ro := &mixRollout{TrueWeight: 7, Steps: []mixStep{{day(1), 0}, {day(11), 30000}, {day(21), 100000}}}
	for _, tc := range []struct {
		at   time.Time
		want int
	}{
		{day(1).Add(-time.Hour), 0},
		{day(1), 0},
		{day(6), 15000},                       // false: 100000 + (70000-100000)*5/10
		{day(6).Add(time.Millisecond), 15000}, // truncated
		{day(11), 30000},
		{day(16).Add(time.Hour), 100000 - (70000 + (-70000*(5*86400000+3600000))/(10*86400000))},
		{day(21), 100000},
		{day(30), 100000},
	} {
		if got := ro.TrueWeightAt(tc.at); got != tc.want {
			t.Errorf("TrueWeightAt(%v) = %d, want %d", tc.at, got, tc.want)
		}
	}
	if got := (&mixRollout{TrueWeight: 7}).TrueWeightAt(day(6)); got != 7 {
		t.Errorf("static TrueWeightAt = %d, want 7", got)
	}
}
