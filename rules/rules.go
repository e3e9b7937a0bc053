package rules

import (
	"time"

	"github.com/flagstream/flags/internal/eval"
)

// The document format's types. They are defined where documents are read
// and compiled (the module's internal evaluation package) and named here,
// so that reading, validating and compiling stay one pass over the bytes
// while this package shows only what a user of documents needs.
type (
	// Document is a flag document as it travels: the snapshot version and
	// the raw JSON of every flag and segment, kept as written so that a
	// server republishes fields it does not know and a client reuses the
	// work done for flags whose bytes did not change. A Document is
	// immutable once built; Apply returns a new one.
	Document = eval.Document

	// Patch is the data of a patch stream event (SPEC §5): the new
	// snapshot version and the flags and segments that changed. A nil (JSON
	// null) entry deletes the key.
	Patch = eval.Patch

	// Problem is one thing wrong with one flag or segment, located by a
	// field path in the style of the document, e.g. rules[2].clauses[0].op.
	// It is an error that matches ErrMalformed and unwraps to its cause,
	// like io/fs.PathError.
	Problem = eval.Problem

	// UnknownField is a member of a document that the format does not
	// define: evaluation ignores it (SPEC §1), so it is most often a typo
	// that silently changes nothing. UnknownFields finds them.
	UnknownField = eval.UnknownField

	// DanglingReference is a prerequisite flag or an inSegment segment that
	// a flag or segment names and the document does not hold: valid, but
	// often a misspelt key. DanglingReferences finds them.
	DanglingReference = eval.DanglingReference

	// Kind is the JSON type of a flag's variations.
	Kind = eval.Kind

	// Op is a clause operator (SPEC §2).
	Op = eval.Op

	// Guard is a flag's guarded rollout (SPEC §9): while the flag is on,
	// the server compares the treatment with the control on a metric and
	// rolls the flag back when the treatment is worse.
	Guard = eval.Guard

	// GuardTrip records why and when a guard rolled its flag back.
	GuardTrip = eval.GuardTrip
)

// The kinds of variations.
const (
	KindBool   = eval.KindBool
	KindString = eval.KindString
	KindNumber = eval.KindNumber
	KindJSON   = eval.KindJSON // an object or an array
)

// The clause operators of SPEC §2.
const (
	OpIn                 = eval.OpIn
	OpStartsWith         = eval.OpStartsWith
	OpEndsWith           = eval.OpEndsWith
	OpContains           = eval.OpContains
	OpMatches            = eval.OpMatches
	OpLessThan           = eval.OpLessThan
	OpLessThanOrEqual    = eval.OpLessThanOrEqual
	OpGreaterThan        = eval.OpGreaterThan
	OpGreaterThanOrEqual = eval.OpGreaterThanOrEqual
	OpBefore             = eval.OpBefore
	OpAfter              = eval.OpAfter
	OpSemVerEqual        = eval.OpSemVerEqual
	OpSemVerLessThan     = eval.OpSemVerLessThan
	OpSemVerGreaterThan  = eval.OpSemVerGreaterThan
	OpInSegment          = eval.OpInSegment
	OpExists             = eval.OpExists
)

// A guard's Better: which direction of the metric is better.
const (
	GuardLower  = eval.GuardLower  // fewer conversions is better (errors, latency breaches)
	GuardHigher = eval.GuardHigher // more conversions is better (checkouts, clicks)
)

// Defaults of a guard's optional fields (SPEC §9).
const (
	DefaultGuardAlpha    = eval.DefaultGuardAlpha
	DefaultGuardMinUnits = eval.DefaultGuardMinUnits
)

// StreamStartHeader is a header of the reference server's answer to GET
// /v1/stream: "snapshot" when the stream starts with a snapshot event,
// "resume" when it replays the patches after the client's Last-Event-ID
// (or has none to replay). SPEC §5 does not ask for it. Package stream
// reads it to report a resumed connection healthy only once the snapshot
// that replaces its state is applied (a server restarted with a new
// epoch), so that a READY status never carries the version being
// replaced.
const StreamStartHeader = "Flags-Stream-Start"

