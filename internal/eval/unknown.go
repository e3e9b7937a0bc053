package eval

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// UnknownField is a member of a document that the format does not define:
// evaluation ignores it (SPEC §1, forward compatibility), so it is most often
// a typo — "negated" for "negate", "enabled" for "on" — that silently changes
// nothing. UnknownFields finds them; `flags lint` prints them as warnings.
type UnknownField struct {
	Kind  string // "flag" or "segment"; "" for a member of the document's top level
	Key   string // the flag or segment key; "" at the top level
	Field string // path of the object holding the member inside the flag or segment, e.g. rules[0].clauses[1]; "" for the flag or segment itself
	Name  string // the member's name as the document spells it

	// Suggestion is the known field of the same object that Name probably
	// means (a known synonym, or within two edits), or "" when none is close.
	Suggestion string
}

// Path is the member's location in the style of Problem.Path, e.g.
// flags.new-checkout.rules[0].clauses[1].negated. A name that would make the
// path ambiguous (empty, or holding dots, brackets, quotes, spaces or control
// characters) is quoted.
func (u *UnknownField) Path() string {
	name := u.Name
	if needsQuote(name) {
		name = strconv.Quote(name)
	}
	if u.Kind == "" {
		return name
	}
	return (&Problem{Kind: u.Kind, Key: u.Key, Field: u.Field}).Path() + "." + name
}

// String formats the field as "PATH: unknown field, ignored", followed by
// `; did you mean "X"?` when there is a suggestion.
func (u *UnknownField) String() string {
	return u.Path() + ": " + u.Message()
}

// Message is String without the path.
func (u *UnknownField) Message() string {
	if u.Suggestion != "" {
		return fmt.Sprintf("unknown field, ignored; did you mean %q?", u.Suggestion)
	}
	return "unknown field, ignored"
}

