package benchmarks

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	gb "github.com/growthbook/growthbook-golang"
)

// gbMixOps maps the mix's ordering operators to GrowthBook's. before and
// after become $lt and $gt on strings: the mix writes every instant, in
// users and in clauses, as an RFC 3339 UTC string of one layout
// (2006-01-02T15:04:05Z), whose string order is time order.
var gbMixOps = map[string]string{
	"lessThan": "$lt", "lessThanOrEqual": "$lte", "greaterThan": "$gt", "greaterThanOrEqual": "$gte",
	"before": "$lt", "after": "$gt",
	"semVerEqual": "$veq", "semVerLessThan": "$vlt", "semVerGreaterThan": "$vgt",
}

// gbMixPayload translates the realistic mix into a GrowthBook features
// payload, the way GrowthBook's own server compiles its features:
//
//   - A flag that is off is a feature with defaultValue false and no rules.
//   - Prerequisites are a first rule with only parentConditions (each
//     parent's value must be true), gate: true, so that a failed one ends
//     the evaluation with no value (false).
//   - Targets and rules are force rules in order. A rule serving a rollout
//     is a force-true rule with coverage and hashAttribute, followed by the
//     same condition forcing false: a user the coverage leaves out gets
//     false from the rule, as in flagstream, rather than falling through.
//   - A clause is a condition on the attribute ("id" for key): in → $in;
//     startsWith, endsWith and contains → an anchored $regex of the quoted
//     values (GrowthBook has no string operators); matches → $regex;
//     numbers, instants and versions → gbMixOps. A negated clause is $not
//     of it AND $exists: flagstream does not negate a clause on an absent
//     attribute, GrowthBook's $not would.
//   - A segment is inlined where it is used, as GrowthBook inlines its
//     condition groups: included keys and excluded keys are saved groups
//     ($inGroup, $notInGroup), OR'ed with the segment's rules.
//   - A progressive rollout becomes the coverage in force at now (GrowthBook
//     has no schedules: its server changes the coverage over time).
func gbMixPayload(m *mix, now time.Time) ([]byte, error) {
	groups := map[string]any{}
	segs := map[string]map[string]any{}
	for _, s := range m.Segments {
		var parts []any
		if len(s.Included) > 0 {
			groups[s.Key+".included"] = s.Included
			parts = append(parts, map[string]any{"id": map[string]any{"$inGroup": s.Key + ".included"}})
		}
		for _, r := range s.Rules {
			cond, err := gbMixCondition(r, segs)
			if err != nil {
				return nil, fmt.Errorf("segment %s: %w", s.Key, err)
			}
			parts = append(parts, cond)
		}
		cond := map[string]any{"$or": parts}
		if len(s.Excluded) > 0 {
			groups[s.Key+".excluded"] = s.Excluded
			cond = map[string]any{"$and": []any{map[string]any{"id": map[string]any{"$notInGroup": s.Key + ".excluded"}}, cond}}
		}
		segs[s.Key] = cond
	}
	features := make(map[string]any, len(m.Flags))
	for _, f := range m.Flags {
		if !f.On {
			features[f.Key] = gbFeature(false)
			continue
		}
		var rules []any
		if len(f.Prerequisites) > 0 {
			var parents []any
			for _, p := range f.Prerequisites {
				parents = append(parents, map[string]any{"id": p, "condition": map[string]any{"value": true}, "gate": true})
			}
			rules = append(rules, map[string]any{"parentConditions": parents})
		}
		for _, t := range f.Targets {
			rules = append(rules, map[string]any{"condition": map[string]any{"id": map[string]any{"$in": t.Keys}}, "force": t.Value})
		}
		for _, r := range f.Rules {
			cond, err := gbMixCondition(r.Clauses, segs)
			if err != nil {
				return nil, fmt.Errorf("flag %s: %w", f.Key, err)
			}
			rules = append(rules, gbMixServe(cond, r.Serve, now)...)
		}
		def := f.Fallthrough.Value
		if f.Fallthrough.Rollout != nil {
			def = false
			rules = append(rules, gbMixServe(nil, f.Fallthrough, now)[0])
		}
		features[f.Key] = gbFeature(def, rules...)
	}
	return gbPayload(features, groups)
}

// gbMixServe is the rules serving s when cond (nil: always) matches.
func gbMixServe(cond map[string]any, s mixServe, now time.Time) []any {
	rule := func(force bool) map[string]any {
		r := map[string]any{"force": force}
		if cond != nil {
			r["condition"] = cond
		}
		return r
	}
	if s.Rollout == nil {
		return []any{rule(s.Value)}
	}
	covered := rule(true)
	covered["coverage"] = float64(s.Rollout.TrueWeightAt(now)) / 100000
	covered["hashAttribute"] = gbMixAttr(s.Rollout.BucketBy)
	return []any{covered, rule(false)}
}

func gbMixAttr(name string) string {
	if name == "key" {
		return "id"
	}
	return name
}

// gbMixCondition is the AND of clauses.
func gbMixCondition(cs []mixClause, segs map[string]map[string]any) (map[string]any, error) {
	all := make([]any, len(cs))
	for i, c := range cs {
		cond, err := gbMixClause(c, segs)
		if err != nil {
			return nil, fmt.Errorf("clause %d: %w", i, err)
		}
		all[i] = cond
	}
	if len(all) == 1 {
		return all[0].(map[string]any), nil
	}
	return map[string]any{"$and": all}, nil
}

