package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	flags "github.com/flagstream/flags"
)

func flagstreamLib() Library {
	return Library{
		Name:    "flagstream",
		Module:  "github.com/flagstream/flags (working tree)",
		Driving: "flags.New(flags.WithDocument(doc)); Client.Bool; Client.AppendAllFlags into a reused buffer for S8",
		Setup:   flagstreamSetup,
		LoadDoc: flagstreamLoadDoc,
		Load:    flagstreamLoad,
	}
}

func fsDoc(fl, segs map[string]any) ([]byte, error) {
	if segs == nil {
		segs = map[string]any{}
	}
	return json.Marshal(map[string]any{"version": 1, "flags": fl, "segments": segs})
}

// fsBool is a bool flag, on, serving variation fallthrough (0 false, 1 true)
// to whoever no rule matches.
func fsBool(serve int, extra map[string]any) map[string]any {
	f := map[string]any{"on": true, "variations": []any{false, true}, "fallthrough": map[string]any{"variation": serve}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func fsRule(clauses ...any) map[string]any {
	return map[string]any{"clauses": clauses, "serve": map[string]any{"variation": 1}}
}

func fsClause(attr, op string, values ...string) map[string]any {
	c := map[string]any{"op": op, "values": values}
	if attr != "" {
		c["attribute"] = attr
	}
	return c
}

func fsUser() flags.Context {
	return flags.NewContext(UserKey).Set("email", UserEmail).Set("country", UserCountry).
		Set("appVersion", UserAppVersion).Build()
}

func flagstreamDoc(s Scenario) ([]byte, error) {
	switch s {
	case S1BoolOn:
		return fsDoc(map[string]any{FlagKey: fsBool(1, nil)}, nil)
	case S2Target1000Hit:
		keys := keyList(TargetKeys, targetKey)
		return fsDoc(map[string]any{FlagKey: fsBool(0, map[string]any{
			"targets": []any{map[string]any{"values": keys, "variation": 1}}})}, nil)
	case S3Rules10x2:
		var rs []any
		for i := 0; i < 10; i++ {
			r := fsRule(fsClause("email", "endsWith", EmailSuffix), fsClause("country", "in", s3Countries(i)...))
			r["id"] = fmt.Sprintf("r%d", i)
			rs = append(rs, r)
		}
		return fsDoc(map[string]any{FlagKey: fsBool(0, map[string]any{"rules": rs})}, nil)
	case S4Rollout5050:
		return fsDoc(map[string]any{FlagKey: fsBool(0, map[string]any{"fallthrough": map[string]any{"rollout": map[string]any{
			"variations": []any{map[string]any{"variation": 0, "weight": 50000}, map[string]any{"variation": 1, "weight": 50000}}}}})}, nil)
	case S5Segment10000:
		members := keyList(SegmentKeys, memberKey)
		return fsDoc(map[string]any{FlagKey: fsBool(0, map[string]any{"rules": []any{fsRule(fsClause("", "inSegment", "seg"))}})},
			map[string]any{"seg": map[string]any{"included": members, "rules": []any{map[string]any{
				"clauses": []any{fsClause("country", "in", UserCountry)}}}}})
	case S6SemVer:
		return fsDoc(map[string]any{FlagKey: fsBool(0, map[string]any{"rules": []any{
			fsRule(fsClause("appVersion", "semVerGreaterThan", SemVerFloor))}})}, nil)
	case S7Prerequisites:
		fl := map[string]any{}
		for d := 0; d < 3; d++ {
			fl[prereqKey(d)] = fsBool(1, map[string]any{"prerequisites": []any{map[string]any{"flag": prereqKey(d + 1), "variation": 1}}})
		}
		fl[prereqKey(3)] = fsBool(1, nil)
		return fsDoc(fl, nil)
	case S8AllFlags1000:
		fl := map[string]any{}
		for i := 0; i < AllFlagsCount; i++ {
			fl[allFlagKey(i)] = fsBool(0, map[string]any{"rules": []any{fsRule(fsClause("country", "in", UserCountry))}})
		}
		return fsDoc(fl, nil)
	case R1RealisticMix:
		return fsMixDoc(realisticMix())
	}
	return nil, fmt.Errorf("unknown scenario %q", s)
}

func flagstreamClient(doc []byte) (*flags.Client, error) {
	c, err := flags.New(flags.WithDocument(doc))
	if err != nil {
		return nil, err
	}
	if probs := c.Snapshot().Problems(); len(probs) > 0 {
		c.Close()
		return nil, fmt.Errorf("flagstream: document has problems: %v", probs)
	}
	return c, nil
}

func flagstreamSetup(s Scenario) (*Case, error) {
	c, err := openRendered(s, flagstreamDoc, flagstreamClient)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	user := fsUser()
	closer := func() { c.Close() }
	switch s {
	case R1RealisticMix:
		m := realisticMix()
		keys, users := fsMixFlagKeys(m), fsMixUsers(m)
		return evalCase(func(i int) bool {
			p := m.pair(i)
			return c.Bool(ctx, keys[p.Flag], users[p.User], false)
		}, closer), nil
	case S4Rollout5050:
		ctxs := rolloutContexts(func(key string) flags.Context { return flags.NewContext(key).Build() })
		return evalCase(func(i int) bool { return c.Bool(ctx, FlagKey, ctxs[i%RolloutContexts], false) }, closer), nil
	case S7Prerequisites:
		return evalCase(func(int) bool { return c.Bool(ctx, S7Flag, user, false) }, closer), nil
	case S8AllFlags1000:
		// AppendAllFlags into one reused buffer: the library's call for
		// evaluating every flag on a hot path (AllFlags allocates a fresh
		// slice each time; BenchmarkFlagstreamAllFlags measures that).
		var buf []flags.Result[any]
		return &Case{Close: closer, All: func(count bool) int {
			buf = c.AppendAllFlags(ctx, buf[:0], user)
			if !count {
				return 0
			}
			return countTrue(slices.Values(buf), isTrueResult)
		}}, nil
	}
	return evalCase(func(int) bool { return c.Bool(ctx, FlagKey, user, false) }, closer), nil
}

// isTrueResult reports whether a result's value is true.
func isTrueResult(r flags.Result[any]) bool { return r.Value == true }

func flagstreamLoadDoc(n int) ([]byte, error) { return flagstreamLoadDocOf(n, false) }

// FlagstreamDistinct is flagstream loading the load document with a
// distinct version in every flag. In the plain load document all even flags
// are byte for byte alike, and so are all odd flags; flagstream compiles
// each such group once and shares it (the other libraries' formats carry
// the key inside each flag, or copy every flag anyway), so this variant
// shows the cost when no two flags are alike, as in a real document.
func FlagstreamDistinct() Library {
	l := flagstreamLib()
	l.Name = "flagstream (every flag distinct)"
	l.LoadDoc = func(n int) ([]byte, error) { return flagstreamLoadDocOf(n, true) }
	return l
}

// flagstreamLoadDocOf is the load document; distinct gives every flag a
// version of its own and every rule a second value of its own, which serves
// no user of the checks, so that each flag with a rule is compiled (the
// simple ones, which then differ only in their versions, share one
// definition, as they do in a server's documents).
func flagstreamLoadDocOf(n int, distinct bool) ([]byte, error) {
	version := 0
	return fsDoc(loadFlags(n, func(key string, emailRule bool) any {
		f := fsBool(0, nil)
		if emailRule {
			values := []string{EmailSuffix}
			if distinct {
				values = append(values, "@"+key+".example")
			}
			f = fsBool(0, map[string]any{"rules": []any{fsRule(fsClause("email", "endsWith", values...))}})
		}
		if distinct { // 1 … n in key order
			version++
			f["version"] = version
		}
		return f
	}), nil)
}

type fsLoaded struct {
	c    *flags.Client
	user flags.Context
}

func (l fsLoaded) Bool(key string) bool { return l.c.Bool(context.Background(), key, l.user, false) }
func (l fsLoaded) Close()               { l.c.Close() }

func flagstreamLoad(doc []byte) (Loaded, error) {
	c, err := flagstreamClient(doc)
	if err != nil {
		return nil, err
	}
	return fsLoaded{c: c, user: fsUser()}, nil
}
