package benchmarks

import (
	"time"

	flags "github.com/flagstream/flags"
)

// fsMixDoc renders the realistic mix as a flagstream document: the mix is
// written in flagstream's terms, so this is a transcription.
func fsMixDoc(m *mix) ([]byte, error) {
	fl := make(map[string]any, len(m.Flags))
	for _, f := range m.Flags {
		flag := map[string]any{
			"on": f.On, "variations": []any{false, true}, "offVariation": 0,
			"fallthrough": fsMixServe(f.Fallthrough),
		}
		if len(f.Prerequisites) > 0 {
			var ps []any
			for _, p := range f.Prerequisites {
				ps = append(ps, map[string]any{"flag": p, "variation": 1})
			}
			flag["prerequisites"] = ps
		}
		if len(f.Targets) > 0 {
			var ts []any
			for _, t := range f.Targets {
				ts = append(ts, map[string]any{"values": t.Keys, "variation": variationOf(t.Value)})
			}
			flag["targets"] = ts
		}
		if len(f.Rules) > 0 {
			var rs []any
			for _, r := range f.Rules {
				rs = append(rs, map[string]any{"id": r.ID, "clauses": fsMixClauses(r.Clauses), "serve": fsMixServe(r.Serve)})
			}
			flag["rules"] = rs
		}
		fl[f.Key] = flag
	}
	segs := make(map[string]any, len(m.Segments))
	for _, s := range m.Segments {
		seg := map[string]any{}
		if len(s.Included) > 0 {
			seg["included"] = s.Included
		}
		if len(s.Excluded) > 0 {
			seg["excluded"] = s.Excluded
		}
		if len(s.Rules) > 0 {
			var rs []any
			for _, r := range s.Rules {
				rs = append(rs, map[string]any{"clauses": fsMixClauses(r)})
			}
			seg["rules"] = rs
		}
		segs[s.Key] = seg
	}
	return fsDoc(fl, segs)
}

// variationOf is the index of a bool value in the variations [false, true].
func variationOf(v bool) int {
	if v {
		return 1
	}
	return 0
}

func fsMixServe(s mixServe) map[string]any {
	if s.Rollout == nil {
		return map[string]any{"variation": variationOf(s.Value)}
	}
	ro := s.Rollout
	weights := func(trueW int) []any {
		return []any{map[string]any{"variation": 0, "weight": 100000 - trueW}, map[string]any{"variation": 1, "weight": trueW}}
	}
	rollout := map[string]any{"bucketBy": ro.BucketBy, "variations": weights(ro.TrueWeight)}
	if len(ro.Steps) > 0 {
		rollout["variations"] = weights(0) // ignored while a schedule is present, but must sum to 100000
		var steps []any
		for _, st := range ro.Steps {
			steps = append(steps, map[string]any{"at": st.At.Format(time.RFC3339), "weights": []int{100000 - st.TrueWeight, st.TrueWeight}})
		}
		rollout["schedule"] = steps
	}
	return map[string]any{"rollout": rollout}
}

func fsMixClauses(cs []mixClause) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		cl := map[string]any{"op": c.Op, "values": c.Values}
		if c.Attr != "" {
			cl["attribute"] = c.Attr
		}
		if c.Negate {
			cl["negate"] = true
		}
		out[i] = cl
	}
	return out
}

func fsMixFlagKeys(m *mix) []string {
	keys := make([]string, len(m.Flags))
	for i, f := range m.Flags {
		keys[i] = f.Key
	}
	return keys
}

func fsMixUsers(m *mix) []flags.Context {
	users := make([]flags.Context, len(m.Users))
	for i, u := range m.Users {
		b := flags.NewContext(u.Key)
		for name, v := range u.Attrs {
			b.Set(name, v)
		}
		users[i] = b.Build()
	}
	return users
}
