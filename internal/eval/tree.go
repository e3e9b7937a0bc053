package eval

// The parse trees the JSON parser builds (jsonscan.go), and the arena their
// memory comes from.

// object is a decoded JSON object: its members in document order. Flag
// objects have a handful of members, so a slice scanned from the end (the
// last duplicate wins, as in encoding/json) is cheaper than a map.
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

func (a *arena) object(ms []member) object {
	if cap(a.members)-len(a.members) < len(ms) {
		a.members = make([]member, 0, nextChunk(cap(a.members), len(ms)))
	}
	start := len(a.members)
	a.members = append(a.members, ms...)
	if len(a.nodes) == cap(a.nodes) {
		a.nodes = make([]objNode, 0, nextChunk(cap(a.nodes), 1))
	}
	a.nodes = append(a.nodes, objNode{m: a.members[start:len(a.members):len(a.members)]})
	return &a.nodes[len(a.nodes)-1]
}

func (a *arena) array(vs []any) array {
	if len(vs) == 0 {
		return emptyArray
	}
	if cap(a.items)-len(a.items) < len(vs) {
		a.items = make([]any, 0, nextChunk(cap(a.items), len(vs)))
	}
	start := len(a.items)
	a.items = append(a.items, vs...)
	if len(a.arrays) == cap(a.arrays) {
		a.arrays = make([]arrNode, 0, nextChunk(cap(a.arrays), 1))
	}
	a.arrays = append(a.arrays, arrNode{items: a.items[start:len(a.items):len(a.items)]})
	return &a.arrays[len(a.arrays)-1]
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
