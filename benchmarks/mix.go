package benchmarks

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// The realistic mix (scenario R1): MixFlags distinct bool flags and
// MixSegments segments using every kind of rule, and MixUsers distinct
// users, all generated from MixSeed by buildMix. The benchmark walks every
// (flag, user) pair once per MixFlags×MixUsers evaluations, in an order
// shuffled once, so that no flag and no context is hot.
//
// Each library translates the same mix (a mix value, below) into its own
// format. Kinds of rule in the mix: individual targets (true and false
// lists); rule clauses with in (strings, on a string attribute and on an
// array attribute), startsWith, endsWith, contains, matches, lessThan,
// lessThanOrEqual, greaterThan, greaterThanOrEqual, semVerEqual,
// semVerLessThan, semVerGreaterThan, before, after and inSegment, some
// negated, on attributes some users lack; rules serving true, false or a
// rollout; segments with included and excluded keys and rules, some rules
// naming another segment; percentage rollouts by key, orgId or deviceId,
// some of them progressive (a schedule of 2–4 steps); prerequisites in
// chains 1–3 flags deep; flags switched off.
const (
	MixFlags    = 300      // flags in the mix
	MixSegments = 24       // segments in the mix
	MixUsers    = 1000     // distinct users
	MixSeed     = 20261126 // the seed the mix is generated from
)

// mixClause is one clause, in flagstream's terms (SPEC §1).
type mixClause struct {
	Attr   string // attribute path; empty for inSegment
	Op     string // flagstream operator name
	Values []any  // strings or float64; segment keys for inSegment
	Negate bool
}

// mixStep is one step of a progressive rollout: from At on (and
// interpolated toward the next step), TrueWeight of 100000 get true.
type mixStep struct {
	At         time.Time
	TrueWeight int
}

// mixRollout is a two-way rollout over variations [false, true].
type mixRollout struct {
	BucketBy   string    // attribute hashed: "key", "orgId" or "deviceId"
	TrueWeight int       // weight of true, in 0.001 %, when Steps is empty
	Steps      []mixStep // progressive rollout; overrides TrueWeight
}

// TrueWeightAt is the weight of true in force at t, computed as SPEC §1
// says: the weight of every variation but the last is interpolated in
// integers over Unix milliseconds, and the last (true) takes the rest.
func (r *mixRollout) TrueWeightAt(t time.Time) int {
	if len(r.Steps) == 0 {
		return r.TrueWeight
	}
	first, last := r.Steps[0], r.Steps[len(r.Steps)-1]
	if !t.After(first.At) {
		return first.TrueWeight
	}
	if !t.Before(last.At) {
		return last.TrueWeight
	}
	now := t.UnixMilli()
	for i := 1; i < len(r.Steps); i++ {
		a, b := r.Steps[i-1], r.Steps[i]
		if now >= b.At.UnixMilli() {
			continue
		}
		ta, tb := a.At.UnixMilli(), b.At.UnixMilli()
		wa, wb := int64(100000-a.TrueWeight), int64(100000-b.TrueWeight) // weights of false
		falseW := wa + ((wb-wa)*(now-ta))/(tb-ta)
		return 100000 - int(falseW)
	}
	return last.TrueWeight
}

// mixServe is what a rule or the fallthrough serves: Value, or a rollout.
type mixServe struct {
	Value   bool
	Rollout *mixRollout
}

// mixRule is a flag rule: all its clauses must match.
type mixRule struct {
	ID      string
	Clauses []mixClause
	Serve   mixServe
}

// mixTarget serves Value to the listed keys.
type mixTarget struct {
	Value bool
	Keys  []string
}

// mixFlag is a bool flag with variations [false, true] and offVariation 0
// (false): served when the flag is off or a prerequisite fails.
type mixFlag struct {
	Key           string
	On            bool
	Prerequisites []string // each must be on and serve true (variation 1)
	Targets       []mixTarget
	Rules         []mixRule
	Fallthrough   mixServe
}

