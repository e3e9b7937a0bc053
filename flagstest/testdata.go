package flagstest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// Origin is the source name TestData's in-process clients report in
// flags.Status.
const Origin = "flagstest"

// TestData is the flags of one test: the one fake, with two transports.
// In-process, it is a flags.Source: Client, NewClient and
// flags.WithSource(td) give real clients fed directly. Over HTTP,
// NewServer(td) serves the same flags with the reference server (package
// server) on 127.0.0.1: the real stream and poll endpoints, for clients of
// package stream.
//
// Set, Delete, DeleteSegment and SetDocument are synchronous: when they
// return, every client of the TestData, in-process or over HTTP (made by
// Server.Client), evaluates with the change and its OnChange listeners have
// run. Each TestData is independent (there is no global state), so tests
// running in parallel may give the same flag key different values.
//
// Versions are the reference server's, whatever the transport (SPEC §1):
// the snapshot version starts at 1 (or at the version of a Document,
// FromJSON or FromFile item given to New) and grows by one with every
// change that changes something; a flag or segment starts at 1 (or its
// Version) and gains one whenever it changes. Version calls on flags that
// exist already, and document versions given to Set, are ignored.
//
// Its clients may evaluate on any goroutine while the test changes the
// flags. Call its methods from the test's goroutine (they may call
// tb.Fatalf), and never from an OnChange or OnStatus listener of one of its
// clients: the listener runs while the change is being applied.
type TestData struct {
	// Client is a real *flags.Client fed in-process by this TestData,
	// ready when New returns and closed when the test ends.
	Client *flags.Client

	tb  testing.TB
	srv *server.Server // the flags: numbers versions, serves NewServer's clients

	mu     sync.Mutex      // serializes changes, so every client sees them in one order
	sinks  []flags.Updates // the in-process clients
	remote []*flags.Client // the clients of NewServer's servers
	// oracle is an in-process client made by NewServer: whether a change
	// calls its OnChange listeners tells whether it calls those of the
	// clients over HTTP, which hold the same document.
	oracle        *flags.Client
	oracleChanged int64 // the last version oracle's OnChange saw
}

// New returns a TestData holding items and a ready client reading them:
//
//	td := flagstest.New(t, flagstest.Bool("new-checkout", true))
//	if !td.Client.Bool(ctx, "new-checkout", user, false) { ... }
//
// A builder mistake (a bad variation index, weights that do not add up to
// 100000, an unknown operator...) fails the test with a message naming the
// flag and the field. Clients are closed by tb.Cleanup.
func New(tb testing.TB, items ...Item) *TestData {
	tb.Helper()
	td := &TestData{tb: tb}
	c := collect(items)
	if c.version == nil {
		one := int64(1)
		c.version = &one
	}
	doc, dangling, err := apply(nil, c, func(string, string) int64 { return 1 })
	if err != nil {
		tb.Fatalf("%v", err)
		doc = &rules.Document{Version: 1}
	}
	logDangling(tb, dangling)
	td.srv, err = server.New(server.NewMemoryStore(doc), server.Options{})
	if err != nil {
		tb.Fatalf("flagstest: %v", err)
		return td
	}
	tb.Cleanup(func() { td.srv.Close() })
	td.Client = td.NewClient()
	return td
}

// NewClient returns one more ready in-process client fed by td, built with
// opts as well (flags.WithClock, flags.WithLogger...; not another source).
// It is closed by tb.Cleanup. Use it when the code under test needs client
// options; td.Client is there either way. It logs to tb.Log unless opts
// give it a logger.
func (td *TestData) NewClient(opts ...flags.Option) *flags.Client {
	td.tb.Helper()
	all := append([]flags.Option{flags.WithLogger(testLogger(td.tb))}, opts...)
	client, err := flags.New(append(all, flags.WithSource(td))...)
	if err != nil {
		td.tb.Fatalf("flagstest: %v", err)
		return nil
	}
	td.tb.Cleanup(func() { client.Close() })
	return client
}

// Load implements flags.Loader: it delivers td's flags to u, at once, and
// keeps u for the changes to come. flags.New calls it.
func (td *TestData) Load(u flags.Updates) error {
	td.mu.Lock()
	defer td.mu.Unlock()
	if td.srv == nil {
		return errors.New("flagstest: TestData not made by flagstest.New")
	}
	if err := u.Apply(td.srv.Document(), Origin); err != nil {
		return err
	}
	td.sinks = append(td.sinks, u)
	return nil
}

// Run implements flags.Source: the changes reach u from Set and the other
// methods, on the test's goroutine; Run waits for ctx and then forgets u.
func (td *TestData) Run(ctx context.Context, u flags.Updates) error {
	<-ctx.Done()
	td.mu.Lock()
	defer td.mu.Unlock()
	td.sinks = slices.DeleteFunc(td.sinks, func(v flags.Updates) bool { return v == u })
	return nil
}

