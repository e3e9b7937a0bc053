package eval

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

// DanglingReference is a key that a flag or segment names and the document
// does not hold: the flag of a prerequisite, which then fails (SPEC §3), or
// a segment of an inSegment clause, which then holds no context (SPEC §1).
// Both are valid, since the flag or segment may come later or be gone on
// purpose, but a misspelt key looks the same and silently changes what the
// flag serves: `flags lint` prints them as warnings, the server and
// flagstest log them, and the console shows them on the flag's page.
type DanglingReference struct {
	Kind    string // "flag" or "segment": what names the missing key
	Key     string // its key
	Field   string // where it names it, e.g. prerequisites[0].flag or rules[1].clauses[0].values[2]
	Missing string // "flag" or "segment": what the missing key was meant to be
	Name    string // the missing key
}

// Path is the reference's location in the document, e.g.
// flags.new-checkout.rules[1].clauses[0].values[2].
func (d *DanglingReference) Path() string {
	return (&Problem{Kind: d.Kind, Key: d.Key, Field: d.Field}).Path()
}

// Message says what is missing and what that does to evaluations.
func (d *DanglingReference) Message() string {
	if d.Missing == "flag" {
		return fmt.Sprintf("flag %q is not in the document, so this prerequisite always fails", d.Name)
	}
	return fmt.Sprintf("segment %q is not in the document, so no context is in it", d.Name)
}

// String is the path and the message.
func (d *DanglingReference) String() string { return d.Path() + ": " + d.Message() }

// DanglingReferences lists the keys that the snapshot's well-formed flags
// and segments name and it does not hold, sorted by kind, key and field.
// A malformed flag or segment is left out: its Problems say what is wrong.
func (s *Snapshot) DanglingReferences() []*DanglingReference {
	var out []*DanglingReference
	for _, f := range s.flagList {
		out = s.appendFlagDangling(out, f)
	}
	for _, g := range s.segments {
		out = s.appendSegmentDangling(out, g)
	}
	slices.SortStableFunc(out, func(a, b *DanglingReference) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// DanglingReferencesOf is DanglingReferences for one flag (kind "flag")
// or segment (kind "segment") of the snapshot, in the order it writes them:
// nil when the snapshot does not hold it.
func (s *Snapshot) DanglingReferencesOf(kind, key string) []*DanglingReference {
	if kind == "segment" {
		if g := s.segments[key]; g != nil {
			return s.appendSegmentDangling(nil, g)
		}
		return nil
	}
	if f := s.Flag(key); f != nil {
		return s.appendFlagDangling(nil, f)
	}
	return nil
}

func (s *Snapshot) appendFlagDangling(out []*DanglingReference, f *Flag) []*DanglingReference {
	if f.Err != nil {
		return out
	}
	for i, p := range f.Prerequisites {
		if s.Flag(p.Key) == nil {
			out = append(out, &DanglingReference{Kind: "flag", Key: f.Key,
				Field: "prerequisites[" + strconv.Itoa(i) + "].flag", Missing: "flag", Name: p.Key})
		}
	}
	for i := range f.Rules {
		out = s.danglingSegments(out, "flag", f.Key, "rules["+strconv.Itoa(i)+"]", f.Rules[i].Clauses)
	}
	return out
}

func (s *Snapshot) appendSegmentDangling(out []*DanglingReference, g *Segment) []*DanglingReference {
	if g.Err != nil {
		return out
	}
	for i := range g.Rules {
		out = s.danglingSegments(out, "segment", g.Key, "rules["+strconv.Itoa(i)+"]", g.Rules[i].Clauses)
	}
	return out
}

// danglingSegments appends the segments that the inSegment clauses of one
// rule name and s does not hold, in the order the rule writes them.
func (s *Snapshot) danglingSegments(out []*DanglingReference, kind, key, rule string, clauses []Clause) []*DanglingReference {
	for j := range clauses {
		c := &clauses[j]
		if c.Op != OpInSegment {
			continue
		}
		for k, v := range c.Values {
			if name, ok := v.(string); ok && s.segments[name] == nil {
				out = append(out, &DanglingReference{Kind: kind, Key: key,
					Field:   rule + ".clauses[" + strconv.Itoa(j) + "].values[" + strconv.Itoa(k) + "]",
					Missing: "segment", Name: name})
			}
		}
	}
	return out
}
