package flags

import (
	"encoding/json"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// Snapshot is a compiled flag document: immutable, safe for concurrent use,
// with everything evaluation needs parsed and indexed once (value sets,
// compiled patterns, versions and instants, resolved prerequisites and
// segments). A Client holds one at a time and swaps it atomically on each
// update; Evaluate and Explain answer from one a tool holds itself.
type Snapshot eval.Snapshot

// Compile compiles doc. It never fails: a flag or segment with problems is
// kept as malformed (it evaluates to the caller's default, with
// ErrMalformed) and listed by Problems, and the rest of the document works.
func Compile(doc *rules.Document) *Snapshot { return (*Snapshot)(eval.Compile(doc)) }

// compiled is the snapshot the evaluator reads.
func (s *Snapshot) compiled() *eval.Snapshot { return (*eval.Snapshot)(s) }

// Version returns the document's version.
func (s *Snapshot) Version() int64 { return s.compiled().Version() }

// Document returns the document the snapshot was compiled from.
func (s *Snapshot) Document() *rules.Document { return s.compiled().Document() }

// FlagKeys returns every flag key, sorted. The slice is shared: do not
// modify it.
func (s *Snapshot) FlagKeys() []string { return s.compiled().FlagKeys() }

// Has reports whether the snapshot holds flag key (well formed or not).
func (s *Snapshot) Has(key string) bool { return s.compiled().Flag(key) != nil }

// Variation returns variation i of flag key as the document wrote it (key
// order, number spelling), for tools that print values exactly; false when
// the flag or the variation does not exist.
func (s *Snapshot) Variation(key string, i int) (json.RawMessage, bool) {
	f := s.compiled().Flag(key)
	if f == nil || i < 0 || i >= len(f.Variations) {
		return nil, false
	}
	return f.Variations[i].JSON, true
}

// Problems lists what is wrong with the document's flags and segments,
// sorted by kind, key and field path; nil when nothing is.
func (s *Snapshot) Problems() []*rules.Problem { return s.compiled().Problems() }
