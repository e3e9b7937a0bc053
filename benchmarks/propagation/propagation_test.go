package propagation_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flagstream/flags/benchmarks/propagation"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
)

// TestMain serves as the server process of StartChild when asked to.
func TestMain(m *testing.M) {
	if os.Getenv(propagation.ChildEnv) != "" {
		if err := propagation.ServeChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	sdkToken   = "sdk-token"
	adminToken = "admin-token"
)

// expected is what every client must see: change k as version base+k+1,
// about the flag it flips, serving the value it sets.
func expected(base int64, changes, nflags int) []propagation.Observation {
	var out []propagation.Observation
	for k := range changes {
		key, value := propagation.ChangeOf(k, nflags)
		out = append(out, propagation.Observation{Version: base + int64(k) + 1, Flag: key, Value: value})
	}
	return out
}

// TestPropagation50: 50 streaming clients on one in-process server; every
// client applies every one of 20 changes, in order, each as its own
// snapshot version, and serves the flipped flag's new value when told of it
// (flags are flipped back and forth: 8 flags, 20 changes).
func TestPropagation50(t *testing.T) {
	const clients, changes, nflags = 50, 20, 8
	res, srv := measureInProcess(t, propagation.Run, propagation.Config{Clients: clients, Changes: changes, Flags: nflags})
	if res.BaseVersion != 0 {
		t.Errorf("BaseVersion = %d, want 0", res.BaseVersion)
	}
	want := expected(res.BaseVersion, changes, nflags)
	for c, got := range res.Observations {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("client %d observed (-want +got):\n%s", c, diff)
		}
	}
	checkLatencies(t, res, clients*changes)
	if v := srv.Version(); v != changes {
		t.Errorf("server Version() = %d, want %d", v, changes)
	}
}

// measureInProcess serves cfg.Flags flags from a server in this process and
// measures cfg (with that server's URL and tokens) against it.
func measureInProcess(t *testing.T, measure func(context.Context, propagation.Config) (*propagation.Result, error), cfg propagation.Config) (*propagation.Result, *server.Server) {
	t.Helper()
	srv, err := propagation.NewServer(cfg.Flags, sdkToken, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(propagation.NewHandler(srv, adminToken))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = srv.Close() }) // first: it ends the streams ts.Close would wait for

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg.BaseURL, cfg.Token, cfg.AdminToken = ts.URL, sdkToken, adminToken
	res, err := measure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res, srv
}

// checkLatencies checks that res holds n latencies, each positive (a change
// applied before it was made would be negative).
func checkLatencies(t *testing.T, res *propagation.Result, n int) {
	t.Helper()
	if got := len(res.Latencies); got != n {
		t.Fatalf("len(Latencies) = %d, want %d", got, n)
	}
	for i, d := range res.Latencies {
		if d <= 0 {
			t.Errorf("Latencies[%d] = %v, want > 0 (applied before it was made?)", i, d)
		}
	}
}

// TestPropagationChildProcess: the server process of the benchmark starts,
// serves clients, reports its memory (more of it with clients connected)
// and shuts down when told.
func TestPropagationChildProcess(t *testing.T) {
	const clients = 10
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	child, err := propagation.StartChild(ctx, propagation.DefaultFlags, sdkToken, adminToken, 1024)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Close() })
	before, err := child.MemStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var during propagation.MemStats
	res, err := propagation.Run(ctx, propagation.Config{BaseURL: child.URL, Token: sdkToken, AdminToken: adminToken,
		Clients: clients, Changes: 3,
		Applied: func() (err error) { during, err = child.MemStats(ctx); return err }})
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if diff := cmp.Diff(expected(0, 3, propagation.DefaultFlags), res.Observations[clients-1]); diff != "" {
		t.Errorf("last client observed (-want +got):\n%s", diff)
	}
	if during.Goroutines < before.Goroutines+clients {
		t.Errorf("server goroutines: %d with %d clients, %d without; want at least one more per client",
			during.Goroutines, clients, before.Goroutines)
	}
	if during.Total() <= before.Total() {
		t.Errorf("server memory: %d bytes with %d clients, %d without; want more", during.Total(), clients, before.Total())
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	r := &propagation.Result{Latencies: ms(5, 1, 4, 2, 3, 10, 9, 8, 7, 6)}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5 * time.Millisecond}, {90, 9 * time.Millisecond}, {99, 10 * time.Millisecond}, {100, 10 * time.Millisecond}, {1, time.Millisecond}} {
		if got := r.Percentile(tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := (&propagation.Result{}).Percentile(50); got != 0 {
		t.Errorf("Percentile of nothing = %v, want 0", got)
	}
}

// BenchmarkPropagation1000: 1,000 streaming clients in this process, one
// reference server in a process of its own; b.N admin changes, each awaited
// in every client before the next. ns/op is the time for one change to
// reach all clients; p50-ms, p99-ms and max-ms are over every (client,
// change) pair; server-bytes/client is the server process's heap plus
// stacks with the clients connected minus without, per client.
//
//	go test ./propagation -run '^$' -bench Propagation1000 -benchtime 20x -count 5
func BenchmarkPropagation1000(b *testing.B) {
	benchmark(b, propagation.Run)
}

func benchmark(b *testing.B, run func(context.Context, propagation.Config) (*propagation.Result, error)) {
	const clients = 1000
	if _, err := propagation.RaiseFileLimit(clients + 256); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	child, err := propagation.StartChild(ctx, propagation.DefaultFlags, sdkToken, adminToken, clients+256)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := child.Close(); err != nil {
			b.Error(err)
		}
	}()
	before, err := child.MemStats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var after propagation.MemStats
	b.StopTimer()
	res, err := run(ctx, propagation.Config{BaseURL: child.URL, Token: sdkToken, AdminToken: adminToken,
		Clients: clients, Changes: b.N,
		Connected: func() error { b.StartTimer(); return nil },
		Applied: func() (err error) {
			b.StopTimer()
			after, err = child.MemStats(ctx)
			return err
		}})
	if err != nil {
		b.Fatal(err)
	}
	reportPercentiles(b, res)
	b.ReportMetric((float64(after.Total())-float64(before.Total()))/clients, "server-bytes/client")
	b.ReportMetric(res.ClientBytes, "client-bytes/client")
}