// mixSegment is a segment of user keys: excluded keys are out, included
// keys are in, anyone else is in when one of the rules matches (a rule
// being an AND of clauses). Included and excluded never share a key.
type mixSegment struct {
	Key      string
	Included []string
	Excluded []string
	Rules    [][]mixClause
}

// mixUser is one evaluation context: a key and attributes (string,
// float64 or []any of strings). An attribute a user lacks is absent.
type mixUser struct {
	Key   string
	Attrs map[string]any
}

// mixPair is one evaluation of the benchmark loop.
type mixPair struct{ Flag, User int32 }

// mix is the realistic mix. Flags are in dependency order: a flag's
// prerequisites come before it. No flag that is a prerequisite has a
// rollout and no segment rule has a weight, so an evaluation's answer
// depends on a bucketing hash exactly when its own reason says a rollout
// chose it (see mixReference).
type mix struct {
	Flags    []mixFlag
	Segments []mixSegment
	Users    []mixUser
	Pairs    []mixPair // every (flag, user) pair once, shuffled
}

// pair is the i-th evaluation of the benchmark loop, the pairs taken in
// turn. The modulus is a constant (buildMix makes every pair once), so the
// loop pays a multiplication rather than the division by len(m.Pairs),
// which took a few of the nanoseconds timed in every library.
func (m *mix) pair(i int) mixPair { return m.Pairs[i%(MixFlags*MixUsers)] }

// realisticMix is the mix of scenario R1, built once.
var realisticMix = sync.OnceValue(func() *mix { return buildMix(MixSeed) })

// mixRand is SplitMix64: a generator whose sequence for a seed is fixed
// forever (math/rand makes no such promise across Go releases), so that the
// mix is the same document in every run.
type mixRand struct{ s uint64 }

func (r *mixRand) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n).
func (r *mixRand) intn(n int) int { return int(r.next() % uint64(n)) }

// chance is true with probability percent/100.
func (r *mixRand) chance(percent int) bool { return r.intn(100) < percent }

// between returns a number in [lo, hi].
func (r *mixRand) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

func pick[T any](r *mixRand, xs []T) T { return xs[r.intn(len(xs))] }

