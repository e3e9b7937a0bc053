package benchmarks

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/launchdarkly/go-server-sdk-evaluation/v3"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"

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
	t.Run("distinct keys", func(t *testing.T) { checkMixKeysDistinct(t, m) })
	t.Run("every pair once shuffled", func(t *testing.T) { checkMixPairs(t, m) })
	t.Run("every kind decides", func(t *testing.T) { checkMixDecidingKinds(t, m, refs) })
	// Structure the reasons cannot show: chains 1–3 deep, segments naming
	// segments, excluded keys, users lacking attributes.
	t.Run("prerequisite chains", func(t *testing.T) { checkMixPrerequisiteDepths(t, m) })
	t.Run("segments", func(t *testing.T) { checkMixSegmentShapes(t, m) })
	t.Run("users lacking attributes", func(t *testing.T) { checkMixUsersLackAttributes(t, m) })
}

// checkMixKeysDistinct checks that no two flags and no two users share a key.
func checkMixKeysDistinct(t *testing.T, m *mix) {
	t.Helper()
	userKeys := make([]string, 0, len(m.Users))
	for _, u := range m.Users {
		userKeys = append(userKeys, u.Key)
	}
	for _, keys := range []struct {
		what string
		keys []string
	}{{"flag", fsMixFlagKeys(m)}, {"user", userKeys}} {
		if s := slices.Compact(slices.Sorted(slices.Values(keys.keys))); len(s) != len(keys.keys) {
			t.Errorf("%d %s keys but %d distinct", len(keys.keys), keys.what, len(s))
		}
	}
}

// checkMixPairs checks that the benchmark order holds every (flag, user)
// pair exactly once, with no run of one flag or one user.
func checkMixPairs(t *testing.T, m *mix) {
	t.Helper()
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
}

