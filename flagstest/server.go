package flagstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
)

// syncTimeout bounds how long Server.Client and Server.Set wait for a
// client to catch up with the server before failing the test. On 127.0.0.1
// it takes milliseconds; the bound only turns a hang into a failure.
const syncTimeout = 30 * time.Second

// Server is the reference flag server (package server) running in-process
// on 127.0.0.1, for end-to-end tests of streaming clients. It serves the
// real wire protocol (SPEC §5): a snapshot, then one patch per Set.
type Server struct {
	// URL is the base URL of the server, http://127.0.0.1:PORT, for
	// stream.Config.BaseURL.
	URL string
	// Flags is the reference server itself: its Handler, Publish, Version...
	Flags *server.Server

	tb      testing.TB
	mu      sync.Mutex // serializes changes
	clients []*flags.Client
}

// NewServer starts a reference server serving items, in-process, on
// 127.0.0.1 (through httptest), and stops it when the test ends. A builder
// mistake fails the test as in New. Give it a whole document with
// FromJSON or FromFile. As with New, the snapshot version starts at 1 (or a
// document item's version) and built flags and segments at version 1; from
// then on the server numbers them (SPEC §1).
//
//	srv := flagstest.NewServer(t, flagstest.Bool("new-checkout", false))
//	client := srv.Client(t)                        // streaming, ready
//	srv.Set(flagstest.Bool("new-checkout", true))  // returns once client has it
func NewServer(tb testing.TB, items ...Item) *Server {
	tb.Helper()
	c := collect(items)
	if c.version == nil {
		one := int64(1)
		c.version = &one
	}
	doc, err := apply(nil, c, func(string, string) int64 { return 1 })
	if err != nil {
		tb.Fatalf("%v", err)
		return &Server{tb: tb}
	}
	fs, err := server.New(server.NewMemoryStore(doc), server.Options{})
	if err != nil {
		tb.Fatalf("flagstest: NewServer: %v", err)
		return &Server{tb: tb}
	}
	hs := httptest.NewServer(fs)
	tb.Cleanup(func() {
		fs.Close() // ends the streams, so that hs.Close does not wait for them
		hs.Close()
	})
	return &Server{URL: hs.URL, Flags: fs, tb: tb}
}

// Client returns a streaming *flags.Client connected to the server, built
// with opts as well (flags.WithClock, flags.WithLogger...; not another
// source), and ready: it holds the server's current flags, its Status is
// READY, and the OnChange delivery of its first snapshot is over, so a
// listener registered now sees only later changes. It is closed when tb's
// test ends.
func (s *Server) Client(tb testing.TB, opts ...flags.Option) *flags.Client {
	tb.Helper()
	client, err := flags.New(append([]flags.Option{flags.WithSource(stream.New(stream.Config{BaseURL: s.URL}))}, opts...)...)
	if err != nil {
		tb.Fatalf("flagstest: Server.Client: %v", err)
		return nil
	}
	tb.Cleanup(func() { client.Close() })
	w := watch(client)
	defer w.stop()
	// WaitReady returns as soon as the first snapshot is stored, which may
	// be before the client has published its Status and called its OnChange
	// listeners. Our listeners were registered before the snapshot was
	// stored, unless Snapshot is already set: then wait for its Status only
	// (our status listener was registered before the status was stored, or
	// the status is already there).
	early := client.Snapshot() != nil
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if err := client.WaitReady(ctx); err != nil {
		tb.Fatalf("flagstest: Server.Client: %v", err)
		return client
	}
	if err := w.waitFor("its first snapshot", func() bool {
		if early {
			// The client's own Status, not w.state: watch's initial read of
			// Status can land after the READY its listener delivered and
			// put INITIALIZING back. Every later change signals w.
			return client.Status().State != flags.StateInitializing
		}
		return w.changes > 0
	}); err != nil {
		tb.Fatalf("flagstest: Server.Client: %v", err)
		return client
	}
	s.mu.Lock()
	s.clients = append(s.clients, client)
	s.mu.Unlock()
	return client
}

// Set adds or replaces flags and segments and publishes the change as one
// patch (Server.Publish); a Set that changes nothing publishes nothing. The
// server numbers versions itself: Version calls are ignored. Set returns
// once every client made by Client (and not closed) evaluates with the
// change and has run its OnChange listeners. A builder mistake fails the
// test and publishes nothing. Like t.Fatalf, it must be called from the
// test's goroutine.
func (s *Server) Set(items ...Item) {
	s.tb.Helper()
	s.publish(collect(items))
}

// Delete removes flags and publishes the change as one patch, like Set.
func (s *Server) Delete(flagKeys ...string) {
	s.tb.Helper()
	s.publish(deletions("flag", flagKeys))
}

// DeleteSegment removes segments and publishes the change, like Set.
func (s *Server) DeleteSegment(segmentKeys ...string) {
	s.tb.Helper()
	s.publish(deletions("segment", segmentKeys))
}

