package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary run main() instead of the tests, so a
// test can run `flags` as a process of its own and signal it.
const runMainEnv = "FLAGS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestServeSIGTERM: `flags serve` in its own process, sent SIGTERM right
// after an admin write: the write's patch still reaches the open stream,
// which then ends cleanly; the process logs its shutdown and exits 0; new
// connections are refused.
func TestServeSIGTERM(t *testing.T) {
	doc := writeFile(t, "flags.json", serveDoc)
	p := startServeProcess(t, "serve", "--flags", doc, "--addr", "127.0.0.1:0", "--admin-token", "adm")
	line := p.await(t, "listening")
	url := strings.Fields(line[strings.Index(line, "url=")+4:])[0]

	stream, err := http.Get(url + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := sseReader{bufio.NewReader(stream.Body)}
	if ev := events.next(); !strings.Contains(ev, "event: snapshot") {
		t.Fatalf("first event %q, want the snapshot", ev)
	}
	adminCall(t, "PUT", url+"/v1/admin/flags/last", "adm", `{"variations": [1], "fallthrough": {"variation": 0}}`)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ev := events.next(); !strings.Contains(ev, "event: patch") || !strings.Contains(ev, `"last"`) {
		t.Errorf("after SIGTERM the stream sent %q, want the PUT's patch", ev)
	}
	events.checkCleanEnd(t)
	p.await(t, "shutting down")
	p.await(t, "stopped")
	p.checkExitsZero(t)
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /healthz after the exit = %d, want the connection refused", resp.StatusCode)
	}
}

// serveProcess is `flags` run as a process of its own (the test binary
// running main), its stderr read line by line.
type serveProcess struct {
	cmd   *exec.Cmd
	lines chan string // closed when stderr ends
}

// startServeProcess runs `flags args...`, killed at the test's end.
func startServeProcess(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	p := &serveProcess{cmd: cmd, lines: make(chan string, 256)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

// await returns the next line of stderr that contains s, waiting up to 10 s.
func (p *serveProcess) await(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("flags serve ended before logging %q", s)
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("flags serve did not log %q", s)
		}
	}
}

// checkExitsZero waits up to 10 s for the process to exit, with status 0.
func (p *serveProcess) checkExitsZero(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("flags serve exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flags serve did not exit after SIGTERM")
	}
}

// sseReader reads a server-sent event stream raw, to see every byte the
// server sends before its end.
type sseReader struct{ r *bufio.Reader }

// next returns the lines of the next event (up to its blank line), with
// "ERR:" and the error appended when the stream ends first.
func (s sseReader) next() string {
	var b strings.Builder
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return b.String() + "ERR:" + err.Error()
		}
		if l == "\n" {
			return b.String()
		}
		b.WriteString(l)
	}
}

// checkCleanEnd checks that nothing but comments and blank lines comes
// before the stream's clean end (EOF).
func (s sseReader) checkCleanEnd(t *testing.T) {
	t.Helper()
	for {
		l, err := s.r.ReadString('\n')
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("the stream ended with %v, want a clean end", err)
		}
		if !strings.HasPrefix(l, ":") && l != "\n" {
			t.Errorf("after the patch the stream sent %q", l)
		}
	}
}