// weighted returns an index into weights, chosen in proportion to them.
func (r *mixRand) weighted(weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.intn(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

// sample returns k distinct elements of xs.
func sample[T any](r *mixRand, xs []T, k int) []T {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	out := make([]T, 0, k)
	for i := 0; i < k && i < len(xs); i++ {
		j := i + r.intn(len(xs)-i)
		idx[i], idx[j] = idx[j], idx[i]
		out = append(out, xs[idx[i]])
	}
	return out
}

// Populations the users are drawn from, and the values rules compare with.
var (
	mixCountries  = []string{"us", "us", "us", "fr", "de", "gb", "gb", "es", "it", "nl", "br", "in", "jp", "ca", "au", "se", "pl", "mx"}
	mixPlans      = []string{"free", "free", "free", "free", "pro", "pro", "enterprise"}
	mixGroups     = []string{"beta", "staff", "early-access", "partners", "internal"}
	mixFirstNames = []string{"ann", "bob", "carla", "dmitri", "emma", "farid", "gina", "hiro", "ines", "jon", "kemal", "lea", "mohan", "nora", "oscar", "priya", "quinn", "rosa", "sven", "tariq", "uma", "victor", "wen", "yusuf", "zoe"}
	mixLastNames  = []string{"smith", "martin", "garcia", "muller", "rossi", "tanaka", "silva", "kowalski", "nguyen", "johnson", "dubois", "larsen", "patel", "cohen", "okafor"}
	mixDomains    = []string{"gmail.com", "gmail.com", "gmail.com", "outlook.com", "yahoo.fr", "corp.com", "example.com", "uni.edu", "acme.io"}
	mixAreas      = []string{"checkout", "search", "billing", "onboarding", "profile", "feed", "mobile", "admin", "reports", "notifications", "payments", "editor"}
	mixThings     = []string{"redesign", "new-api", "kill-switch", "dark-mode", "experiment", "beta", "cache", "limits", "banner", "v2", "rollout", "migration"}
	mixOrgs       = 120
	mixEndsWith   = [][]string{{"@corp.com"}, {"@example.com", "@corp.com"}, {".edu"}, {"@acme.io", "@corp.com"}, {".fr"}}
	mixStartsWith = [][]string{{"qa-"}, {"test.", "qa-"}, {"a", "b", "c"}, {"emma.", "nora."}}
	mixContains   = [][]string{{"+test"}, {"qa"}, {"smith", "silva"}, {".m"}}
	mixPatterns   = []string{`^[a-z]+\.[a-z]+@corp\.com$`, `^qa-[0-9]+@`, `\+[a-z]+@`, `@(gmail|outlook)\.com$`, `^[a-h][a-z]*\.`, `[0-9]{3,}@`, `\.(edu|io)$`}
	mixAges       = []float64{18, 21, 25, 30, 40, 50, 65}
	mixVersions   = []string{"1.9.9", "2.0.0", "2.5.0", "3.0.0", "3.1.4", "3.2.0-beta.2", "4.0.0"}
	mixDates      = []string{"2019-06-01T00:00:00Z", "2021-01-01T00:00:00Z", "2022-06-15T08:30:00Z", "2024-03-01T00:00:00Z", "2025-09-01T12:00:00Z"}
	mixWeights    = []int{1000, 5000, 10000, 20000, 25000, 50000, 75000, 90000, 99000}
)

func orgID(i int) string { return fmt.Sprintf("org-%03d", i) }

// buildMix generates the mix from seed.
func buildMix(seed uint64) *mix {
	r := &mixRand{s: seed}
	m := &mix{}
	m.Users = mixUsers(r)
	keys := make([]string, len(m.Users))
	for i, u := range m.Users {
		keys[i] = u.Key
	}
	m.Segments = mixSegmentsOf(r, keys)
	m.Flags = mixFlagsOf(r, keys, m.Segments)

	m.Pairs = make([]mixPair, 0, len(m.Flags)*len(m.Users))
	for f := range m.Flags {
		for u := range m.Users {
			m.Pairs = append(m.Pairs, mixPair{Flag: int32(f), User: int32(u)})
		}
	}
	for i := len(m.Pairs) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		m.Pairs[i], m.Pairs[j] = m.Pairs[j], m.Pairs[i]
	}
	return m
}

func mixUsers(r *mixRand) []mixUser {
	seen := map[string]bool{}
	users := make([]mixUser, 0, MixUsers)
	created0 := time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	created1 := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC).Unix()
	for len(users) < MixUsers {
		key := fmt.Sprintf("user-%08x", uint32(r.next()))
		if seen[key] {
			continue
		}
		seen[key] = true
		first, last := pick(r, mixFirstNames), pick(r, mixLastNames)
		a := map[string]any{
			"country":  pick(r, mixCountries),
			"plan":     pick(r, mixPlans),
			"orgId":    orgID(r.intn(mixOrgs)),
			"deviceId": fmt.Sprintf("dev-%012x", r.next()&0xffffffffffff),
			"createdAt": time.Unix(created0+int64(r.intn(int(created1-created0))), 0).UTC().
				Format(time.RFC3339),
		}
		if !r.chance(7) {
			domain := pick(r, mixDomains)
			switch r.weighted(70, 15, 5, 10) {
			case 0:
				a["email"] = first + "." + last + "@" + domain
			case 1:
				a["email"] = fmt.Sprintf("%s%s%d@%s", first, last, r.intn(1000), domain)
			case 2:
				a["email"] = fmt.Sprintf("qa-%d@corp.com", r.intn(10000))
			default:
				a["email"] = first + "+" + pick(r, []string{"test", "news", "shop"}) + "@" + domain
			}
		}
		if r.chance(70) {
			v := fmt.Sprintf("%d.%d.%d", r.between(1, 4), r.intn(13), r.intn(25))
			if r.chance(6) {
				v += fmt.Sprintf("-beta.%d", r.between(1, 12))
			}
			a["appVersion"] = v
		}
		if r.chance(85) {
			a["age"] = float64(r.between(16, 80))
		}
		if r.chance(35) {
			var gs []any
			for _, g := range sample(r, mixGroups, r.between(1, 2)) {
				gs = append(gs, g)
			}
			a["groups"] = gs
		}
		users = append(users, mixUser{Key: key, Attrs: a})
	}
	return users
}

