package server

import (
	"bytes"
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
	changed := false
	if obj == nil || len(obj.members) == 0 {
		// The first key set is laid out as a single write would (making
		// the file, the section or its first member); the others follow it.
		first := -1
		for i, c := range cs {
			if c.Value != nil {
				first = i
				break
			}
		}
		if first < 0 {
			return data, false, nil // deletes of keys the section lacks
		}
		out, _, err := spliceChange(data, cs[first], changeBudget(cs[first]))
		if err != nil {
			return nil, false, err
		}
		data, changed = out, true
		cs = append(cs[:first:first], cs[first+1:]...)
		if obj, err = sectionObject(data, kind); err != nil {
			return nil, false, err
		}
		if obj == nil || len(obj.members) == 0 {
			return nil, false, errSplice
		}
	}
	nl := "\n"
	if bytes.Contains(data, []byte("\r\n")) {
		nl = "\r\n"
	}
	byKey := make(map[string]*Change, len(cs))
	for i := range cs {
		byKey[cs[i].Key] = &cs[i]
	}
	lastOf := make(map[string]int, len(obj.members))
	for j, m := range obj.members {
		lastOf[m.key] = j
	}
	size := len(data)
	for _, c := range cs {
		size += len(c.Key) + 8 + changeBudget(c)
	}
	b := make([]byte, 0, size)
	b = append(b, data[:obj.open+1]...)
	n := 0 // members written
	for j, m := range obj.members {
		c := byKey[m.key]
		if c != nil && (c.Value == nil || lastOf[m.key] != j) {
			changed = true // deleted, or a duplicate before the written one
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, data[m.lead:m.valStart]...)
		if c == nil {
			b = append(b, data[m.valStart:m.valEnd]...)
		} else {
			indent, ok := lineIndent(data, m.keyStart)
			st := styleOf(data[m.valStart:m.valEnd], indent, ok)
			b = append(b, render(c.Value, st, indent, nl, changeBudget(*c)+m.valEnd-m.valStart)...)
			changed = true
		}
		n++
	}
	// New keys follow, laid out like the last member (or the last member
	// holding an object, when the last is a scalar).
	lastM := obj.members[len(obj.members)-1]
	like := lastM
	for k := len(obj.members) - 1; k >= 0; k-- {
		if data[obj.members[k].valStart] == '{' {
			like = obj.members[k]
			break
		}
	}
	indent, ok := lineIndent(data, lastM.keyStart)
	st := styleOf(data[like.valStart:like.valEnd], indent, ok)
	for _, c := range cs {
		if _, had := lastOf[c.Key]; had || c.Value == nil {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, data[lastM.lead:lastM.keyStart]...)
		b = append(b, quoteKey(c.Key)...)
		b = append(b, data[lastM.keyEnd:lastM.valStart]...)
		b = append(b, render(c.Value, st, indent, nl, changeBudget(c))...)
		n++
		changed = true
	}
	if n == 0 { // every member deleted: {}
		return append(b, data[obj.close:]...), changed, nil
	}
	return append(b, data[lastM.valEnd:]...), changed, nil
}
