package server

import (
	"bytes"
	"slices"
)

// spliceChanges applies changes (at most one per kind and key) to the
// document file data in place, as spliceChange does for one, and reports
// whether anything changed. Several changes are made in one pass over each
// section they touch, so a document push of many keys costs time linear in
// the file, not keys × file: every member the changes leave alone keeps its
// bytes and its place; a written key takes the place of its last occurrence
// (earlier duplicates go) in the style of the value it replaces; a deleted
// one goes with every duplicate; new keys follow the last member, laid out
// like it, in the order of changes.
func spliceChanges(data []byte, changes []Change) ([]byte, bool, error) {
	if len(changes) == 1 {
		return spliceChange(data, changes[0], changeBudget(changes[0]))
	}
	changed := false
	for _, kind := range []Kind{KindFlag, KindSegment} {
		var cs []Change
		for _, c := range changes {
			if c.Kind == kind {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			continue
		}
		out, ch, err := spliceSection(data, kind, cs)
		if err != nil {
			return nil, false, err
		}
		data, changed = out, changed || ch
	}
	return data, changed, nil
}

// sectionObject returns the object of the section ("flags" or "segments")
// of the document file data; nil when the file is empty or the section is
// absent or null.
func sectionObject(data []byte, kind Kind) (*jsonObject, error) {
	start := skipSpaceAt(data, 0)
	if start == len(data) {
		return nil, nil
	}
	top, err := scanObject(data, start)
	if err != nil {
		return nil, err
	}
	i := top.last(string(kind) + "s")
	if i < 0 || bytes.Equal(data[top.members[i].valStart:top.members[i].valEnd], []byte("null")) {
		return nil, nil
	}
	return scanObject(data, top.members[i].valStart)
}

// spliceSection applies the changes cs, all of one kind, to its section.
func spliceSection(data []byte, kind Kind, cs []Change) ([]byte, bool, error) {
	obj, err := sectionObject(data, kind)
	if err != nil {
		return nil, false, err
	}
	seeded := false
	if obj == nil || len(obj.members) == 0 {
		if data, obj, cs, err = seedSection(data, kind, cs); err != nil || obj == nil {
			return data, false, err
		}
		seeded = true
	}
	w := sectionWriter{data: data, obj: obj, nl: lineBreak(data), lastOf: make(map[string]int, len(obj.members))}
	for j, m := range obj.members {
		w.lastOf[m.key] = j
	}
	size := len(data)
	for _, c := range cs {
		size += len(c.Key) + 8 + changeBudget(c)
	}
	w.out = make([]byte, 0, size)
	w.out = append(w.out, data[:obj.open+1]...)
	w.rewriteMembers(cs)
	w.appendNewMembers(cs)
	changed := seeded || w.changed
	if w.n == 0 { // every member deleted: {}
		return append(w.out, data[obj.close:]...), changed, nil
	}
	return append(w.out, data[obj.members[len(obj.members)-1].valEnd:]...), changed, nil
}

// seedSection writes the first key cs sets into a section that is absent or
// empty, as a single write would (making the file, the section or its first
// member), so that the others have a member to be laid out like. It returns
// the data, the section's object and the changes left; the object is nil
// (and the data unchanged) when cs only deletes keys the section lacks.
func seedSection(data []byte, kind Kind, cs []Change) ([]byte, *jsonObject, []Change, error) {
	first := slices.IndexFunc(cs, func(c Change) bool { return c.Value != nil })
	if first < 0 {
		return data, nil, nil, nil
	}
	out, _, err := spliceChange(data, cs[first], changeBudget(cs[first]))
	if err != nil {
		return nil, nil, nil, err
	}
	obj, err := sectionObject(out, kind)
	if err != nil {
		return nil, nil, nil, err
	}
	if obj == nil || len(obj.members) == 0 {
		return nil, nil, nil, errSplice
	}
	return out, obj, append(cs[:first:first], cs[first+1:]...), nil
}

// sectionWriter builds a section's object anew: its members in their order,
// then the new ones.
type sectionWriter struct {
	data    []byte
	obj     *jsonObject
	nl      string
	lastOf  map[string]int // the index of each key's last member
	out     []byte
	n       int // members written
	changed bool
}

// member starts the next member: a comma unless it is the first.
func (w *sectionWriter) member() {
	if w.n > 0 {
		w.out = append(w.out, ',')
	}
	w.n++
}

// rewriteMembers copies the members the changes cs leave alone, writes the
// new value of a written key in place of its last occurrence, and drops
// deleted keys and earlier duplicates of written ones.
func (w *sectionWriter) rewriteMembers(cs []Change) {
	byKey := make(map[string]*Change, len(cs))
	for i := range cs {
		byKey[cs[i].Key] = &cs[i]
	}
	data := w.data
	for j, m := range w.obj.members {
		c := byKey[m.key]
		if c != nil && (c.Value == nil || w.lastOf[m.key] != j) {
			w.changed = true // deleted, or a duplicate before the written one
			continue
		}
		w.member()
		w.out = append(w.out, data[m.lead:m.valStart]...)
		if c == nil {
			w.out = append(w.out, data[m.valStart:m.valEnd]...)
			continue
		}
		indent, ok := lineIndent(data, m.keyStart)
		st := styleOf(data[m.valStart:m.valEnd], indent, ok)
		w.out = append(w.out, render(c.Value, st, indent, w.nl, changeBudget(*c)+m.valEnd-m.valStart)...)
		w.changed = true
	}
}

// appendNewMembers writes the keys cs sets that the section lacks after
// its last member, in the order of cs.
func (w *sectionWriter) appendNewMembers(cs []Change) {
	lastM, indent, st := newMemberLayout(w.data, w.obj)
	for _, c := range cs {
		if _, had := w.lastOf[c.Key]; had || c.Value == nil {
			continue
		}
		w.member()
		w.out = append(w.out, memberHead(w.data, lastM, quoteKey(c.Key))...)
		w.out = append(w.out, render(c.Value, st, indent, w.nl, changeBudget(c))...)
		w.changed = true
	}
}