// mixKeys returns n keys for a target or segment list: most of them keys
// of users of the mix, some of users it does not have (lists go stale).
func mixKeys(r *mixRand, users []string, n int) []string {
	out := sample(r, users, n)
	for i := range out {
		if r.chance(10) {
			out[i] = fmt.Sprintf("gone-%08x", uint32(r.next()))
		}
	}
	return out
}

func mixSegmentsOf(r *mixRand, users []string) []mixSegment {
	segs := make([]mixSegment, MixSegments)
	for i := range segs {
		s := mixSegment{Key: fmt.Sprintf("seg-%02d-%s", i, pick(r, mixThings))}
		shape := r.weighted(30, 30, 40) // included only, rules only, both
		if shape != 1 {
			members := mixKeys(r, users, r.between(5, 150))
			s.Included = members
			if r.chance(40) {
				in := map[string]bool{}
				for _, k := range members {
					in[k] = true
				}
				for _, k := range mixKeys(r, users, r.between(1, 5)) {
					if !in[k] {
						s.Excluded = append(s.Excluded, k)
					}
				}
			}
		}
		if shape != 0 {
			for range r.between(1, 2) {
				// A few rules name an earlier segment: no cycles.
				var prior []mixSegment
				if i > 0 && r.chance(20) {
					prior = segs[:i]
				}
				s.Rules = append(s.Rules, mixClauses(r, prior, r.between(1, 2)))
			}
		}
		segs[i] = s
	}
	return segs
}

// mixClauses returns n clauses; inSegment only when segs is not empty, and
// at most one inSegment clause.
func mixClauses(r *mixRand, segs []mixSegment, n int) []mixClause {
	var out []mixClause
	for len(out) < n {
		c, ok := mixClauseOf(r, segs)
		if !ok {
			continue
		}
		if c.Op == "inSegment" {
			segs = nil
		}
		out = append(out, c)
	}
	return out
}

