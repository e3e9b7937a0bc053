/*
Package flagstest gives tests real flag clients whose flags they control,
in the manner of net/http/httptest: no mocks, no globals, one line.

# One fake, two transports

New returns a TestData: the flags of one test, built with the builders
below, and a real, ready *flags.Client reading them, closed when the test
ends:

	func TestCheckout(t *testing.T) {
		td := flagstest.New(t,
			flagstest.Bool("new-checkout", true),
			flagstest.String("banner", "Hello").ForKey("user-1", "Hi Ann"),
		)
		h := checkout.Handler{Flags: td.Client}
		...
		td.Set(flagstest.Bool("new-checkout", false))
		...
	}

In-process, a TestData is a flags.Source: td.Client, td.NewClient(opts...)
and flags.New(flags.WithSource(td)) are fed directly, as any client is fed
by its source, so evaluation, Detail results, OnChange and Status behave as
in production. Over HTTP, NewServer(td) serves the same flags with the
reference server (package server) on 127.0.0.1 — the real stream and poll
endpoints at Server.URL — and Server.Client makes a ready client of it
from a source of package stream (streaming, or polling with
stream.Config.Poll):

	td := flagstest.New(t, flagstest.Bool("kill-switch", false))
	srv := flagstest.NewServer(td)
	client := srv.Client(stream.New(stream.Config{BaseURL: srv.URL})) // ready
	td.Set(flagstest.Bool("kill-switch", true)) // one patch on the wire

Package flagstest itself does not import package stream: a test that uses
only the in-process transport compiles no network client and no module
beyond the standard library.

Set, Delete, DeleteSegment and SetDocument are synchronous whatever the
transport: when they return, the very next evaluation of every client sees
the change and every OnChange listener has run, so a test never waits or
sleeps. Each TestData is independent, so parallel tests (t.Parallel) may
give the same flag key different values.

Fail and Recover make the in-process clients report a failing source
(STALE, or FATAL) and a healthy one again, for code that watches Status.

# Building flags

The shortcuts cover most tests: Bool, String, Int, Float and JSON make a
flag that serves one value to everyone; ForKey serves another value to one
context key. Flag builds any flag the document format can express (SPEC
§1), fluently:

	flagstest.Flag("new-checkout").
		Variations(false, true).
		OffVariation(0).
		Prerequisite("payments-v2", 1).
		Target(1, "vip-42").
		TargetAttr("org.id", 1, "uni-7").
		Rule("staff", flagstest.Variation(1), flagstest.EndsWith("email", "@corp.com")).
		Rule("beta", flagstest.Variation(1), flagstest.InSegment("beta-testers")).
		Rule("old-app", flagstest.Variation(0), flagstest.SemVerLessThan("appVersion", "2.0.0")).
		Fallthrough(flagstest.Rollout().Weight(0, 75000).Weight(1, 25000).BucketBy("org.id"))

A rule or the fallthrough serves a Variation or a Rollout (weights in
thousandths of a percent, BucketBy, Salt, Experiment, and Step for a
schedule). Every operator has a clause function named after it (In,
StartsWith, EndsWith, Contains, Matches, LessThan, LessThanOrEqual,
GreaterThan, GreaterThanOrEqual, Before, After, SemVerEqual,
SemVerLessThan, SemVerGreaterThan, InSegment, Exists), Clause takes any
operator, and Negate inverts one. Segment builds segments (Included,
Excluded, Attribute, Rule, and SegmentRule for weighted rules).

A builder is on from the start (a document's "on" defaults to false, but a
test that writes rules wants them to run); the shortcuts set no off
variation, so an off flag serves the caller's default.

# Builder mistakes

Builders are checked with eval.Compile, in the context of the whole
document. A mistake (a variation index out of range, weights that do not
add up to 100000, an unknown operator, a bad regular expression, a
prerequisite cycle) fails the test with Fatalf and changes nothing; the
message names the flag or segment and the field:

	flagstest: flag "new-checkout": fallthrough.rollout.variations: weights sum to 90000, want 100000

Outside a test, Document(...).JSON returns the same problems as a
*BuildError.

A prerequisite flag or an InSegment segment that the document does not hold
is no mistake (SPEC: the prerequisite fails, the segment holds no context),
and a test may add it later, so the test goes on; but a misspelt key would
show only as a rule that never matches, so New and Set log each one:

	flagstest: flag "new-checkout": rules[1].clauses[0].values[0]: segment "beta-tester" is not in the document, so no context is in it (not an error: it may be set later)

# Documents

Document builds a whole document as JSON (for flags.WithDocument, a file,
a golden test) or as a *rules.Document. FromJSON and FromFile read one;
they, and Document, are items too, so New and Set take them:

	td := flagstest.New(t, flagstest.FromFile(t, "testdata/flags.json"))

SetDocument replaces everything a TestData holds. Flags and segments read
from documents are not checked: a malformed flag stays malformed, as a real
client keeps it, so a test can exercise MALFORMED_FLAG.

Versions are numbered by the reference server behind every TestData, as
SPEC §1 has a server do, so a client sees the same versions in-process and
over HTTP: the snapshot version starts at 1 (or at a document item's
version given to New) and grows by one with every change that changes
something; a flag or segment starts at version 1 (or its Version) and gains
one whenever it changes. Version calls on keys that exist already, and
document versions given to Set, are ignored; a Set that changes nothing
publishes nothing.

# Code that holds an interface

Code that only evaluates flags can depend on flags.Evaluator, the
evaluation methods of *flags.Client. A TestData's client satisfies it, and
so does a hand-written fake when the rules do not matter; the example in
examples/testing shows both. No mock generator is needed.

# Overrides

(*flags.Client).Override, OverrideFor and ClearOverrides force a value on
one client, with reason OVERRIDE: a tool for QA and incidents, which works
on a TestData's client too. In tests prefer Set, which changes the flags
themselves and so exercises the rules the code will meet in production.

# Testing rollouts

A rollout's measured share over n distinct keys is binomial: its standard
deviation is sqrt(p(1-p)/n), 0.43 % for p = 25 % over 10,000 keys. Assert
within a few standard deviations (4 gives ±1.7 %) rather than an arbitrary
margin; examples/testing does so, and checks that users keep their
variation when the share grows.

# Checking your own Source

Code that feeds flags from somewhere flagstream does not know (a database,
an object store) implements flags.Source. TestSource checks such an
implementation the way testing/fstest.TestFS checks a file system: it
delivers a valid document, stops promptly when its context is cancelled,
and makes no call on flags.Updates after Run has returned.

# Rules of use

As with t.Fatalf, call a TestData's methods, NewServer and Server.Client
from the test's goroutine; evaluations may run on any goroutine. Do not
call them from an OnChange or OnStatus listener: the listener runs while
the change is being applied.
*/
package flagstest
