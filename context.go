package flags

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// Context is the evaluation context: who or what a flag is evaluated for. It
// has a string key and any number of attributes (strings, numbers, bools,
// arrays and nested objects, addressed by dotted paths such as "org.plan").
//
// A Context is immutable and cheap to pass by value; build it once per
// request (or once per user) and reuse it for every evaluation. Numbers are
// held as float64, as JSON holds them.
//
// A Context never fails to build: a problem (no key, an attribute of an
// unsupported Go type) is kept in Err and every evaluation with it returns
// the caller's default with reason ERROR / INVALID_CONTEXT, so nothing the
// caller set is silently dropped.
type Context struct {
	attrs *attributes // nil for the zero Context
	key   string
	err   error
}

// attributes holds a context's top-level attributes, "key" included. A few
// attributes (the usual context) are a slice found through a small table by
// fingerprint, because a clause carries its attribute's fingerprint and
// comparing one short name costs less than hashing it; more than
// smallContext are a map.
type attributes struct {
	// The first cache line holds what every lookup reads: the list and the
	// table that finds an attribute in it (and the key's hash, which target
	// lists and segments read). A lookup then reads that line and the one
	// attribute it finds.
	list []attribute

	// slots finds an attribute by its fingerprint: 1 + its index in list at
	// fpSlot(fp), or at the next slots after it; 0 ends the search. One
	// probe most of the time, and an absent attribute (frequent: a rule on
	// an attribute some users lack) stops at the first empty slot instead
	// of comparing every name.
	slots [2 * smallContext]uint8

	// keyHash is the context key's eval.KeyHash, computed once when the
	// context is built: target lists and segments find the key by it, and
	// the SDK's event pipeline recognizes repeated exposures by it, without
	// hashing the key at every evaluation.
	keyHash uint64

	m map[string]any // more than smallContext attributes: all of them, and list is empty
}

type attribute struct {
	name  string
	value any
}

// smallContext is the most attributes a context holds in a slice.
const smallContext = 16

func newAttributes(m map[string]any) *attributes {
	var a *attributes
	// The list shares the attributes' allocation, sized by steps of four: a
	// lookup then reads neighbouring cache lines instead of a second object.
	switch n := len(m); {
	case n > smallContext:
		return &attributes{m: m}
	case n <= 4:
		x := new(struct {
			attributes
			arr [4]attribute
		})
		x.list, a = x.arr[:0], &x.attributes
	case n <= 8:
		x := new(struct {
			attributes
			arr [8]attribute
		})
		x.list, a = x.arr[:0], &x.attributes
	case n <= 12:
		x := new(struct {
			attributes
			arr [12]attribute
		})
		x.list, a = x.arr[:0], &x.attributes
	default:
		x := new(struct {
			attributes
			arr [smallContext]attribute
		})
		x.list, a = x.arr[:0], &x.attributes
	}
	for name, v := range m {
		fp := eval.Fingerprint(name)
		h := fpSlot(fp)
		for a.slots[h] != 0 {
			h = (h + 1) % uint32(len(a.slots))
		}
		a.slots[h] = uint8(len(a.list) + 1)
		a.list = append(a.list, attribute{name, v})
	}
	return a
}

// fpSlot is where attributes.slots starts looking for fingerprint fp.
func fpSlot(fp uint32) uint32 { return (fp * 0x9e3779b1) >> 27 }

// getFP returns the top-level attribute name, JSON nulls included; fp is
// the name's eval.Fingerprint.
func (a *attributes) getFP(name string, fp uint32) (any, bool) {
	for h := fpSlot(fp); ; h = (h + 1) % uint32(len(a.slots)) {
		j := int(a.slots[h]) - 1
		if j < 0 {
			break
		}
		if at := &a.list[j]; at.name == name {
			return at.value, true
		}
	}
	if a.m != nil {
		v, ok := a.m[name]
		return v, ok
	}
	return nil, false
}

// toMap returns the attributes as a new map.
func (a *attributes) toMap() map[string]any {
	if a.m != nil {
		return maps.Clone(a.m)
	}
	m := make(map[string]any, len(a.list))
	for _, at := range a.list {
		m[at.name] = at.value
	}
	return m
}

// lookup finds an attribute path. A JSON null counts as absent.
func (c *Context) lookup(p eval.Path) (any, bool) {
	if len(p) == 0 {
		return nil, false
	}
	return c.lookupFP(p, eval.Fingerprint(p[0]))
}

