package eval

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/flagstream/flags/bucketing"
)

// Kind is the JSON type of a flag's variations.
type Kind uint8

// The kinds of variation. All variations of a flag share one kind.
const (
	KindBool Kind = iota + 1
	KindString
	KindNumber
	KindJSON // an object or an array
)

// String returns "bool", "string", "number" or "json".
func (k Kind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindString:
		return "string"
	case KindNumber:
		return "number"
	case KindJSON:
		return "json"
	}
	return "unknown"
}

// Flag is a compiled, immutable flag: everything evaluation needs is parsed
// and indexed once, when the snapshot is built. A malformed flag has Err set
// and is never evaluated; the other fields then hold what could be parsed.
//
// A Flag is three parts, so that a snapshot of many flags stays small: the
// few fields that belong to its key (Key, Salt) and to one snapshot (Err,
// Constant), an embedded *Definition compiled from its JSON alone, and an
// embedded *Resolved holding what the snapshot resolved for it. Their fields
// are promoted: f.Rules is f.Definition.Rules. The Definition is shared by
// every flag of a snapshot whose JSON is byte for byte the same (when it does
// not depend on the key) and by the next snapshot while the JSON does not
// change; flags that refer to nothing and have no problems share one empty
// Resolved.
type Flag struct {
	*Definition
	*Resolved

	Key string // the flag's key in the document

	// Version is the flag's own version, as written. It is not part of the
	// Definition, so that flags that differ only in their versions (simple
	// flags mostly do) share one.
	Version int64

	// Err is the first of Problems, nil when the flag is well formed.
	Err error

	// Constant is set when the flag serves the same thing to every valid
	// context: it is off, or on with nothing but a fixed fallthrough (kill
	// switches and finished rollouts, the most common flags). The evaluator
	// then skips the evaluation steps.
	Constant bool

	folded int8 // foldPrerequisites' answer in this snapshot: 0 not yet, 1 constant, -1 not

	needsMemo bool  // see NeedsMemo
	node      int32 // see Node
}

// Definition is the part of a compiled flag that its JSON alone determines.
// It is immutable once compiled, and shared: see Flag. What evaluation never
// reads is in its embedded *Metadata.
type Definition struct {
	Variations    []Variation    // the values the flag can serve, all of Kind
	OffVariation  int            // -1: none, the caller's default is served
	Prerequisites []Prerequisite // flags that must serve a given variation first
	Targets       []Target       // context lists served a fixed variation, checked before Rules
	Rules         []Rule         // checked in order; the first that matches serves
	Fallthrough   Serve          // served when no target or rule matches

	// AttributeSlots lists the distinct attributes the flag's rules test,
	// at most MaxSlots; Clause.Slot indexes it.
	AttributeSlots []Path

	*Metadata

	On   bool // false: the flag serves OffVariation
	Kind Kind // the JSON type of every variation

	// Tracked is set when every evaluation that serves a variation records
	// an exposure (SPEC §7): the flag has trackEvents or an armed guard.
	// Evaluations in an experiment rollout record one as well.
	Tracked bool

	constLocal   bool   // constant by its own fields; Constant may also come from constant prerequisites
	memos        bool   // some clause has a memo index (Clause.Memo)
	explicitSalt bool   // the JSON has a salt; else the salt is the key
	salt         string // the JSON's salt, when explicitSalt
	keyed        bool   // the definition depends on the key (a rollout salted with it, problems naming it): never shared across keys
}

// Metadata is what a flag's JSON says about it that evaluation does not use.
// Flags without any share one empty Metadata.
type Metadata struct {
	Description string   // free text for people
	Tags        []string // labels for people and tools
	Deprecated  bool     // the flag should no longer be evaluated (lint warns)
	TrackEvents bool     // every evaluation records an exposure (SPEC §7)
	Guard       *Guard   // the guarded rollout (SPEC §9), nil when none

	local []*Problem // problems found in the flag alone (not its graph)
}