func strs(vs ...string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

func mixClauseOf(r *mixRand, segs []mixSegment) (mixClause, bool) {
	var c mixClause
	switch r.weighted(16, 10, 5, 4, 10, 4, 4, 5, 10, 10, 8, 14) {
	case 0:
		c = mixClause{Attr: "country", Op: "in", Values: strs(sample(r, mixCountries[2:], r.between(1, 5))...)}
	case 1:
		c = mixClause{Attr: "plan", Op: "in", Values: strs(sample(r, []string{"free", "pro", "enterprise"}, r.between(1, 2))...)}
	case 2:
		c = mixClause{Attr: "groups", Op: "in", Values: strs(sample(r, mixGroups, r.between(1, 2))...)}
	case 3:
		c = mixOrgClause(r)
	case 4:
		c = mixClause{Attr: "email", Op: "endsWith", Values: strs(pick(r, mixEndsWith)...)}
	case 5:
		c = mixClause{Attr: "email", Op: "startsWith", Values: strs(pick(r, mixStartsWith)...)}
	case 6:
		c = mixClause{Attr: "email", Op: "contains", Values: strs(pick(r, mixContains)...)}
	case 7:
		c = mixClause{Attr: "email", Op: "matches", Values: strs(pick(r, mixPatterns))}
	case 8:
		op := pick(r, []string{"lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"})
		c = mixClause{Attr: "age", Op: op, Values: []any{pick(r, mixAges)}}
	case 9:
		c = mixVersionClause(r)
	case 10:
		c = mixClause{Attr: "createdAt", Op: pick(r, []string{"before", "after"}), Values: strs(pick(r, mixDates))}
	default:
		if len(segs) == 0 {
			return c, false
		}
		c = mixSegmentClause(r, segs)
	}
	c.Negate = r.chance(10)
	return c, true
}

// mixOrgClause is a clause on orgId: one of 3 to 10 organizations.
func mixOrgClause(r *mixRand) mixClause {
	var orgs []string
	for range r.between(3, 10) {
		orgs = append(orgs, orgID(r.intn(mixOrgs)))
	}
	return mixClause{Attr: "orgId", Op: "in", Values: strs(orgs...)}
}

// mixVersionClause is a semantic-version clause on appVersion; an equality
// names a version of its own, since the listed ones are bounds.
func mixVersionClause(r *mixRand) mixClause {
	op := pick(r, []string{"semVerGreaterThan", "semVerGreaterThan", "semVerLessThan", "semVerEqual"})
	v := pick(r, mixVersions)
	if op == "semVerEqual" {
		v = fmt.Sprintf("%d.%d.%d", r.between(1, 4), r.intn(13), r.intn(25))
	}
	return mixClause{Attr: "appVersion", Op: op, Values: strs(v)}
}

// mixSegmentClause is an inSegment clause naming one segment, or two 20 %
// of the time.
func mixSegmentClause(r *mixRand, segs []mixSegment) mixClause {
	c := mixClause{Op: "inSegment"}
	for _, s := range sample(r, segs, r.weighted(80, 20)+1) {
		c.Values = append(c.Values, s.Key)
	}
	return c
}

// mixRolloutOf returns a rollout: by key, orgId or deviceId; static or,
// one time in three, progressive, with steps before and after any date a
// run of this benchmark is likely to have (2026–2030), so that its weight
// is being interpolated.
func mixRolloutOf(r *mixRand) *mixRollout {
	ro := &mixRollout{BucketBy: []string{"key", "orgId", "deviceId"}[r.weighted(60, 25, 15)]}
	if !r.chance(33) {
		ro.TrueWeight = pick(r, mixWeights)
		return ro
	}
	day := func(y0, y1 int) time.Time {
		d0 := time.Date(y0, 1, 1, 0, 0, 0, 0, time.UTC)
		days := int(time.Date(y1, 1, 1, 0, 0, 0, 0, time.UTC).Sub(d0).Hours() / 24)
		return d0.AddDate(0, 0, r.intn(days))
	}
	w := pick(r, []int{0, 1000, 5000})
	ro.Steps = append(ro.Steps, mixStep{At: day(2024, 2026), TrueWeight: w})
	for range r.intn(3) {
		at := day(2026, 2031)
		if at.After(ro.Steps[len(ro.Steps)-1].At) {
			w += r.between(1, 20) * 1000
			ro.Steps = append(ro.Steps, mixStep{At: at, TrueWeight: min(w, 100000)})
		}
	}
	ro.Steps = append(ro.Steps, mixStep{At: day(2031, 2036), TrueWeight: pick(r, []int{50000, 100000, 100000})})
	return ro
}

func mixFlagsOf(r *mixRand, users []string, segs []mixSegment) []mixFlag {
	flags := make([]mixFlag, MixFlags)
	seen := map[string]bool{}
	gates, isGate := mixGateChains()
	for i := range flags {
		key := ""
		for key == "" || seen[key] {
			key = fmt.Sprintf("%s-%s-%03d", pick(r, mixAreas), pick(r, mixThings), i)
		}
		seen[key] = true
		f := mixFlag{Key: key, On: !r.chance(6)}
		gate := i < isGate
		if r.chance(35) {
			f.Targets = mixTargetsOf(r, users)
		}
		f.Rules = mixRulesOf(r, segs, gate)
		switch {
		case !gate && r.chance(35):
			f.Fallthrough.Rollout = mixRolloutOf(r)
		case gate:
			f.Fallthrough.Value = r.chance(80) // a gate is mostly open
		default:
			f.Fallthrough.Value = r.chance(40)
		}
		flags[i] = f
	}
	mixLinkPrerequisites(r, flags, gates, isGate)
	return flags
}

// mixGateChains lays out the prerequisite chains: chain c is gates[c][0] ←
// gates[c][1] ← ...; a flag that requires the last gate of a chain of
// length n is n prerequisites deep. Gates are the first flags (isGate of
// them), and have no rollouts.
func mixGateChains() (gates [][]int, isGate int) {
	next := 0
	for c := 0; c < 12; c++ {
		n := []int{1, 2, 3}[c%3]
		var chain []int
		for range n {
			chain = append(chain, next)
			next++
		}
		gates = append(gates, chain)
	}
	return gates, next
}

// mixTargetsOf returns a flag's targets: users served true and, 30 % of
// the time, users served false (none of the first).
func mixTargetsOf(r *mixRand, users []string) []mixTarget {
	targets := []mixTarget{{Value: true, Keys: mixKeys(r, users, r.between(1, 40))}}
	if !r.chance(30) {
		return targets
	}
	in := map[string]bool{}
	for _, k := range targets[0].Keys {
		in[k] = true
	}
	var off []string
	for _, k := range mixKeys(r, users, r.between(1, 10)) {
		if !in[k] {
			off = append(off, k)
		}
	}
	if len(off) > 0 {
		targets = append(targets, mixTarget{Value: false, Keys: off})
	}
	return targets
}

// mixRulesOf returns a flag's rules; a gate's rules serve values, never
// rollouts.
func mixRulesOf(r *mixRand, segs []mixSegment, gate bool) []mixRule {
	var rules []mixRule
	nrules := []int{0, 1, 2, 3, 5, 10}[r.weighted(30, 25, 20, 10, 10, 5)]
	for j := range nrules {
		rule := mixRule{ID: fmt.Sprintf("r%d", j), Clauses: mixClauses(r, segs, r.weighted(50, 35, 15)+1)}
		switch {
		case !gate && r.chance(15):
			rule.Serve.Rollout = mixRolloutOf(r)
		default:
			rule.Serve.Value = r.chance(75)
		}
		rules = append(rules, rule)
	}
	return rules
}

// mixLinkPrerequisites makes the gates' chains; then 45 other flags each
// require the last gate of a chain (and a few a second chain too).
func mixLinkPrerequisites(r *mixRand, flags []mixFlag, gates [][]int, isGate int) {
	for _, chain := range gates {
		for d := 1; d < len(chain); d++ {
			flags[chain[d]].Prerequisites = []string{flags[chain[d-1]].Key}
		}
	}
	for _, i := range sample(r, seq(isGate, MixFlags), 45) {
		for _, chain := range sample(r, gates, r.weighted(85, 15)+1) {
			flags[i].Prerequisites = append(flags[i].Prerequisites, flags[chain[len(chain)-1]].Key)
		}
	}
}

// seq returns lo, lo+1, ..., hi-1.
func seq(lo, hi int) []int {
	out := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}

// mixOps lists every clause operator of the mix, in SPEC order.
var mixOps = []string{"in", "startsWith", "endsWith", "contains", "matches", "lessThan", "lessThanOrEqual",
	"greaterThan", "greaterThanOrEqual", "before", "after", "semVerEqual", "semVerLessThan", "semVerGreaterThan", "inSegment"}

// segmentByKey returns the mix's segment with key k.
func (m *mix) segmentByKey(k string) (*mixSegment, bool) {
	i := slices.IndexFunc(m.Segments, func(s mixSegment) bool { return s.Key == k })
	if i < 0 {
		return nil, false
	}
	return &m.Segments[i], true
}