// TestFanout: raw readers each read every patch.
func TestFanout(t *testing.T) {
	res, _ := measureInProcess(t, propagation.Fanout, propagation.Config{Clients: 20, Changes: 6, Flags: 4})
	checkLatencies(t, res, 20*6)
}

// BenchmarkFanout1000 is BenchmarkPropagation1000 with raw SSE readers in
// place of SDK clients: the server's own fan-out latency, with the readers'
// work kept small.
//
//	go test ./propagation -run '^$' -bench Fanout1000 -benchtime 20x -count 5
func BenchmarkFanout1000(b *testing.B) {
	benchmark(b, propagation.Fanout)
}

// reportPercentiles reports the median, 99th percentile and largest of the
// latencies of res, in milliseconds.
func reportPercentiles(b *testing.B, res *propagation.Result) {
	for _, p := range []struct {
		p    float64
		unit string
	}{{50, "p50-ms"}, {99, "p99-ms"}, {100, "max-ms"}} {
		b.ReportMetric(float64(res.Percentile(p.p))/float64(time.Millisecond), p.unit)
	}
}

func startChild(ctx context.Context, maxFiles uint64) func() (propagation.Replica, error) {
	return func() (propagation.Replica, error) {
		return propagation.StartChild(ctx, propagation.DefaultFlags, sdkToken, adminToken, maxFiles)
	}
}

// TestFailover: clients behind the failover proxy are READY again after the
// replica they were on is killed, after their first backoff wait.
func TestFailover(t *testing.T) {
	const clients, failovers = 10, 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := propagation.Failover(ctx, propagation.FailoverConfig{Token: sdkToken, Clients: clients, Failovers: failovers,
		Start: startChild(ctx, 1024)})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Latencies); got != clients*failovers {
		t.Fatalf("len(Latencies) = %d, want %d", got, clients*failovers)
	}
	for i, d := range res.Latencies {
		// The first reconnection waits the first backoff: 0.5 s at least.
		if d < stream.BackoffBase/2 {
			t.Errorf("Latencies[%d] = %v, want at least %v", i, d, stream.BackoffBase/2)
		}
	}
}

// BenchmarkFailover1000: 1,000 streaming clients behind a TCP failover
// proxy in front of two server processes; each iteration kills (SIGKILL)
// the replica the clients are on and measures, per client, the time from
// the kill to the client being READY again on the other replica (which
// then sends it a snapshot: another epoch). Replicas and clients are new
// for each iteration, started outside the timer.
//
//	go test ./propagation -run '^$' -bench Failover1000 -benchtime 5x -count 3
func BenchmarkFailover1000(b *testing.B) {
	const clients = 1000
	if _, err := propagation.RaiseFileLimit(3*clients + 256); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.StopTimer()
	res, err := propagation.Failover(ctx, propagation.FailoverConfig{Token: sdkToken, Clients: clients, Failovers: b.N,
		Start: startChild(ctx, clients+256), Pause: b.StopTimer, Resume: b.StartTimer})
	if err != nil {
		b.Fatal(err)
	}
	reportPercentiles(b, res)
}
