package flags

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// ReasonOverride is the reason of a value forced with Override or
// OverrideFor. It is not part of SPEC §3: only a client that a person
// overrode produces it.
const ReasonOverride ReasonKind = "OVERRIDE"

// forced is an overriding value, pre-converted like a variation.
type forced struct {
	v    eval.Variation
	kind rules.Kind
}

// overrideSet is immutable; the client swaps a new one in on every change.
type overrideSet struct {
	all   map[string]*forced            // flag -> value for everyone
	byKey map[string]map[string]*forced // flag -> context key -> value
}

func (o *overrideSet) lookup(flag, contextKey string) *forced {
	if m := o.byKey[flag]; m != nil {
		if f := m[contextKey]; f != nil {
			return f
		}
	}
	return o.all[flag]
}

// overrides holds a client's overrides.
type overrides struct {
	mu  sync.Mutex // serializes writers
	set atomic.Pointer[overrideSet]
}

// Override forces flag key to serve value to every context, whatever the
// snapshot says, until ClearOverride or ClearOverrides. It is a QA and
// incident tool ("show me the new checkout on this instance"), not a way
// to ship configuration: overrides live in this client's memory only.
// Evaluations report reason OVERRIDE and variation -1; a typed getter of
// another type gets WRONG_TYPE, as for a variation. value may be a bool, a
// string, any Go number, or a JSON-compatible map or slice.
func (c *Client) Override(key string, value any) error {
	return c.override(key, "", false, value)
}

// OverrideFor is Override for the contexts whose key is contextKey only.
// It takes precedence over an Override of the same flag.
func (c *Client) OverrideFor(key, contextKey string, value any) error {
	return c.override(key, contextKey, true, value)
}

// ClearOverride removes every override of flag key.
func (c *Client) ClearOverride(key string) {
	c.editOverrides(func(s *overrideSet) {
		delete(s.all, key)
		delete(s.byKey, key)
	})
}

// ClearOverrides removes all overrides.
func (c *Client) ClearOverrides() {
	c.ov.mu.Lock()
	defer c.ov.mu.Unlock()
	c.ov.set.Store(nil)
}

func (c *Client) override(key, contextKey string, perContext bool, value any) error {
	f, err := newForced(value)
	if err != nil {
		return fmt.Errorf("flags: override of %q: %w", key, err)
	}
	c.editOverrides(func(s *overrideSet) {
		if !perContext {
			s.all[key] = f
			return
		}
		m := maps.Clone(s.byKey[key])
		if m == nil {
			m = map[string]*forced{}
		}
		m[contextKey] = f
		s.byKey[key] = m
	})
	return nil
}

func (c *Client) editOverrides(edit func(*overrideSet)) {
	c.ov.mu.Lock()
	defer c.ov.mu.Unlock()
	next := &overrideSet{all: map[string]*forced{}, byKey: map[string]map[string]*forced{}}
	if cur := c.ov.set.Load(); cur != nil {
		next.all = maps.Clone(cur.all)
		next.byKey = maps.Clone(cur.byKey)
	}
	edit(next)
	if len(next.all) == 0 && len(next.byKey) == 0 {
		next = nil // evaluation skips overrides entirely
	}
	c.ov.set.Store(next)
}

func newForced(value any) (*forced, error) {
	v, err := normalizeValue(value)
	if err != nil {
		return nil, err
	}
	f := &forced{v: eval.Variation{Value: v}}
	switch x := v.(type) {
	case bool:
		f.kind, f.v.Bool = rules.KindBool, x
	case string:
		f.kind, f.v.String = rules.KindString, x
	case float64:
		f.kind, f.v.Number = rules.KindNumber, x
	case []any, map[string]any:
		f.kind = rules.KindJSON
	default:
		return nil, fmt.Errorf("got %T, want a bool, string, number, slice or map", value)
	}
	if f.v.JSON, err = json.Marshal(v); err != nil {
		return nil, err
	}
	return f, nil
}
