package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	flags "github.com/flagstream/flags"
)

// mixRef is flagstream's answer for one (flag, user) pair of the mix.
type mixRef struct {
	Value bool
	// Rollout is the rollout that chose Value, or nil when no bucketing
	// hash decided the answer.
	Rollout *mixRollout
	Reason  flags.Reason
}

// mixReference is flagstream's answer for every pair of the realistic mix,
// indexed by flag*MixUsers + user, computed once.
var mixReference = sync.OnceValues(func() ([]mixRef, error) {
	m := realisticMix()
	c, err := openRendered(m, fsMixDoc, flagstreamClient)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	users := fsMixUsers(m)
	ctx := context.Background()
	refs := make([]mixRef, len(m.Flags)*len(m.Users))
	for fi, f := range m.Flags {
		for ui, u := range users {
			res := c.BoolDetail(ctx, f.Key, u, false)
			if res.Reason.Kind == flags.ReasonError {
				return nil, fmt.Errorf("%s: flagstream: %s for %s: %v", R1RealisticMix, f.Key, m.Users[ui].Key, res.Err)
			}
			ref := mixRef{Value: res.Value, Reason: res.Reason}
			if res.Reason.InRollout {
				switch res.Reason.Kind {
				case flags.ReasonRuleMatch:
					ref.Rollout = f.Rules[res.Reason.RuleIndex].Serve.Rollout
				case flags.ReasonFallthrough:
					ref.Rollout = f.Fallthrough.Rollout
				}
				if ref.Rollout == nil {
					return nil, fmt.Errorf("%s: flagstream: %s for %s: in a rollout, reason %+v, but the mix has no rollout there",
						R1RealisticMix, f.Key, m.Users[ui].Key, res.Reason)
				}
			}
			refs[fi*len(m.Users)+ui] = ref
		}
	}
	return refs, nil
})

// mixTally counts the answers a library gave to the pairs one flag's
// rollouts decided.
type mixTally struct {
	n, trues int
	want     float64        // expected number of true answers
	clusters map[string]int // pairs per bucketing value
}

// checkMix evaluates every pair of the mix through c, in the benchmark's
// order, and compares the answers with flagstream's (mixReference):
//
//   - A pair whose answer no bucketing hash decides (no rollout chose it)
//     must get flagstream's answer exactly.
//   - Pairs a rollout decides cannot: every library hashes differently, so
//     a given user lands on a different side of the same 30 % in each. For
//     each flag, the number of such pairs answered true must be within 6
//     standard deviations of what the rollouts' weights make expected. The
//     bound counts pairs sharing a bucketing value (users of one org) as
//     one lump: a flag's rollout by orgId has fewer independent draws.
//     Weights inverted, or a rule's rollout served to the wrong users, are
//     off by far more than that.
func checkMix(c *Case) error {
	if c.Eval == nil {
		return fmt.Errorf("%s: no Eval function", R1RealisticMix)
	}
	m := realisticMix()
	refs, err := mixReference()
	if err != nil {
		return err
	}
	now := time.Now()
	tallies := make([]mixTally, len(m.Flags))
	var diffs []string
	ndiff, exact := 0, 0
	for i, p := range m.Pairs {
		got := c.Eval(i)
		f, u := m.Flags[p.Flag], m.Users[p.User]
		ref := refs[int(p.Flag)*len(m.Users)+int(p.User)]
		if ref.Rollout == nil {
			exact++
			if got != ref.Value {
				ndiff++
				if len(diffs) < 5 {
					diffs = append(diffs, fmt.Sprintf("%s for %s = %v, want %v (%s)", f.Key, u.Key, got, ref.Value, describeReason(ref.Reason)))
				}
			}
			continue
		}
		t := &tallies[p.Flag]
		if t.clusters == nil {
			t.clusters = map[string]int{}
		}
		t.n++
		if got {
			t.trues++
		}
		t.want += float64(ref.Rollout.TrueWeightAt(now)) / 100000
		t.clusters[ref.Rollout.BucketBy+"="+mixAttr(u, ref.Rollout.BucketBy)]++
	}
	var errs []error
	if ndiff > 0 {
		errs = append(errs, fmt.Errorf("%s: %d of %d answers no rollout decides differ from flagstream's: %s",
			R1RealisticMix, ndiff, exact, strings.Join(diffs, "; ")))
	}
	var off []string
	for fi, t := range tallies {
		if t.n == 0 {
			continue
		}
		if tol := t.tolerance(); math.Abs(float64(t.trues)-t.want) > tol {
			off = append(off, fmt.Sprintf("%s: %d of %d true, want %.0f ± %.0f", m.Flags[fi].Key, t.trues, t.n, t.want, tol))
		}
	}
	if len(off) > 0 {
		errs = append(errs, fmt.Errorf("%s: rollouts off their weights in %d flags: %s", R1RealisticMix, len(off), strings.Join(off, "; ")))
	}
	return errors.Join(errs...)
}

// tolerance is 6 standard deviations of the number of true answers, at
// most: a lump of n pairs sharing a bucketing value contributes a variance
// of at most n²/4.
func (t mixTally) tolerance() float64 {
	v := 0.0
	for _, n := range t.clusters {
		v += float64(n*n) / 4
	}
	return 6*math.Sqrt(v) + 1
}

// mixAttr is the user's attribute a rollout buckets by.
func mixAttr(u mixUser, name string) string {
	if name == "key" {
		return u.Key
	}
	s, _ := u.Attrs[name].(string)
	return s
}

func describeReason(r flags.Reason) string {
	switch r.Kind {
	case flags.ReasonRuleMatch:
		return fmt.Sprintf("%s %d", r.Kind, r.RuleIndex)
	case flags.ReasonPrerequisiteFailed:
		return fmt.Sprintf("%s %s", r.Kind, r.PrerequisiteKey)
	}
	return string(r.Kind)
}
