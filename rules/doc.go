// Package rules is the flag document format of SPEC §1: reading documents
// and patches, and validating them.
//
// Most programs never import it: package flags reads documents from its
// sources and answers typed questions. Import rules to handle documents
// yourself — a server, a linter, a tool that pushes flags.
//
// # Documents and patches
//
// ParseDocument reads a document; it fails (wrapping ErrInvalidDocument)
// only when the bytes are not JSON, the top level has the wrong shape, a
// key is named twice (which of the two was meant is anybody's guess) or a
// limit of SPEC §13 is passed. Each flag and segment is kept as its raw
// JSON, so that a server republishes fields it does not know and a client
// reuses the work done for flags whose bytes did not change. ParsePatch
// reads the data of a patch event and Document.Apply applies it, returning
// a new Document.
//
// # Validation and problems
//
// Validate lists what is wrong with a document's flags and segments, each
// as a *Problem naming the flag or segment key and the field, such as
//
//	flags.checkout.rules[0].clauses[1].op: unknown operator "semverEqual"
//
// A *Problem matches ErrMalformed with errors.Is. A client keeps such a
// flag as malformed (it evaluates to the caller's default) and the rest of
// the document works. UnknownFields lists the fields of a document that
// SPEC §1 does not define (typos, for a linter).
//
// # What is not here
//
// The compiled form a client evaluates (value sets, compiled patterns,
// parsed versions and instants, resolved prerequisites and segments) is
// internal to the module: a client compiles each document once
// (flags.Compile) and evaluates it (flags.Evaluate, the Client's getters).
//
// # Limits
//
// The bounds of SPEC §13 are constants here (MaxNesting, MaxSegmentDepth,
// MaxPrerequisiteDepth, MaxKeyLength, ...): a document beyond them is
// refused or the offending flag is malformed, never evaluated at
// unbounded cost.
package rules
