// Package propagation measures how fast a change made on one flagstream
// reference server reaches many streaming SDK clients, and how much memory
// the server spends per connected client. It backs the numbers quoted in
// docs/DEPLOYMENT.md. It lives in the benchmarks module, outside the
// library's module, because its API is a measuring tool, not something users
// build on. Its benchmarks and checks run from the benchmarks directory:
// `go test ./propagation` (see the Benchmark functions for their flags).
//
// # Method
//
// Run connects Config.Clients real flags.Client values (stream.New) to
// a running server, waits until every one is READY, then makes
// Config.Changes changes one after another. Each change is an admin PUT
// (SPEC §5) that flips the fallthrough of one bool flag; the clock starts
// just before the request is sent (the server answers after it has
// published the patch) and stops, per client, in that client's OnChange
// listener, after the new snapshot is in force. The next change is made
// once every client has applied the previous one, so the numbers are the
// latency of one change fanned out to all clients, not of a queue.
//
// Server memory is measured in a process of its own (see ServeChild): the
// clients and the server do not share a heap, so the server's share is its
// own heap (after GC) plus its goroutine stacks with the clients connected,
// minus the same before they connected, divided by the number of clients.
package propagation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/stream"
)

// Defaults of Config.
const (
	DefaultFlags         = 20
	DefaultChangeTimeout = 30 * time.Second
	DefaultReadyTimeout  = 60 * time.Second
)

// FlagKey is the key of the i-th flag of Document.
func FlagKey(i int) string { return fmt.Sprintf("flag-%03d", i) }

// FlagJSON is a bool flag, on, serving variation 1 (true) to everyone when
// value is true and variation 0 (false) otherwise.
func FlagJSON(value bool) json.RawMessage {
	v := 0
	if value {
		v = 1
	}
	return json.RawMessage(fmt.Sprintf(`{"on":true,"variations":[false,true],"offVariation":0,"fallthrough":{"variation":%d}}`, v))
}

