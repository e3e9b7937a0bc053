package flagstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// FlagBuilder builds one flag with every field of the document format
// (SPEC §1). Its methods change the builder and return it, so calls chain:
//
//	flagstest.Flag("new-checkout").
//		Variations(false, true).
//		OffVariation(0).
//		Target(1, "vip-42").
//		Rule("staff", flagstest.Variation(1), flagstest.EndsWith("email", "@corp.com")).
//		Fallthrough(flagstest.Rollout().Weight(0, 75000).Weight(1, 25000))
//
// A new builder is on (unlike a document, where "on" defaults to false: a
// test that writes rules wants them to run) and has no variations and no
// fallthrough; Bool, String, Int, Float and JSON start one with both. A
// builder is read when it is handed to New, Set or Document; changing it
// afterwards changes nothing already built.
type FlagBuilder struct {
	key          string
	version      *int64
	on           bool
	variations   []any
	offVariation *int
	prereqs      []prerequisiteJSON
	targets      []target
	rules        []rule
	fallthru     Serve
	salt         *string
	description  string
	tags         []string
	deprecated   bool
	trackEvents  bool
	jsonOnly     bool     // built by JSON: every variation must be an object or array
	mistakes     []string // misuses of the builder, reported when it is built
}

type target struct {
	attr      string
	values    []any
	variation int
}

type rule struct {
	id, description string
	serve           Serve
	clauses         []*ClauseBuilder
}

// Flag starts a flag with the given key.
func Flag(key string) *FlagBuilder { return &FlagBuilder{key: key, on: true} }

// Bool is a bool flag (variations false, true) that serves v to everyone.
func Bool(key string, v bool) *FlagBuilder {
	i := 0
	if v {
		i = 1
	}
	return Flag(key).Variations(false, true).Fallthrough(Variation(i))
}

// String is a string flag that serves v to everyone. Chain ForKey to serve
// another value to one context:
//
//	flagstest.String("banner", "Hello").ForKey("user-1", "Hi Ann")
func String(key, v string) *FlagBuilder {
	return Flag(key).Variations(v).Fallthrough(Variation(0))
}

// Int is a number flag that serves v to everyone.
func Int(key string, v int) *FlagBuilder {
	return Flag(key).Variations(v).Fallthrough(Variation(0))
}

// Float is a number flag that serves v to everyone.
func Float(key string, v float64) *FlagBuilder {
	return Flag(key).Variations(v).Fallthrough(Variation(0))
}

// JSON is a JSON flag that serves v to everyone. v is anything
// encoding/json encodes to an object or an array: a map, a slice, a struct,
// a json.RawMessage.
func JSON(key string, v any) *FlagBuilder {
	f := Flag(key).Variations(v).Fallthrough(Variation(0))
	f.jsonOnly = true
	return f
}

// Key returns the flag's key.
func (f *FlagBuilder) Key() string { return f.key }

// Variations sets the values the flag can serve, all of one JSON type:
// bools, strings, numbers, or objects and arrays. Values are encoded with
// encoding/json.
func (f *FlagBuilder) Variations(values ...any) *FlagBuilder {
	f.variations = slices.Clone(values)
	return f
}

// On turns the flag on or off. An off flag serves its OffVariation, or the
// caller's default when it has none.
func (f *FlagBuilder) On(on bool) *FlagBuilder {
	f.on = on
	return f
}

// OffVariation sets the variation served when the flag is off or a
// prerequisite fails.
func (f *FlagBuilder) OffVariation(i int) *FlagBuilder {
	f.offVariation = &i
	return f
}

// Prerequisite requires flag key to be on and to serve variation.
func (f *FlagBuilder) Prerequisite(key string, variation int) *FlagBuilder {
	f.prereqs = append(f.prereqs, prerequisiteJSON{Flag: key, Variation: variation})
	return f
}

// Target serves variation to the contexts with one of the keys.
func (f *FlagBuilder) Target(variation int, keys ...string) *FlagBuilder {
	f.targets = append(f.targets, target{values: strs(keys), variation: variation})
	return f
}

