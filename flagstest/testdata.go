package flagstest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
)

// Origin is the source name TestData's clients report in flags.Status.
const Origin = "flagstest"

// TestData holds the flags of one test and feeds them to real clients. Set,
// Delete and SetDocument are synchronous: when they return, every client of
// the TestData evaluates with the change and its OnChange listeners have
// run. Each TestData is independent (there is no global state), so tests
// running in parallel may give the same flag key different values.
//
// Its clients may evaluate on any goroutine while the test changes the
// flags. Call its methods from the test's goroutine (they may call
// tb.Fatalf), and never from an OnChange or OnStatus listener of one of its
// clients: the listener runs while the change is being applied.
type TestData struct {
	// Client is a real *flags.Client fed by this TestData, ready when New
	// returns and closed when the test ends.
	Client *flags.Client

	tb    testing.TB
	mu    sync.Mutex // serializes changes, so every client sees them in one order
	doc   *rules.Document
	sinks []flags.Updates
}

// New returns a TestData holding items and a ready client reading them:
//
//	td := flagstest.New(t, flagstest.Bool("new-checkout", true))
//	if !td.Client.Bool(ctx, "new-checkout", user, false) { ... }
//
// A builder mistake (a bad variation index, weights that do not add up to
// 100000, an unknown operator...) fails the test with a message naming the
// flag and the field. The snapshot version starts at 1 (or at the version
// of a Document, FromJSON or FromFile item, when given) and grows by one
// with every change. Clients are closed by tb.Cleanup.
func New(tb testing.TB, items ...Item) *TestData {
	tb.Helper()
	td := &TestData{tb: tb, doc: &rules.Document{}}
	c := collect(items)
	if c.version == nil {
		one := int64(1)
		c.version = &one
	}
	doc, err := apply(nil, c, func(string, string) int64 { return 1 })
	if err != nil {
		tb.Fatalf("%v", err)
		return td
	}
	td.doc = doc
	td.Client = td.NewClient()
	return td
}

// NewClient returns one more ready client fed by td, built with opts as
// well (flags.WithClock, flags.WithLogger...; not another source). It is
// closed by tb.Cleanup. Use it when the code under test needs client
// options; td.Client is there either way.
func (td *TestData) NewClient(opts ...flags.Option) *flags.Client {
	td.tb.Helper()
	src := &source{started: make(chan flags.Updates, 1)}
	client, err := flags.New(append([]flags.Option{flags.WithSource(src)}, opts...)...)
	if err != nil {
		td.tb.Fatalf("flagstest: %v", err)
		return nil
	}
	td.tb.Cleanup(func() { client.Close() })
	u := <-src.started // Run is started by flags.New; it hands us its Updates at once
	td.mu.Lock()
	defer td.mu.Unlock()
	if err := u.Apply(td.doc, Origin); err != nil {
		td.tb.Fatalf("flagstest: %v", err)
		return client
	}
	td.sinks = append(td.sinks, u)
	return client
}

// source is the flags.Source of a TestData client: it hands its Updates to
// the TestData and waits for the client to close.
type source struct {
	started chan flags.Updates
}

func (s *source) Run(ctx context.Context, u flags.Updates) error {
	s.started <- u
	<-ctx.Done()
	return nil
}

// Set adds or replaces flags and segments (a whole-document item adds all
// of its own). A flag or segment without an explicit Version gets the
// version after the one it had, 1 if new; the snapshot version grows by one
// (or jumps to a Document item's version, when higher). A builder mistake
// fails the test and changes nothing. Like t.Fatalf, Set, Delete and
// SetDocument must be called from the test's goroutine.
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
// with FromJSON, a malformed flag in it is kept malformed. The snapshot
// version grows by one (or jumps to the document's, when higher).
func (td *TestData) SetDocument(data []byte) {
	td.tb.Helper()
	doc, err := rules.ParseDocument(data)
	if err != nil {
		td.tb.Fatalf("flagstest: SetDocument: %v", err)
		return
	}
	td.mu.Lock()
	defer td.mu.Unlock()
	next := &rules.Document{Version: max(td.doc.Version+1, doc.Version), Flags: doc.Flags, Segments: doc.Segments}
	td.install(next)
}

// Document returns the document the clients currently hold. It is shared:
// do not modify it.
func (td *TestData) Document() *rules.Document {
	td.mu.Lock()
	defer td.mu.Unlock()
	return td.doc
}

// Version returns the current snapshot version.
func (td *TestData) Version() int64 { return td.Document().Version }

// Fail makes the clients report a failing source: their state turns STALE
// (FATAL when fatal is true) with err, and they keep serving the flags they
// have, as a client whose flag server is down does. Recover undoes it.
func (td *TestData) Fail(err error, fatal bool) {
	td.mu.Lock()
	defer td.mu.Unlock()
	for _, u := range td.sinks {
		u.Failed(Origin, err, fatal)
	}
}

// Recover makes the clients report a healthy source again (READY), unless
// Fail made them FATAL.
func (td *TestData) Recover() {
	td.mu.Lock()
	defer td.mu.Unlock()
	for _, u := range td.sinks {
		u.Healthy(Origin)
	}
}

// change applies c on top of the current document and installs the result.
func (td *TestData) change(c *changes) {
	td.tb.Helper()
	td.mu.Lock()
	defer td.mu.Unlock()
	base := td.doc
	number := func(kind, key string) int64 {
		m := base.Flags
		if kind == "segment" {
			m = base.Segments
		}
		if raw, ok := m[key]; ok {
			return versionIn(raw) + 1
		}
		return 1
	}
	next, err := apply(base, c, number)
	if err != nil {
		td.tb.Fatalf("%v", err)
		return
	}
	if c.version == nil || *c.version <= base.Version {
		next.Version = base.Version + 1
	}
	td.install(next)
}

// install hands doc to every client; td.mu is held.
func (td *TestData) install(doc *rules.Document) {
	td.tb.Helper()
	td.doc = doc
	td.sinks = slices.DeleteFunc(td.sinks, func(u flags.Updates) bool {
		err := u.Apply(doc, Origin)
		if err != nil && !errors.Is(err, flags.ErrClosed) {
			td.tb.Errorf("flagstest: %v", err)
		}
		return err != nil // a closed client is dropped
	})
}

// deletions is the change that deletes keys of one kind ("flag", "segment").
func deletions(kind string, keys []string) *changes {
	c := &changes{}
	for _, k := range keys {
		c.entries = append(c.entries, entry{kind: kind, key: k, del: true})
	}
	return c
}
