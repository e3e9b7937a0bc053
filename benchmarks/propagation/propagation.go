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
	"cmp"
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
	c   *flags.Client
	mu  sync.Mutex // guards obs and arr against the reader of the Result
	obs []Observation
	arr arrivals
}

// arrivals records when each change reached one client or reader. Its
// owner guards it.
type arrivals struct {
	at   []time.Time // when each change was applied
	next int         // first change not yet applied
}

// reach records at now every change not yet recorded whose version (base+k+1)
// is at most version, and returns their indices.
func (a *arrivals) reach(base, version int64, now time.Time) (finished []int) {
	for ; a.next < len(a.at) && base+int64(a.next)+1 <= version; a.next++ {
		a.at[a.next] = now
		finished = append(finished, a.next)
	}
	return finished
}

// appendLatencies appends to dst, for each change k, the time from starts[k]
// to its arrival.
func (a *arrivals) appendLatencies(dst []time.Duration, starts []time.Time) []time.Duration {
	for k := range starts {
		dst = append(dst, a.at[k].Sub(starts[k]))
	}
	return dst
}

// tracker counts, per change, the clients that have not applied it yet:
// done[k] is closed by the one that brings remaining[k] to zero.
type tracker struct {
	remaining []atomic.Int64
	done      []chan struct{}
}

func newTracker(changes, clients int) *tracker {
	t := &tracker{remaining: make([]atomic.Int64, changes), done: make([]chan struct{}, changes)}
	for k := range t.done {
		t.remaining[k].Store(int64(clients))
		t.done[k] = make(chan struct{})
	}
	return t
}

// applied counts one more client as having applied each of the changes ks.
func (t *tracker) applied(ks ...int) {
	for _, k := range ks {
		if t.remaining[k].Add(-1) == 0 {
			close(t.done[k])
		}
	}
}

// withDefaults checks cfg and fills in its defaults; cleanup closes the
// idle connections of the HTTP client it made, if any.
func (cfg Config) withDefaults() (_ Config, cleanup func(), _ error) {
	if cfg.Clients < 1 || cfg.Changes < 0 {
		return cfg, nil, errors.New("flags: propagation: want Clients >= 1 and Changes >= 0")
	}
	cfg.Flags = cmp.Or(cfg.Flags, DefaultFlags)
	cfg.ReadyTimeout = cmp.Or(cfg.ReadyTimeout, DefaultReadyTimeout)
	cfg.ChangeTimeout = cmp.Or(cfg.ChangeTimeout, DefaultChangeTimeout)
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

	tr := newTracker(cfg.Changes, cfg.Clients)
	var base atomic.Int64
	base.Store(-1) // no listener records anything before the base is known
	clients := make([]*client, cfg.Clients)
	sdks := make([]*flags.Client, cfg.Clients)
	defer closeClients(sdks)
	ec := flags.NewContext("propagation").Build()
	for i := range clients {
		c, err := newStreamClient(cfg.BaseURL, cfg.Token, cfg.HTTPClient, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("flags: propagation: client %d: %w", i, err)
		}
		cl := &client{c: c, arr: arrivals{at: make([]time.Time, cfg.Changes)}}
		clients[i], sdks[i] = cl, c
		c.OnChange(func(ch flags.Change) { cl.observe(ch, &base, ec, tr) })
	}

	if err := waitAllReady(ctx, cfg.ReadyTimeout, sdks); err != nil {
		return nil, fmt.Errorf("flags: propagation: %w", err)
	}
	res := &Result{}
	if res.BaseVersion, err = commonVersion(sdks); err != nil {
		return nil, err
	}
	base.Store(res.BaseVersion)
	res.ClientBytes = float64(memInUse()-before) / float64(cfg.Clients)
	if err := callHook(cfg.Connected); err != nil {
		return nil, err
	}
	starts, err := makeChanges(ctx, cfg, res.BaseVersion, func(k int, want int64) error {
		return tr.awaitClients(ctx, k, want, cfg)
	})
	if err != nil {
		return nil, err
	}
	if err := callHook(cfg.Applied); err != nil {
		return nil, err
	}
	res.Latencies = make([]time.Duration, 0, cfg.Clients*cfg.Changes)
	res.Observations = make([][]Observation, cfg.Clients)
	for i, cl := range clients {
		cl.mu.Lock()
		res.Latencies = cl.arr.appendLatencies(res.Latencies, starts)
		res.Observations[i] = slices.Clone(cl.obs)
		cl.mu.Unlock()
	}
	return res, nil
}