// TargetAttr serves variation to the contexts whose attribute attr (a
// dotted path) is one of values.
func (f *FlagBuilder) TargetAttr(attr string, variation int, values ...any) *FlagBuilder {
	f.targets = append(f.targets, target{attr: attr, values: slices.Clone(values), variation: variation})
	return f
}

// ForKey serves value to the context whose key is contextKey: value
// becomes a variation (unless the flag already has an equal one) and
// contextKey is targeted to it, replacing any earlier ForKey or Target of
// that key.
func (f *FlagBuilder) ForKey(contextKey string, value any) *FlagBuilder {
	idx := -1
	want, err := json.Marshal(value)
	for i, v := range f.variations {
		if got, gerr := json.Marshal(v); err == nil && gerr == nil && bytes.Equal(got, want) {
			idx = i
			break
		}
	}
	if idx < 0 {
		f.variations = append(f.variations, value)
		idx = len(f.variations) - 1
	}
	for i := range f.targets {
		t := &f.targets[i]
		if t.attr == "" || t.attr == "key" {
			t.values = slices.DeleteFunc(t.values, func(v any) bool { return v == contextKey })
		}
	}
	f.targets = slices.DeleteFunc(f.targets, func(t target) bool { return len(t.values) == 0 })
	for i := range f.targets {
		if t := &f.targets[i]; t.attr == "" && t.variation == idx {
			t.values = append(t.values, contextKey)
			return f
		}
	}
	return f.Target(idx, contextKey)
}

// Rule adds a rule: when every clause matches (a rule without clauses
// matches everyone), serve is served. Rules are tried in the order added.
func (f *FlagBuilder) Rule(id string, serve Serve, clauses ...*ClauseBuilder) *FlagBuilder {
	f.rules = append(f.rules, rule{id: id, serve: serve, clauses: slices.Clone(clauses)})
	return f
}

// RuleDescription sets the description of the rule added with id ruleID.
func (f *FlagBuilder) RuleDescription(ruleID, text string) *FlagBuilder {
	for i := range f.rules {
		if f.rules[i].id == ruleID {
			f.rules[i].description = text
			return f
		}
	}
	f.mistakes = append(f.mistakes, fmt.Sprintf("RuleDescription: no rule has id %q", ruleID))
	return f
}

// Fallthrough sets what contexts that no target or rule matched get.
func (f *FlagBuilder) Fallthrough(serve Serve) *FlagBuilder {
	f.fallthru = serve
	return f
}

// Salt sets the flag's bucketing salt (default: its key).
func (f *FlagBuilder) Salt(s string) *FlagBuilder {
	f.salt = &s
	return f
}

// Version sets the flag's version. Without it, TestData gives a flag
// version 1 and adds 1 every time it is set again; a Server always numbers
// flags itself.
func (f *FlagBuilder) Version(n int64) *FlagBuilder {
	f.version = &n
	return f
}

// Description sets the flag's description (metadata, not evaluated).
func (f *FlagBuilder) Description(s string) *FlagBuilder {
	f.description = s
	return f
}

// Tags sets the flag's tags (metadata, not evaluated).
func (f *FlagBuilder) Tags(tags ...string) *FlagBuilder {
	f.tags = slices.Clone(tags)
	return f
}

// TrackEvents makes every evaluation of the flag record an exposure (SPEC
// §7), for tests of code that reads experiments (see EventRecorder).
func (f *FlagBuilder) TrackEvents() *FlagBuilder {
	f.trackEvents = true
	return f
}

// Deprecated marks the flag deprecated (metadata, not evaluated).
func (f *FlagBuilder) Deprecated(d bool) *FlagBuilder {
	f.deprecated = d
	return f
}

type prerequisiteJSON struct {
	Flag      string `json:"flag"`
	Variation int    `json:"variation"`
}

type targetJSON struct {
	Attribute string `json:"attribute,omitempty"`
	Values    []any  `json:"values"`
	Variation int    `json:"variation"`
}

