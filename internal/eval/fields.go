package eval

import (
	"encoding/json"
	"iter"
	"strings"
)

// The typed field readers below record a problem and return the zero value
// when a field has the wrong JSON type. Absent and null fields are not
// problems unless the reader says so.

func (ps *problems) object(v any, field string) object {
	o, ok := v.(object)
	if !ok {
		ps.add(field, "got %s, want an object", jsonKind(v))
		return nil
	}
	return o
}

// objects yields the items of the array member name of o with their
// fields (such as "rules[2]"); an item that is not an object is reported
// and skipped.
func (ps *problems) objects(o object, name, parent string) iter.Seq2[string, object] {
	return func(yield func(string, object) bool) {
		for i, item := range ps.array(o, name, parent) {
			field := ps.item(ps.join(parent, name), i)
			if io := ps.object(item, field); io != nil && !yield(field, io) {
				return
			}
		}
	}
}

func (ps *problems) array(o object, name, parent string) []any {
	if a := field[array](ps, o, name, parent, "an array"); a != nil {
		return a.items
	}
	return nil
}

func (ps *problems) boolean(o object, name, parent string) bool {
	return field[bool](ps, o, name, parent, "a bool")
}

func (ps *problems) str(o object, name, parent string) string {
	return field[string](ps, o, name, parent, "a string")
}

func (ps *problems) strings(o object, name, parent string) []string {
	var out []string
	for i, v := range ps.array(o, name, parent) {
		s, ok := v.(string)
		if !ok {
			ps.add(ps.item(ps.join(parent, name), i), "got %s, want a string", jsonKind(v))
			continue
		}
		out = append(out, s)
	}
	return out
}

// scalars reads an array of strings, numbers and bools (target values,
// segment included/excluded).
func (ps *problems) scalars(o object, name, parent string) []any {
	var out []any
	for i, v := range ps.array(o, name, parent) {
		switch v.(type) {
		case string, json.Number, bool:
			out = append(out, normalize(v))
		default:
			ps.add(ps.item(ps.join(parent, name), i), "got %s, want a string, number or bool", jsonKind(v))
		}
	}
	return out
}

func (ps *problems) int64Value(v any, field string) int64 {
	return number(ps, v, field, "an integer", "is not an integer", json.Number.Int64)
}

// number reads v, a JSON number, with conv; when v is not a number or
// conv fails, it reports the problem (want, then what the number is not)
// and returns zero.
func number[T int64 | float64](ps *problems, v any, field, want, bad string, conv func(json.Number) (T, error)) T {
	n, ok := v.(json.Number)
	if !ok {
		ps.add(field, "got %s, want %s", jsonKind(v), want)
		return 0
	}
	x, err := conv(n)
	if err != nil {
		ps.add(field, "%s %s", n, bad)
		return 0
	}
	return x
}

func (ps *problems) intValue(v any, field string) int {
	i := ps.int64Value(v, field)
	if i > 1<<31 || i < -1<<31 {
		ps.add(field, "%d is out of range", i)
		return 0
	}
	return int(i)
}

func (ps *problems) nonNegInt(o object, name, parent string, def int64) int64 {
	v, ok := o.get(name)
	if !ok || v == nil {
		return def
	}
	i := ps.int64Value(v, ps.join(parent, name))
	if i < 0 {
		ps.add(ps.join(parent, name), "must be >= 0")
	}
	return i
}

// index checks a variation index against n variations (n == 0: the
// variations are themselves broken, already reported).
func (ps *problems) index(v any, field string, n int) int {
	i := ps.intValue(v, field)
	if n > 0 && (i < 0 || i >= n) {
		ps.add(field, "index %d out of range: the flag has %d variations", i, n)
		return -1
	}
	return i
}

func (ps *problems) requiredIndex(o object, name, parent string, n int) int {
	v, ok := o.get(name)
	if !ok {
		ps.add(ps.join(parent, name), "missing")
		return -1
	}
	return ps.index(v, ps.join(parent, name), n)
}

// path reads an attribute path; with optional set, absence means "key".
func (ps *problems) path(o object, name, parent string, optional bool) Path {
	v, ok := o.get(name)
	if !ok || v == nil {
		if optional {
			return keyPath
		}
		ps.add(ps.join(parent, name), "missing")
		return nil
	}
	s, ok := v.(string)
	if !ok {
		ps.add(ps.join(parent, name), "got %s, want an attribute path", jsonKind(v))
		return nil
	}
	if p, ok := ps.c.path(s); ok {
		return p
	}
	p := Path(strings.Split(s, "."))
	for _, part := range p {
		if part == "" {
			ps.add(ps.join(parent, name), "invalid attribute path %q", s)
			return nil
		}
	}
	ps.c.keepPath(s, p)
	return p
}

// field returns the member name of o as a T, or T's zero value when it is
// absent or null; a member of another JSON type is reported, saying it
// should be want.
func field[T any](ps *problems, o object, name, parent, want string) T {
	var x T
	v, ok := o.get(name)
	if !ok || v == nil {
		return x
	}
	x, ok = v.(T)
	if !ok {
		ps.add(ps.join(parent, name), "got %s, want %s", jsonKind(v), want)
	}
	return x
}