// lookupFP is lookup of a path whose first name's Fingerprint is fp (a
// clause's AttrFP).
func (c *Context) lookupFP(p eval.Path, fp uint32) (any, bool) {
	if len(p) == 0 || c.attrs == nil {
		return nil, false
	}
	v, ok := c.attrs.getFP(p[0], fp)
	return p.Descend(v, ok)
}

// ErrInvalidContext is wrapped by the error of a context that has no string
// key or holds an attribute that cannot be evaluated.
var ErrInvalidContext = errors.New("flags: invalid context")

// ContextBuilder builds a Context attribute by attribute. Its methods return
// the builder so calls chain; the zero value is not usable, start with
// NewContext.
type ContextBuilder struct {
	attrs map[string]any
	errs  []error
}

// NewContext starts a context with the given key:
//
//	user := flags.NewContext("user-123").
//		Set("email", "ann@corp.com").
//		Set("org", map[string]any{"id": "uni-7", "plan": "enterprise"}).
//		Build()
func NewContext(key string) *ContextBuilder {
	return &ContextBuilder{attrs: map[string]any{"key": key}}
}

// Set sets an attribute. Values may be strings, bools, any Go integer or
// float type, json.Number, nil, and slices, arrays and maps with string
// keys of any of these, nested ([]string, []int64, []bool,
// map[string]int, []map[string]any...); a time.Time (as RFC 3339 in UTC,
// what before/after compare), an encoding.TextMarshaler (its text), and
// named types whose underlying type is a string, bool or number (type Plan
// string) are converted to what they hold. A name containing a dot, or a
// value of another type ([]byte, a struct, a map with other keys), makes
// the built context invalid (see Context.Err) rather than being dropped.
func (b *ContextBuilder) Set(name string, value any) *ContextBuilder {
	if name == "" || strings.Contains(name, ".") {
		b.errs = append(b.errs, fmt.Errorf("attribute name %q: must be non-empty and contain no dot", name))
		return b
	}
	v, err := normalizeValue(value)
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("attribute %q: %w", name, err))
		return b
	}
	b.attrs[name] = v
	return b
}

// Build returns the context. The builder may be reused; later calls to Set do
// not affect contexts already built.
func (b *ContextBuilder) Build() Context {
	attrs := make(map[string]any, len(b.attrs))
	for k, v := range b.attrs {
		attrs[k] = v
	}
	return newContext(attrs, errors.Join(b.errs...))
}

// ContextFromMap builds a context from a map such as one decoded from JSON.
// The map's "key" member is the key. See ContextBuilder.Set for the value
// types accepted. Unlike Set, it keeps a top-level name that contains a dot
// (data from elsewhere is taken as it is), but no attribute path can reach
// it: "org.plan" always means attribute "plan" of object "org".
//
// A value that contains itself (a map or slice holding itself, directly or
// deeper), nests objects and arrays deeper than rules.MaxNesting counting
// the context as level 1, or expands to more than maxContextValues values
// makes the context invalid; it is never followed forever.
func ContextFromMap(m map[string]any) Context {
	attrs := make(map[string]any, len(m))
	var errs []error
	budget := maxContextValues
	for name, value := range m {
		v, err := normalize(value, 2, &budget)
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute %q: %w", name, err))
			continue
		}
		attrs[name] = v
	}
	return newContext(attrs, errors.Join(errs...))
}

