package benchmarks

import (
	"fmt"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldattr"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	evaluation "github.com/launchdarkly/go-server-sdk-evaluation/v3"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
)

// ldMixOps maps the mix's operators to LaunchDarkly's: the same semantics
// (absent attribute: no match, negate not applied; array attribute: any
// element), the same names but for inSegment.
var ldMixOps = map[string]ldmodel.Operator{
	"in": ldmodel.OperatorIn, "startsWith": ldmodel.OperatorStartsWith, "endsWith": ldmodel.OperatorEndsWith,
	"contains": ldmodel.OperatorContains, "matches": ldmodel.OperatorMatches,
	"lessThan": ldmodel.OperatorLessThan, "lessThanOrEqual": ldmodel.OperatorLessThanOrEqual,
	"greaterThan": ldmodel.OperatorGreaterThan, "greaterThanOrEqual": ldmodel.OperatorGreaterThanOrEqual,
	"before": ldmodel.OperatorBefore, "after": ldmodel.OperatorAfter,
	"semVerEqual": ldmodel.OperatorSemVerEqual, "semVerLessThan": ldmodel.OperatorSemVerLessThan,
	"semVerGreaterThan": ldmodel.OperatorSemVerGreaterThan, "inSegment": ldmodel.OperatorSegmentMatch,
}

// ldMixData translates the realistic mix into LaunchDarkly flags and
// segments. LaunchDarkly has every kind natively but progressive
// schedules: its server changes a rollout's weights over time and pushes
// them, so a rollout with a schedule becomes the weights in force at now.
// A segment's included and excluded lists are by key in both (LaunchDarkly
// checks included first, flagstream excluded first: the mix never lists a
// key in both).
func ldMixData(m *mix, now time.Time) (*ldData, error) {
	d := &ldData{flags: map[string]*ldmodel.FeatureFlag{}, segments: map[string]*ldmodel.Segment{}}
	for _, s := range m.Segments {
		b := ldbuilders.NewSegmentBuilder(s.Key).Version(1).Included(s.Included...).Excluded(s.Excluded...)
		for j, r := range s.Rules {
			cs, err := ldMixClauses(r)
			if err != nil {
				return nil, fmt.Errorf("segment %s: %w", s.Key, err)
			}
			b.AddRule(ldbuilders.NewSegmentRuleBuilder().ID(fmt.Sprintf("r%d", j)).Clauses(cs...))
		}
		seg := b.Build()
		d.segments[s.Key] = &seg
	}
	for _, f := range m.Flags {
		b := ldbuilders.NewFlagBuilder(f.Key).Version(1).On(f.On).
			Variations(ldvalue.Bool(false), ldvalue.Bool(true)).OffVariation(0).
			Fallthrough(ldMixServe(f.Fallthrough, now))
		for _, p := range f.Prerequisites {
			b.AddPrerequisite(p, 1)
		}
		for _, t := range f.Targets {
			b.AddTarget(variationOf(t.Value), t.Keys...)
		}
		for _, r := range f.Rules {
			cs, err := ldMixClauses(r.Clauses)
			if err != nil {
				return nil, fmt.Errorf("flag %s: %w", f.Key, err)
			}
			b.AddRule(ldbuilders.NewRuleBuilder().ID(r.ID).Clauses(cs...).VariationOrRollout(ldMixServe(r.Serve, now)))
		}
		d.addFlag(b)
	}
	return d, nil
}

func ldMixServe(s mixServe, now time.Time) ldmodel.VariationOrRollout {
	if s.Rollout == nil {
		return ldbuilders.Variation(variationOf(s.Value))
	}
	w := s.Rollout.TrueWeightAt(now)
	return ldmodel.VariationOrRollout{Rollout: ldmodel.Rollout{
		Variations: []ldmodel.WeightedVariation{ldbuilders.Bucket(0, 100000-w), ldbuilders.Bucket(1, w)},
		BucketBy:   ldattr.NewLiteralRef(s.Rollout.BucketBy),
	}}
}

func ldMixClauses(cs []mixClause) ([]ldmodel.Clause, error) {
	out := make([]ldmodel.Clause, len(cs))
	for i, c := range cs {
		op, ok := ldMixOps[c.Op]
		if !ok {
			return nil, fmt.Errorf("clause %d: no LaunchDarkly operator for %q", i, c.Op)
		}
		values := make([]ldvalue.Value, len(c.Values))
		for j, v := range c.Values {
			values[j] = ldvalue.CopyArbitraryValue(v)
		}
		if op == ldmodel.OperatorSegmentMatch {
			out[i] = ldmodel.Clause{Op: op, Values: values}
		} else {
			out[i] = ldbuilders.Clause(c.Attr, op, values...)
		}
		if c.Negate {
			out[i] = ldbuilders.Negate(out[i])
		}
	}
	return out, nil
}

func ldMixUsers(m *mix) []ldcontext.Context {
	users := make([]ldcontext.Context, len(m.Users))
	for i, u := range m.Users {
		b := ldcontext.NewBuilder(u.Key)
		for name, v := range u.Attrs {
			b.SetValue(name, ldvalue.CopyArbitraryValue(v))
		}
		users[i] = b.Build()
	}
	return users
}

func ldMixSetup(sdk bool) (*Case, error) {
	m := realisticMix()
	d, err := ldMixData(m, time.Now())
	if err != nil {
		return nil, err
	}
	users := ldMixUsers(m)
	if !sdk {
		return ldEvalMixCase(m, d, users), nil
	}
	return ldSDKMixCase(m, d, users)
}

// ldEvalMixCase evaluates the mix with LaunchDarkly's evaluator, given each
// flag as S1–S7 give it (prerequisites and segments come from d).
func ldEvalMixCase(m *mix, d *ldData, users []ldcontext.Context) *Case {
	ev := evaluation.NewEvaluator(d)
	fl := make([]*ldmodel.FeatureFlag, len(m.Flags))
	for i, f := range m.Flags {
		fl[i] = d.flags[f.Key]
	}
	return evalCase(func(i int) bool {
		p := m.pair(i)
		return ev.Evaluate(fl[p.Flag], users[p.User], nil).Detail.Value.BoolValue()
	}, nil)
}

// ldSDKMixCase evaluates the mix with BoolVariation of LaunchDarkly's SDK.
func ldSDKMixCase(m *mix, d *ldData, users []ldcontext.Context) (*Case, error) {
	c, err := ldSDKClient(d)
	if err != nil {
		return nil, err
	}
	keys := fsMixFlagKeys(m)
	return evalCase(func(i int) bool {
		p := m.pair(i)
		v, _ := c.BoolVariation(keys[p.Flag], users[p.User], false)
		return v
	}, func() { c.Close() }), nil
}
