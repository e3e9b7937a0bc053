// Package rules is the flag document format of SPEC §1: reading it,
// validating it, and the compiled snapshot a client evaluates.
//
// Most programs never import it: package flags reads documents from its
// sources and answers typed questions. Import rules to handle documents
// yourself — a server, a linter, a tool that pushes flags.
//
// # Documents and patches
//
// ParseDocument reads a document; it fails (wrapping ErrInvalidDocument)
// only when the bytes are not JSON or the top level has the wrong shape.
// Each flag and segment is kept as its raw JSON, so that a server republishes
// fields it does not know and a snapshot reuses the work done for flags whose
// bytes did not change. ParsePatch reads the data of a patch event and
// Document.Apply applies it, returning a new Document.
//
// # Validation and problems
//
// Compile turns a document into a Snapshot and never fails: a flag or
// segment with problems is kept as malformed and the rest of the document
// works. Snapshot.Problems lists every problem as a *Problem naming the flag
// or segment key and the field, such as
//
//	flags.checkout.rules[0].clauses[1].values[2]: not a valid semver
//
// A *Problem matches ErrMalformed with errors.Is. UnknownFields lists the
// fields of a document that SPEC §1 does not define (typos, for a linter).
//
// # Snapshots
//
// A Snapshot is immutable and safe for concurrent use. CompileFrom builds
// the next snapshot from the previous one, parsing again only the flags and
// segments whose JSON changed. Its flags (Flag, Definition, Rule, Clause,
// Rollout) and segments hold everything evaluation needs pre-parsed: value
// sets, regular expressions, versions, instants, resolved prerequisites and
// segments. They are read-only; package flags evaluates them.
//
// # Limits
//
// The bounds of SPEC §13 are constants here (MaxNesting, MaxSegmentDepth,
// MaxPrerequisiteDepth, MaxKeyLength, ...): a document beyond them is
// refused or the offending flag is malformed, never evaluated at
// unbounded cost.
package rules
