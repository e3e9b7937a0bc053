package flagstest

import (
	"encoding/json"
	"fmt"
	"slices"
)

// SegmentBuilder builds one segment (SPEC §1): contexts excluded, contexts
// included, and rules that put matching contexts in, optionally only a
// weighted share of them.
//
//	flagstest.Segment("beta-testers").
//		Included("user-7").
//		Excluded("user-9").
//		Rule("enterprise", flagstest.In("org.plan", "enterprise"))
type SegmentBuilder struct {
	key       string
	version   *int64
	included  []any
	excluded  []any
	attribute string
	rules     []*SegmentRuleBuilder
}

// Segment starts a segment with the given key.
func Segment(key string) *SegmentBuilder { return &SegmentBuilder{key: key} }

// Key returns the segment's key.
func (s *SegmentBuilder) Key() string { return s.key }

// Included puts the contexts whose Attribute (default "key") is one of
// values in the segment, unless they are excluded.
func (s *SegmentBuilder) Included(values ...any) *SegmentBuilder {
	s.included = append(s.included, values...)
	return s
}

// Excluded keeps the contexts whose Attribute is one of values out of the
// segment, whatever its other lists and rules say.
func (s *SegmentBuilder) Excluded(values ...any) *SegmentBuilder {
	s.excluded = append(s.excluded, values...)
	return s
}

// Attribute sets the attribute Included and Excluded compare (default
// "key").
func (s *SegmentBuilder) Attribute(attr string) *SegmentBuilder {
	s.attribute = attr
	return s
}

// Rule adds a rule that puts every context matching all the clauses in the
// segment. For a weighted rule use Rules with SegmentRule.
func (s *SegmentBuilder) Rule(id string, clauses ...*ClauseBuilder) *SegmentBuilder {
	return s.Rules(SegmentRule(id, clauses...))
}

// Rules adds rules built with SegmentRule.
func (s *SegmentBuilder) Rules(rules ...*SegmentRuleBuilder) *SegmentBuilder {
	s.rules = append(s.rules, rules...)
	return s
}

// Version sets the segment's version. Without it, TestData gives a segment
// version 1 and adds 1 every time it is set again.
func (s *SegmentBuilder) Version(n int64) *SegmentBuilder {
	s.version = &n
	return s
}

// SegmentRuleBuilder builds a segment rule: clauses that must all match
// and, with Weight, the share of matching contexts (by bucket, SPEC §2)
// that are in.
type SegmentRuleBuilder struct {
	id       string
	clauses  []*ClauseBuilder
	weight   *int64
	bucketBy string
	salt     string
}

// SegmentRule starts a segment rule.
//
//	flagstest.SegmentRule("half-of-enterprise", flagstest.In("org.plan", "enterprise")).
//		Weight(50000).BucketBy("org.id")
func SegmentRule(id string, clauses ...*ClauseBuilder) *SegmentRuleBuilder {
	return &SegmentRuleBuilder{id: id, clauses: slices.Clone(clauses)}
}

// Weight keeps only the matching contexts whose bucket is below w (in
// thousandths of a percent: 25000 is a quarter).
func (r *SegmentRuleBuilder) Weight(w int64) *SegmentRuleBuilder {
	r.weight = &w
	return r
}

// BucketBy buckets by the attribute at path attr instead of "key".
func (r *SegmentRuleBuilder) BucketBy(attr string) *SegmentRuleBuilder {
	r.bucketBy = attr
	return r
}

// Salt sets the rule's bucketing salt (default: the segment's key).
func (r *SegmentRuleBuilder) Salt(s string) *SegmentRuleBuilder {
	r.salt = s
	return r
}

type segmentRuleJSON struct {
	ID       string       `json:"id,omitempty"`
	Clauses  []clauseJSON `json:"clauses"`
	Weight   *int64       `json:"weight,omitempty"`
	BucketBy string       `json:"bucketBy,omitempty"`
	Salt     string       `json:"salt,omitempty"`
}

type segmentJSON struct {
	Version   *int64            `json:"version,omitempty"`
	Included  []any             `json:"included,omitempty"`
	Excluded  []any             `json:"excluded,omitempty"`
	Attribute string            `json:"attribute,omitempty"`
	Rules     []segmentRuleJSON `json:"rules,omitempty"`
}

func (s *SegmentBuilder) encode(version *int64, errs *fieldErrors) json.RawMessage {
	out := segmentJSON{Version: s.version, Included: s.included, Excluded: s.excluded, Attribute: s.attribute}
	if version != nil {
		out.Version = version
	}
	checkValues("included", s.included, errs)
	checkValues("excluded", s.excluded, errs)
	for i, r := range s.rules {
		field := fmt.Sprintf("rules[%d]", i)
		if r == nil {
			errs.add(field, "nil rule")
			continue
		}
		out.Rules = append(out.Rules, segmentRuleJSON{
			ID: r.id, Clauses: encodeClauses(r.clauses, field+".clauses", errs),
			Weight: r.weight, BucketBy: r.bucketBy, Salt: r.salt,
		})
	}
	return marshalBuilt(out, errs)
}
