package flagstest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// Item is what documents are built from: a flag (*FlagBuilder), a segment
// (*SegmentBuilder) or a whole document (*DocumentBuilder, including the
// ones FromJSON and FromFile read). New, TestData.Set and Document take
// items. The set is closed.
type Item interface {
	addTo(c *changes)
}

// entry is one flag or segment to set or delete.
type entry struct {
	kind string // "flag" or "segment", as in rules.Problem.Kind
	key  string
	flag *FlagBuilder
	seg  *SegmentBuilder
	raw  json.RawMessage // taken as it is, from a parsed document
	del  bool
}

// changes is what a list of items amounts to.
type changes struct {
	entries []entry
	version *int64 // a document's version, when one was given
}

func (f *FlagBuilder) addTo(c *changes) {
	c.entries = append(c.entries, entry{kind: "flag", key: f.key, flag: f})
}

func (s *SegmentBuilder) addTo(c *changes) {
	c.entries = append(c.entries, entry{kind: "segment", key: s.key, seg: s})
}

func (d *DocumentBuilder) addTo(c *changes) {
	if d.raw != nil {
		for _, k := range slices.Sorted(maps.Keys(d.raw.Flags)) {
			c.entries = append(c.entries, entry{kind: "flag", key: k, raw: d.raw.Flags[k]})
		}
		for _, k := range slices.Sorted(maps.Keys(d.raw.Segments)) {
			c.entries = append(c.entries, entry{kind: "segment", key: k, raw: d.raw.Segments[k]})
		}
		v := d.raw.Version
		c.version = &v
	}
	for _, it := range d.items {
		if it != nil {
			it.addTo(c)
		}
	}
	if d.version != nil {
		c.version = d.version
	}
}

func collect(items []Item) *changes {
	c := &changes{}
	for _, it := range items {
		if it != nil {
			it.addTo(c)
		}
	}
	return c
}

// BuildError reports builder mistakes: the problems eval.Compile found in
// the flags and segments built (a bad variation index, weights that do not
// add up to 100000, an unknown operator...) and values encoding/json
// refused. Each Problem names the flag or segment and the field. It
// unwraps to the problems, so errors.Is(err, rules.ErrMalformed) holds.
type BuildError struct {
	Problems []*rules.Problem
}

