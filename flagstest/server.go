package flagstest

import (
	"context"
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
// FromJSON or FromFile.
//
//	srv := flagstest.NewServer(t, flagstest.Bool("new-checkout", false))
//	client := srv.Client(t)                        // streaming, ready
//	srv.Set(flagstest.Bool("new-checkout", true))  // returns once client has it
func NewServer(tb testing.TB, items ...Item) *Server {
	tb.Helper()
	doc, err := apply(nil, collect(items), nil)
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
// source), and ready: it holds the server's current flags. It is closed
// when tb's test ends.
func (s *Server) Client(tb testing.TB, opts ...flags.Option) *flags.Client {
	tb.Helper()
	client, err := flags.New(append([]flags.Option{flags.WithStream(stream.Config{BaseURL: s.URL})}, opts...)...)
	if err != nil {
		tb.Fatalf("flagstest: Server.Client: %v", err)
		return nil
	}
	tb.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if err := client.WaitReady(ctx); err != nil {
		tb.Fatalf("flagstest: Server.Client: %v", err)
		return client
	}
	s.mu.Lock()
	s.clients = append(s.clients, client)
	s.mu.Unlock()
	return client
}

// Set adds or replaces flags and segments and publishes the change as one
// patch (Server.Publish). The server numbers versions itself: Version
// calls are ignored. Set returns once every client made by Client and not
// closed evaluates with the change (their OnChange listeners may still be
// running). A builder mistake fails the test and publishes nothing.
func (s *Server) Set(items ...Item) {
	s.tb.Helper()
	s.publish(collect(items))
}

// Delete removes flags and publishes the change as one patch, like Set.
func (s *Server) Delete(flagKeys ...string) {
	s.tb.Helper()
	c := &changes{}
	for _, k := range flagKeys {
		c.entries = append(c.entries, entry{kind: "flag", key: k, del: true})
	}
	s.publish(c)
}

// DeleteSegment removes segments and publishes the change, like Set.
func (s *Server) DeleteSegment(segmentKeys ...string) {
	s.tb.Helper()
	c := &changes{}
	for _, k := range segmentKeys {
		c.entries = append(c.entries, entry{kind: "segment", key: k, del: true})
	}
	s.publish(c)
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
	doc, err := apply(s.Flags.Document(), c, nil)
	if err != nil {
		s.tb.Fatalf("%v", err)
		return
	}
	s.publishLocked(doc)
}

// publishLocked publishes doc and waits for the clients; s.mu is held.
func (s *Server) publishLocked(doc *rules.Document) {
	s.tb.Helper()
	if err := s.Flags.Publish(doc); err != nil {
		s.tb.Fatalf("flagstest: publishing: %v", err)
		return
	}
	want := s.Flags.Version()
	for _, c := range s.clients {
		if err := waitVersion(c, want); err != nil {
			s.tb.Fatalf("flagstest: %v", err)
			return
		}
	}
}

// waitVersion waits until c holds snapshot version want or later, or is
// closed.
func waitVersion(c *flags.Client, want int64) error {
	reached := make(chan struct{})
	var once sync.Once
	done := func(st flags.Status) {
		if st.Version >= want || st.State == flags.StateClosed {
			once.Do(func() { close(reached) })
		}
	}
	unregister := c.OnStatus(done)
	defer unregister()
	done(c.Status())
	select {
	case <-reached:
		return nil
	case <-time.After(syncTimeout):
		st := c.Status()
		return fmt.Errorf("a client did not reach snapshot version %d within %v: it is %s at version %d (last error: %v)",
			want, syncTimeout, st.State, st.Version, st.Err)
	}
}
