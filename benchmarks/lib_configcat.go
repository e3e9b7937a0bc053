package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	configcat "github.com/configcat/go-sdk/v9"
)

// ConfigCat's config_v6 wire format ("full config" in a local-only
// override file). Comparators used: 0 IS ONE OF (cleartext), 8 > (semver),
// 32 ENDS WITH ANY OF (cleartext); segment comparator 0 IS IN SEGMENT,
// prerequisite comparator 0 EQUALS.
const (
	ccOneOf      = 0
	ccGreaterSem = 8
	ccEndsWith   = 32
)

func ccBoolValue(b bool) map[string]any { return map[string]any{"b": b} }

// ccBool is a bool setting serving def to whoever no rule matches, and true
// from each of its rules.
func ccBool(def bool, rules ...[]any) map[string]any {
	s := map[string]any{"t": 0, "v": ccBoolValue(def)}
	if len(rules) > 0 {
		rs := make([]any, len(rules))
		for i, conds := range rules {
			rs[i] = map[string]any{"c": conds, "s": map[string]any{"v": ccBoolValue(true)}}
		}
		s["r"] = rs
	}
	return s
}

func ccUserCond(attr string, comparator int, list ...string) map[string]any {
	return map[string]any{"u": map[string]any{"a": attr, "c": comparator, "l": list}}
}

func ccConfig(settings map[string]any, segments []any) ([]byte, error) {
	if segments == nil {
		segments = []any{}
	}
	return json.Marshal(map[string]any{
		"p": map[string]any{"u": "https://cdn-global.configcat.com", "r": 0, "s": "benchmark-salt"},
		"s": segments,
		"f": settings,
	})
}

func ccDoc(s Scenario) ([]byte, error) {
	switch s {
	case S1BoolOn:
		return ccConfig(map[string]any{FlagKey: ccBool(true)}, nil)
	case S2Target1000Hit:
		keys := keyList(TargetKeys, targetKey)
		return ccConfig(map[string]any{FlagKey: ccBool(false, []any{ccUserCond("Identifier", ccOneOf, keys...)})}, nil)
	case S3Rules10x2:
		rules := make([][]any, 10)
		for i := range rules {
			rules[i] = []any{ccUserCond("Email", ccEndsWith, EmailSuffix), ccUserCond("Country", ccOneOf, s3Countries(i)...)}
		}
		return ccConfig(map[string]any{FlagKey: ccBool(false, rules...)}, nil)
	case S4Rollout5050:
		f := ccBool(false)
		f["p"] = []any{map[string]any{"p": 50, "v": ccBoolValue(false)}, map[string]any{"p": 50, "v": ccBoolValue(true)}}
		return ccConfig(map[string]any{FlagKey: f}, nil)
	case S5Segment10000:
		// ConfigCat segments AND their conditions: "included keys OR rule" is
		// two segments tested by two targeting rules (rules are OR'ed).
		members := keyList(SegmentKeys, memberKey)
		segs := []any{
			map[string]any{"n": "members", "r": []any{map[string]any{"a": "Identifier", "c": ccOneOf, "l": members}}},
			map[string]any{"n": "fr", "r": []any{map[string]any{"a": "Country", "c": ccOneOf, "l": []string{UserCountry}}}},
		}
		inSeg := func(i int) []any { return []any{map[string]any{"s": map[string]any{"s": i, "c": 0}}} }
		return ccConfig(map[string]any{FlagKey: ccBool(false, inSeg(0), inSeg(1))}, segs)
	case S6SemVer:
		return ccConfig(map[string]any{FlagKey: ccBool(false, []any{map[string]any{"u": map[string]any{
			"a": "appVersion", "c": ccGreaterSem, "s": SemVerFloor}}})}, nil)
	case S7Prerequisites:
		fl := map[string]any{}
		for d := 0; d < 3; d++ {
			fl[prereqKey(d)] = ccBool(false, []any{map[string]any{"p": map[string]any{
				"f": prereqKey(d + 1), "c": 0, "v": ccBoolValue(true)}}})
		}
		fl[prereqKey(3)] = ccBool(true)
		return ccConfig(fl, nil)
	case S8AllFlags1000:
		fl := map[string]any{}
		for i := 0; i < AllFlagsCount; i++ {
			fl[allFlagKey(i)] = ccBool(false, []any{ccUserCond("Country", ccOneOf, UserCountry)})
		}
		return ccConfig(fl, nil)
	case R1RealisticMix:
		return nil, notApplicable("the mix's matches clauses (ConfigCat has no regular-expression comparator) and its flags whose rollouts hash two different attributes (a ConfigCat setting has one percentage attribute)")
	}
	return nil, fmt.Errorf("unknown scenario %q", s)
}

