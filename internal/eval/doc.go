// Package eval reads flag documents and compiles them into the immutable
// snapshot a client evaluates: every flag's value sets, compiled patterns,
// parsed versions and instants, attribute slots, and the prerequisites and
// segments it refers to, resolved once per snapshot.
//
// Reading, validating and compiling are one pass over a flag's JSON, which
// is why the document format lives here too; package rules names the part
// of it that users handle (documents, patches, problems, limits) and package
// flags the part they evaluate (Snapshot, Evaluate). Everything exported here
// exists for those two packages and the module's server: it is read-only
// once a snapshot is built, and safe for concurrent use.
//
// Compile turns a document into a Snapshot and never fails: a flag or
// segment with problems is kept as malformed, with its Problems, and the rest
// of the document works. CompileFrom builds the next snapshot from the
// previous one, parsing again only the flags and segments whose JSON changed.
package eval