// gbMixClause is the GrowthBook condition of one clause. A negated clause
// on an attribute also requires the attribute to exist: in flagstream an
// absent attribute matches no clause, negated or not (docs/DECISIONS.md).
func gbMixClause(c mixClause, segs map[string]map[string]any) (map[string]any, error) {
	if c.Op == "inSegment" {
		cond, err := gbMixSegments(c, segs)
		if err != nil {
			return nil, err
		}
		if c.Negate {
			return map[string]any{"$not": cond}, nil
		}
		return cond, nil
	}
	cond, err := gbMixAttrCondition(c)
	if err != nil {
		return nil, err
	}
	if c.Negate {
		attr := gbMixAttr(c.Attr)
		return map[string]any{"$and": []any{map[string]any{attr: map[string]any{"$exists": true}}, map[string]any{"$not": cond}}}, nil
	}
	return cond, nil
}

// gbMixSegments is the OR of the conditions of the segments an inSegment
// clause names.
func gbMixSegments(c mixClause, segs map[string]map[string]any) (map[string]any, error) {
	var or []any
	for _, v := range c.Values {
		s, _ := v.(string)
		seg, ok := segs[s]
		if !ok {
			return nil, fmt.Errorf("inSegment %v: no such segment (yet)", v)
		}
		or = append(or, seg)
	}
	return map[string]any{"$or": or}, nil
}

// gbMixAttrCondition is the condition of a clause on an attribute, not
// negated.
func gbMixAttrCondition(c mixClause) (map[string]any, error) {
	attr := gbMixAttr(c.Attr)
	switch c.Op {
	case "in":
		return gbMixOn(attr, "$in", c.Values), nil
	case "startsWith", "endsWith", "contains":
		alt, err := gbMixQuoted(c)
		if err != nil {
			return nil, err
		}
		return gbMixOn(attr, "$regex", map[string]string{"startsWith": "^" + alt, "endsWith": alt + "$", "contains": alt}[c.Op]), nil
	case "matches":
		return gbMixAnyOf(attr, "$regex", c.Values), nil
	case "before", "after":
		if err := gbMixCheckInstants(c); err != nil {
			return nil, err
		}
		return gbMixAnyOf(attr, gbMixOps[c.Op], c.Values), nil
	case "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual", "semVerEqual", "semVerLessThan", "semVerGreaterThan":
		return gbMixAnyOf(attr, gbMixOps[c.Op], c.Values), nil
	}
	return nil, fmt.Errorf("no GrowthBook condition for %q", c.Op)
}

// gbMixOn is the condition {attr: {op: v}}.
func gbMixOn(attr, op string, v any) map[string]any {
	return map[string]any{attr: map[string]any{op: v}}
}

// gbMixAnyOf is the condition that attr matches op with one of values.
func gbMixAnyOf(attr, op string, values []any) map[string]any {
	if len(values) == 1 {
		return gbMixOn(attr, op, values[0])
	}
	var or []any
	for _, v := range values {
		or = append(or, gbMixOn(attr, op, v))
	}
	return map[string]any{"$or": or}
}

// gbMixQuoted is a regular expression matching any of the clause's string
// values literally.
func gbMixQuoted(c mixClause) (string, error) {
	q := make([]string, len(c.Values))
	for i, v := range c.Values {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s value %v is not a string", c.Op, v)
		}
		q[i] = regexp.QuoteMeta(s)
	}
	return "(?:" + strings.Join(q, "|") + ")", nil
}

// gbMixCheckInstants checks that the clause's instants compare correctly
// as strings, which is how GrowthBook compares them.
func gbMixCheckInstants(c mixClause) error {
	for _, v := range c.Values {
		s, _ := v.(string)
		if t, err := time.Parse(time.RFC3339, s); err != nil || t.UTC().Format(time.RFC3339) != s {
			return fmt.Errorf("%s value %v: GrowthBook compares instants as strings: want RFC 3339 UTC (2006-01-02T15:04:05Z)", c.Op, v)
		}
	}
	return nil
}

// growthbookMixSetup evaluates the mix with a child client per user, as S4
// does for its contexts.
func growthbookMixSetup() (*Case, error) {
	m := realisticMix()
	payload, err := gbMixPayload(m, time.Now())
	if err != nil {
		return nil, err
	}
	root, _, err := gbClient(payload)
	if err != nil {
		return nil, err
	}
	kids := make([]*gb.Client, len(m.Users))
	for i, u := range m.Users {
		attrs := gb.Attributes{"id": u.Key}
		for name, v := range u.Attrs {
			attrs[name] = v
		}
		if kids[i], err = root.WithAttributes(attrs); err != nil {
			root.Close()
			return nil, fmt.Errorf("growthbook: %w", err)
		}
	}
	keys := fsMixFlagKeys(m)
	return evalCase(func(i int) bool {
		p := m.pair(i)
		return gbBool(kids[p.User], keys[p.Flag])
	}, func() { root.Close() }), nil
}