// noMetadata is the Metadata of flags without description, tags,
// deprecation or problems. It is shared and never written.
var noMetadata = &Metadata{}

// Resolved is the part of a compiled flag that its snapshot resolves: the
// flags and segments it refers to, and its problems including those of its
// graph (prerequisite cycles, depth). It is never modified once the snapshot
// is built.
type Resolved struct {
	// PrerequisiteFlags holds, for each of Prerequisites, the flag it names
	// in this snapshot (nil when there is none), so that evaluation does not
	// look prerequisites up by key.
	PrerequisiteFlags []*Flag

	// SegmentRefs holds, for the inSegment clauses of the flag's rules, the
	// segments they name in this snapshot (nil for an unknown key), so that
	// evaluation does not look segments up by key; Clause.SegmentRefs
	// slices it.
	SegmentRefs []*Segment

	// Problems lists what is wrong with the flag, Err first.
	Problems []*Problem

	// fallibleSegments is set when one of SegmentRefs is Fallible.
	fallibleSegments bool
}

// ByCost reports whether the flag's rules may be evaluated cheapest clause
// first (Rule.Ordered). A rule's clauses are ANDed, so their order cannot
// change whether it matches, unless one of them is an error: an evaluation
// that reaches a malformed segment is one, and which clauses it reaches
// depends on their order. So a flag that names a Fallible segment is
// evaluated as written, and every other flag cheapest clause first.
func (f *Flag) ByCost() bool { return !f.Resolved.fallibleSegments }

// unresolved is the Resolved of every flag that refers to no other flag or
// segment and has no problem: most flags. It is shared and never written.
var unresolved = &Resolved{}

// Rollouts lists the flag's rollouts: its rules' in order, then its
// fallthrough's.
func (f *Flag) Rollouts() []*Rollout {
	var out []*Rollout
	for i := range f.Rules {
		if r := f.Rules[i].Serve.Rollout; r != nil {
			out = append(out, r)
		}
	}
	if f.Fallthrough.Rollout != nil {
		out = append(out, f.Fallthrough.Rollout)
	}
	return out
}

// Salt returns the bucketing salt in force: the flag's "salt", or its key.
// It is kept in the Definition only when the JSON names one, so that a flag
// costs no second string.
func (f *Flag) Salt() string {
	if f.explicitSalt {
		return f.salt
	}
	return f.Key
}

// HasMemos reports whether some of the flag's clauses are repeated (see
// Clause.Memo).
func (f *Flag) HasMemos() bool { return f.memos }

// MaxSlots is how many distinct rule attributes a flag caches per
// evaluation; attributes beyond it are looked up each time they are tested.
const MaxSlots = 8

// Variation is one value a flag can serve, pre-converted for every getter so
// that serving it never allocates.
type Variation struct {
	Value  any             // bool, string, float64, []any or map[string]any
	JSON   json.RawMessage // the value as compact JSON
	Bool   bool            // Value as a bool, for KindBool
	String string          // Value as a string, for KindString
	Number float64         // Value as a float64, for KindNumber
}

// Prerequisite requires flag Key to be on and to serve variation Variation.
type Prerequisite struct {
	Key       string // the prerequisite flag
	Variation int    // the variation index it must serve
}

// Target serves Variation to contexts whose Attribute is one of Values.
type Target struct {
	Attribute Path     // the attribute compared, "key" by default
	Values    ValueSet // the attribute values targeted
	Variation int      // the variation index served
}

// Rule serves Serve when all its Clauses match.
type Rule struct {
	Clauses     []Clause // all must match, as written
	Serve       Serve    // what a match serves
	unreachable bool     // an earlier rule tests a subset of these clauses
	byCost      []Clause // Clauses cheapest first (see Ordered); nil when that is the written order

	ID          string // the rule's id as written, "" when none; reported as Reason.RuleID
	Description string // free text for people
}