// The bounds of SPEC §13. A document beyond them is refused whole (nesting)
// or the offending flag or segment is malformed; nothing is evaluated at
// unbounded cost.
const (
	MaxNesting             = eval.MaxNesting             // how deep a JSON text may nest objects and arrays
	MaxSegmentDepth        = eval.MaxSegmentDepth        // the deepest segment nesting
	MaxPrerequisiteDepth   = eval.MaxPrerequisiteDepth   // the deepest prerequisite chain
	MaxKeyLength           = eval.MaxKeyLength           // the longest flag or segment key
	MaxPatternBytes        = eval.MaxPatternBytes        // the longest matches pattern
	MaxPatternInstructions = eval.MaxPatternInstructions // the most RE2 instructions a pattern may compile to
	MaxPatterns            = eval.MaxPatterns            // the most patterns in one flag or segment
	TotalWeight            = eval.TotalWeight            // what a rollout's weights add up to (units of 0.001 %)
)

// The errors of documents; each is matched with errors.Is.
var (
	// ErrInvalidDocument reports a document refused whole: not JSON, the
	// wrong top-level shape, or beyond a limit of SPEC §13.
	ErrInvalidDocument = eval.ErrInvalidDocument

	// ErrMalformed is matched by every Problem: the flag or segment is
	// kept, marked malformed, and evaluates to the caller's default.
	ErrMalformed = eval.ErrMalformed

	// ErrTooDeep reports objects and arrays nested deeper than MaxNesting.
	ErrTooDeep = eval.ErrTooDeep

	// ErrInvalidUTF8 reports a string holding bytes that are not UTF-8.
	ErrInvalidUTF8 = eval.ErrInvalidUTF8

	// ErrPatternLimit is wrapped by the problem of a matches pattern over
	// MaxPatternBytes or MaxPatternInstructions, or of one over MaxPatterns.
	ErrPatternLimit = eval.ErrPatternLimit
)

// ParseDocument reads a document. It fails, wrapping ErrInvalidDocument,
// only when the bytes are not JSON, the top level has the wrong shape, a
// flag or segment key (or version, flags, segments) is named twice, or a
// limit of SPEC §13 is passed; a malformed flag or segment is not an error
// here (see Validate).
func ParseDocument(data []byte) (*Document, error) { return eval.ParseDocument(data) }

// ParsePatch reads the data of a patch event; Document.Apply applies it.
func ParsePatch(data []byte) (*Patch, error) { return eval.ParsePatch(data) }

// UnknownFields lists the members of a document that SPEC §1 does not
// define, with a suggestion where one is close: the typos a linter reports.
func UnknownFields(data []byte) ([]*UnknownField, error) { return eval.UnknownFields(data) }

// ValidKey reports whether key may name a flag or segment: 1 to
// MaxKeyLength characters of A-Z a-z 0-9 . _ -.
func ValidKey(key string) bool { return eval.ValidKey(key) }

// Validate lists what is wrong with doc's flags and segments, sorted by
// kind, key and field path; nil when nothing is. It is what a client finds when it
// compiles the document: a flag or segment with a problem is kept as
// malformed and the rest of the document works.
func Validate(doc *Document) []*Problem { return eval.Compile(doc).Problems() }

// DanglingReferences lists the prerequisite flags and the inSegment segments
// that doc's well-formed flags and segments name and doc does not hold,
// sorted by kind and key. A missing prerequisite always fails and a missing
// segment holds no context (SPEC §1, §3), so these are not problems: a
// document may name a flag or segment it gets later. They are what
// `flags lint` prints as warnings, beside the unknown fields.
func DanglingReferences(doc *Document) []*DanglingReference {
	return eval.Compile(doc).DanglingReferences()
}

// ParseTime reads an instant as documents write them (before/after values,
// schedules, a guard's trip) and as `flags eval --at` takes it: an RFC 3339
// date-time, "2026-12-04T15:04:05Z" or with a fraction and an offset
// ("2026-12-04T16:04:05.5+01:00"), T and Z in either case. It is stricter
// than time.Parse with time.RFC3339, which also takes a comma before the
// fraction and offsets such as +24:00.
func ParseTime(s string) (time.Time, error) { return eval.ParseRFC3339(s) }
