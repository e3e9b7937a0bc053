package eval

import (
	"encoding/json"
	"fmt"
	"slices"
)

// The limits of SPEC §1 and §3.
const (
	// MaxKeyLength is the longest flag or segment key.
	MaxKeyLength = 256
	// MaxPrerequisiteDepth is the deepest prerequisite chain a flag may have.
	MaxPrerequisiteDepth = 16
	// TotalWeight is what a rollout's weights must add up to (units of 0.001 %).
	TotalWeight = 100000
)

// ValidKey reports whether key is 1-256 characters of A-Z a-z 0-9 . _ -.
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > MaxKeyLength {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// decodeTree decodes the raw JSON of a flag or segment keeping numbers as
// json.Number, so integer fields can be told from fractions. It counts
// nesting from flagLevel, where a flag or segment sits in a document: one
// that would make its document too deep is malformed wherever it comes
// from (an admin write, a patch), so it is never served.
func decodeTree(a *arena, raw json.RawMessage) (any, error) {
	if a == nil {
		a = &arena{}
	}
	return parseJSONIn(a, raw, flagLevel)
}

// compileFlag parses and compiles one flag on its own into f's key and
// definition parts; graph checks (prerequisite cycles and depth) and the
// Resolved part are done by the snapshot.
func compileFlag(c *compiler, f *Flag, key string, raw json.RawMessage) {
	// Field paths are only worth building for a flag that has problems: a
	// first pass runs without them, and a flag with problems is parsed again
	// to report them with their paths.
	ps := &problems{kind: "flag", key: key, quiet: true, c: c}
	parseFlag(ps, f, key, raw)
	if len(ps.list) > 0 {
		ps = &problems{kind: "flag", key: key, c: c}
		parseFlag(ps, f, key, raw)
	}
	ps.regex.finish()
	if len(ps.list) > 0 {
		m := *f.Metadata // never noMetadata itself: it is shared
		m.local = ps.list
		f.Metadata = &m
		f.keyed = true // problems name the key
	}
}

// topObject checks a flag's or segment's key and decodes its JSON, raw,
// which must be an object; it returns nil, the problem reported, when it is
// not.
func (ps *problems) topObject(key string, raw json.RawMessage) object {
	if !ValidKey(key) {
		ps.add("", "invalid key %q: want 1-%d characters of A-Z a-z 0-9 . _ -", key, MaxKeyLength)
	}
	a := ps.c.treeArena()
	tree, err := decodeTree(a, raw)
	ps.tree = tree // for the pattern budget (regex.go)
	if err != nil {
		ps.add("", "%w", err)
		return nil
	}
	if a.dupNode != nil {
		// RFC 8259 leaves what a duplicate means to each reader: SDKs in
		// other languages would serve another flag than this one.
		at, _ := pathTo(ps, tree, a.dupNode, "")
		ps.add(ps.join(at, a.dupKey), "named twice in one object; name each member once")
	}
	obj, ok := tree.(object)
	if !ok {
		ps.add("", "got %s, want an object", jsonKind(tree))
		return nil
	}
	return obj
}

func parseFlag(ps *problems, f *Flag, key string, raw json.RawMessage) {
	d := &Definition{OffVariation: -1, Metadata: noMetadata}
	*f = Flag{Definition: d, Resolved: unresolved, Key: key}
	obj := ps.topObject(key, raw)
	if obj == nil {
		return
	}
	ps.flagFields(obj, f, d)
	d.Kind, d.Variations = ps.variations(obj)
	n := len(d.Variations)
	if v, ok := obj.get("offVariation"); ok && v != nil {
		d.OffVariation = ps.index(v, "offVariation", n)
	}
	ps.feedback(obj, d, n)
	d.Prerequisites = ps.prerequisites(obj)
	d.Targets = ps.targets(obj, n)
	d.Rules = ps.rules(obj, f)
	if s, ok := obj.get("fallthrough"); ok {
		d.Fallthrough = ps.serve(s, "fallthrough", f)
	} else {
		ps.add("fallthrough", "missing (required)")
	}
	assignSlots(d)
	assignMemos(d)
	markUnreachable(d.Rules)
	var refs int32
	for i := range d.Rules {
		refs = numberSegmentRefs(d.Rules[i].Clauses, refs)
		d.Rules[i].byCost = cheapestFirst(d.Rules[i].Clauses)
	}
	d.constLocal = !d.On || len(d.Prerequisites) == 0 && len(d.Targets) == 0 && len(d.Rules) == 0 && d.Fallthrough.Rollout == nil
	f.Constant = d.constLocal
}

// flagFields reads a flag's scalar fields: version, on, its metadata and
// its salt.
func (ps *problems) flagFields(obj object, f *Flag, d *Definition) {
	f.Version = ps.nonNegInt(obj, "version", "", 0)
	d.On = ps.boolean(obj, "on", "")
	meta := Metadata{Description: ps.str(obj, "description", ""), Deprecated: ps.boolean(obj, "deprecated", ""),
		Tags: ps.strings(obj, "tags", "")}
	if meta.Description != "" || meta.Deprecated || meta.Tags != nil {
		own := meta // only this copy escapes: flags without metadata allocate none
		d.Metadata = &own
	}
	if s, ok := obj.get("salt"); ok && s != nil {
		d.salt = ps.str(obj, "salt", "")
		d.explicitSalt = true
	}
}

// feedback reads the fields of a flag that ask for events (SPEC §7, §9):
// trackEvents and guard; n is its number of variations.
func (ps *problems) feedback(obj object, d *Definition, n int) {
	track := ps.boolean(obj, "trackEvents", "")
	guard := ps.guard(obj, n)
	if track || guard != nil {
		meta := *d.Metadata // a copy: d.Metadata may be the shared noMetadata
		meta.TrackEvents, meta.Guard = track, guard
		d.Metadata = &meta
	}
	d.Tracked = track || guard.Armed()
}

// prerequisites reads a flag's prerequisites.
func (ps *problems) prerequisites(obj object) []Prerequisite {
	var out []Prerequisite
	for field, o := range ps.objects(obj, "prerequisites", "") {
		p := Prerequisite{Key: ps.str(o, "flag", field), Variation: -1}
		if p.Key == "" {
			ps.add(ps.join(field, "flag"), "missing flag key")
		}
		if v, ok := o.get("variation"); ok {
			p.Variation = ps.intValue(v, ps.join(field, "variation"))
			if p.Variation < 0 {
				ps.add(ps.join(field, "variation"), "must be >= 0")
			}
		} else {
			ps.add(ps.join(field, "variation"), "missing")
		}
		out = append(out, p)
	}
	return out
}

// targets reads a flag's targets; n is its number of variations.
func (ps *problems) targets(obj object, n int) []Target {
	var out []Target
	for field, o := range ps.objects(obj, "targets", "") {
		t := Target{Attribute: ps.path(o, "attribute", field, true)}
		t.Values = NewValueSet(ps.scalars(o, "values", field))
		t.Variation = ps.requiredIndex(o, "variation", field, n)
		out = append(out, t)
	}
	return out
}

// rules reads the rules of flag f.
func (ps *problems) rules(obj object, f *Flag) []Rule {
	var out []Rule
	if a, ok := obj.val("rules").(array); ok { // sized once: a Rule is large to copy while growing
		out = make([]Rule, 0, len(a.items))
	}
	for field, o := range ps.objects(obj, "rules", "") {
		r := Rule{ID: ps.str(o, "id", field), Description: ps.str(o, "description", field)}
		r.Clauses = ps.clauses(o, field)
		if s, ok := o.get("serve"); ok {
			r.Serve = ps.serve(s, ps.join(field, "serve"), f)
		} else {
			ps.add(ps.join(field, "serve"), "missing")
		}
		out = append(out, r)
	}
	return out
}

// numberSegmentRefs gives the inSegment clauses among clauses their ranges
// in their owner's SegmentRefs, starting at n, and returns the next free
// index.
func numberSegmentRefs(clauses []Clause, n int32) int32 {
	for i := range clauses {
		if c := &clauses[i]; c.code == opInSegment {
			c.segFrom = n
			n += int32(len(c.strings))
			c.segTo = n
		}
	}
	return n
}

// resolveSegmentRefs fills the SegmentRefs table of a flag's or segment's
// rules (see numberSegmentRefs) from this snapshot's segments; nil when the
// rules have no inSegment clause.
func resolveSegmentRefs(segments map[string]*Segment, clauseLists func(yield func([]Clause) bool)) []*Segment {
	var refs []*Segment
	for clauses := range clauseLists {
		for i := range clauses {
			c := &clauses[i]
			if c.code != opInSegment || c.segTo == c.segFrom {
				continue
			}
			if refs == nil || int(c.segTo) > len(refs) {
				refs = append(refs, make([]*Segment, int(c.segTo)-len(refs))...)
			}
			for k, key := range c.strings {
				refs[int(c.segFrom)+k] = segments[key]
			}
		}
	}
	return refs
}

// assignMemos numbers the clauses a flag repeats across its rules (the same
// attribute, operator, negation and scalar values): an evaluation then
// computes each once. Flags without repeated clauses are left alone.
func assignMemos(f *Definition) {
	var distinct []*Clause
	next := int8(0) // memo indexes are bits of a uint64: 0 to 63
	for i := range f.Rules {
		for j := range f.Rules[i].Clauses {
			c := &f.Rules[i].Clauses[j]
			if !memoizable(c) {
				continue
			}
			for _, d := range distinct {
				if sameClause(c, d) {
					if d.memo < 0 && next < 64 {
						d.memo, next = next, next+1
						f.memos = true
					}
					c.memo = d.memo
					break
				}
			}
			if c.memo < 0 && len(distinct) < 256 { // bounds the quadratic search on huge flags
				distinct = append(distinct, c)
			}
		}
	}
}

// maxShadowRules bounds markUnreachable's quadratic search.
const maxShadowRules = 64

// markUnreachable marks the rules an earlier rule shadows (Rule.Unreachable).
func markUnreachable(rs []Rule) {
	if len(rs) > maxShadowRules {
		return
	}
	for i := range rs {
		if hasSegmentClause(rs[i].Clauses) {
			continue
		}
		for j := 0; j < i && !rs[i].unreachable; j++ {
			rs[i].unreachable = !rs[j].unreachable && clauseSubset(rs[j].Clauses, rs[i].Clauses)
		}
	}
}

func hasSegmentClause(cs []Clause) bool {
	for i := range cs {
		if cs[i].code == opInSegment {
			return true
		}
	}
	return false
}

// clauseSubset reports whether every clause of a is also in b.
func clauseSubset(a, b []Clause) bool {
	for i := range a {
		if !memoizable(&a[i]) {
			return false
		}
		found := false
		for j := range b {
			if memoizable(&b[j]) && sameClause(&a[i], &b[j]) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// memoizable reports whether a clause's values are all scalars, the ones
// sameClause can compare.
func memoizable(c *Clause) bool {
	if c.code == opUnknown {
		return false
	}
	for _, v := range c.Values {
		switch v.(type) {
		case string, float64, bool:
		default:
			return false
		}
	}
	return true
}

func sameClause(a, b *Clause) bool {
	return a.code == b.code && a.Negate == b.Negate && slices.Equal(a.Attribute, b.Attribute) &&
		slices.Equal(a.Values, b.Values)
}

// assignSlots gives cache slots to the attributes tested by more than one
// clause of a flag's rules; a flag whose rules test each attribute once
// needs no cache at all.
func assignSlots(f *Definition) {
	uses := map[string]int{}
	for i := range f.Rules {
		for j := range f.Rules[i].Clauses {
			if c := &f.Rules[i].Clauses[j]; c.Op != OpInSegment && len(c.Attribute) > 0 {
				uses[c.Attribute.String()]++
			}
		}
	}
	repeated := false
	for _, n := range uses {
		repeated = repeated || n > 1
	}
	if !repeated {
		return
	}
	for i := range f.Rules {
		for j := range f.Rules[i].Clauses {
			c := &f.Rules[i].Clauses[j]
			if c.Op != OpInSegment && len(c.Attribute) > 0 && uses[c.Attribute.String()] >= 2 {
				c.Slot = slotFor(f, c.Attribute)
			}
		}
	}
}

// slotFor returns the index of attr in f.AttributeSlots, adding it when
// there is room, or -1.
func slotFor(f *Definition, attr Path) int {
	for k, p := range f.AttributeSlots {
		if slices.Equal(p, attr) {
			return k
		}
	}
	if len(f.AttributeSlots) < MaxSlots {
		f.AttributeSlots = append(f.AttributeSlots, attr)
		return len(f.AttributeSlots) - 1
	}
	return -1
}

// compileSegment parses and compiles one segment on its own; cycles through
// inSegment are found by the snapshot.
func compileSegment(c *compiler, key string, raw json.RawMessage) *Segment {
	ps := &problems{kind: "segment", key: key, quiet: true, c: c}
	s := parseSegment(ps, key, raw)
	if len(ps.list) > 0 {
		ps = &problems{kind: "segment", key: key, c: c}
		s = parseSegment(ps, key, raw)
	}
	ps.regex.finish()
	s.local = ps.list
	return s
}

func parseSegment(ps *problems, key string, raw json.RawMessage) *Segment {
	s := &Segment{Key: key, Attribute: keyPath}
	obj := ps.topObject(key, raw)
	if obj == nil {
		return s
	}
	s.Version = ps.nonNegInt(obj, "version", "", 0)
	s.Attribute = ps.path(obj, "attribute", "", true)
	s.Included = NewValueSet(ps.scalars(obj, "included", ""))
	s.Excluded = NewValueSet(ps.scalars(obj, "excluded", ""))
	for field, o := range ps.objects(obj, "rules", "") {
		r := SegmentRule{ID: ps.str(o, "id", field), Weight: -1, Salt: key}
		r.Clauses = ps.clauses(o, field)
		if w, ok := o.get("weight"); ok && w != nil {
			r.Weight = ps.int64Value(w, ps.join(field, "weight"))
			if r.Weight < 0 || r.Weight > TotalWeight {
				ps.add(ps.join(field, "weight"), "%d is outside 0..%d", r.Weight, TotalWeight)
			}
		}
		r.BucketBy = ps.path(o, "bucketBy", field, true)
		if v, ok := o.get("salt"); ok && v != nil {
			r.Salt = ps.str(o, "salt", field)
		}
		s.Rules = append(s.Rules, r)
	}
	var n int32
	for i := range s.Rules {
		n = numberSegmentRefs(s.Rules[i].Clauses, n)
		s.Rules[i].byCost = cheapestFirst(s.Rules[i].Clauses)
	}
	return s
}

// weight reads one weight, 0..TotalWeight. One out of range is reported,
// sets *bad (so that its sum is not reported again) and counts as 0 (no
// overflow).
func (ps *problems) weight(v any, field string, bad *bool) int64 {
	w := ps.int64Value(v, field)
	if w < 0 || w > TotalWeight {
		ps.add(field, "%d is outside 0..%d", w, TotalWeight)
		*bad = true
		return 0
	}
	return w
}

func (ps *problems) clauses(o object, parent string) []Clause {
	items := ps.array(o, "clauses", parent)
	var out []Clause
	if len(items) > 0 {
		out = make([]Clause, 0, len(items)) // sized once: a Clause is large to copy while growing
	}
	for i, item := range items {
		field := ps.item(ps.join(parent, "clauses"), i)
		co := ps.object(item, field)
		if co == nil {
			continue
		}
		c := Clause{Op: Op(ps.str(co, "op", field)), Negate: ps.boolean(co, "negate", field), Slot: -1, memo: -1,
			parsedValues: noParsed}
		c.code = opCodes[c.Op]
		if !c.Op.Known() {
			if _, ok := co.get("op"); !ok {
				ps.add(ps.join(field, "op"), "missing")
			} else {
				ps.add(ps.join(field, "op"), "unknown operator %q", string(c.Op))
			}
		}
		switch {
		case c.Op == OpInSegment:
		case (c.Op == OpBefore || c.Op == OpAfter) && co.val("attribute") == nil:
			// no attribute: the clause compares the evaluation time (Clause.UsesClock)
		default:
			c.Attribute = ps.path(co, "attribute", field, false)
			if len(c.Attribute) > 0 {
				c.AttrFP = Fingerprint(c.Attribute[0])
			}
		}
		if c.Op != OpExists {
			raw, ok := co.get("values")
			if !ok {
				ps.add(ps.join(field, "values"), "missing")
			} else if arr, isArr := raw.(array); !isArr {
				ps.add(ps.join(field, "values"), "got %s, want an array", jsonKind(raw))
			} else {
				ps.clauseValues(&c, arr.items, ps.join(field, "values"))
			}
		}
		out = append(out, c)
	}
	return out
}

// clauseValues checks each value's JSON type for the operator and pre-parses
// it. Values that have the right type but cannot be parsed (an instant or a
// version) are dropped: SPEC says they never match.
func (ps *problems) clauseValues(c *Clause, arr []any, field string) {
	var plans []plan // matches
	c.Values = make([]any, 0, len(arr))
	switch c.Op {
	case OpStartsWith, OpEndsWith, OpContains, OpInSegment:
		c.strings = make([]string, 0, len(arr))
	}
	for i, raw := range arr {
		v := normalize(raw)
		c.Values = append(c.Values, v)
		if pl, ok := ps.clauseValue(c, v, raw, ps.item(field, i)); ok {
			plans = append(plans, pl)
		}
	}
	if c.Op == OpIn {
		c.set = NewValueSet(c.Values)
	}
	if len(plans) > 0 {
		c.parsed().patterns = ps.compilePatterns(plans, field)
		c.parsed().limit = ps.regex
	}
}

// clauseValue checks one of a clause's values, v (raw as written), for its
// operator and keeps it pre-parsed; for matches it returns the pattern's
// plan instead, compiled with the clause's others.
func (ps *problems) clauseValue(c *Clause, v, raw any, vf string) (plan, bool) {
	switch c.Op {
	case OpIn:
		switch v.(type) {
		case string, float64, bool:
		default:
			ps.add(vf, "got %s, want a string, number or bool", jsonKind(raw))
		}
	case OpStartsWith, OpEndsWith, OpContains, OpInSegment:
		if s, ok := ps.stringValue(v, raw, vf, "a string"); ok {
			c.strings = append(c.strings, s)
		}
	case OpMatches:
		if s, ok := ps.stringValue(v, raw, vf, "a string"); ok {
			return ps.planValue(s, vf) // regex.go: the limits of SPEC §13
		}
	case OpLessThan, OpLessThanOrEqual, OpGreaterThan, OpGreaterThanOrEqual:
		n, ok := v.(float64)
		if !ok {
			ps.add(vf, "got %s, want a number", jsonKind(raw))
			break
		}
		c.parsed().numbers = append(c.numbers, n)
	case OpBefore, OpAfter:
		switch v.(type) {
		case string, float64:
			if m, ok := instant(v); ok {
				c.parsed().instants = append(c.instants, m)
			}
		default:
			ps.add(vf, "got %s, want an RFC 3339 string or Unix milliseconds", jsonKind(raw))
		}
	case OpSemVerEqual, OpSemVerLessThan, OpSemVerGreaterThan:
		if s, ok := ps.stringValue(v, raw, vf, "a version string"); ok {
			if sv, ok := parseSemver(s); ok {
				c.parsed().versions = append(c.versions, sv)
			}
		}
	}
	return plan{}, false
}

// stringValue returns v as a string, or reports that the value at vf is
// not one (want says what it should be).
func (ps *problems) stringValue(v, raw any, vf, want string) (string, bool) {
	s, ok := v.(string)
	if !ok {
		ps.add(vf, "got %s, want %s", jsonKind(raw), want)
	}
	return s, ok
}

// normalize turns json.Number into float64, recursively, so compiled values
// have the types evaluation contexts use.
func normalize(v any) any { return convertTree(v, numberAsFloat) }

func numberAsFloat(v any) any {
	if n, ok := v.(json.Number); ok {
		f, _ := n.Float64()
		return f
	}
	return v
}

func instantValue(v any) (int64, bool) {
	if n, ok := v.(json.Number); ok {
		i, err := n.Int64()
		return i, err == nil
	}
	if s, ok := v.(string); ok {
		t, err := ParseRFC3339(s)
		return t.UnixMilli(), err == nil
	}
	return 0, false
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case json.Number:
		return x.String()
	}
	return jsonKind(v)
}

var (
	jsonTrue  = json.RawMessage("true")
	jsonFalse = json.RawMessage("false")
)

// variationJSON encodes a decoded variation compactly. Scalars, the common
// case, are encoded directly; json.Number keeps the document's spelling.
func variationJSON(v any) json.RawMessage {
	switch x := v.(type) {
	case bool:
		if x {
			return jsonTrue
		}
		return jsonFalse
	case json.Number:
		return json.RawMessage(x)
	case string:
		return appendJSONString(make([]byte, 0, len(x)+2), x)
	}
	b, _ := json.Marshal(plain(v)) // a tree of maps, slices and scalars always encodes
	return b
}

// appendJSONString quotes s as JSON, escaping what encoding/json escapes.
func appendJSONString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			plain = false
			break
		}
	}
	if !plain {
		enc, _ := json.Marshal(s)
		return append(b, enc...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