// ContextFromJSON decodes a JSON object into a context. It fails only when
// data is not a JSON object, or nests objects and arrays deeper than
// rules.MaxNesting (SPEC §13; the error wraps rules.ErrTooDeep); a missing
// key gives a context whose evaluations report INVALID_CONTEXT, as SPEC §6
// asks of `flags eval`.
func ContextFromJSON(data []byte) (Context, error) {
	if at := eval.TooDeepAt(data); at >= 0 {
		return Context{}, fmt.Errorf("flags: context: byte %d: %w", at, rules.ErrTooDeep)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Context{}, fmt.Errorf("flags: context: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Context{}, errors.New("flags: context: trailing data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Context{}, fmt.Errorf("flags: context: got %s, want a JSON object", describeJSON(v))
	}
	return ContextFromMap(m), nil
}

func newContext(attrs map[string]any, err error) Context {
	c := Context{attrs: newAttributes(attrs), err: err}
	switch k := attrs["key"].(type) {
	case string:
		c.key = k
	case nil:
		c.err = errors.Join(c.err, errors.New(`no "key" attribute`))
	default:
		c.err = errors.Join(c.err, fmt.Errorf(`"key" is a %s, want a string`, describeJSON(k)))
	}
	c.attrs.keyHash = eval.KeyHash(c.key)
	if c.err != nil {
		c.err = fmt.Errorf("%w: %w", ErrInvalidContext, c.err)
	}
	return c
}

// Key returns the context's key ("" when it has none).
func (c Context) Key() string { return c.key }

// Err returns why the context cannot be evaluated, or nil. It wraps
// ErrInvalidContext.
func (c Context) Err() error {
	if c.attrs == nil && c.err == nil {
		return errZeroContext
	}
	return c.err
}

// errZeroContext is the error of the zero Context, which has no key.
var errZeroContext = fmt.Errorf("%w: the zero Context has no key (use NewContext)", ErrInvalidContext)

// Get returns the attribute at a dotted path such as "org.plan". A JSON null
// counts as absent.
func (c Context) Get(path string) (any, bool) {
	return c.lookup(eval.Path(strings.Split(path, ".")))
}

// MarshalJSON encodes the context's attributes, key included, as an object.
func (c Context) MarshalJSON() ([]byte, error) {
	if c.attrs == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(c.attrs.toMap())
}

// maxContextValues bounds the values a context may hold, counted as its
// maps and slices are copied: a map that two attributes share counts
// twice. Without it a value built with sharing (a map holding another
// twice, that one holding a third twice, 60 levels deep) would cost 2⁶⁰
// to copy, or later to encode, though it contains no cycle.
const maxContextValues = 1 << 20

// errContextTooLarge is the error of a value beyond maxContextValues.
var errContextTooLarge = fmt.Errorf("holds more than %d values (shared maps and slices count each time they appear)", maxContextValues)

// normalizeValue converts a Go value to the forms evaluation compares:
// string, bool, float64, nil, []any and map[string]any. The value is an
// attribute of a context, at nesting level 2.
func normalizeValue(v any) (any, error) {
	budget := maxContextValues
	return normalize(v, 2, &budget)
}

// normalize is normalizeValue of v at the given nesting level, spending
// budget for every value it copies. A map or slice beyond rules.MaxNesting
// fails with a *tooDeep error, which tells a cycle (the usual reason) from
// a deep value.
func normalize(v any, level int, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, errContextTooLarge
	}
	switch x := v.(type) {
	case nil, string, bool, float64: // the usual attributes first
		return x, nil
	case []any:
		return normalizeSlice(x, level, budget)
	case map[string]any:
		return normalizeMap(x, level, budget)
	case int: // Go's other number types are read by normalizeNamed
		return float64(x), nil
	case int64:
		return float64(x), nil
	}
	if out, ok := typedSlice(v); ok {
		return out, nil
	}
	return normalizeOther(v, level, budget)
}

// typedSlice copies the typed slices and maps a caller most often sets
// ([]string, []int, []float64, map[string]string) into the []any and
// map[string]any evaluation reads.
func typedSlice(v any) (any, bool) {
	switch x := v.(type) {
	case []string:
		return anySlice(x, func(s string) any { return s }), true
	case []int:
		return anySlice(x, func(n int) any { return float64(n) }), true
	case []float64:
		return anySlice(x, func(f float64) any { return f }), true
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out, true
	}
	return nil, false
}

func anySlice[T any](xs []T, conv func(T) any) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = conv(x)
	}
	return out
}

// normalizeSlice normalizes every element of x, an array at level.
func normalizeSlice(x []any, level int, budget *int) (any, error) {
	if level > rules.MaxNesting {
		return nil, newTooDeep(x)
	}
	out := make([]any, len(x))
	for i, e := range x {
		n, err := normalize(e, level+1, budget)
		if err != nil {
			return nil, wrapNested(err, x, fmt.Sprintf("[%d]", i))
		}
		out[i] = n
	}
	return out, nil
}

// normalizeMap normalizes every member of x, an object at level.
func normalizeMap(x map[string]any, level int, budget *int) (any, error) {
	if level > rules.MaxNesting {
		return nil, newTooDeep(x)
	}
	out := make(map[string]any, len(x))
	for k, e := range x {
		n, err := normalize(e, level+1, budget)
		if err != nil {
			return nil, wrapNested(err, x, "."+k)
		}
		out[k] = n
	}
	return out, nil
}

// normalizeOther converts what remains: json.Number, time.Time (to the
// RFC 3339 string before/after compare), encoding.TextMarshaler, named
// basic types, and other slices, arrays and maps (normalizeNamed).
func normalizeOther(v any, level int, budget *int) (any, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return f, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case encoding.TextMarshaler:
		text, err := x.MarshalText()
		if err != nil {
			return nil, fmt.Errorf("%T: MarshalText: %w", v, err)
		}
		return string(text), nil
	}
	return normalizeNamed(v, level, budget)
}

