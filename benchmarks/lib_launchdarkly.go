package benchmarks

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	evaluation "github.com/launchdarkly/go-server-sdk-evaluation/v3"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	ldclient "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"
)

// ldData is one scenario's flags and segments, built with ldbuilders (which
// preprocesses them as the SDK's parser does).
type ldData struct {
	flags    map[string]*ldmodel.FeatureFlag
	segments map[string]*ldmodel.Segment
}

// GetFeatureFlag implements evaluation.DataProvider.
func (d *ldData) GetFeatureFlag(key string) *ldmodel.FeatureFlag { return d.flags[key] }

// GetSegment implements evaluation.DataProvider.
func (d *ldData) GetSegment(key string) *ldmodel.Segment { return d.segments[key] }

func (d *ldData) addFlag(b *ldbuilders.FlagBuilder) {
	f := b.Build()
	d.flags[f.Key] = &f
}

// ldBool is an LD bool flag, on, variations [false, true], serving
// fallthrough to whoever no rule matches.
func ldBool(key string, serve int) *ldbuilders.FlagBuilder {
	return ldbuilders.NewFlagBuilder(key).Version(1).On(true).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true)).OffVariation(0).FallthroughVariation(serve)
}

func ldStrings(vs ...string) []ldvalue.Value {
	out := make([]ldvalue.Value, len(vs))
	for i, v := range vs {
		out[i] = ldvalue.String(v)
	}
	return out
}

func ldRule(id string, clauses ...ldmodel.Clause) *ldbuilders.RuleBuilder {
	return ldbuilders.NewRuleBuilder().ID(id).Variation(1).Clauses(clauses...)
}

func ldUser() ldcontext.Context {
	return ldcontext.NewBuilder(UserKey).SetString("email", UserEmail).SetString("country", UserCountry).
		SetString("appVersion", UserAppVersion).Build()
}

func ldScenarioData(s Scenario) (*ldData, error) {
	d := &ldData{flags: map[string]*ldmodel.FeatureFlag{}, segments: map[string]*ldmodel.Segment{}}
	switch s {
	case S1BoolOn:
		d.addFlag(ldBool(FlagKey, 1))
	case S2Target1000Hit:
		keys := keyList(TargetKeys, targetKey)
		d.addFlag(ldBool(FlagKey, 0).AddTarget(1, keys...))
	case S3Rules10x2:
		b := ldBool(FlagKey, 0)
		for i := 0; i < 10; i++ {
			b.AddRule(ldRule(fmt.Sprintf("r%d", i),
				ldbuilders.Clause("email", ldmodel.OperatorEndsWith, ldvalue.String(EmailSuffix)),
				ldbuilders.Clause("country", ldmodel.OperatorIn, ldStrings(s3Countries(i)...)...)))
		}
		d.addFlag(b)
	case S4Rollout5050:
		d.addFlag(ldBool(FlagKey, 0).Fallthrough(ldbuilders.Rollout(ldbuilders.Bucket(0, 50000), ldbuilders.Bucket(1, 50000))))
	case S5Segment10000:
		members := keyList(SegmentKeys, memberKey)
		seg := ldbuilders.NewSegmentBuilder("seg").Version(1).Included(members...).
			AddRule(ldbuilders.NewSegmentRuleBuilder().ID("country").
				Clauses(ldbuilders.Clause("country", ldmodel.OperatorIn, ldvalue.String(UserCountry)))).Build()
		d.segments["seg"] = &seg
		d.addFlag(ldBool(FlagKey, 0).AddRule(ldRule("seg", ldbuilders.SegmentMatchClause("seg"))))
	case S6SemVer:
		d.addFlag(ldBool(FlagKey, 0).AddRule(ldRule("v",
			ldbuilders.Clause("appVersion", ldmodel.OperatorSemVerGreaterThan, ldvalue.String(SemVerFloor)))))
	case S7Prerequisites:
		for depth := 0; depth < 3; depth++ {
			d.addFlag(ldBool(prereqKey(depth), 1).AddPrerequisite(prereqKey(depth+1), 1))
		}
		d.addFlag(ldBool(prereqKey(3), 1))
	case S8AllFlags1000:
		for i := 0; i < AllFlagsCount; i++ {
			d.addFlag(ldBool(allFlagKey(i), 0).AddRule(ldRule("fr",
				ldbuilders.Clause("country", ldmodel.OperatorIn, ldvalue.String(UserCountry)))))
		}
	default:
		return nil, fmt.Errorf("unknown scenario %q", s)
	}
	return d, nil
}

// ldLoadDoc renders n load flags in LaunchDarkly's own JSON ({"flags": ...,
// "segments": ...}, the shape of its data payload).
func ldLoadDoc(n int) ([]byte, error) {
	fl := loadFlags(n, func(key string, emailRule bool) ldmodel.FeatureFlag {
		b := ldBool(key, 0)
		if emailRule {
			b.AddRule(ldRule("r", ldbuilders.Clause("email", ldmodel.OperatorEndsWith, ldvalue.String(EmailSuffix))))
		}
		return b.Build()
	})
	return json.Marshal(map[string]any{"flags": fl, "segments": map[string]any{}})
}

// ldParse parses an LD data payload; ldmodel's unmarshaller preprocesses
// every flag.
func ldParse(doc []byte) (*ldData, error) {
	var payload struct {
		Flags    map[string]*ldmodel.FeatureFlag `json:"flags"`
		Segments map[string]*ldmodel.Segment     `json:"segments"`
	}
	if err := json.Unmarshal(doc, &payload); err != nil {
		return nil, fmt.Errorf("launchdarkly: %w", err)
	}
	return &ldData{flags: payload.Flags, segments: payload.Segments}, nil
}

