package pgstore_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/pgtest"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/server/pgstore"
)

const adminToken = "adm"

// waitLimit bounds every wait for something a replica must do.
const waitLimit = 10 * time.Second

// postgresURL returns the URL of the test cluster, or skips the test (fails
// it in CI) as pgtest.URL does.
func postgresURL(t testing.TB) string {
	t.Helper()
	return pgtest.URL(t, "the PostgreSQL store tests")
}

// openStore opens a store on url, closed at the test's end.
func openStore(t testing.TB, url string, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("pgstore.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// replica is one server over the database, on 127.0.0.1.
type replica struct {
	srv   *server.Server
	store *pgstore.Store
	url   string
}

func newReplica(t testing.TB, dbURL string) *replica {
	t.Helper()
	st := openStore(t, dbURL, pgstore.Options{PollInterval: 500 * time.Millisecond})
	srv, err := server.New(st, server.Options{AdminToken: adminToken})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = srv.Close() })
	return &replica{srv: srv, store: st, url: ts.URL}
}

// do is testkit.Do: one request, its response and body.
func do(t testing.TB, method, url, token, body string, header ...string) (*http.Response, string) {
	t.Helper()
	return testkit.Do(t, method, url, token, body, header...)
}

// waitVersion waits until srv publishes version v.
func waitVersion(t testing.TB, srv *server.Server, v int64) {
	t.Helper()
	if !testkit.Await(waitLimit, 5*time.Millisecond, func() bool { return srv.Version() >= v }) {
		t.Fatalf("replica at version %d after %v, want %d", srv.Version(), waitLimit, v)
	}
}

// sseEvent is one server-sent event.
type sseEvent = testkit.SSEEvent

// stream is a client of GET /v1/stream.
type stream struct {
	events chan sseEvent
	cancel context.CancelFunc
}

func openStream(t testing.TB, base, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET /v1/stream: %v %v", err, resp)
	}
	s := &stream{events: make(chan sseEvent, 1024), cancel: cancel}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		_ = testkit.ReadSSE(resp.Body, func(ev sseEvent) {
			if ev.Name != "" { // comments are keep-alives
				s.events <- ev
			}
		})
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next event.
func (s *stream) next(t testing.TB) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(waitLimit):
		t.Fatalf("no event within %v", waitLimit)
	}
	return sseEvent{}
}

// cluster is a PostgreSQL cluster a test owns, to stop and start it.
type cluster struct {
	bin, data, user, url string
	port                 int
}

// ownCluster starts a cluster of the test's own, from the binaries that
// .ci/postgres.sh found (FLAGS_TEST_POSTGRES_BIN, run as
// FLAGS_TEST_POSTGRES_USER), removed at the test's end.
func ownCluster(t *testing.T) *cluster {
	t.Helper()
	postgresURL(t) // skips or fails like the other tests without a cluster
	bin := os.Getenv("FLAGS_TEST_POSTGRES_BIN")
	if bin == "" {
		t.Fatal("FLAGS_TEST_POSTGRES_BIN is not set: .ci/postgres.sh exports it with FLAGS_TEST_POSTGRES")
	}
	c := &cluster{bin: bin, user: os.Getenv("FLAGS_TEST_POSTGRES_USER")}
	dir, err := os.MkdirTemp("", "flags-pg-own-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c.data = filepath.Join(dir, "data")
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", c.user, dir).Run(); err != nil {
			t.Fatalf("chown: %v", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c.run(t, "initdb", "-D", c.data, "-U", c.user, "-A", "trust", "-E", "UTF8", "--no-instructions")
	c.start(t)
	t.Cleanup(func() { c.pgctl("stop", "-m", "immediate") })
	c.url = fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", c.user, c.port)
	return c
}

func (c *cluster) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	if _, err := os.Stat(path); err != nil {
		// The folder on PATH may hold links to a few of the programs
		// (pg_ctl, initdb): the others are beside what pg_ctl links to.
		if real, err := filepath.EvalSymlinks(filepath.Join(c.bin, "pg_ctl")); err == nil {
			path = filepath.Join(filepath.Dir(real), name)
		}
	}
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", c.user, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (c *cluster) run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := c.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func (c *cluster) pgctl(args ...string) error {
	all := append([]string{"-D", c.data, "-w", "-t", "60"}, args...)
	return c.command("pg_ctl", all...).Run()
}

// start starts the cluster on its port, its socket in its data folder.
func (c *cluster) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", c.port, c.data)
	c.run(t, "pg_ctl", "-D", c.data, "-l", filepath.Join(c.data, "server.log"), "-w", "-t", "60", "-o", opts, "start")
}

// kill stops the cluster the way a crash does: no shutdown checkpoint,
// every connection cut.
func (c *cluster) kill(t *testing.T) {
	t.Helper()
	if err := c.pgctl("stop", "-m", "immediate"); err != nil {
		t.Fatalf("pg_ctl stop -m immediate: %v", err)
	}
}
