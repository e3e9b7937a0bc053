package flags

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"strings"

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
// attributes (the usual context) are a slice scanned in order, because
// comparing a handful of short names costs less than hashing one; more than
// smallContext are a map.
type attributes struct {
	list []attribute
	m    map[string]any
}

type attribute struct {
	name  string
	value any
}

// smallContext is the most attributes a context holds in a slice.
const smallContext = 16

func newAttributes(m map[string]any) *attributes {
	if len(m) > smallContext {
		return &attributes{m: m}
	}
	a := &attributes{list: make([]attribute, 0, len(m))}
	for name, v := range m {
		a.list = append(a.list, attribute{name, v})
	}
	return a
}

// get returns the top-level attribute name, JSON nulls included.
func (a *attributes) get(name string) (any, bool) {
	if a.m != nil {
		v, ok := a.m[name]
		return v, ok
	}
	for i := range a.list {
		if a.list[i].name == name {
			return a.list[i].value, true
		}
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
func (c *Context) lookup(p rules.Path) (any, bool) {
	if len(p) == 0 || c.attrs == nil {
		return nil, false
	}
	v, ok := c.attrs.get(p[0])
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
// float type, json.Number, nil, slices of these ([]any, []string, []int,
// []float64) and maps (map[string]any, map[string]string). A name containing
// a dot, or a value of another type, makes the built context invalid (see
// Context.Err) rather than being dropped.
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
func ContextFromMap(m map[string]any) Context {
	attrs := make(map[string]any, len(m))
	var errs []error
	for name, value := range m {
		v, err := normalizeValue(value)
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute %q: %w", name, err))
			continue
		}
		attrs[name] = v
	}
	return newContext(attrs, errors.Join(errs...))
}

// ContextFromJSON decodes a JSON object into a context. It fails only when
// data is not a JSON object; a missing key gives a context whose evaluations
// report INVALID_CONTEXT, as SPEC §6 asks of `flags eval`.
func ContextFromJSON(data []byte) (Context, error) {
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
	return c.lookup(rules.Path(strings.Split(path, ".")))
}

// MarshalJSON encodes the context's attributes, key included, as an object.
func (c Context) MarshalJSON() ([]byte, error) {
	if c.attrs == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(c.attrs.toMap())
}

// normalizeValue converts a Go value to the forms evaluation compares:
// string, bool, float64, nil, []any and map[string]any.
func normalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, nil
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int8:
		return float64(x), nil
	case int16:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint:
		return float64(x), nil
	case uint8:
		return float64(x), nil
	case uint16:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return f, nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case []int:
		out := make([]any, len(x))
		for i, n := range x {
			out[i] = float64(n)
		}
		return out, nil
	case []float64:
		out := make([]any, len(x))
		for i, n := range x {
			out[i] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalizeValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalizeValue(e)
			if err != nil {
				return nil, fmt.Errorf(".%s: %w", k, err)
			}
			out[k] = n
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %T", v)
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