// checkMixDecidingKinds checks that every kind of rule, target and
// rollout decides at least one answer of the mix, and that the answers
// are neither almost all true nor almost all false.
func checkMixDecidingKinds(t *testing.T, m *mix, refs []mixRef) {
	t.Helper()
	decided := map[string]int{}
	now := time.Now()
	trues := 0
	for fi, f := range m.Flags {
		for ui, u := range m.Users {
			ref := refs[fi*len(m.Users)+ui]
			if ref.Value {
				trues++
			}
			tallyDecision(decided, m, &f, u, ref, now)
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
}

// tallyDecision counts in decided each kind of thing that decided f's
// answer ref for user u: the reason's kind, every clause (and how a
// segment took the user in) of the rule that matched, prerequisites that
// held, and the rollout that chose the value.
func tallyDecision(decided map[string]int, m *mix, f *mixFlag, u mixUser, ref mixRef, now time.Time) {
	r := ref.Reason
	switch r.Kind {
	case flags.ReasonOff:
		decided["off"]++
	case flags.ReasonPrerequisiteFailed:
		decided["prerequisite failed"]++
	case flags.ReasonTargetMatch:
		decided["target "+map[bool]string{true: "true", false: "false"}[ref.Value]]++
	case flags.ReasonRuleMatch:
		tallyRuleClauses(decided, m, f.Rules[r.RuleIndex], u)
	}
	if len(f.Prerequisites) > 0 && r.Kind != flags.ReasonPrerequisiteFailed && r.Kind != flags.ReasonOff {
		decided["prerequisites met"]++
	}
	if ro := ref.Rollout; ro != nil {
		decided["rollout by "+ro.BucketBy]++
		if len(ro.Steps) > 0 {
			if w := ro.TrueWeightAt(now); w != ro.Steps[0].TrueWeight && w != ro.Steps[len(ro.Steps)-1].TrueWeight {
				decided["progressive rollout mid-way"]++
			}
		}
	}
}

// tallyRuleClauses counts the operator of each clause of a rule that
// matched u, negated clauses, and for each segment the user is in,
// whether an included key or a segment rule put them there.
func tallyRuleClauses(decided map[string]int, m *mix, rule mixRule, u mixUser) {
	for _, c := range rule.Clauses {
		decided["op "+c.Op]++
		if c.Negate {
			decided["negated clause"]++
		}
		if c.Op != "inSegment" || c.Negate {
			continue
		}
		for _, k := range c.Values {
			if s, _ := m.segmentByKey(k.(string)); slices.Contains(s.Included, u.Key) {
				decided["segment by included key"]++
			} else if len(s.Rules) > 0 {
				decided["segment by rule"]++
			}
		}
	}
}

// checkMixPrerequisiteDepths checks that every prerequisite comes before
// the flag requiring it and that chains 1, 2 and 3 deep all occur.
func checkMixPrerequisiteDepths(t *testing.T, m *mix) {
	t.Helper()
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
}

// checkMixSegmentShapes checks that some segment names another and some
// segment excludes keys.
func checkMixSegmentShapes(t *testing.T, m *mix) {
	t.Helper()
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
}

// checkMixUsersLackAttributes checks that for each optional attribute some
// users have it and some do not.
func checkMixUsersLackAttributes(t *testing.T, m *mix) {
	t.Helper()
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

// fsMixClient is a flagstream client over the mix, with the mix's flag
// keys and users; it is closed when b ends.
func fsMixClient(b *testing.B) (*mix, *flags.Client, []string, []flags.Context) {
	b.Helper()
	m := realisticMix()
	doc, err := fsMixDoc(m)
	if err != nil {
		b.Fatal(err)
	}
	c, err := flagstreamClient(doc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return m, c, fsMixFlagKeys(m), fsMixUsers(m)
}

// BenchmarkRealisticMixLocality is flagstream's R1 over parts of the mix:
// all pairs; only the first 10 users' (their contexts stay in cache); only
// the first 30 flags'; both. It tells how much of an evaluation of the mix
// is reaching memory and how much is work: what the last one costs no
// memory layout can take away.
func BenchmarkRealisticMixLocality(b *testing.B) {
	m, c, keys, users := fsMixClient(b)
	for _, part := range []struct {
		name  string
		users int32
		flags int32
	}{{"AllPairs", 1 << 30, 1 << 30}, {"10Users", 10, 1 << 30}, {"30Flags", 1 << 30, 30}, {"10Users30Flags", 10, 30}} {
		var pairs []mixPair
		for _, p := range m.Pairs {
			if p.User < part.users && p.Flag < part.flags {
				pairs = append(pairs, p)
			}
		}
		b.Run(part.name, func(b *testing.B) {
			ctx := context.Background()
			for i := range b.N {
				p := pairs[i%len(pairs)]
				c.Bool(ctx, keys[p.Flag], users[p.User], false)
			}
		})
	}
}

// BenchmarkRealisticMixOrder evaluates the mix's 300,000 pairs in three
// orders, in flagstream and in LaunchDarkly's evaluator (driven as in R1):
// Shuffled is R1's order; ByUser takes one user at a time through all the
// flags, shuffled (a request that evaluates many flags for its user);
// ByFlag takes one flag at a time through all the users (the flag's data
// and the branches its evaluation takes stay hot). The answers are the
// same in every order; what changes is how often an evaluation reaches a
// flag whose data and branch history have gone cold, which is what
// separates flagstream's R1 time from its time on one hot flag.
func BenchmarkRealisticMixOrder(b *testing.B) {
	m, c, keys, users := fsMixClient(b)
	d, err := ldMixData(m, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ev, ldUsers := evaluation.NewEvaluator(d), ldMixUsers(m)
	ldFlags := make([]*ldmodel.FeatureFlag, len(m.Flags))
	for i, f := range m.Flags {
		ldFlags[i] = d.flags[f.Key]
	}
	r := rand.New(rand.NewPCG(MixSeed, 2))
	var byUser, byFlag []mixPair
	for u := range m.Users {
		for _, f := range r.Perm(len(m.Flags)) {
			byUser = append(byUser, mixPair{Flag: int32(f), User: int32(u)})
		}
	}
	for f := range m.Flags {
		for u := range m.Users {
			byFlag = append(byFlag, mixPair{Flag: int32(f), User: int32(u)})
		}
	}
	ctx := context.Background()
	for _, order := range []struct {
		name  string
		pairs []mixPair
	}{{"Shuffled", m.Pairs}, {"ByUser", byUser}, {"ByFlag", byFlag}} {
		pairs := order.pairs
		b.Run(order.name+"/flagstream", func(b *testing.B) {
			n := 0
			for i := range b.N {
				p := pairs[i%len(pairs)]
				if c.Bool(ctx, keys[p.Flag], users[p.User], false) {
					n++
				}
			}
			sink += n
		})
		b.Run(order.name+"/LaunchDarkly-evaluator", func(b *testing.B) {
			n := 0
			for i := range b.N {
				p := pairs[i%len(pairs)]
				if ev.Evaluate(ldFlags[p.Flag], ldUsers[p.User], nil).Detail.Value.BoolValue() {
					n++
				}
			}
			sink += n
		})
	}
}