type ccLoaded struct {
	c    *configcat.Client
	dir  string
	user *configcat.UserData
}

func (l *ccLoaded) Bool(key string) bool { return l.c.GetBoolValue(key, false, l.user) }

func (l *ccLoaded) Close() {
	l.c.Close()
	os.RemoveAll(l.dir)
}

func ccUser() *configcat.UserData {
	return &configcat.UserData{Identifier: UserKey, Email: UserEmail, Country: UserCountry,
		Custom: map[string]any{"appVersion": UserAppVersion}}
}

// ccClient writes doc to a local-only override file and opens an offline
// client on it.
func ccClient(doc []byte) (*ccLoaded, error) {
	dir, err := os.MkdirTemp("", "configcat-bench-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := configcat.NewCustomClient(configcat.Config{
		SDKKey:        "local-only",
		Offline:       true,
		PollingMode:   configcat.Manual,
		LogLevel:      configcat.LogLevelNone,
		FlagOverrides: &configcat.FlagOverrides{Behavior: configcat.LocalOnly, FilePath: path},
	})
	// Manual polling: the one Refresh parses the local file (LocalOnly never
	// touches HTTP); evaluations then read the parsed config with no
	// staleness check.
	if err := c.Refresh(context.Background()); err != nil {
		c.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("configcat: %w", err)
	}
	return &ccLoaded{c: c, dir: dir, user: ccUser()}, nil
}

func configcatLib() Library {
	return Library{
		Name:    "ConfigCat",
		Module:  "github.com/configcat/go-sdk/v9 v9.0.7",
		Driving: "NewCustomClient offline, manual polling, FlagOverrides LocalOnly from a config_v6 file, one Refresh; GetBoolValue; GetAllValues for S8",
		Setup:   configcatSetup,
		LoadDoc: func(n int) ([]byte, error) {
			return ccConfig(loadFlags(n, func(_ string, emailRule bool) any {
				if emailRule {
					return ccBool(false, []any{ccUserCond("Email", ccEndsWith, EmailSuffix)})
				}
				return ccBool(false)
			}), nil)
		},
		Load: func(doc []byte) (Loaded, error) { return ccClient(doc) },
	}
}

func configcatSetup(s Scenario) (*Case, error) {
	l, err := openRendered(s, ccDoc, ccClient)
	if err != nil {
		return nil, err
	}
	c, user := l.c, l.user
	switch s {
	case S4Rollout5050:
		users := rolloutContexts(func(key string) *configcat.UserData { return &configcat.UserData{Identifier: key} })
		return evalCase(func(i int) bool { return c.GetBoolValue(FlagKey, false, users[i%RolloutContexts]) }, l.Close), nil
	case S7Prerequisites:
		return evalCase(func(int) bool { return c.GetBoolValue(S7Flag, false, user) }, l.Close), nil
	case S8AllFlags1000:
		return &Case{Close: l.Close, All: func(count bool) int {
			vs := c.GetAllValues(user)
			if !count {
				return 0
			}
			return countTrue(maps.Values(vs), func(v any) bool { return v == true })
		}}, nil
	}
	return evalCase(func(int) bool { return c.GetBoolValue(FlagKey, false, user) }, l.Close), nil
}