func needsQuote(name string) bool {
	if name == "" {
		return true
	}
	for _, r := range name {
		if r == '.' || r == '[' || r == ']' || r == '"' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

// UnknownFields lists the members of the document data that the format does
// not define, at every level the format describes: the top level, flags,
// prerequisites, targets, rules, clauses, serves, rollouts and their weighted
// variations and schedule steps, segments and their rules (variation values,
// clause values and the like are data, not checked). The list is sorted like
// Snapshot.Problems: top-level members first, then flags and segments by
// key, each in the order of the document. A member repeated in one object is
// listed once; of a repeated known member, the last one is checked, as it is
// the one evaluation uses.
//
// It fails, wrapping ErrInvalidDocument, exactly when ParseDocument does.
// A flag or segment that is not a JSON object is skipped: it is a Problem.
func UnknownFields(data []byte) ([]*UnknownField, error) {
	doc, err := ParseDocument(data)
	if err != nil {
		return nil, err
	}
	w := &unknownWalker{}
	// The top level's member names, in order; flags and segments are taken
	// from doc, which ParseDocument has already split.
	names, err := topLevelNames(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidDocument, err)
	}
	w.names(names, documentFields, "", "", "")
	a := &arena{}
	for _, kind := range []struct {
		name    string
		members map[string]json.RawMessage
		fields  *knownObject
	}{
		{"flag", doc.Flags, flagFields},
		{"segment", doc.Segments, segmentFields},
	} {
		keys := make([]string, 0, len(kind.members))
		for k := range kind.members {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, key := range keys {
			a.reset()
			tree, err := parseJSONIn(a, kind.members[key], flagLevel)
			if err != nil {
				continue
			}
			if o, ok := tree.(object); ok {
				w.object(o, kind.fields, kind.name, key, "")
			}
		}
	}
	return w.out, nil
}

// topLevelNames returns the names of the members of the document's top-level
// object, in order, without decoding their values.
func topLevelNames(data []byte) ([]string, error) {
	s := &scanner{data: data}
	s.skipSpace()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return nil, s.unexpected("looking for beginning of object")
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(data) && data[s.pos] == '}' {
		return nil, nil
	}
	var names []string
	for {
		k, err := s.objectKey(keyDecode)
		if err != nil {
			return nil, err
		}
		if err := s.skipValue(1); err != nil {
			return nil, err
		}
		names = append(names, k)
		more, err := s.next('}', "after object key:value pair")
		if err != nil {
			return nil, err
		}
		if !more {
			return names, nil
		}
	}
}

// knownObject describes one kind of object of the document: its members.
type knownObject struct {
	name   string // what the object is, e.g. "clause"
	fields map[string]knownField
}

// knownField describes one member of a knownObject and, when its value is
// itself checked, the shape of that value.
type knownField struct {
	obj   *knownObject // the value is an object of this kind
	items *knownObject // the value is an array of objects of this kind
}

// The document format (SPEC §1, and the flag fields §7 and §9 add). Each
// knownObject lists every member of one kind of object; the tests check this
// table against the compiler, both ways.
var (
	documentFields = &knownObject{name: "document", fields: map[string]knownField{
		"version": {}, "flags": {}, "segments": {}, "$schema": {},
	}}
	flagFields = &knownObject{name: "flag", fields: map[string]knownField{
		"version": {}, "on": {}, "variations": {}, "offVariation": {},
		"prerequisites": {items: prerequisiteFields},
		"targets":       {items: targetFields},
		"rules":         {items: ruleFields},
		"fallthrough":   {obj: serveFields},
		"salt":          {}, "description": {}, "tags": {}, "deprecated": {},
		"trackEvents": {}, "guard": {obj: guardFields},
	}}
	prerequisiteFields = &knownObject{name: "prerequisite", fields: map[string]knownField{
		"flag": {}, "variation": {},
	}}
	targetFields = &knownObject{name: "target", fields: map[string]knownField{
		"attribute": {}, "values": {}, "variation": {},
	}}
	ruleFields = &knownObject{name: "rule", fields: map[string]knownField{
		"id": {}, "description": {}, "clauses": {items: clauseFields}, "serve": {obj: serveFields},
	}}
	clauseFields = &knownObject{name: "clause", fields: map[string]knownField{
		"attribute": {}, "op": {}, "values": {}, "negate": {},
	}}
	serveFields = &knownObject{name: "serve", fields: map[string]knownField{
		"variation": {}, "rollout": {obj: rolloutFields},
	}}
	rolloutFields = &knownObject{name: "rollout", fields: map[string]knownField{
		"bucketBy": {}, "salt": {}, "experiment": {},
		"variations": {items: weightedVariationFields},
		"schedule":   {items: scheduleStepFields},
	}}
	weightedVariationFields = &knownObject{name: "rollout variation", fields: map[string]knownField{
		"variation": {}, "weight": {},
	}}
	scheduleStepFields = &knownObject{name: "schedule step", fields: map[string]knownField{
		"at": {}, "weights": {},
	}}
	guardFields = &knownObject{name: "guard", fields: map[string]knownField{
		"metric": {}, "better": {}, "control": {}, "treatment": {}, "alpha": {}, "minUnits": {},
		"tripped": {obj: guardTrippedFields},
	}}
	guardTrippedFields = &knownObject{name: "guard trip", fields: map[string]knownField{
		"at": {}, "pValue": {}, "units": {}, "rates": {},
	}}
	segmentFields = &knownObject{name: "segment", fields: map[string]knownField{
		"version": {}, "included": {}, "excluded": {}, "attribute": {},
		"rules": {items: segmentRuleFields},
	}}
	segmentRuleFields = &knownObject{name: "segment rule", fields: map[string]knownField{
		"id": {}, "clauses": {items: clauseFields}, "weight": {}, "bucketBy": {}, "salt": {},
	}}
)

// fieldSynonyms maps names people write for a field, from other flag
// systems or plain English, to the field they mean. A synonym is suggested
// only where its field is a member of the object.
var fieldSynonyms = map[string]string{
	"enabled":  "on",
	"enable":   "on",
	"active":   "on",
	"negated":  "negate",
	"operator": "op",
	"attr":     "attribute",
	"value":    "values",
	"variant":  "variation",
	"variants": "variations",
}

// unknownWalker collects the unknown members of a tree.
type unknownWalker struct {
	out []*UnknownField
	// visit, when set, is called with every known member checked (tests:
	// the table against a document that uses every field).
	visit func(o *knownObject, name, path string)
}

// names reports the names of one object's members that known does not
// list, each once.
func (w *unknownWalker) names(names []string, known *knownObject, kind, key, field string) {
	var reported map[string]bool
	for _, name := range names {
		if _, ok := known.fields[name]; ok {
			if w.visit != nil {
				w.visit(known, name, joinField(field, name))
			}
			continue
		}
		if reported[name] {
			continue
		}
		if reported == nil {
			reported = map[string]bool{}
		}
		reported[name] = true
		w.out = append(w.out, &UnknownField{Kind: kind, Key: key, Field: field, Name: name, Suggestion: suggestField(name, known)})
	}
}

// object checks the members of o, an object of kind known at field, and
// descends into the values the table describes.
func (w *unknownWalker) object(o object, known *knownObject, kind, key, field string) {
	names := make([]string, len(o.m))
	for i, m := range o.m {
		names[i] = m.key
	}
	w.names(names, known, kind, key, field)
	last := lastMembers(o)
	for i, m := range o.m {
		f, ok := known.fields[m.key]
		if !ok || (f.obj == nil && f.items == nil) {
			continue
		}
		if last[m.key] != i {
			continue // a repeated member: only the last one counts
		}
		path := joinField(field, m.key)
		if f.obj != nil {
			if c, ok := m.val.(object); ok {
				w.object(c, f.obj, kind, key, path)
			}
			continue
		}
		items, _ := m.val.(array)
		if items == nil {
			continue
		}
		for i, item := range items.items {
			if c, ok := item.(object); ok {
				w.object(c, f.items, kind, key, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
}

// lastMembers maps each member name of o to the index of its last
// occurrence, the one evaluation reads.
func lastMembers(o object) map[string]int {
	last := make(map[string]int, len(o.m))
	for i, m := range o.m {
		last[m.key] = i
	}
	return last
}

func joinField(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// maxSuggestBytes is the longest name suggestField considers: the longest
// field ("prerequisites") plus two edits, in runes of up to 4 bytes.
const maxSuggestBytes = 4 * (len("prerequisites") + 2)

// suggestField returns the member of known that name probably means: its
// synonym, else the closest member within two edits (case aside) and fewer
// edits than either name has characters, the first in alphabetical order on
// a tie; "" when none fits.
func suggestField(name string, known *knownObject) string {
	if len(name) > maxSuggestBytes {
		return "" // far from every field: not worth looking at a long name
	}
	lower := strings.ToLower(name)
	if s, ok := fieldSynonyms[lower]; ok {
		if _, ok := known.fields[s]; ok {
			return s
		}
	}
	best, bestDist := "", 3
	runes := utf8.RuneCountInString(name)
	for field := range known.fields {
		d := editDistance(lower, strings.ToLower(field), 2)
		n := min(runes, utf8.RuneCountInString(field))
		if d >= n || d > 2 {
			continue
		}
		if d < bestDist || (d == bestDist && field < best) {
			best, bestDist = field, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and swaps of adjacent characters),
// or limit+1 when it is more than limit.
func editDistance(a, b string, limit int) int {
	if d := utf8.RuneCountInString(a) - utf8.RuneCountInString(b); d > limit || -d > limit {
		return limit + 1 // before converting a name that may be long
	}
	ra, rb := []rune(a), []rune(b)
	if len(ra) < len(rb) {
		ra, rb = rb, ra
	}
	// Three rows of the dynamic programme: i-2, i-1 and i.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d = min(d, prev2[j-2]+1)
			}
			cur[j] = d
			rowMin = min(rowMin, d)
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(rb)], limit+1)
}
