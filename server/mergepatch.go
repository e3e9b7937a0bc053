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
// follow the object's last member, in the patch's order. A duplicate member
// name counts once, at its last occurrence (as the document parser reads it).
func mergePatch(target, patch []byte) ([]byte, error) {
	if len(patch) == 0 || patch[0] != '{' {
		return patch, nil // a patch that is not an object replaces the target
	}
	type member struct {
		quoted []byte // the key as written
		value  []byte
	}
	var out []member
	index := map[string]int{} // key → position in out
	if len(target) > 0 && target[0] == '{' {
		obj, err := scanObject(target, 0)
		if err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		for _, m := range obj.members {
			val := target[m.valStart:m.valEnd]
			if i, ok := index[m.key]; ok { // the last duplicate wins, at the first's place
				out[i].value = val
				continue
			}
			index[m.key] = len(out)
			out = append(out, member{target[m.keyStart:m.keyEnd], val})
		}
	}
	obj, err := scanObject(patch, 0)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	for _, m := range obj.members {
		val := patch[m.valStart:m.valEnd]
		i, ok := index[m.key]
		if bytes.Equal(val, []byte("null")) {
			if ok {
				out[i].value = nil
			}
			continue
		}
		var old []byte
		if ok {
			old = out[i].value
		}
		merged, err := mergePatch(old, val)
		if err != nil {
			return nil, err
		}
		if ok {
			out[i].value = merged
			continue
		}
		index[m.key] = len(out)
		out = append(out, member{patch[m.keyStart:m.keyEnd], merged})
	}
	n := 2
	for _, m := range out {
		n += len(m.quoted) + len(m.value) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	first := true
	for _, m := range out {
		if m.value == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, m.quoted...)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	return append(b, '}'), nil
}