func ldEvalLib() Library {
	return Library{
		Name:    "LD evaluator",
		Module:  "github.com/launchdarkly/go-server-sdk-evaluation/v3 v3.0.1",
		Driving: "evaluation.NewEvaluator over a map-backed DataProvider of ldbuilders flags; Evaluate(flag, context, nil); S8 loops over the flags",
		Setup:   ldEvalSetup,
		LoadDoc: ldLoadDoc,
		Load: func(doc []byte) (Loaded, error) {
			d, err := ldParse(doc)
			if err != nil {
				return nil, err
			}
			return &ldEvalLoaded{d: d, ev: evaluation.NewEvaluator(d), user: ldUser()}, nil
		},
	}
}

type ldEvalLoaded struct {
	d    *ldData
	ev   evaluation.Evaluator
	user ldcontext.Context
}

func (l *ldEvalLoaded) Bool(key string) bool {
	return l.ev.Evaluate(l.d.flags[key], l.user, nil).Detail.Value.BoolValue()
}
func (l *ldEvalLoaded) Close() {}

func ldEvalSetup(s Scenario) (*Case, error) {
	if s == R1RealisticMix {
		return ldMixSetup(false)
	}
	d, err := ldScenarioData(s)
	if err != nil {
		return nil, err
	}
	ev := evaluation.NewEvaluator(d)
	user := ldUser()
	switch s {
	case S4Rollout5050:
		f := d.flags[FlagKey]
		ctxs := rolloutContexts(ldcontext.New)
		return evalCase(func(i int) bool {
			return ev.Evaluate(f, ctxs[i%RolloutContexts], nil).Detail.Value.BoolValue()
		}, nil), nil
	case S7Prerequisites:
		f := d.flags[prereqKey(0)]
		return evalCase(func(int) bool { return ev.Evaluate(f, user, nil).Detail.Value.BoolValue() }, nil), nil
	case S8AllFlags1000:
		keys := slices.Sorted(maps.Keys(d.flags))
		fl := make([]*ldmodel.FeatureFlag, len(keys))
		for i, k := range keys {
			fl[i] = d.flags[k]
		}
		return &Case{Close: func() {}, All: func(count bool) int {
			n := 0
			for _, f := range fl {
				if ev.Evaluate(f, user, nil).Detail.Value.BoolValue() && count {
					n++
				}
			}
			return n
		}}, nil
	}
	f := d.flags[FlagKey]
	return evalCase(func(int) bool { return ev.Evaluate(f, user, nil).Detail.Value.BoolValue() }, nil), nil
}

func ldSDKLib() Library {
	return Library{
		Name:    "LD SDK",
		Module:  "github.com/launchdarkly/go-server-sdk/v7 v7.14.6",
		Driving: "ldclient.MakeCustomClient with ldtestdata (UsePreconfiguredFlag/Segment), Events: NoEvents, logging off; BoolVariation; AllFlagsState for S8",
		Setup:   ldSDKSetup,
		LoadDoc: ldLoadDoc,
		Load: func(doc []byte) (Loaded, error) {
			c, err := openRendered(doc, ldParse, ldSDKClient)
			if err != nil {
				return nil, err
			}
			return &ldSDKLoaded{c: c, user: ldUser()}, nil
		},
	}
}

type ldSDKLoaded struct {
	c    *ldclient.LDClient
	user ldcontext.Context
}

func (l *ldSDKLoaded) Bool(key string) bool {
	v, _ := l.c.BoolVariation(key, l.user, false)
	return v
}
func (l *ldSDKLoaded) Close() { l.c.Close() }

func ldSDKClient(d *ldData) (*ldclient.LDClient, error) {
	td := ldtestdata.DataSource()
	for _, f := range d.flags {
		td.UsePreconfiguredFlag(*f)
	}
	for _, s := range d.segments {
		td.UsePreconfiguredSegment(*s)
	}
	cfg := ldclient.Config{
		DataSource:       td,
		Events:           ldcomponents.NoEvents(),
		Logging:          ldcomponents.NoLogging(),
		DiagnosticOptOut: true,
	}
	c, err := ldclient.MakeCustomClient("sdk-benchmark-key", cfg, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("launchdarkly sdk: %w", err)
	}
	return c, nil
}

func ldSDKSetup(s Scenario) (*Case, error) {
	if s == R1RealisticMix {
		return ldMixSetup(true)
	}
	c, err := openRendered(s, ldScenarioData, ldSDKClient)
	if err != nil {
		return nil, err
	}
	user := ldUser()
	closer := func() { c.Close() }
	switch s {
	case S4Rollout5050:
		ctxs := rolloutContexts(ldcontext.New)
		return evalCase(func(i int) bool {
			v, _ := c.BoolVariation(FlagKey, ctxs[i%RolloutContexts], false)
			return v
		}, closer), nil
	case S7Prerequisites:
		return evalCase(func(int) bool {
			v, _ := c.BoolVariation(S7Flag, user, false)
			return v
		}, closer), nil
	case S8AllFlags1000:
		return &Case{Close: closer, All: func(count bool) int {
			st := c.AllFlagsState(user)
			if !count {
				return 0
			}
			return countTrue(maps.Values(st.ToValuesMap()), ldvalue.Value.BoolValue)
		}}, nil
	}
	return evalCase(func(int) bool {
		v, _ := c.BoolVariation(FlagKey, user, false)
		return v
	}, closer), nil
}
