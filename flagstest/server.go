package flagstest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/flagstream/flags"
)

// syncTimeout bounds how long Server.Client and a TestData's changes wait
// for a client over HTTP to catch up with the server before failing the
// test. On 127.0.0.1 it takes milliseconds; the bound only turns a hang
// into a failure.
const syncTimeout = 30 * time.Second

// Server serves a TestData over HTTP on 127.0.0.1, with the reference flag
// server (package server): the real wire protocol (SPEC §5), a snapshot on
// GET /v1/stream then one patch per change of the TestData, and GET
// /v1/flags for polling clients. Its clients are real clients of package
// stream, for end-to-end tests of code that streams its flags.
type Server struct {
	// URL is the base URL of the server, http://127.0.0.1:PORT, for
	// stream.Config.BaseURL (no token is needed).
	URL string

	td *TestData
}

// NewServer starts serving td on 127.0.0.1 (through httptest), and stops
// when td's test ends. The changes of td reach the server's clients as
// patches on the wire:
//
//	td := flagstest.New(t, flagstest.Bool("new-checkout", false))
//	srv := flagstest.NewServer(td)
//	client := srv.Client(stream.New(stream.Config{BaseURL: srv.URL})) // streaming, ready
//	td.Set(flagstest.Bool("new-checkout", true)) // returns once client has it
func NewServer(td *TestData) *Server {
	td.tb.Helper()
	td.mu.Lock()
	defer td.mu.Unlock()
	if td.srv == nil {
		td.tb.Fatalf("flagstest: NewServer: TestData not made by flagstest.New")
		return &Server{td: td}
	}
	if td.oracle == nil {
		oracle, err := flags.New(flags.WithSource(oracleSource{td}))
		if err != nil {
			td.tb.Fatalf("flagstest: NewServer: %v", err)
			return &Server{td: td}
		}
		oracle.OnChange(func(c flags.Change) { td.oracleChanged = c.Version })
		td.oracle = oracle
		td.tb.Cleanup(func() { oracle.Close() })
	}
	hs := httptest.NewServer(td.srv)
	td.tb.Cleanup(func() {
		td.srv.Close() // ends the streams, so that hs.Close does not wait for them
		hs.Close()
	})
	return &Server{URL: hs.URL, td: td}
}

// oracleSource feeds the oracle; td.mu is held by NewServer when it loads.
type oracleSource struct{ td *TestData }

func (o oracleSource) Load(u flags.Updates) error {
	if err := u.Apply(o.td.srv.Document(), Origin); err != nil {
		return err
	}
	o.td.sinks = append(o.td.sinks, u)
	return nil
}

func (o oracleSource) Run(ctx context.Context, u flags.Updates) error { return o.td.Run(ctx, u) }

// Client returns a client of the server, fed by src — a source reading
// s.URL, usually package stream's:
//
//	client := srv.Client(stream.New(stream.Config{BaseURL: srv.URL}))
//
// — built with opts as well (flags.WithClock, flags.WithLogger...), and
// ready: it holds the server's current flags, its Status is READY, and the
// OnChange delivery of its first snapshot is over, so a listener
// registered now sees only later changes. The TestData's changes return
// once it has them too (a polling source at its next poll: give it a short
// PollInterval). It is closed when the test ends, and logs to tb.Log unless
// opts give it a logger. Taking the source, rather
// than building it, keeps package flagstest free of the stream client and
// its dependencies: a test that wants them imports package stream.
func (s *Server) Client(src flags.Source, opts ...flags.Option) *flags.Client {
	tb := s.td.tb
	tb.Helper()
	all := append([]flags.Option{flags.WithLogger(testLogger(tb))}, opts...)
	client, err := flags.New(append(all, flags.WithSource(src))...)
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
	s.td.mu.Lock()
	s.td.remote = append(s.td.remote, client)
	s.td.mu.Unlock()
	return client
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