// Error lists the problems, one a line:
//
//	flagstest: flag "new-checkout": fallthrough.rollout.variations: weights sum to 90000, want 100000
func (e *BuildError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		where := fmt.Sprintf("%s %q", p.Kind, p.Key)
		if p.Field != "" {
			where += ": " + p.Field
		}
		lines[i] = fmt.Sprintf("flagstest: %s: %v", where, p.Err)
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems.
func (e *BuildError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// fieldErrors collects the mistakes in one flag or segment that only the
// builder can see.
type fieldErrors struct {
	kind, key string
	list      []*rules.Problem
}

func (e *fieldErrors) add(field, format string, args ...any) {
	e.list = append(e.list, &rules.Problem{Kind: e.kind, Key: e.key, Field: field, Err: fmt.Errorf(format, args...)})
}

// checkValues reports, as field[i], each of values that encoding/json
// refuses, so that the problem names the value rather than the whole flag.
func checkValues(field string, values []any, errs *fieldErrors) {
	for i, v := range values {
		if _, err := json.Marshal(v); err != nil {
			errs.add(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
}

// marshalBuilt is the JSON of a built flag or segment, or {} when
// encoding/json refuses it; the error is added to errs unless errs already
// holds the values refused.
func marshalBuilt(out any, errs *fieldErrors) json.RawMessage {
	data, err := json.Marshal(out)
	if err != nil {
		if len(errs.list) == 0 { // the values refused are already reported
			errs.add("", "%v", err)
		}
		return json.RawMessage(`{}`)
	}
	return data
}

// apply returns base with c applied, checking what the builders made: the
// problems of every flag and segment built, in the context of the whole
// document (a prerequisite cycle through an older flag counts), are
// returned as a *BuildError. Flags and segments taken from parsed documents
// are not checked: a test may want a malformed flag. number, when not nil,
// gives the version of a built flag or segment that set none. dangling
// lists the prerequisite flags and segments that the flags and segments
// built name and the document does not hold: valid, but most often a
// misspelt key, which New and Set log.
func apply(base *rules.Document, c *changes, number func(kind, key string) int64) (doc *rules.Document, dangling []*rules.DanglingReference, err error) {
	doc = &rules.Document{Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	if base != nil {
		doc.Version = base.Version
		maps.Copy(doc.Flags, base.Flags)
		maps.Copy(doc.Segments, base.Segments)
	}
	var problems []*rules.Problem
	built := map[[2]string]bool{}
	for _, e := range c.entries {
		m := doc.Flags
		if e.kind == "segment" {
			m = doc.Segments
		}
		switch {
		case e.del:
			delete(m, e.key)
			continue
		case e.raw != nil:
			m[e.key] = e.raw
			continue
		}
		errs := &fieldErrors{kind: e.kind, key: e.key}
		var version *int64
		if number != nil {
			n := number(e.kind, e.key)
			version = &n
		}
		if e.flag != nil {
			if e.flag.version != nil {
				version = nil
			}
			m[e.key] = e.flag.encode(version, errs)
		} else {
			if e.seg.version != nil {
				version = nil
			}
			m[e.key] = e.seg.encode(version, errs)
		}
		problems = append(problems, errs.list...)
		// When encoding failed, what the compiler would say about the
		// remains is noise: report the builder's own problems only.
		built[[2]string{e.kind, e.key}] = len(errs.list) == 0
	}
	if c.version != nil {
		doc.Version = *c.version
	}
	if dangling, err = check(doc, built, problems); err != nil {
		return nil, nil, err
	}
	return doc, dangling, nil
}

// check compiles doc and returns what its flags and segments built (built
// true) have wrong, after the builders' own problems, as a *BuildError,
// or, when nothing is, the keys they name that doc does not hold.
func check(doc *rules.Document, built map[[2]string]bool, problems []*rules.Problem) ([]*rules.DanglingReference, error) {
	snap := eval.Compile(doc)
	for _, p := range snap.Problems() {
		if built[[2]string{p.Kind, p.Key}] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, &BuildError{Problems: problems}
	}
	var dangling []*rules.DanglingReference
	for _, d := range snap.DanglingReferences() {
		if built[[2]string{d.Kind, d.Key}] {
			dangling = append(dangling, d)
		}
	}
	return dangling, nil
}

// logDangling logs each dangling reference of a change, so that a test
// failing because a rule never matched says why.
func logDangling(tb testing.TB, dangling []*rules.DanglingReference) {
	tb.Helper()
	for _, d := range dangling {
		tb.Logf("flagstest: %s %q: %s: %s (not an error: it may be set later)", d.Kind, d.Key, d.Field, d.Message())
	}
}

// DocumentBuilder builds a whole flag document (SPEC §1) from flags,
// segments and other documents. Use it to write a document for
// flags.WithDocument, a file, or a golden test:
//
//	data := flagstest.Document(
//		flagstest.Bool("new-checkout", true),
//		flagstest.Segment("beta").Included("user-7"),
//	).Version(3).Bytes(t)
type DocumentBuilder struct {
	version *int64
	items   []Item
	raw     *rules.Document // read by FromJSON or FromFile
}

// Document starts a document holding items; a later item replaces an
// earlier one with the same key.
func Document(items ...Item) *DocumentBuilder {
	return &DocumentBuilder{items: slices.Clone(items)}
}

// FromJSON takes a document as it is written (SPEC §1), failing the test
// when it is not a valid document. Its flags and segments are not checked
// further: a malformed flag stays malformed, as a real client would keep
// it, so a test can exercise MALFORMED_FLAG.
func FromJSON(tb testing.TB, data []byte) *DocumentBuilder {
	tb.Helper()
	doc, err := rules.ParseDocument(data)
	if err != nil {
		tb.Fatalf("flagstest: FromJSON: %v", err)
		return Document()
	}
	return &DocumentBuilder{raw: doc}
}

// FromFile is FromJSON reading the file at path (typically under
// testdata/), failing the test when it cannot be read.
func FromFile(tb testing.TB, path string) *DocumentBuilder {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("flagstest: FromFile: %v", err)
		return Document()
	}
	doc, err := rules.ParseDocument(data)
	if err != nil {
		tb.Fatalf("flagstest: FromFile %s: %v", path, err)
		return Document()
	}
	return &DocumentBuilder{raw: doc}
}

// Add adds items to the document.
func (d *DocumentBuilder) Add(items ...Item) *DocumentBuilder {
	d.items = append(d.items, items...)
	return d
}

// Version sets the document's snapshot version (default 0, or the version
// of the document read by FromJSON or FromFile).
func (d *DocumentBuilder) Version(n int64) *DocumentBuilder {
	d.version = &n
	return d
}

// Rules returns the document, or a *BuildError listing the builder
// mistakes in it.
func (d *DocumentBuilder) Rules() (*rules.Document, error) {
	doc, _, err := apply(nil, collect([]Item{d}), nil)
	return doc, err
}

// JSON returns the document as JSON (keys sorted), or a *BuildError
// listing the builder mistakes in it.
func (d *DocumentBuilder) JSON() ([]byte, error) {
	doc, err := d.Rules()
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// Bytes is JSON for tests: a builder mistake fails tb with Fatalf.
func (d *DocumentBuilder) Bytes(tb testing.TB) []byte {
	tb.Helper()
	data, err := d.JSON()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return data
}
