package eval

import (
	"slices"
	"strconv"
)

// The parse trees the JSON parser builds (jsonscan.go), the arena their
// memory comes from, and tree, which builds them from valid text.

// object is a decoded JSON object: its members in document order. Flag
// objects have a handful of members, so a slice scanned from the end (the
// last duplicate wins, as in encoding/json, though a flag or segment with a
// duplicate is malformed: see arena.duplicate) is cheaper than a map.
// It is a pointer so that putting it in an interface does not allocate.
type object = *objNode

type objNode struct{ m []member }

// array is a decoded JSON array, a pointer for the same reason as object:
// a []any in an interface costs an allocation per array.
type array = *arrNode

type arrNode struct{ items []any }

// emptyArray is every empty array's node; trees are never written.
var emptyArray = &arrNode{items: []any{}}

type member struct {
	key string
	val any
}

// get returns the value of member name.
func (o *objNode) get(name string) (any, bool) {
	for i := len(o.m) - 1; i >= 0; i-- {
		if o.m[i].key == name {
			return o.m[i].val, true
		}
	}
	return nil, false
}

// val returns the value of member name, nil when absent.
func (o *objNode) val(name string) any {
	v, _ := o.get(name)
	return v
}

// arena hands out the memory of parse trees in chunks: compiling a document
// parses thousands of small objects and arrays, and one allocation per
// chunk instead of several per node is most of the parser's speed. Trees
// stay valid as long as they are referenced, until reset.
type arena struct {
	members []member  // chunk for objects' members
	nodes   []objNode // chunk for objects
	items   []any     // chunk for arrays' elements
	arrays  []arrNode // chunk for arrays
	mstack  []member  // members of the objects being parsed
	istack  []any     // elements of the arrays being parsed

	// dupNode is the first object built since the last reset that names a
	// member twice, and dupKey that member; keys is scratch for finding
	// it in large objects.
	dupNode *objNode
	dupKey  string
	keys    []string

	// strs holds short strings already read, boxed: attribute names,
	// operators, values repeated across a document's flags. A repeated one
	// costs a hash and a comparison instead of two allocations, and compiled
	// flags share one copy of it. A slot holds the last string that hashed
	// to it: no growing, no bound to enforce, and a document of distinct
	// values only replaces entries.
	strs *[cachedStrings]any
}

// Bounds of the arena's string cache: short strings are the ones that
// repeat.
const (
	cachedStringLen = 32
	cachedStrings   = 1024 // a power of two
)

// str returns the boxed string b holds, from the cache when it is short.
func (a *arena) str(b []byte) any {
	if a == nil || len(b) > cachedStringLen {
		return string(b)
	}
	if a.strs == nil {
		a.strs = new([cachedStrings]any)
	}
	h := uint32(2166136261) // FNV-1a
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &a.strs[h&(cachedStrings-1)]
	if s, ok := (*slot).(string); ok && s == string(b) {
		return *slot
	}
	var v any = string(b)
	*slot = v
	return v
}

// reset makes the arena hand out its current chunks' memory again; the
// trees it handed out before must no longer be used. The chunks are not
// cleared: what they still point to is the previous tree's strings, soon
// overwritten, and clearing pointers costs write barriers while the GC runs.
func (a *arena) reset() {
	a.members, a.nodes, a.items, a.arrays = a.members[:0], a.nodes[:0], a.items[:0], a.arrays[:0]
	a.dupNode, a.dupKey = nil, ""
}

// Chunks start small, so that compiling a patch of one flag stays cheap,
// and double up to arenaChunk for whole documents.
const (
	arenaFirstChunk = 16
	arenaChunk      = 512
)

func nextChunk(prev, need int) int {
	return max(need, min(arenaChunk, max(arenaFirstChunk, 2*prev)))
}

// carve copies xs to the end of chunk (a new chunk when it has no room)
// and returns the copy.
func carve[T any](chunk *[]T, xs ...T) []T {
	c := *chunk
	if cap(c)-len(c) < len(xs) {
		c = make([]T, 0, nextChunk(cap(c), len(xs)))
	}
	start := len(c)
	c = append(c, xs...)
	*chunk = c
	return c[start:len(c):len(c)]
}

func (a *arena) object(ms []member) object {
	node := &carve(&a.nodes, objNode{m: carve(&a.members, ms...)})[0]
	if len(ms) > 1 && a.dupNode == nil {
		if k, ok := a.duplicate(ms); ok {
			a.dupNode, a.dupKey = node, k
		}
	}
	return node
}

// duplicate returns a member name that ms holds twice. A flag's objects
// have a handful of members, compared pairwise (most pairs differ in
// length); a larger one (an object a JSON variation serves) is sorted.
func (a *arena) duplicate(ms []member) (string, bool) {
	if len(ms) <= 8 {
		for i := 1; i < len(ms); i++ {
			for j := range i {
				if ms[i].key == ms[j].key {
					return ms[i].key, true
				}
			}
		}
		return "", false
	}
	a.keys = a.keys[:0]
	for i := range ms {
		a.keys = append(a.keys, ms[i].key)
	}
	slices.Sort(a.keys)
	for i := 1; i < len(a.keys); i++ {
		if a.keys[i] == a.keys[i-1] {
			return a.keys[i], true
		}
	}
	return "", false
}