// Unreachable reports whether the rule can never be the first to match:
// an earlier rule of its flag tests a subset of its clauses, so that rule
// matches whenever this one would. The evaluator skips such rules. Rules
// with inSegment clauses are never marked: a malformed segment they reach
// makes the evaluation an error, which skipping would hide.
func (r *Rule) Unreachable() bool { return r.unreachable }

// Ordered returns the rule's clauses in the order to evaluate them: the
// cheapest first when byCost (see ByCost), else as written.
func (r *Rule) Ordered(byCost bool) []Clause {
	if byCost && r.byCost != nil {
		return r.byCost
	}
	return r.Clauses
}

// Serve is a fixed variation (Rollout nil) or a percentage rollout.
type Serve struct {
	Variation int      // valid when Rollout is nil
	Rollout   *Rollout // nil: serve Variation
}

// Rollout splits contexts between variations by bucket (SPEC §2).
type Rollout struct {
	BucketBy   Path    // the attribute hashed into a bucket, "key" by default
	Salt       string  // resolved: the rollout's salt, else the flag's, else the key
	Experiment bool    // results are reported with inExperiment
	Variations []int   // variation indexes
	Weights    []int64 // static weights, used when Schedule is empty
	Schedule   []Step  // progressive rollout, sorted by At

	at     []int64   // Schedule's instants, for bucketing.ScheduleWeights
	steps  [][]int64 // Schedule's weights
	salted bucketing.Salted
}

// Step is one point of a progressive rollout's schedule.
type Step struct {
	At      int64   // Unix milliseconds
	Weights []int64 // one per rollout variation
}

// Segment is a compiled, immutable segment.
type Segment struct {
	Key       string        // the segment's key in the document
	Version   int64         // the segment's own version, as written
	Attribute Path          // the attribute Included and Excluded are compared with, "key" by default
	Included  ValueSet      // contexts always in the segment
	Excluded  ValueSet      // contexts never in it, unless Included
	Rules     []SegmentRule // match contexts neither included nor excluded

	// SegmentRefs is Flag.SegmentRefs for the inSegment clauses of the
	// segment's rules.
	SegmentRefs []*Segment

	// Err is the first of Problems, nil when the segment is well formed.
	Err      error
	Problems []*Problem // what is wrong with the segment, Err first

	local    []*Problem
	node     int32 // see Node
	fallible uint8 // see Fallible: 0 not yet known, 1 being worked out, 2 no, 3 yes
}

// Fallible reports whether evaluating the segment can be an error in its
// snapshot: it is malformed, or one of its rules names a segment that is
// fallible. The rules of a segment that is not are evaluated cheapest
// clause first (see SegmentRule.Ordered and Flag.ByCost).
func (s *Segment) Fallible() bool { return s.fallible == 3 }

// SegmentRule puts a context in the segment when all clauses match and,
// when Weight >= 0, its bucket is below Weight.
type SegmentRule struct {
	ID       string   // the rule's id as written, "" when none
	Clauses  []Clause // all must match, as written
	Weight   int64    // -1: no weight
	BucketBy Path     // the attribute hashed when Weight >= 0
	Salt     string   // resolved: the rule's salt, else the segment key
	byCost   []Clause // Clauses cheapest first (see Ordered); nil when that is the written order
}

// cheapestFirst returns cs sorted by clauseCost, stably, or nil when they
// are in that order already. The copies share their values with cs.
func cheapestFirst(cs []Clause) []Clause {
	if slices.IsSortedFunc(cs, compareCost) {
		return nil
	}
	out := slices.Clone(cs)
	slices.SortStableFunc(out, compareCost)
	return out
}

func compareCost(a, b Clause) int { return clauseCost(&a) - clauseCost(&b) }

