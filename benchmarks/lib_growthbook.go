package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"

	gb "github.com/growthbook/growthbook-golang"
)

// gbFeature is a bool feature with defaultValue def and rules.
func gbFeature(def bool, rules ...any) map[string]any {
	f := map[string]any{"defaultValue": def}
	if len(rules) > 0 {
		f["rules"] = rules
	}
	return f
}

// gbForce is a rule forcing true when condition matches.
func gbForce(condition map[string]any) map[string]any {
	return map[string]any{"condition": condition, "force": true}
}

func gbPayload(features map[string]any, savedGroups map[string]any) ([]byte, error) {
	p := map[string]any{"status": 200, "features": features}
	if savedGroups != nil {
		p["savedGroups"] = savedGroups
	}
	return json.Marshal(p)
}

func gbDoc(s Scenario) ([]byte, error) {
	switch s {
	case S1BoolOn:
		return gbPayload(map[string]any{FlagKey: gbFeature(true)}, nil)
	case S2Target1000Hit:
		keys := keyList(TargetKeys, targetKey)
		return gbPayload(map[string]any{FlagKey: gbFeature(false, gbForce(map[string]any{"id": map[string]any{"$in": keys}}))}, nil)
	case S3Rules10x2:
		// GrowthBook has no endsWith operator: its way is an anchored $regex.
		rules := make([]any, 10)
		for i := range rules {
			rules[i] = gbForce(map[string]any{
				"email":   map[string]any{"$regex": "@corp\\.com$"},
				"country": map[string]any{"$in": s3Countries(i)},
			})
		}
		return gbPayload(map[string]any{FlagKey: gbFeature(false, rules...)}, nil)
	case S4Rollout5050:
		return gbPayload(map[string]any{FlagKey: gbFeature(false, map[string]any{
			"force": true, "coverage": 0.5, "hashAttribute": "id"})}, nil)
	case S5Segment10000:
		members := keyList(SegmentKeys, memberKey)
		// A saved group holds the included keys; the segment's rule is OR'ed
		// with membership in one condition.
		return gbPayload(map[string]any{FlagKey: gbFeature(false, gbForce(map[string]any{"$or": []any{
			map[string]any{"id": map[string]any{"$inGroup": "members"}},
			map[string]any{"country": map[string]any{"$in": []string{UserCountry}}},
		}}))}, map[string]any{"members": members})
	case S6SemVer:
		return gbPayload(map[string]any{FlagKey: gbFeature(false, gbForce(map[string]any{
			"appVersion": map[string]any{"$vgt": SemVerFloor}}))}, nil)
	case S7Prerequisites:
		fl := map[string]any{}
		for d := 0; d < 3; d++ {
			fl[prereqKey(d)] = gbFeature(false, map[string]any{
				"parentConditions": []any{map[string]any{"id": prereqKey(d + 1), "condition": map[string]any{"value": true}, "gate": true}},
				"force":            true,
			})
		}
		fl[prereqKey(3)] = gbFeature(true)
		return gbPayload(fl, nil)
	case S8AllFlags1000:
		fl := map[string]any{}
		for i := 0; i < AllFlagsCount; i++ {
			fl[allFlagKey(i)] = gbFeature(false, gbForce(map[string]any{"country": map[string]any{"$in": []string{UserCountry}}}))
		}
		return gbPayload(fl, nil)
	}
	return nil, fmt.Errorf("unknown scenario %q", s)
}

func gbAttrs() gb.Attributes {
	return gb.Attributes{"id": UserKey, "email": UserEmail, "country": UserCountry, "appVersion": UserAppVersion}
}

// gbClient builds a client from an API payload (features and saved groups)
// and a child client holding the user's attributes.
func gbClient(payload []byte) (root, user *gb.Client, err error) {
	root, err = gb.NewClient(context.Background())
	if err != nil {
		return nil, nil, fmt.Errorf("growthbook: %w", err)
	}
	if err := root.UpdateFromApiResponseJSON(string(payload)); err != nil {
		root.Close()
		return nil, nil, fmt.Errorf("growthbook: %w", err)
	}
	user, err = root.WithAttributes(gbAttrs())
	if err != nil {
		root.Close()
		return nil, nil, fmt.Errorf("growthbook: %w", err)
	}
	return root, user, nil
}

func gbBool(c *gb.Client, key string) bool {
	v, _ := c.EvalFeature(context.Background(), key).Value.(bool)
	return v
}

type gbLoaded struct{ root, user *gb.Client }

func (l *gbLoaded) Bool(key string) bool { return gbBool(l.user, key) }
func (l *gbLoaded) Close()               { l.root.Close() }

func growthbookLib() Library {
	return Library{
		Name:    "GrowthBook",
		Module:  "github.com/growthbook/growthbook-golang v0.7.0",
		Driving: "gb.NewClient with no data source, UpdateFromApiResponseJSON(payload), a child client per context (WithAttributes); EvalFeature; S8 loops EvalFeature (no all-features call)",
		Setup:   growthbookSetup,
		LoadDoc: func(n int) ([]byte, error) {
			return gbPayload(loadFlags(n, func(_ string, emailRule bool) any {
				if emailRule {
					return gbFeature(false, gbForce(map[string]any{"email": map[string]any{"$regex": "@corp\\.com$"}}))
				}
				return gbFeature(false)
			}), nil)
		},
		Load: func(doc []byte) (Loaded, error) {
			root, user, err := gbClient(doc)
			if err != nil {
				return nil, err
			}
			return &gbLoaded{root: root, user: user}, nil
		},
	}
}

func growthbookSetup(s Scenario) (*Case, error) {
	if s == R1RealisticMix {
		return growthbookMixSetup()
	}
	doc, err := gbDoc(s)
	if err != nil {
		return nil, err
	}
	root, user, err := gbClient(doc)
	if err != nil {
		return nil, err
	}
	closer := func() { root.Close() }
	ctx := context.Background()
	switch s {
	case S4Rollout5050:
		kids := make([]*gb.Client, RolloutContexts)
		for i := range kids {
			if kids[i], err = root.WithAttributes(gb.Attributes{"id": rolloutKey(i)}); err != nil {
				root.Close()
				return nil, fmt.Errorf("growthbook: %w", err)
			}
		}
		return evalCase(func(i int) bool { return gbBool(kids[i%RolloutContexts], FlagKey) }, closer), nil
	case S7Prerequisites:
		return evalCase(func(int) bool { return gbBool(user, S7Flag) }, closer), nil
	case S8AllFlags1000:
		keys := keyList(AllFlagsCount, allFlagKey)
		return &Case{Close: closer, All: func(count bool) int {
			n := 0
			for _, k := range keys {
				if v, _ := user.EvalFeature(ctx, k).Value.(bool); v && count {
					n++
				}
			}
			return n
		}}, nil
	}
	return evalCase(func(int) bool { return gbBool(user, FlagKey) }, closer), nil
}
