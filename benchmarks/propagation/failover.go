package propagation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagstream/flags"
)

// Proxy is a TCP load balancer on 127.0.0.1 in failover mode: each new
// connection goes to the first backend, in order, that accepts one, and its
// bytes are copied both ways until either side closes. It stands for a
// layer-4 balancer (a Kubernetes Service, HAProxy in TCP mode) in front of
// replicas.
type Proxy struct {
	// URL is the proxy's base URL (http://127.0.0.1:PORT).
	URL string

	ln       net.Listener
	mu       sync.Mutex
	backends []string // host:port, in order of preference
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// StartProxy listens on a free port of 127.0.0.1 and forwards to backends
// (host:port).
func StartProxy(backends ...string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("flags: propagation: proxy: %w", err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), ln: ln, backends: backends, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// SetBackends replaces the backends for the connections that follow.
func (p *Proxy) SetBackends(backends ...string) {
	p.mu.Lock()
	p.backends = backends
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// track registers c so that Close can cut it; false when closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) serve(client net.Conn) {
	defer client.Close()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	p.mu.Lock()
	backends := p.backends
	p.mu.Unlock()
	var upstream net.Conn
	for _, b := range backends {
		c, err := net.DialTimeout("tcp", b, 5*time.Second)
		if err == nil {
			upstream = c
			break
		}
	}
	if upstream == nil {
		return // every backend refused: the client sees the connection end
	}
	defer upstream.Close()
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// One side ended: end both, as a balancer does when a backend dies.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	<-done
	<-done
}

// Close stops accepting, cuts every connection and waits for the proxy's
// goroutines.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("flags: propagation: proxy: %w", err)
	}
	return nil
}

// Replica is a server that Failover can kill and start again.
type Replica interface {
	// Addr is the server's host:port.
	Addr() string
	// Kill stops the server the hard way: its connections are cut, with no
	// clean end of stream.
	Kill() error
}

// Addr is the server process's host:port.
func (c *Child) Addr() string { return c.URL[len("http://"):] }

// Kill ends the server process with SIGKILL, as a crash would, and waits
// for it.
func (c *Child) Kill() error {
	if err := c.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("flags: propagation: kill server process: %w", err)
	}
	err := c.Close()
	var exit interface{ ExitCode() int }
	if errors.As(err, &exit) && exit.ExitCode() == -1 { // killed by the signal, as intended
		return nil
	}
	return err
}

// FailoverConfig says what Failover measures.
type FailoverConfig struct {
	// Token is the SDK token the clients send.
	Token string
	// Clients is the number of streaming clients; Failovers the number of
	// failovers measured.
	Clients, Failovers int
	// Start starts a new replica.
	Start func() (Replica, error)
	// HTTPClient carries the streams; default: a client over a transport
	// of its own.
	HTTPClient *http.Client
	// Timeout bounds the wait for every client to be READY, at the start
	// and after the failover; default DefaultReadyTimeout.
	Timeout time.Duration
	// Logger receives the clients' logs; default: discard.
	Logger *slog.Logger
	// Pause and Resume, when both set, are called around the parts that
	// are not measured (starting replicas and clients, closing them).
	Pause, Resume func()
}

// Failover measures how long clients take to be served again when the
// replica they stream from dies. Each failover starts two replicas behind a
// Proxy and connects the clients through it (all to the first replica),
// kills that replica and records each client's time from the kill to its
// next READY status (a stream accepted by the other replica, which then
// sends it a snapshot: another epoch). Clients and replicas are new for
// every failover, so that each one is the clients' first failure (a client
// whose failures are not 60 s apart backs off longer and polls, see
// package stream). Latencies[i*Clients+c] is client c's time in failover i.
func Failover(ctx context.Context, cfg FailoverConfig) (*Result, error) {
	if cfg.Clients < 1 || cfg.Failovers < 0 || cfg.Start == nil {
		return nil, errors.New("flags: propagation: want Clients >= 1, Failovers >= 0 and Start")
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultReadyTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	if cfg.Pause == nil || cfg.Resume == nil {
		cfg.Pause, cfg.Resume = func() {}, func() {}
	}
	res := &Result{}
	for i := range cfg.Failovers {
		lat, err := failoverOnce(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("flags: propagation: failover %d: %w", i, err)
		}
		res.Latencies = append(res.Latencies, lat...)
	}
	return res, nil
}

// failoverOnce is one failover of Failover: called and returning paused.
func failoverOnce(ctx context.Context, cfg FailoverConfig) (lat []time.Duration, err error) {
	var replicas [2]Replica
	defer func() {
		if kerr := killReplicas(replicas[:]); kerr != nil && err == nil {
			err = kerr
		}
	}()
	proxy, err := startReplicas(cfg.Start, &replicas)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()

	var killed atomic.Bool
	var remaining atomic.Int64
	remaining.Store(int64(cfg.Clients))
	done := make(chan struct{})
	clients := make([]*failoverClient, cfg.Clients)
	sdks := make([]*flags.Client, cfg.Clients)
	defer closeClients(sdks)
	for i := range clients {
		c, err := newStreamClient(proxy.URL, cfg.Token, cfg.HTTPClient, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		cl := &failoverClient{}
		clients[i], sdks[i] = cl, c
		c.OnStatus(func(s flags.Status) {
			now := time.Now()
			if killed.Load() && cl.observe(s, now) && remaining.Add(-1) == 0 {
				close(done)
			}
		})
	}
	if err := waitAllReady(ctx, cfg.Timeout, sdks); err != nil {
		return nil, err
	}

	cfg.Resume()
	killed.Store(true)
	start := time.Now()
	err = replicas[0].Kill()
	replicas[0] = nil
	if err == nil {
		err = awaitRecovered(ctx, done, &remaining, cfg)
	}
	cfg.Pause()
	if err != nil {
		return nil, err
	}
	for _, cl := range clients {
		cl.mu.Lock()
		lat = append(lat, cl.at.Sub(start))
		cl.mu.Unlock()
	}
	return lat, nil
}

// startReplicas starts both replicas, filling in rs as it goes (the caller
// kills them), and a Proxy in front of them.
func startReplicas(start func() (Replica, error), rs *[2]Replica) (*Proxy, error) {
	for i := range rs {
		r, err := start()
		rs[i] = r
		if err != nil {
			return nil, err
		}
	}
	return StartProxy(rs[0].Addr(), rs[1].Addr())
}

// failoverClient is what one client's status listener recorded in a
// failover.
type failoverClient struct {
	mu     sync.Mutex
	failed bool      // STALE seen since the kill
	at     time.Time // READY again; zero before
}

// observe records a status seen at now since the kill, and says whether it
// is the client's first READY after a failure.
func (cl *failoverClient) observe(s flags.Status, now time.Time) (recovered bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch {
	case s.State == flags.StateStale:
		cl.failed = true
	case s.State == flags.StateReady && cl.failed && cl.at.IsZero():
		cl.at = now
		return true
	}
	return false
}

// awaitRecovered waits until done is closed (every client READY again),
// for at most cfg.Timeout.
func awaitRecovered(ctx context.Context, done <-chan struct{}, remaining *atomic.Int64, cfg FailoverConfig) error {
	t := time.NewTimer(cfg.Timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("%d of %d clients not READY again within %v", remaining.Load(), cfg.Clients, cfg.Timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// killReplicas kills the replicas still running (nil: none) and returns the
// first error.
func killReplicas(rs []Replica) error {
	var first error
	for _, r := range rs {
		if r != nil {
			if err := r.Kill(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