// clauseCost ranks what matching a clause costs: a set or number first;
// then string prefixes and the like; then values the context holds as text
// and the clause compares parsed (versions, instants); then regular
// expressions; last, segments, each a set of rules of its own.
func clauseCost(c *Clause) int {
	switch c.code {
	case opStartsWith, opEndsWith, opContains:
		return 1
	case opSemVerEqual, opSemVerLessThan, opSemVerGreaterThan, opBefore, opAfter:
		return 2
	case opMatches:
		return 3
	case opInSegment:
		return 4
	}
	return 0
}

// Ordered is Rule.Ordered for a segment rule.
func (r *SegmentRule) Ordered(byCost bool) []Clause {
	if byCost && r.byCost != nil {
		return r.byCost
	}
	return r.Clauses
}

// Op is a clause operator.
type Op string

// The operators of SPEC §1.
const (
	OpIn                 Op = "in"
	OpStartsWith         Op = "startsWith"
	OpEndsWith           Op = "endsWith"
	OpContains           Op = "contains"
	OpMatches            Op = "matches"
	OpLessThan           Op = "lessThan"
	OpLessThanOrEqual    Op = "lessThanOrEqual"
	OpGreaterThan        Op = "greaterThan"
	OpGreaterThanOrEqual Op = "greaterThanOrEqual"
	OpBefore             Op = "before"
	OpAfter              Op = "after"
	OpSemVerEqual        Op = "semVerEqual"
	OpSemVerLessThan     Op = "semVerLessThan"
	OpSemVerGreaterThan  Op = "semVerGreaterThan"
	OpInSegment          Op = "inSegment"
	OpExists             Op = "exists"
)

// Known reports whether op is one of the operators of SPEC §1.
func (op Op) Known() bool {
	switch op {
	case OpIn, OpStartsWith, OpEndsWith, OpContains, OpMatches,
		OpLessThan, OpLessThanOrEqual, OpGreaterThan, OpGreaterThanOrEqual,
		OpBefore, OpAfter, OpSemVerEqual, OpSemVerLessThan, OpSemVerGreaterThan,
		OpInSegment, OpExists:
		return true
	}
	return false
}

// MarshalText implements encoding.TextMarshaler.
func (op Op) MarshalText() ([]byte, error) { return []byte(op), nil }

// Clause is a compiled condition. Its values are pre-parsed for its operator:
// a value that cannot be parsed for it (a bad instant, a bad version) is
// dropped here because SPEC says it never matches.
type Clause struct {
	// The fields are ordered hot first: an evaluation of an attribute
	// clause reads only the first two cache lines of the struct.

	Attribute Path   // the context attribute tested; empty for inSegment and clock clauses
	Negate    bool   // invert the match
	code      opCode // Op as a small integer for the evaluator's switch
	memo      int8   // the clause's index among its flag's repeated clauses, -1: not repeated

	// AttrFP is Fingerprint of the attribute's first name, computed once
	// here rather than at every lookup.
	AttrFP uint32

	// Slot indexes the attribute in its flag's AttributeSlots: the
	// evaluator looks each attribute up once per evaluation however many
	// rules test it. -1 when the clause has no slot (segment rules,
	// inSegment, clock clauses, or more distinct attributes than MaxSlots).
	Slot int

	set     ValueSet // in
	strings []string // startsWith, endsWith, contains, inSegment

	Op     Op    // the operator as written
	Values []any // as written, JSON numbers as float64

	segFrom int32 // an inSegment clause's segments in its owner's SegmentRefs
	segTo   int32

	// The values of the other operators, rarer and slower to match
	// anyway, are behind a pointer: the shared empty noParsed when the
	// clause has none.
	*parsedValues
}

// parsedValues holds a clause's values pre-parsed for the operators that
// need more than strings or a set.
type parsedValues struct {
	patterns []pattern    // matches
	limit    *regexBudget // the patterns' owner's: limit.maxLen bounds the strings they match
	numbers  []float64    // numeric comparisons
	instants []moment     // before, after
	versions []semver     // semver ops
}

