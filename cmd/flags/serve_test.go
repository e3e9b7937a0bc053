package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const serveDoc = `{"version": 4, "flags": {"f": {"on": true, "variations": [true, false], "fallthrough": {"variation": 0}}}}`

func TestServeBadStart(t *testing.T) {
	t.Setenv("FLAGS_STORE", "")
	bad := writeFile(t, "bad.json", `{"flags": {`)
	folder := writeFolder(t, map[string]string{"a.json": serveDoc, "b.json": serveDoc})
	checkRefusals(t, runServe, nil, []refusal{
		{"no --flags", []string{"--addr", "127.0.0.1:0"}, "--flags or --store (or $FLAGS_STORE) is required"},
		{"both stores", []string{"--flags", bad, "--store", "postgres://127.0.0.1:1/x"}, "--flags and --store exclude each other"},
		{"audit log with a database", []string{"--store", "postgres://127.0.0.1:1/x", "--audit-log", "a.jsonl"}, "--audit-log is for --flags"},
		{"unreachable database", []string{"--store", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, "--store: pgstore"},
		{"file does not parse", []string{"--flags", bad, "--addr", "127.0.0.1:0"}, "bad.json"},
		{"missing file", []string{"--flags", filepath.Join(t.TempDir(), "nope.json")}, "nope.json"},
		{"duplicate key in folder", []string{"--flags", folder}, `"f" is also defined`},
		{"unknown flag", []string{"--flags", bad, "--port", "1"}, "port"},
		{"stray argument", []string{"--flags", bad, "extra"}, "extra"},
	})
}

func TestServeRunsAndStops(t *testing.T) {
	path := writeFile(t, "flags.json", serveDoc)
	url, stop := startServe(t, []string{"--flags", path, "--addr", "127.0.0.1:0", "--token", "sdk", "--admin-token", "adm"})
	defer stop()

	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp
	}
	resp := get("/v1/flags", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/flags without a token = %d, want 401", resp.StatusCode)
	}
	resp = get("/v1/flags", "sdk")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Header.Get("ETag"), `:4"`) {
		t.Errorf("GET /v1/flags = %d ETag %s, want 200 at version 4", resp.StatusCode, resp.Header.Get("ETag"))
	}
	stream := get("/v1/stream", "sdk")
	defer stream.Body.Close()
	br := bufio.NewReader(stream.Body)
	if first, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(first, "id: ") {
		t.Fatalf("stream starts with %q, %v", first, err)
	}

	stop()
	// The stream was ended cleanly by the shutdown.
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("stream after shutdown: %v, want a clean end", err)
	}
}

// startServe runs `flags serve` in the background and returns its URL and
// a function that stops it and checks it exited 0; only its first call
// does, so a test may defer it and also call it to go on after the stop. A
// serve that does not stop ends the test, which could otherwise hang
// reading a stream it still serves.
func startServe(t *testing.T, args []string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := newLineWriter()
	exit := make(chan int, 1)
	go func() { exit <- runServe(ctx, args, io.Discard, stderr) }()
	line := stderr.await(t, "listening")
	i := strings.Index(line, "url=")
	if i < 0 {
		cancel()
		t.Fatalf("listening line without url: %s", line)
	}
	var once sync.Once
	return strings.Fields(line[i+4:])[0], func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-exit:
				if code != 0 {
					t.Errorf("flags serve exit %d, want 0; stderr:\n%s", code, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("flags serve did not stop after its context was cancelled")
			}
		})
	}
}

// lineWriter collects what is written to it and signals each complete line.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
	part  []byte
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 1024)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		select {
		case w.lines <- string(w.part[:i]):
		default:
		}
		w.part = w.part[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// await returns the first line containing s.
func (w *lineWriter) await(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line := <-w.lines:
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("no line with %q on stderr:\n%s", s, w.String())
		}
	}
}
