/*
Package flags evaluates feature flags in-process, in nanoseconds, from a
snapshot of flag rules kept in memory.

# Evaluating flags

A Client holds the current compiled snapshot and answers typed questions:

	client, err := flags.New(flags.WithFile("flags.json"))
	if err != nil { ... }
	defer client.Close()

	user := flags.NewContext("user-123").
		Set("email", "ann@corp.com").
		Set("org", map[string]any{"id": "uni-7", "plan": "enterprise"}).
		Build()

	if client.Bool(ctx, "new-checkout", user, false) { ... }
	limit := client.Int(ctx, "max-cart-items", user, 50)

Every getter takes the caller's default, returned whenever the flag cannot
be evaluated: the client has no snapshot yet, the flag does not exist or is
malformed, the context is invalid, or the flag serves another type. The
Detail forms (BoolDetail, StringDetail, IntDetail, FloatDetail, JSONDetail,
Value) return a Result: the value, the variation index (-1 when the default
was served), the flag's version and a Reason (OFF, TARGET_MATCH, RULE_MATCH
with the rule's index and id, PREREQUISITE_FAILED with the prerequisite's
key, FALLTHROUGH, or ERROR with an ErrorKind). Result.Err wraps one of the
sentinel errors ErrClientNotReady, ErrFlagNotFound, ErrMalformedFlag,
ErrInvalidContext and ErrWrongType, for errors.Is.

Evaluations never block, never panic and do not allocate: they read an
immutable snapshot with one atomic load. Build a Context once per request (or
per user) and reuse it.

# Evaluation contexts

A Context has a string key and attributes: strings, numbers (held as
float64), bools, arrays and nested objects. Clauses and rollouts address
attributes by dotted paths, "org.plan". NewContext(key).Set(...).Build(),
ContextFromMap and ContextFromJSON build one. A context never fails to
build: a problem (no key, a value of an unsupported Go type) is kept in
Context.Err and evaluations with it return INVALID_CONTEXT, so nothing the
caller set is silently dropped.

# Where flags come from

Exactly one Source feeds a client:

  - WithDocument: a fixed JSON document, loaded before New returns.
  - WithFile: a JSON document on disk, loaded before New returns and
    reloaded when it changes; a bad edit is logged and the last good flags
    stay in force.
  - WithSource(stream.New(cfg)): a flagstream server over server-sent
    events, or polled, with reconnection, backoff, resynchronisation and an
    optional last-known-good file (package stream). Importing package
    stream is the opt-in: this package depends on the standard library
    only.
  - WithSource(td), td from flagstest.New: the test fake, in-process.
  - WithSource: anything else that implements Source, a single Run method
    given the client's Updates (Apply a document, report Healthy or
    Failed). A source that also implements Loader delivers what it has at
    hand before New returns; flagstest.TestSource checks an
    implementation.

New never blocks on the network: use WaitReady to wait for the first
snapshot. Until then evaluations return the default with CLIENT_NOT_READY.
Status reports the state (INITIALIZING, READY, STALE, FATAL, CLOSED), the
source of the snapshot in force, its version and the last error. OnStatus
and OnChange register callbacks, called synchronously after each change;
OnChange names the flags whose evaluation may have changed.

# The document

The format, the operators, the bucketing arithmetic and the evaluation
order are specified in [docs/SPEC.md] and summarised in README.md. Package rules
parses and compiles documents; package bucketing holds the hash arithmetic
other SDKs must reproduce bit for bit. Evaluate runs the evaluator on a
compiled snapshot directly, with an injected clock.

# Choices where the specification is silent

  - A before or after clause written without an attribute compares the
    evaluation time (the clock, which `flags eval --at` and WithClock fix):
    {"op": "after", "values": ["2026-12-01T00:00:00Z"]} is a rule that
    starts matching at that instant. With an attribute, the attribute is
    compared and the clock is not used.
  - A JSON null attribute is treated as absent by every operator.
  - A clause value of the wrong JSON type for its operator (a number for
    startsWith, a string for lessThan, an object for in) makes the flag
    malformed, like any field of the wrong type; a value of the right type
    that cannot be parsed (an instant, a version) never matches.
  - Static rollout weights may be omitted when a schedule is present; when
    written they must still add up to 100000. Schedule steps must be in
    strictly increasing time order.
  - A flag whose prerequisite chain is more than 16 links deep is
    malformed; a flag on a prerequisite cycle is malformed, a flag that
    merely depends on one fails that prerequisite (PREREQUISITE_FAILED).
  - A segment on an inSegment cycle is malformed; a flag evaluation that
    reaches it returns ERROR / MALFORMED_FLAG.
  - Typed getters check the variation's type only when a variation is
    served: an OFF flag without offVariation returns the default with
    reason OFF whatever the type asked.
  - ContextBuilder.Set refuses attribute names containing a dot (a
    programming error); ContextFromMap and ContextFromJSON keep them, but no
    path reaches them.

[docs/SPEC.md]: https://github.com/flagstream/flags/blob/main/docs/SPEC.md
*/
package flags