// SetDocument replaces everything the server serves with data, a JSON
// document, and publishes the difference as one patch, like Set.
func (s *Server) SetDocument(data []byte) {
	s.tb.Helper()
	doc, err := rules.ParseDocument(data)
	if err != nil {
		s.tb.Fatalf("flagstest: Server.SetDocument: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked(doc)
}

func (s *Server) publish(c *changes) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	// A new key starts at version 1, as in NewServer; the server numbers
	// every other change itself.
	doc, err := apply(s.Flags.Document(), c, func(string, string) int64 { return 1 })
	if err != nil {
		s.tb.Fatalf("%v", err)
		return
	}
	s.publishLocked(doc)
}

// publishLocked publishes doc and waits for the clients; s.mu is held.
func (s *Server) publishLocked(doc *rules.Document) {
	s.tb.Helper()
	var waits []*catchUp
	for _, c := range s.clients {
		if c.Status().State != flags.StateClosed {
			waits = append(waits, watch(c))
		}
	}
	defer func() {
		for _, w := range waits {
			w.stop()
		}
	}()
	prev := s.Flags.Document()
	if err := s.Flags.Publish(doc); err != nil {
		s.tb.Fatalf("flagstest: publishing: %v", err)
		return
	}
	next := s.Flags.Document()
	want, listeners := s.Flags.Version(), listenersCalled(prev, next)
	for _, w := range waits {
		if err := w.wait(want, listeners); err != nil {
			s.tb.Fatalf("flagstest: %v", err)
			return
		}
	}
}

// catchUp follows one client's Status and changes. Its OnChange listener
// is registered before the change it waits for is published, so it runs
// after every listener the test registered: when it has seen the change,
// so have they.
type catchUp struct {
	c          *flags.Client
	mu         sync.Mutex
	state      flags.State
	version    int64         // the highest snapshot version in force
	changed    int64         // the highest version OnChange delivered
	changes    int           // how many changes OnChange delivered
	signal     chan struct{} // closed and replaced on every update
	unregister []func()
}

func watch(c *flags.Client) *catchUp {
	w := &catchUp{c: c, signal: make(chan struct{})}
	onStatus := func(st flags.Status) {
		w.update(func() {
			w.version = max(w.version, st.Version)
			if w.state != flags.StateClosed {
				w.state = st.State
			}
		})
	}
	w.unregister = append(w.unregister,
		c.OnStatus(onStatus),
		c.OnChange(func(ch flags.Change) {
			w.update(func() { w.changed, w.changes = max(w.changed, ch.Version), w.changes+1 })
		}),
	)
	onStatus(c.Status())
	return w
}

func (w *catchUp) update(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
	close(w.signal)
	w.signal = make(chan struct{})
}

func (w *catchUp) stop() {
	for _, f := range w.unregister {
		f()
	}
}

// wait returns once the client holds version want and, when listeners is
// true, has delivered it to its OnChange listeners; or once it is closed.
func (w *catchUp) wait(want int64, listeners bool) error {
	return w.waitFor(fmt.Sprintf("snapshot version %d", want), func() bool {
		return w.state == flags.StateClosed || w.version >= want && (!listeners || w.changed >= want)
	})
}

// waitFor returns once done, called with w.mu held, is true.
func (w *catchUp) waitFor(what string, done func() bool) error {
	timeout := time.NewTimer(syncTimeout)
	defer timeout.Stop()
	for {
		w.mu.Lock()
		ok, signal := done(), w.signal
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-signal:
		case <-timeout.C:
			st := w.c.Status()
			return fmt.Errorf("a client did not apply %s within %v: it is %s at version %d (last error: %v)",
				what, syncTimeout, st.State, st.Version, st.Err)
		}
	}
}

// listenersCalled reports whether a client going from prev to next calls
// its OnChange listeners, by the rule flags.Client follows: when a flag was
// added, removed or edited, or a flag's rule uses (directly or through
// other segments) a segment that was.
func listenersCalled(prev, next *rules.Document) bool {
	if prev == next {
		return false
	}
	if differ(prev.Flags, next.Flags, nil) {
		return true
	}
	changed := map[string]bool{}
	if !differ(prev.Segments, next.Segments, changed) {
		return false
	}
	snap := rules.Compile(next)
	uses := func(rs [][]rules.Clause) bool {
		for _, cs := range rs {
			for i := range cs {
				if cs[i].Op != rules.OpInSegment {
					continue
				}
				for _, k := range cs[i].Segments() {
					if changed[k] {
						return true
					}
				}
			}
		}
		return false
	}
	for grew := true; grew; {
		grew = false
		for k := range next.Segments {
			seg := snap.Segment(k)
			if seg == nil || changed[k] {
				continue
			}
			var rs [][]rules.Clause
			for _, r := range seg.Rules {
				rs = append(rs, r.Clauses)
			}
			if uses(rs) {
				changed[k], grew = true, true
			}
		}
	}
	for _, k := range snap.FlagKeys() {
		var rs [][]rules.Clause
		for _, r := range snap.Flag(k).Rules {
			rs = append(rs, r.Clauses)
		}
		if uses(rs) {
			return true
		}
	}
	return false
}

// differ reports whether a and b hold different keys or bytes, recording
// the keys that differ in keys when it is not nil.
func differ(a, b map[string]json.RawMessage, keys map[string]bool) bool {
	found := false
	for k, raw := range b {
		if old, ok := a[k]; !ok || !bytes.Equal(old, raw) {
			if keys == nil {
				return true
			}
			keys[k], found = true, true
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			if keys == nil {
				return true
			}
			keys[k], found = true, true
		}
	}
	return found
}
