package flagstest

import (
	"fmt"
	"time"

	"github.com/flagstream/flags/rules"
)

// ClauseBuilder builds one clause of a rule: an attribute, an operator and
// the values it is compared with (SPEC §1). Build one with the function named
// after its operator (In, StartsWith, SemVerLessThan, InSegment, Exists...)
// or with Clause for any operator, then call Negate to invert it.
type ClauseBuilder struct {
	attr   string
	op     rules.Op
	values []any
	negate bool
}

// Clause builds a clause with any operator, including one flagstream does
// not know (the flag is then malformed, which New and Set report as a
// builder mistake).
func Clause(attr string, op rules.Op, values ...any) *ClauseBuilder {
	return &ClauseBuilder{attr: attr, op: op, values: values}
}

// Negate inverts the clause. As SPEC §1 says, an absent attribute still
// does not match, except for Exists.
func (c *ClauseBuilder) Negate() *ClauseBuilder {
	c.negate = true
	return c
}

// In matches when the attribute equals one of the values: strings
// case-sensitively, numbers by value, no equality across types.
func In(attr string, values ...any) *ClauseBuilder { return Clause(attr, rules.OpIn, values...) }

// StartsWith matches a string attribute that starts with one of the values.
func StartsWith(attr string, values ...string) *ClauseBuilder {
	return Clause(attr, rules.OpStartsWith, strs(values)...)
}

// EndsWith matches a string attribute that ends with one of the values.
func EndsWith(attr string, values ...string) *ClauseBuilder {
	return Clause(attr, rules.OpEndsWith, strs(values)...)
}

// Contains matches a string attribute that contains one of the values.
func Contains(attr string, values ...string) *ClauseBuilder {
	return Clause(attr, rules.OpContains, strs(values)...)
}

// Matches matches a string attribute in which one of the RE2 patterns
// matches (anywhere in the string).
func Matches(attr string, patterns ...string) *ClauseBuilder {
	return Clause(attr, rules.OpMatches, strs(patterns)...)
}

// LessThan matches a number attribute below one of the values.
func LessThan(attr string, values ...float64) *ClauseBuilder {
	return Clause(attr, rules.OpLessThan, nums(values)...)
}

// LessThanOrEqual matches a number attribute at most one of the values.
func LessThanOrEqual(attr string, values ...float64) *ClauseBuilder {
	return Clause(attr, rules.OpLessThanOrEqual, nums(values)...)
}

// GreaterThan matches a number attribute above one of the values.
func GreaterThan(attr string, values ...float64) *ClauseBuilder {
	return Clause(attr, rules.OpGreaterThan, nums(values)...)
}

// GreaterThanOrEqual matches a number attribute at least one of the values.
func GreaterThanOrEqual(attr string, values ...float64) *ClauseBuilder {
	return Clause(attr, rules.OpGreaterThanOrEqual, nums(values)...)
}

// Before matches an instant attribute (an RFC 3339 string or Unix
// milliseconds) earlier than one of the instants. With attr "" the clause
// compares the evaluation time instead, which makes a rule that stops
// matching at an instant. Instants may be time.Time (written in RFC 3339,
// UTC), RFC 3339 strings or Unix milliseconds.
func Before(attr string, instants ...any) *ClauseBuilder {
	return Clause(attr, rules.OpBefore, times(instants)...)
}

// After is Before for later instants. With attr "" it makes a rule that
// starts matching at an instant.
func After(attr string, instants ...any) *ClauseBuilder {
	return Clause(attr, rules.OpAfter, times(instants)...)
}

// SemVerEqual matches a version attribute equal, by Semantic Versioning
// precedence, to one of the versions ("2", "2.3" and a leading "v" are
// accepted).
func SemVerEqual(attr string, versions ...string) *ClauseBuilder {
	return Clause(attr, rules.OpSemVerEqual, strs(versions)...)
}

// SemVerLessThan matches a version attribute that precedes one of the
// versions.
func SemVerLessThan(attr string, versions ...string) *ClauseBuilder {
	return Clause(attr, rules.OpSemVerLessThan, strs(versions)...)
}

// SemVerGreaterThan matches a version attribute that follows one of the
// versions.
func SemVerGreaterThan(attr string, versions ...string) *ClauseBuilder {
	return Clause(attr, rules.OpSemVerGreaterThan, strs(versions)...)
}

// InSegment matches a context that is in one of the segments. A segment
// key that the document does not define never matches.
func InSegment(segments ...string) *ClauseBuilder {
	return Clause("", rules.OpInSegment, strs(segments)...)
}

// Exists matches when the attribute is present and not null; negated, it
// matches when the attribute is absent.
func Exists(attr string) *ClauseBuilder { return Clause(attr, rules.OpExists) }

// clauseJSON is a clause as SPEC §1 writes it.
type clauseJSON struct {
	Attribute string `json:"attribute,omitempty"`
	Op        string `json:"op"`
	Values    []any  `json:"values"`
	Negate    bool   `json:"negate,omitempty"`
}

func (c *ClauseBuilder) encode() clauseJSON {
	values := c.values
	if values == nil {
		values = []any{}
	}
	attr := c.attr
	if c.op == rules.OpInSegment {
		attr = ""
	}
	return clauseJSON{Attribute: attr, Op: string(c.op), Values: values, Negate: c.negate}
}

func encodeClauses(cs []*ClauseBuilder, field string, errs *fieldErrors) []clauseJSON {
	out := make([]clauseJSON, 0, len(cs))
	for i, c := range cs {
		if c == nil {
			errs.add(fmt.Sprintf("%s[%d]", field, i), "nil clause")
			continue
		}
		cj := c.encode()
		checkValues(fmt.Sprintf("%s[%d].values", field, i), cj.Values, errs)
		out = append(out, cj)
	}
	return out
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func nums(ns []float64) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = n
	}
	return out
}

func times(ts []any) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		if tt, ok := t.(time.Time); ok {
			out[i] = tt.UTC().Format(time.RFC3339Nano)
			continue
		}
		out[i] = t
	}
	return out
}
