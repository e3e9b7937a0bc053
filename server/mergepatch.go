package server

import (
	"bytes"
	"fmt"
)

// mergePatch applies the JSON merge patch (RFC 7396) patch to target, both
// compact JSON texts that the document parser accepted (so their nesting is
// bounded: the recursion below is at most as deep as the patch). Unlike a
// round trip through map[string]any it keeps the target's members in their
// order, and their bytes when the patch leaves them alone: a flag patched
// with {"on": false} changes by that member only. Members the patch adds
// follow the object's last member, in the patch's order. A member the
// target names twice counts once, at its last occurrence; one the patch
// names twice in one object is an error.
func mergePatch(target, patch []byte) ([]byte, error) {
	if len(patch) == 0 || patch[0] != '{' {
		return patch, nil // a patch that is not an object replaces the target
	}
	var m merged
	if len(target) > 0 && target[0] == '{' {
		if err := m.readTarget(target); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
	}
	if err := m.applyPatch(patch); err != nil {
		return nil, err
	}
	return m.encode(), nil
}

// merged is the object mergePatch builds: its members in order, each key
// once.
type merged struct {
	out   []mergedMember
	index map[string]int // key → position in out
}

// mergedMember is one member of a merged object; a nil value is one the
// patch deleted.
type mergedMember struct {
	quoted []byte // the key as written
	value  []byte
}

// add appends a member with a key not seen yet.
func (m *merged) add(key string, quoted, value []byte) {
	if m.index == nil {
		m.index = map[string]int{}
	}
	m.index[key] = len(m.out)
	m.out = append(m.out, mergedMember{quoted, value})
}

// readTarget takes the members of the target object.
func (m *merged) readTarget(target []byte) error {
	obj, err := scanObject(target, 0)
	if err != nil {
		return err
	}
	for _, mb := range obj.members {
		val := target[mb.valStart:mb.valEnd]
		if i, ok := m.index[mb.key]; ok { // the last duplicate wins, at the first's place
			m.out[i].value = val
			continue
		}
		m.add(mb.key, target[mb.keyStart:mb.keyEnd], val)
	}
	return nil
}

// applyPatch merges each member of the patch object into its member of
// the target: null deletes it, anything else is merged into it (or added).
func (m *merged) applyPatch(patch []byte) error {
	obj, err := scanObject(patch, 0)
	if err != nil {
		return fmt.Errorf("patch: %w", err)
	}
	seen := make(map[string]bool, len(obj.members))
	for _, mb := range obj.members {
		if seen[mb.key] {
			// {"on": false, "on": true}: which one is meant is each
			// reader's guess (RFC 8259), as in a flag, where it is refused.
			return fmt.Errorf("patch: %q named twice in one object; name each member once", mb.key)
		}
		seen[mb.key] = true
		val := patch[mb.valStart:mb.valEnd]
		i, ok := m.index[mb.key]
		if bytes.Equal(val, []byte("null")) {
			if ok {
				m.out[i].value = nil
			}
			continue
		}
		var old []byte
		if ok {
			old = m.out[i].value
		}
		v, err := mergePatch(old, val)
		if err != nil {
			return err
		}
		if ok {
			m.out[i].value = v
			continue
		}
		m.add(mb.key, patch[mb.keyStart:mb.keyEnd], v)
	}
	return nil
}

// encode writes the object, compact, without its deleted members.
func (m *merged) encode() []byte {
	n := 2
	for _, mb := range m.out {
		n += len(mb.quoted) + len(mb.value) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	first := true
	for _, mb := range m.out {
		if mb.value == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, mb.quoted...)
		b = append(b, ':')
		b = append(b, mb.value...)
	}
	return append(b, '}')
}
