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
	cmd := exec.Command(os.Args[0], "serve", "--flags", doc, "--addr", "127.0.0.1:0", "--admin-token", "adm")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	await := func(s string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case line, ok := <-lines:
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
	line := await("listening")
	url := strings.Fields(line[strings.Index(line, "url=")+4:])[0]

	stream, err := http.Get(url + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := bufio.NewReader(stream.Body)
	readEvent := func() string {
		var b strings.Builder
		for {
			l, err := events.ReadString('\n')
			if err != nil {
				return b.String() + "ERR:" + err.Error()
			}
			if l == "\n" {
				return b.String()
			}
			b.WriteString(l)
		}
	}
	if ev := readEvent(); !strings.Contains(ev, "event: snapshot") {
		t.Fatalf("first event %q, want the snapshot", ev)
	}
	adminCall(t, "PUT", url+"/v1/admin/flags/last", "adm", `{"variations": [1], "fallthrough": {"variation": 0}}`)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ev := readEvent(); !strings.Contains(ev, "event: patch") || !strings.Contains(ev, `"last"`) {
		t.Errorf("after SIGTERM the stream sent %q, want the PUT's patch", ev)
	}
	for {
		l, err := events.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the stream ended with %v, want a clean end", err)
		}
		if !strings.HasPrefix(l, ":") && l != "\n" {
			t.Errorf("after the patch the stream sent %q", l)
		}
	}
	await("shutting down")
	await("stopped")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("flags serve exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flags serve did not exit after SIGTERM")
	}
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /healthz after the exit = %d, want the connection refused", resp.StatusCode)
	}
}