// observe is cl's OnChange listener: once the base version is known, it
// records what the change says and when each change up to its version
// arrived, and tells tr.
func (cl *client) observe(ch flags.Change, base *atomic.Int64, ec flags.Context, tr *tracker) {
	now := time.Now()
	b := base.Load()
	if b < 0 || ch.Version <= b {
		return
	}
	cl.mu.Lock()
	for _, key := range ch.Flags {
		cl.obs = append(cl.obs, Observation{Version: ch.Version, Flag: key, Value: cl.c.Bool(context.Background(), key, ec, false)})
	}
	finished := cl.arr.reach(b, ch.Version, now)
	cl.mu.Unlock()
	tr.applied(finished...)
}

// awaitClients waits until every client has applied change k (published as
// version want), for at most cfg.ChangeTimeout.
func (t *tracker) awaitClients(ctx context.Context, k int, want int64, cfg Config) error {
	timer := time.NewTimer(cfg.ChangeTimeout)
	defer timer.Stop()
	select {
	case <-t.done[k]:
		return nil
	case <-timer.C:
		return fmt.Errorf("flags: propagation: change %d (version %d): %d of %d clients did not apply it within %v",
			k, want, t.remaining[k].Load(), cfg.Clients, cfg.ChangeTimeout)
	case <-ctx.Done():
		return fmt.Errorf("flags: propagation: %w", ctx.Err())
	}
}

// makeChanges makes cfg.Changes changes one after another, from snapshot
// version base, each once wait says the previous one has arrived, and
// returns when each was made.
func makeChanges(ctx context.Context, cfg Config, base int64, wait func(k int, want int64) error) ([]time.Time, error) {
	starts := make([]time.Time, cfg.Changes)
	for k := range cfg.Changes {
		key, value := ChangeOf(k, cfg.Flags)
		want := base + int64(k) + 1
		starts[k] = time.Now()
		if err := put(ctx, cfg, key, FlagJSON(value), want); err != nil {
			return nil, fmt.Errorf("flags: propagation: change %d: %w", k, err)
		}
		if err := wait(k, want); err != nil {
			return nil, err
		}
	}
	return starts, nil
}

// callHook calls hook (Config.Connected or Applied) when it is set.
func callHook(hook func() error) error {
	if hook == nil {
		return nil
	}
	return hook()
}

// newStreamClient is a flags.Client streaming from the server at baseURL.
func newStreamClient(baseURL, token string, hc *http.Client, logger *slog.Logger) (*flags.Client, error) {
	return flags.New(flags.WithLogger(logger), flags.WithSource(stream.New(stream.Config{
		BaseURL: baseURL, Token: token, HTTPClient: hc, Logger: logger})))
}

// closeClients closes the clients made so far (nil: not made), all at once.
func closeClients(cs []*flags.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.Close()
			}()
		}
	}
	wg.Wait()
}

// waitAllReady waits until every client is READY, for at most timeout.
func waitAllReady(ctx context.Context, timeout time.Duration, cs []*flags.Client) error {
	readyCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for i, c := range cs {
		if err := c.WaitReady(readyCtx); err != nil {
			return fmt.Errorf("client %d not ready: %w", i, err)
		}
	}
	return nil
}

// commonVersion is the snapshot version every client is at; an error when
// they differ (the server changed while they connected).
func commonVersion(cs []*flags.Client) (int64, error) {
	v0 := cs[0].Status().Version
	for i, c := range cs {
		if v := c.Status().Version; v != v0 {
			return 0, fmt.Errorf("flags: propagation: client %d is at version %d, client 0 at %d: the server changed while they connected", i, v, v0)
		}
	}
	return v0, nil
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