// noParsed is the parsedValues of every clause without any. It is shared
// and never written.
var noParsed = &parsedValues{}

// parsed returns the clause's own parsedValues, to add values to.
func (c *Clause) parsed() *parsedValues {
	if c.parsedValues == noParsed {
		c.parsedValues = &parsedValues{}
	}
	return c.parsedValues
}

// UsesClock reports whether the clause compares the evaluation time: a
// before or after clause written without an attribute (a time-boxed rule).
func (c *Clause) UsesClock() bool {
	return (c.Op == OpBefore || c.Op == OpAfter) && len(c.Attribute) == 0
}

// TestsAttribute reports whether the clause tests a context attribute:
// it is neither inSegment nor a clock clause (see UsesClock).
func (c *Clause) TestsAttribute() bool { return c.code != opInSegment && len(c.Attribute) > 0 }

// Segments returns the segment keys of an inSegment clause.
func (c *Clause) Segments() []string { return c.strings }

// SegmentRefs returns the segments of an inSegment clause, resolved in this
// snapshot (nil for a key the snapshot does not hold), from refs, the
// SegmentRefs of the flag or segment the clause belongs to.
func (c *Clause) SegmentRefs(refs []*Segment) []*Segment { return refs[c.segFrom:c.segTo] }

// Memo returns the clause's index among the clauses its flag repeats (the
// same attribute, operator, negation and values in several rules), below
// 64, or -1. An evaluation computes a repeated clause once.
func (c *Clause) Memo() int { return int(c.memo) }

// opCode is Op as a small integer: the evaluator switches on it for every
// clause, and an integer switch is a jump table where a string switch is a
// series of comparisons.
type opCode uint8

const (
	opUnknown opCode = iota
	opIn
	opStartsWith
	opEndsWith
	opContains
	opMatches
	opLessThan
	opLessThanOrEqual
	opGreaterThan
	opGreaterThanOrEqual
	opBefore
	opAfter
	opSemVerEqual
	opSemVerLessThan
	opSemVerGreaterThan
	opInSegment
	opExists
)

var opCodes = map[Op]opCode{
	OpIn: opIn, OpStartsWith: opStartsWith, OpEndsWith: opEndsWith, OpContains: opContains,
	OpMatches: opMatches, OpLessThan: opLessThan, OpLessThanOrEqual: opLessThanOrEqual,
	OpGreaterThan: opGreaterThan, OpGreaterThanOrEqual: opGreaterThanOrEqual, OpBefore: opBefore,
	OpAfter: opAfter, OpSemVerEqual: opSemVerEqual, OpSemVerLessThan: opSemVerLessThan,
	OpSemVerGreaterThan: opSemVerGreaterThan, OpInSegment: opInSegment, OpExists: opExists,
}

// Path is an attribute path split at its dots: "org.plan" is {"org", "plan"}.
type Path []string

// String joins the path with dots.
func (p Path) String() string { return strings.Join(p, ".") }

// Lookup finds the path in attrs. A JSON null counts as absent.
func (p Path) Lookup(attrs map[string]any) (any, bool) {
	if len(p) == 0 {
		return nil, false
	}
	v, ok := attrs[p[0]]
	return p.Descend(v, ok)
}

// Descend finishes a lookup of p whose first name was looked up already,
// giving v and ok: it follows the rest of the path through nested objects.
// A JSON null counts as absent. Contexts, which do not keep their
// attributes in a map, look paths up with it.
func (p Path) Descend(v any, ok bool) (any, bool) {
	if len(p) > 1 {
		return p.descend(v, ok)
	}
	return v, ok && v != nil
}

func (p Path) descend(v any, ok bool) (any, bool) {
	for _, name := range p[1:] {
		if !ok {
			return nil, false
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			return nil, false
		}
		v, ok = m[name]
	}
	return v, ok && v != nil
}
