package eval

import (
	"encoding/json"
	"hash/maphash"
)

// compiler holds what one compilation (Compile, CompileFrom) shares across
// the flags and segments it compiles: the arena their parse trees come from,
// and the immutable values it hands out once for all the flags that have
// them. A document of thousands of flags repeats itself: most bool flags
// have the variations [false,true], and flags that are byte for byte the
// same (kill switches) compile to the same Definition.
type compiler struct {
	a *arena

	// variations interns variation lists by their compact JSON, the
	// elements joined with commas (what determines a Variation exactly).
	variations map[string]internedVariations
	keyBuf     []byte

	// defs interns definitions by a hash of the flag's JSON: the value is
	// the flag (in flags) that has it. A hit is confirmed by comparing the
	// bytes, so a collision only costs a compilation.
	seed  maphash.Seed
	defs  map[uint64]int32
	flags []Flag            // the snapshot's flags being compiled
	raws  []json.RawMessage // their JSON

	// paths interns attribute paths by their text: the flags that test an
	// attribute share one Path, which costs less memory and lets the
	// evaluator recognise the attribute it looked up last (AllFlags).
	paths map[string]Path
}

// keyPath is the attribute path of targets, rollouts and segments that name
// none. Shared, never modified (as every Path).
var keyPath = Path{"key"}

// path returns the interned Path for s, or ok false.
func (c *compiler) path(s string) (Path, bool) {
	if c == nil {
		return nil, false
	}
	p, ok := c.paths[s]
	return p, ok
}

// keepPath interns p, the Path for s.
func (c *compiler) keepPath(s string, p Path) {
	if c == nil {
		return
	}
	if c.paths == nil {
		c.paths = map[string]Path{}
	}
	c.paths[s] = p
}

type internedVariations struct {
	kind Kind
	list []Variation
}

func newCompiler(flags []Flag, raws []json.RawMessage) *compiler {
	return &compiler{seed: maphash.MakeSeed(), flags: flags, raws: raws}
}

// treeArena returns the arena for the parse tree of the next flag or
// segment. The compiled model never points into a parse tree (values are
// copied out of it: normalize, plain, variationJSON), so each tree is
// garbage once its flag is compiled and the next one reuses its memory: a
// document's parse costs the arena's few chunks, not a tree per flag.
func (c *compiler) treeArena() *arena {
	if c == nil {
		return &arena{}
	}
	if c.a == nil {
		c.a = &arena{}
	}
	c.a.reset()
	return c.a
}

// flag compiles flags[i], under key, sharing the definition of an earlier
// flag of this compilation with the same bytes but for the version, when
// neither depends on its key.
func (c *compiler) flag(i int, key string, raw json.RawMessage) {
	f := &c.flags[i]
	v := versionOf(raw)
	h := v.hash(c.seed, raw)
	// An invalid key is a problem of the flag, naming it: compiled alone.
	if j, ok := c.defs[h]; ok && ValidKey(key) {
		if e := &c.flags[j]; sameButVersion(c.raws[j], raw, v) {
			version := e.Version
			if v.ok {
				version = v.value
			}
			*f = Flag{Definition: e.Definition, Resolved: unresolved, Key: key, Version: version, Constant: e.constLocal}
			return
		}
	}
	compileFlag(c, f, key, raw)
	if f.keyed {
		return
	}
	if c.defs == nil {
		c.defs = make(map[uint64]int32, len(c.flags)) // most flags differ: no regrowth
	}
	if _, taken := c.defs[h]; !taken { // on a collision the first keeps the slot
		c.defs[h] = int32(i)
	}
}

// internVariations returns the interned list for arr when the compilation
// has one, and else a key to intern the list under once built ("" when the
// list cannot be interned: an element that is not a variation value).
func (c *compiler) internVariations(arr []any) (internedVariations, string, bool) {
	if c == nil {
		return internedVariations{}, "", false
	}
	b := c.keyBuf[:0]
	for i, v := range arr {
		if i > 0 {
			b = append(b, ',')
		}
		switch x := v.(type) {
		case bool:
			if x {
				b = append(b, "true"...)
			} else {
				b = append(b, "false"...)
			}
		case string:
			b = appendJSONString(b, x)
		case json.Number:
			b = append(b, x...)
		case object, array:
			b = append(b, variationJSON(v)...)
		default:
			c.keyBuf = b
			return internedVariations{}, "", false
		}
	}
	c.keyBuf = b
	if iv, ok := c.variations[string(b)]; ok {
		return iv, "", true
	}
	return internedVariations{}, string(b), false
}

// keepVariations interns a list built for key.
func (c *compiler) keepVariations(key string, kind Kind, list []Variation) {
	if c == nil || key == "" {
		return
	}
	if c.variations == nil {
		c.variations = map[string]internedVariations{}
	}
	c.variations[key] = internedVariations{kind: kind, list: list}
}