// pathTo returns the path of node in tree, in the style of Problem.Field
// (rules[0].clauses[1]; "" for tree itself), and whether it is there.
func pathTo(ps *problems, tree any, node *objNode, at string) (string, bool) {
	switch x := tree.(type) {
	case object:
		if x == node {
			return at, true
		}
		for _, m := range x.m {
			if p, ok := pathTo(ps, m.val, node, ps.join(at, m.key)); ok {
				return p, true
			}
		}
	case array:
		for i, v := range x.items {
			if p, ok := pathTo(ps, v, node, at+"["+strconv.Itoa(i)+"]"); ok {
				return p, true
			}
		}
	}
	return "", false
}

func (a *arena) array(vs []any) array {
	if len(vs) == 0 {
		return emptyArray
	}
	return &carve(&a.arrays, arrNode{items: carve(&a.items, vs...)})[0]
}

// plain converts a parsed tree to encoding/json's shapes (objects as
// maps), keeping json.Number.
func plain(v any) any { return convertTree(v, keepScalar) }

func keepScalar(v any) any { return v }

// convertTree converts a parsed tree to encoding/json's shapes: objects as
// maps, arrays as slices, and each scalar as leaf returns it.
func convertTree(v any, leaf func(any) any) any {
	switch x := v.(type) {
	case object:
		m := make(map[string]any, len(x.m))
		for _, e := range x.m {
			m[e.key] = convertTree(e.val, leaf)
		}
		return m
	case array:
		out := make([]any, len(x.items))
		for i, e := range x.items {
			out[i] = convertTree(e, leaf)
		}
		return out
	}
	return leaf(v)
}

// tree is value for valid text: it builds the same tree in one loop,
// holding the open objects and arrays in an array rather than on the call
// stack, and reports ok false, with pos anywhere, at anything it cannot
// read; value then reads the text again and says what is wrong.
func (s *scanner) tree(level int) (v any, ok bool) {
	var stack [MaxNesting + 1]openNode
	depth := 0 // how many are open
	var opened bool
	for {
		if v, opened, ok = s.treeValue(level+depth, &stack[depth]); !ok {
			return nil, false
		}
		if opened {
			depth++
			continue // its first value
		}
		// v was read: it is the whole value, or it goes to the object or
		// array open, and a separator or closing byte follows.
		for closed := true; closed; {
			if depth == 0 {
				return v, true
			}
			top := &stack[depth-1]
			if closed, ok = s.treeNext(top, v); !ok {
				return nil, false
			}
			if closed {
				v = top.pop(s.a)
				depth--
			}
		}
	}
}

// openNode is an object or array that tree is reading.
type openNode struct {
	object bool   // an object, not an array
	base   int    // of its members or elements, in the arena's mstack or istack
	key    string // of the member being read
}

// treeValue reads the value at pos, at the given level: a whole value, or
// the start of an object or array that is not empty, up to its first
// value (opened), which it describes in o.
func (s *scanner) treeValue(level int, o *openNode) (v any, opened, ok bool) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return nil, false, false
	}
	var err error
	switch c := s.data[s.pos]; c {
	case '{', '[':
		if level > MaxNesting {
			return nil, false, false
		}
		s.pos++
		s.skipSpace()
		if s.pos < len(s.data) && s.data[s.pos] == c+2 { // '}' is '{'+2, ']' is '['+2
			s.pos++
			if c == '{' {
				return s.a.object(nil), false, true
			}
			return emptyArray, false, true
		}
		opened = true
		o.object, o.base = c == '{', len(s.a.istack)
		if o.object {
			o.base = len(s.a.mstack)
			o.key, err = s.objectKey(keyIntern)
		}
	case '"':
		v, err = s.strValue()
	case 't', 'f', 'n':
		v, err = s.literalValue()
	default:
		v, err = s.number()
	}
	return v, opened, err == nil
}

// literalValue reads the true, false or null at pos.
func (s *scanner) literalValue() (any, error) {
	switch s.data[s.pos] {
	case 't':
		return true, s.literal("true")
	case 'f':
		return false, s.literal("false")
	}
	return nil, s.literal("null")
}

// treeNext adds v to o, the object or array open, and reads the byte after
// it: a comma (and in an object the next key), or o's closing byte
// (closed).
func (s *scanner) treeNext(o *openNode, v any) (closed, ok bool) {
	if o.object {
		s.a.mstack = append(s.a.mstack, member{o.key, v})
	} else {
		s.a.istack = append(s.a.istack, v)
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false, false
	}
	c := s.data[s.pos]
	s.pos++
	switch {
	case c == ',' && o.object:
		var err error
		o.key, err = s.objectKey(keyIntern)
		return false, err == nil
	case c == ',':
		return false, true
	}
	return true, o.object && c == '}' || !o.object && c == ']'
}

// pop builds o's object or array from the arena's stack.
func (o *openNode) pop(a *arena) any {
	if o.object {
		return popTo(&a.mstack, o.base, a.object)
	}
	return popTo(&a.istack, o.base, a.array)
}
