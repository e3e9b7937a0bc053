package propagation

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagstream/flags/server"
)

// Environment of a server process started by StartChild.
const (
	// ChildEnv, when set, tells a test binary's TestMain to call ServeChild
	// instead of running tests.
	ChildEnv      = "FLAGSTREAM_PROPAGATION_CHILD"
	childFlagsEnv = "FLAGSTREAM_PROPAGATION_FLAGS"
	childTokenEnv = "FLAGSTREAM_PROPAGATION_TOKEN"
	childAdminEnv = "FLAGSTREAM_PROPAGATION_ADMIN_TOKEN"
	childFilesEnv = "FLAGSTREAM_PROPAGATION_FILES"
)

// MemStatsPath is where a server built by NewHandler reports its process's
// memory (MemStats as JSON, after a GC); it needs the admin token.
const MemStatsPath = "/debug/propagation/memstats"

// NewServer returns a reference server over a MemoryStore holding
// Document(nflags), with the given SDK and admin tokens.
func NewServer(nflags int, token, adminToken string) (*server.Server, error) {
	return server.New(server.NewMemoryStore(Document(nflags)), server.Options{Token: token, AdminToken: adminToken})
}

// NewHandler serves srv, plus GET MemStatsPath for callers with the admin
// token.
func NewHandler(srv *server.Server, adminToken string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	mux.HandleFunc("GET "+MemStatsPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+adminToken {
			http.Error(w, "flags: token refused", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ReadMemStats())
	})
	return mux
}

// ServeChild is the body of a server process started by StartChild: it
// serves NewHandler on 127.0.0.1 (a free port), writes "listening URL" on
// stdout, and serves until stdin ends; then it closes the server (ending
// every stream) and returns.
func ServeChild(stdin io.Reader, stdout io.Writer) error {
	nflags, err := strconv.Atoi(os.Getenv(childFlagsEnv))
	if err != nil || nflags < 1 {
		return fmt.Errorf("flags: propagation: %s=%q: want a positive number", childFlagsEnv, os.Getenv(childFlagsEnv))
	}
	files, err := strconv.ParseUint(os.Getenv(childFilesEnv), 10, 64)
	if err != nil {
		return fmt.Errorf("flags: propagation: %s: %w", childFilesEnv, err)
	}
	if _, err := RaiseFileLimit(files); err != nil {
		return err
	}
	token, admin := os.Getenv(childTokenEnv), os.Getenv(childAdminEnv)
	srv, err := NewServer(nflags, token, admin)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("flags: propagation: %w", err)
	}
	hs := &http.Server{Handler: NewHandler(srv, admin), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	if _, err := fmt.Fprintf(stdout, "listening http://%s\n", ln.Addr()); err != nil {
		return fmt.Errorf("flags: propagation: %w", err)
	}
	_, _ = io.Copy(io.Discard, stdin) // until the parent closes it or dies
	_ = srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		return fmt.Errorf("flags: propagation: shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("flags: propagation: serve: %w", err)
	}
	return nil
}

// Child is a reference server running in a process of its own, so that its
// memory can be measured apart from its clients'.
type Child struct {
	// URL is the server's base URL.
	URL string

	admin  string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	http   *http.Client
	copied chan struct{} // closed when stdout has been read to its end

	closeOnce sync.Once
	closeErr  error
}

// StartChild runs the current executable again with ChildEnv set, as a
// server of Document(nflags) allowed maxFiles open files. The executable
// must be a test binary whose TestMain calls ServeChild when ChildEnv is
// set. It returns once the server listens.
func StartChild(ctx context.Context, nflags int, token, adminToken string, maxFiles uint64) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("flags: propagation: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ChildEnv+"=1",
		childFlagsEnv+"="+strconv.Itoa(nflags), childTokenEnv+"="+token,
		childAdminEnv+"="+adminToken, childFilesEnv+"="+strconv.FormatUint(maxFiles, 10))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("flags: propagation: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("flags: propagation: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("flags: propagation: start server process: %w", err)
	}
	c := &Child{admin: adminToken, cmd: cmd, stdin: stdin, http: &http.Client{Timeout: 30 * time.Second},
		copied: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		defer close(c.copied)
		sc := bufio.NewScanner(stdout)
		first := ""
		if sc.Scan() {
			first = sc.Text()
		}
		line <- first
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		url, ok := strings.CutPrefix(l, "listening ")
		if !ok {
			_ = c.Close()
			return nil, fmt.Errorf("flags: propagation: server process said %q, want \"listening URL\"", l)
		}
		c.URL = url
		return c, nil
	case <-ctx.Done():
		_ = c.Close()
		return nil, fmt.Errorf("flags: propagation: waiting for the server process: %w", ctx.Err())
	}
}

// MemStats asks the server process for its memory in use.
func (c *Child) MemStats(ctx context.Context) (MemStats, error) {
	var ms MemStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+MemStatsPath, nil)
	if err != nil {
		return ms, fmt.Errorf("flags: propagation: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.admin)
	resp, err := c.http.Do(req)
	if err != nil {
		return ms, fmt.Errorf("flags: propagation: memstats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ms, fmt.Errorf("flags: propagation: memstats: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ms); err != nil {
		return ms, fmt.Errorf("flags: propagation: memstats: %w", err)
	}
	return ms, nil
}

// Close ends the server process (closing its stdin makes it shut down) and
// waits for it; after 15 s it is killed. Later calls return the same error.
func (c *Child) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Child) close() error {
	_ = c.stdin.Close()
	c.http.CloseIdleConnections()
	exited := make(chan error, 1)
	go func() {
		<-c.copied // Wait closes the pipe: read it to its end first
		exited <- c.cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("flags: propagation: server process: %w", err)
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-exited
		return errors.New("flags: propagation: server process did not exit; killed")
	}
}