// Document is the document the measurements start from: n bool flags
// (FlagKey(0) … FlagKey(n-1)), all serving false.
func Document(n int) *rules.Document {
	doc := &rules.Document{Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	for i := range n {
		doc.Flags[FlagKey(i)] = FlagJSON(false)
	}
	return doc
}

// ChangeOf says what the k-th change (from 0) of Run does: which flag it
// flips and the value that flag serves afterwards. Flags are flipped round
// robin, starting from false, so every change changes an evaluation.
func ChangeOf(k, nflags int) (key string, value bool) {
	return FlagKey(k % nflags), (k/nflags)%2 == 0
}

// Config says what Run measures.
type Config struct {
	// BaseURL is the server's base URL (http://127.0.0.1:PORT).
	BaseURL string
	// Token is the SDK token the clients send; AdminToken authorizes the
	// admin PUTs that make the changes. The server must serve Document(Flags).
	Token, AdminToken string
	// Clients is the number of streaming clients; Changes the number of
	// changes made.
	Clients, Changes int
	// Flags is the number of flags of the document; default DefaultFlags.
	Flags int
	// HTTPClient sends the admin requests and carries the streams; default:
	// a client over a transport of its own.
	HTTPClient *http.Client
	// ReadyTimeout bounds the wait for every client to be READY;
	// ChangeTimeout the wait for every client to apply one change.
	ReadyTimeout, ChangeTimeout time.Duration
	// Logger receives the clients' logs; default: discard.
	Logger *slog.Logger
	// Connected, when set, is called once every client is READY, before
	// the first change; Applied once every client has applied the last
	// change, before the clients are closed (to measure memory or time
	// the changes alone, for instance). An error ends Run with it.
	Connected, Applied func() error
}

// Observation is one change a client's OnChange listener saw: the snapshot
// version it was told of, and the value the client then served for the flag
// that change was about.
type Observation struct {
	Version int64
	Flag    string
	Value   bool
}

// Result is what Run measured.
type Result struct {
	// BaseVersion is the snapshot version the clients started from; change
	// k (from 0) is published as BaseVersion+k+1.
	BaseVersion int64
	// Latencies holds Clients × Changes durations: Latencies[c*Changes+k]
	// is the time from the admin PUT of change k to client c applying it.
	Latencies []time.Duration
	// Observations[c] lists, in order, what client c's OnChange listener saw
	// after it was READY.
	Observations [][]Observation
	// ClientBytes is the heap plus goroutine stacks of this process per
	// client, measured with the clients connected against before: the
	// SDK's cost per client when the server runs in another process (an
	// in-process server's share is counted too otherwise).
	ClientBytes float64
}

// Percentile returns the p-th percentile (0 < p <= 100, nearest rank) of
// the latencies, 0 when there are none.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// client is one streaming client and what its listener recorded.
type client struct {
	c    *flags.Client
	mu   sync.Mutex // guards obs and at against the reader of the Result
	obs  []Observation
	at   []time.Time // when each change was applied
	next int         // first change not yet applied
}

// withDefaults checks cfg and fills in its defaults; cleanup closes the
// idle connections of the HTTP client it made, if any.
func (cfg Config) withDefaults() (_ Config, cleanup func(), _ error) {
	if cfg.Clients < 1 || cfg.Changes < 0 {
		return cfg, nil, errors.New("flags: propagation: want Clients >= 1 and Changes >= 0")
	}
	if cfg.Flags == 0 {
		cfg.Flags = DefaultFlags
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.ChangeTimeout == 0 {
		cfg.ChangeTimeout = DefaultChangeTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cleanup = func() {}
	if cfg.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		cfg.HTTPClient, cleanup = &http.Client{Transport: tr}, tr.CloseIdleConnections
	}
	return cfg, cleanup, nil
}

// Run connects the clients, makes the changes and returns what it measured.
// It fails when a client is not READY in time, when an admin PUT fails or
// publishes another version than expected, or when some client has not
// applied a change within ChangeTimeout. It closes its clients before it
// returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, cleanup, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	before := memInUse()

	// remaining[k] counts the clients that have not applied change k yet;
	// done[k] is closed by the one that brings it to zero.
	remaining := make([]atomic.Int64, cfg.Changes)
	done := make([]chan struct{}, cfg.Changes)
	for k := range done {
		remaining[k].Store(int64(cfg.Clients))
		done[k] = make(chan struct{})
	}
	var base atomic.Int64
	base.Store(-1) // no listener records anything before the base is known

	clients := make([]*client, cfg.Clients)
	defer func() {
		var wg sync.WaitGroup
		for _, cl := range clients {
			if cl != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = cl.c.Close()
				}()
			}
		}
		wg.Wait()
	}()
	ec := flags.NewContext("propagation").Build()
	for i := range clients {
		c, err := flags.New(flags.WithLogger(cfg.Logger), flags.WithSource(stream.New(stream.Config{
			BaseURL: cfg.BaseURL, Token: cfg.Token, HTTPClient: cfg.HTTPClient, Logger: cfg.Logger})))
		if err != nil {
			return nil, fmt.Errorf("flags: propagation: client %d: %w", i, err)
		}
		cl := &client{c: c, at: make([]time.Time, cfg.Changes)}
		clients[i] = cl
		c.OnChange(func(ch flags.Change) {
			now := time.Now()
			b := base.Load()
			if b < 0 || ch.Version <= b {
				return
			}
			cl.mu.Lock()
			for _, key := range ch.Flags {
				cl.obs = append(cl.obs, Observation{Version: ch.Version, Flag: key, Value: c.Bool(context.Background(), key, ec, false)})
			}
			var finished []int
			for ; cl.next < cfg.Changes && b+int64(cl.next)+1 <= ch.Version; cl.next++ {
				cl.at[cl.next] = now
				finished = append(finished, cl.next)
			}
			cl.mu.Unlock()
			for _, k := range finished {
				if remaining[k].Add(-1) == 0 {
					close(done[k])
				}
			}
		})
	}

	readyCtx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	for i, cl := range clients {
		if err := cl.c.WaitReady(readyCtx); err != nil {
			return nil, fmt.Errorf("flags: propagation: client %d not ready: %w", i, err)
		}
	}
	res := &Result{BaseVersion: clients[0].c.Status().Version}
	for i, cl := range clients {
		if v := cl.c.Status().Version; v != res.BaseVersion {
			return nil, fmt.Errorf("flags: propagation: client %d is at version %d, client 0 at %d: the server changed while they connected", i, v, res.BaseVersion)
		}
	}
	base.Store(res.BaseVersion)
	res.ClientBytes = float64(memInUse()-before) / float64(cfg.Clients)
	if cfg.Connected != nil {
		if err := cfg.Connected(); err != nil {
			return nil, err
		}
	}

	starts := make([]time.Time, cfg.Changes)
	for k := range cfg.Changes {
		key, value := ChangeOf(k, cfg.Flags)
		want := res.BaseVersion + int64(k) + 1
		starts[k] = time.Now()
		if err := put(ctx, cfg, key, FlagJSON(value), want); err != nil {
			return nil, fmt.Errorf("flags: propagation: change %d: %w", k, err)
		}
		timer := time.NewTimer(cfg.ChangeTimeout)
		select {
		case <-done[k]:
			timer.Stop()
		case <-timer.C:
			return nil, fmt.Errorf("flags: propagation: change %d (version %d): %d of %d clients did not apply it within %v",
				k, want, remaining[k].Load(), cfg.Clients, cfg.ChangeTimeout)
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("flags: propagation: %w", ctx.Err())
		}
	}

	if cfg.Applied != nil {
		if err := cfg.Applied(); err != nil {
			return nil, err
		}
	}
	res.Latencies = make([]time.Duration, 0, cfg.Clients*cfg.Changes)
	res.Observations = make([][]Observation, cfg.Clients)
	for i, cl := range clients {
		cl.mu.Lock()
		for k := range cfg.Changes {
			res.Latencies = append(res.Latencies, cl.at[k].Sub(starts[k]))
		}
		res.Observations[i] = slices.Clone(cl.obs)
		cl.mu.Unlock()
	}
	return res, nil
}

// put makes one admin change and checks that the server published it as
// version want.
func put(ctx context.Context, cfg Config, key string, body json.RawMessage, want int64) error {
	url := strings.TrimSuffix(cfg.BaseURL, "/") + "/v1/admin/flags/" + key
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("PUT %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s: %s", url, resp.Status, bytes.TrimSpace(data))
	}
	var patch rules.Patch
	if err := json.Unmarshal(data, &patch); err != nil {
		return fmt.Errorf("PUT %s: answer: %w", url, err)
	}
	if patch.Version != want {
		return fmt.Errorf("PUT %s: published version %d, want %d (another writer?)", url, patch.Version, want)
	}
	return nil
}

// MemStats is a process's memory in use, after a garbage collection.
type MemStats struct {
	HeapAlloc  uint64 `json:"heapAlloc"`  // bytes of live heap objects
	StackInuse uint64 `json:"stackInuse"` // bytes of goroutine stacks
	Goroutines int    `json:"goroutines"`
}

// Total is the heap plus the stacks.
func (m MemStats) Total() uint64 { return m.HeapAlloc + m.StackInuse }

// ReadMemStats collects garbage (twice, so that finalizers have run) and
// reads this process's memory in use.
func ReadMemStats() MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return MemStats{HeapAlloc: ms.HeapAlloc, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
}

func memInUse() int64 { return int64(ReadMemStats().Total()) }
