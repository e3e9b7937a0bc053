/*
Package flagstest gives tests real flag clients whose flags they control,
in the manner of net/http/httptest: no mocks, no globals, one line.

# A client with fixed flags

New returns a TestData whose Client is a real, ready *flags.Client,
closed when the test ends:

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

The client is fed through a flags.Source, as any client is: evaluation,
Detail results, OnChange and Status behave as in production. Set, Delete,
DeleteSegment and SetDocument are synchronous: when they return, the very
next evaluation sees the change and every OnChange listener has run, so a
test never waits or sleeps. Each TestData is independent, so parallel tests
(t.Parallel) may give the same flag key different values.

NewClient adds clients on the same flags built with more options, such as
flags.WithClock to evaluate a progressive rollout at a fixed instant. Fail
and Recover make the clients report a failing source (STALE, or FATAL) and a
healthy one again, for code that watches Status.

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

Builders are checked with rules.Compile, in the context of the whole
document. A mistake (a variation index out of range, weights that do not
add up to 100000, an unknown operator, a bad regular expression, a
prerequisite cycle) fails the test with Fatalf and changes nothing; the
message names the flag or segment and the field:

	flagstest: flag "new-checkout": fallthrough.rollout.variations: weights sum to 90000, want 100000

Outside a test, Document(...).JSON returns the same problems as a
*BuildError.

# Documents

Document builds a whole document as JSON (for flags.WithDocument, a file,
a golden test) or as a *rules.Document. FromJSON and FromFile read one;
they, and Document, are items too, so New, Set and NewServer take them:

	td := flagstest.New(t, flagstest.FromFile(t, "testdata/flags.json"))

SetDocument replaces everything a TestData holds. Flags and segments read
from documents are not checked: a malformed flag stays malformed, as a real
client keeps it, so a test can exercise MALFORMED_FLAG.

Versions: a TestData's snapshot version starts at 1 (or at a document
item's version) and grows by one with every change; a flag or segment
without an explicit Version starts at version 1 and gains one each time it
is set again.

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

# Streaming, end to end

NewServer starts the reference flag server (package server) in-process on
127.0.0.1, and its Client method returns a streaming client connected to it
and ready. Server.Set publishes a change as one patch over the wire and
returns once every such client has applied it and run its OnChange
listeners:

	srv := flagstest.NewServer(t, flagstest.Bool("kill-switch", false))
	client := srv.Client(t)
	srv.Set(flagstest.Bool("kill-switch", true))

Server.URL serves clients built by hand (flags.WithStream, WithPolling)
or any HTTP client; Server.Flags is the *server.Server itself.

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

As with t.Fatalf, call Set, Delete, SetDocument and the Server's methods
from the test's goroutine; evaluations may run on any goroutine. Do not
call them from an OnChange or OnStatus listener: the listener runs while
the change is being applied.
*/
package flagstest