type ruleJSON struct {
	ID          string       `json:"id,omitempty"`
	Description string       `json:"description,omitempty"`
	Clauses     []clauseJSON `json:"clauses"`
	Serve       any          `json:"serve,omitempty"`
}

type flagJSON struct {
	Version       *int64             `json:"version,omitempty"`
	On            bool               `json:"on"`
	Variations    []json.RawMessage  `json:"variations,omitempty"`
	OffVariation  *int               `json:"offVariation,omitempty"`
	Prerequisites []prerequisiteJSON `json:"prerequisites,omitempty"`
	Targets       []targetJSON       `json:"targets,omitempty"`
	Rules         []ruleJSON         `json:"rules,omitempty"`
	Fallthrough   any                `json:"fallthrough,omitempty"`
	Salt          *string            `json:"salt,omitempty"`
	Description   string             `json:"description,omitempty"`
	Tags          []string           `json:"tags,omitempty"`
	Deprecated    bool               `json:"deprecated,omitempty"`
	TrackEvents   bool               `json:"trackEvents,omitempty"`
}

// encode writes the flag as JSON. version, when not nil, replaces the
// builder's own. Mistakes the compiler cannot see (a value encoding/json
// refuses, a nil serve) are added to errs.
func (f *FlagBuilder) encode(version *int64, errs *fieldErrors) json.RawMessage {
	for _, m := range f.mistakes {
		errs.add("rules", "%s", m)
	}
	out := flagJSON{
		Version: f.version, On: f.on, OffVariation: f.offVariation, Prerequisites: f.prereqs,
		Salt: f.salt, Description: f.description, Tags: f.tags, Deprecated: f.deprecated, TrackEvents: f.trackEvents,
	}
	if version != nil {
		out.Version = version
	}
	out.Variations = f.encodeVariations(errs)
	out.Targets = f.encodeTargets(errs)
	out.Rules = f.encodeRules(errs)
	if f.fallthru != nil {
		out.Fallthrough = f.fallthru.serve()
	}
	return marshalBuilt(out, errs)
}

// encodeVariations encodes the variations, each one encoding/json refuses
// as null, and reports those and, for a JSON flag, any that is not an
// object or an array.
func (f *FlagBuilder) encodeVariations(errs *fieldErrors) []json.RawMessage {
	var out []json.RawMessage
	for i, v := range f.variations {
		b, err := json.Marshal(v)
		if err != nil {
			errs.add(fmt.Sprintf("variations[%d]", i), "%v", err)
			b = []byte("null")
		} else if f.jsonOnly && len(b) > 0 && b[0] != '{' && b[0] != '[' {
			errs.add(fmt.Sprintf("variations[%d]", i), "JSON flag value %s: want an object or an array", b)
		}
		out = append(out, b)
	}
	return out
}

// encodeTargets lists the targets, a target without values with an empty
// list, and reports the values encoding/json refuses.
func (f *FlagBuilder) encodeTargets(errs *fieldErrors) []targetJSON {
	var out []targetJSON
	for i, t := range f.targets {
		values := t.values
		if values == nil {
			values = []any{}
		}
		checkValues(fmt.Sprintf("targets[%d].values", i), values, errs)
		out = append(out, targetJSON{Attribute: t.attr, Values: values, Variation: t.variation})
	}
	return out
}

// encodeRules lists the rules and reports their clauses' mistakes and
// every rule without a serve.
func (f *FlagBuilder) encodeRules(errs *fieldErrors) []ruleJSON {
	var out []ruleJSON
	for i, r := range f.rules {
		field := fmt.Sprintf("rules[%d]", i)
		rj := ruleJSON{ID: r.id, Description: r.description, Clauses: encodeClauses(r.clauses, field+".clauses", errs)}
		if r.serve == nil {
			errs.add(field+".serve", "no serve: use flagstest.Variation(i) or flagstest.Rollout()")
		} else {
			rj.Serve = r.serve.serve()
		}
		out = append(out, rj)
	}
	return out
}