// Set adds or replaces flags and segments (a whole-document item adds all
// of its own). A builder mistake fails the test and changes nothing. A Set
// that changes nothing publishes nothing.
func (td *TestData) Set(items ...Item) {
	td.tb.Helper()
	td.change(collect(items))
}

// Delete removes flags. Evaluating one afterwards returns the default with
// FLAG_NOT_FOUND.
func (td *TestData) Delete(flagKeys ...string) {
	td.tb.Helper()
	td.change(deletions("flag", flagKeys))
}

// DeleteSegment removes segments; inSegment clauses naming them stop
// matching.
func (td *TestData) DeleteSegment(segmentKeys ...string) {
	td.tb.Helper()
	td.change(deletions("segment", segmentKeys))
}

// SetDocument replaces every flag and segment with those of data, a JSON
// document (SPEC §1), failing the test when it is not a valid document. As
// with FromJSON, a malformed flag in it is kept malformed.
func (td *TestData) SetDocument(data []byte) {
	td.tb.Helper()
	doc, err := rules.ParseDocument(data)
	if err != nil {
		td.tb.Fatalf("flagstest: SetDocument: %v", err)
		return
	}
	td.mu.Lock()
	defer td.mu.Unlock()
	td.publishLocked(doc)
}

// Document returns the document the clients currently hold, with the
// versions the server gave it. It is shared: do not modify it.
func (td *TestData) Document() *rules.Document { return td.srv.Document() }

// Version returns the current snapshot version.
func (td *TestData) Version() int64 { return td.srv.Version() }

// Fail makes the in-process clients report a failing source: their state
// turns STALE (FATAL when fatal is true) with err, and they keep serving the
// flags they have, as a client whose flag server is down does. Recover
// undoes it. (The clients of a Server see the server as it is.)
func (td *TestData) Fail(err error, fatal bool) {
	td.mu.Lock()
	defer td.mu.Unlock()
	for _, u := range td.sinks {
		u.Failed(Origin, err, fatal)
	}
}

// Recover makes the in-process clients report a healthy source again
// (READY), unless Fail made them FATAL.
func (td *TestData) Recover() {
	td.mu.Lock()
	defer td.mu.Unlock()
	for _, u := range td.sinks {
		u.Healthy(Origin)
	}
}

// change applies c on top of the current document and publishes the
// result.
func (td *TestData) change(c *changes) {
	td.tb.Helper()
	td.mu.Lock()
	defer td.mu.Unlock()
	// A new key starts at version 1 (or its Version); the server numbers
	// every other change itself.
	next, dangling, err := apply(td.srv.Document(), c, func(string, string) int64 { return 1 })
	if err != nil {
		td.tb.Fatalf("%v", err)
		return
	}
	logDangling(td.tb, dangling)
	td.publishLocked(next)
}

// publishLocked publishes doc on the server, which numbers it and diffs it
// against what it serves, then hands the result to the in-process clients
// and waits for the clients over HTTP; td.mu is held.
func (td *TestData) publishLocked(doc *rules.Document) {
	td.tb.Helper()
	td.remote = slices.DeleteFunc(td.remote, func(c *flags.Client) bool { return c.Status().State == flags.StateClosed })
	var waits []*catchUp
	for _, c := range td.remote {
		waits = append(waits, watch(c))
	}
	defer func() {
		for _, w := range waits {
			w.stop()
		}
	}()
	before := td.srv.Version()
	if err := td.srv.Publish(doc); err != nil {
		td.tb.Fatalf("flagstest: publishing: %v", err)
		return
	}
	want := td.srv.Version()
	if want == before {
		return // nothing changed, nothing published
	}
	served := td.srv.Document()
	td.sinks = slices.DeleteFunc(td.sinks, func(u flags.Updates) bool {
		err := u.Apply(served, Origin)
		if err != nil && !errors.Is(err, flags.ErrClosed) {
			td.tb.Errorf("flagstest: %v", err)
		}
		return err != nil // a closed client is dropped
	})
	// The oracle applied the same change on this goroutine, listeners
	// included: it says whether the clients over HTTP call theirs.
	listeners := td.oracleChanged >= want
	for _, w := range waits {
		if err := w.wait(want, listeners); err != nil {
			td.tb.Fatalf("flagstest: %v", err)
			return
		}
	}
}

// deletions is the change that deletes keys of one kind ("flag", "segment").
func deletions(kind string, keys []string) *changes {
	c := &changes{}
	for _, k := range keys {
		c.entries = append(c.entries, entry{kind: kind, key: k, del: true})
	}
	return c
}

var (
	_ flags.Source = (*TestData)(nil)
	_ flags.Loader = (*TestData)(nil)
)