// normalizeNamed accepts Go's number types (but float64, int and int64,
// which normalize reads), values of named types whose underlying type is a
// string, bool or number (type Plan string; type Tier int): what they
// hold; and slices, arrays and maps with string keys of any of these
// ([]int64, []bool, map[string]int, []map[string]any...), copied as []any
// and map[string]any.
func normalizeNamed(v any, level int, budget *int) (any, error) {
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Slice, reflect.Array:
		return normalizeList(r, v, level, budget)
	case reflect.Map:
		return normalizeObject(r, v, level, budget)
	case reflect.String:
		return r.String(), nil
	case reflect.Bool:
		return r.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(r.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(r.Uint()), nil
	case reflect.Float32, reflect.Float64:
		f := r.Float()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("number %v of %T is not finite", f, v)
		}
		return f, nil
	}
	return nil, fmt.Errorf("unsupported type %T", v)
}

// normalizeList copies r, the slice or array v, as a []any of normalized
// elements.
func normalizeList(r reflect.Value, v any, level int, budget *int) (any, error) {
	if r.Type().Elem().Kind() == reflect.Uint8 {
		return nil, fmt.Errorf("unsupported type %T (bytes: set string(b) for text)", v)
	}
	if level > rules.MaxNesting {
		return nil, newTooDeep(v)
	}
	out := make([]any, r.Len())
	for i := range out {
		n, err := normalize(r.Index(i).Interface(), level+1, budget)
		if err != nil {
			return nil, wrapNested(err, v, fmt.Sprintf("[%d]", i))
		}
		out[i] = n
	}
	return out, nil
}

// normalizeObject copies r, the map v, as a map[string]any of normalized
// members; its keys must be strings.
func normalizeObject(r reflect.Value, v any, level int, budget *int) (any, error) {
	if r.Type().Key().Kind() != reflect.String {
		return nil, fmt.Errorf("unsupported type %T (a map's keys must be strings)", v)
	}
	if level > rules.MaxNesting {
		return nil, newTooDeep(v)
	}
	out := make(map[string]any, r.Len())
	for it := r.MapRange(); it.Next(); {
		k := it.Key().String()
		n, err := normalize(it.Value().Interface(), level+1, budget)
		if err != nil {
			return nil, wrapNested(err, v, "."+k)
		}
		out[k] = n
	}
	return out, nil
}

// tooDeep is the error of a map or slice nested beyond rules.MaxNesting.
// As it returns through the maps and slices above, it gathers them: when
// one of them appears twice, the value contains itself.
type tooDeep struct {
	chain []container
}

// container identifies a map (by its pointer) or a slice (by the pointer
// to its first element and its length).
type container struct {
	p uintptr
	n int
}

func containerOf(v any) container {
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Slice:
		return container{r.Pointer(), r.Len()}
	case reflect.Array: // a value: it cannot contain itself
		return container{0, arrayValue}
	}
	return container{r.Pointer(), -1}
}

// arrayValue is the container.n of an array, which cycle skips.
const arrayValue = -2

func newTooDeep(v any) error { return &tooDeep{chain: []container{containerOf(v)}} }

// cycle reports whether a container appears twice in the chain.
func (e *tooDeep) cycle() bool {
	seen := make(map[container]bool, len(e.chain))
	for _, c := range e.chain {
		if c.n == arrayValue {
			continue
		}
		if seen[c] {
			return true
		}
		seen[c] = true
	}
	return false
}

func (e *tooDeep) Error() string {
	if e.cycle() {
		return "contains itself (a cycle)"
	}
	return fmt.Sprintf("%v (counting the context as level 1)", rules.ErrTooDeep)
}

func (e *tooDeep) Unwrap() error {
	if e.cycle() {
		return nil
	}
	return rules.ErrTooDeep
}

// wrapNested is the error err of a member of the map or slice v, at step
// (".name" or "[i]") in it: a *tooDeep gathers v, which it names no step
// of (its path would be 64 steps long); other errors get the step.
func wrapNested(err error, v any, step string) error {
	var deep *tooDeep
	if errors.As(err, &deep) {
		deep.chain = append(deep.chain, containerOf(v))
		return deep
	}
	return fmt.Errorf("%s: %w", step, err)
}

func describeJSON(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// keyHash returns eval.KeyHash(c.key), computed when c was built.
func (c *Context) keyHash() uint64 {
	if c.attrs == nil { // the zero Context
		return eval.KeyHash(c.key)
	}
	return c.attrs.keyHash
}
