package main

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/server"
)

// startFileServer serves the document content from a file store in a
// temporary folder, with the given admin token, on 127.0.0.1; it returns the
// server, its base URL and the document file's path.
func startFileServer(t *testing.T, content string, opts server.Options) (*server.Server, string, string) {
	t.Helper()
	path := writeFile(t, "flags.json", content)
	store, err := server.OpenFileStore(path, server.FileStoreOptions{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = srv.Close() })
	return srv, ts.URL, path
}

// runCmd runs a command (runPush, runServe, ...) to its end and returns its
// exit status, stdout and stderr.
func runCmd(t *testing.T, run func(context.Context, []string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// refusal is a command line a command must refuse: exit status 2, nothing
// on stdout, and a message on stderr that contains want.
type refusal struct {
	name string
	args []string
	want string
}

// checkRefusals runs run on each refusal's arguments, after prefix, in a
// subtest of its own.
func checkRefusals(t *testing.T, run func(context.Context, []string, io.Writer, io.Writer) int, prefix []string, refusals []refusal) {
	t.Helper()
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			args := append(slices.Clone(prefix), tc.args...)
			code, stdout, stderr := runCmd(t, run, args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("%q = %d, stdout %q, stderr %q; want 2, nothing on stdout and a message with %q", args, code, stdout, stderr, tc.want)
			}
		})
	}
}

func TestPushCommand(t *testing.T) {
	srv, url, path := startFileServer(t, serveDoc, server.Options{AdminToken: "adm"})
	good := writeFile(t, "good.json", `{"flags": {
	  "f": {"on": false, "variations": [true, false], "fallthrough": {"variation": 0}},
	  "g": {"variations": ["x"], "fallthrough": {"variation": 0}}}}`)
	tokenFile := writeFile(t, "token", "adm\n")
	code, stdout, stderr := runCmd(t, runPush, "--url", url, "--token-file", tokenFile, good)
	if code != 0 || stdout != "version 5\n  flags.f set\n  flags.g set\n" || stderr != "" {
		t.Fatalf("flags push = %d, stdout %q, stderr %q; want 0 and version 5 with f and g", code, stdout, stderr)
	}
	if srv.Version() != 5 {
		t.Errorf("server at version %d, want 5", srv.Version())
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), `"g"`) {
		t.Errorf("the served file %s lacks g (%v)", data, err)
	}
	// The same file again: nothing to change. The token from $FLAGS_TOKEN.
	t.Setenv("FLAGS_TOKEN", "adm")
	code, stdout, _ = runCmd(t, runPush, good, "--url", url+"/")
	if code != 0 || stdout != "version 5: nothing changed\n" {
		t.Errorf("a second push = %d %q, want 0 and nothing changed", code, stdout)
	}
}

// TestPushRefusedListsEveryProblem: a refused push exits 2 and prints every
// problem the server names.
func TestPushRefusedListsEveryProblem(t *testing.T) {
	srv, url, _ := startFileServer(t, serveDoc, server.Options{AdminToken: "adm"})
	bad := writeFile(t, "bad.json", `{"flags": {"f": {"variations": [true]}, "g": {"variations": [1], "fallthrough": {"variation": 3}}},
	  "segments": {"s": {"excluded": 5}}}`)
	code, stdout, stderr := runCmd(t, runPush, "--url", url, "--token", "adm", bad)
	if code != 2 || stdout != "" {
		t.Fatalf("push of a malformed file = %d, stdout %q; want 2 and nothing", code, stdout)
	}
	for _, want := range []string{"400", "flags.f.fallthrough: ", "flags.g.fallthrough.variation: ", "segments.s.excluded: "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	if srv.Version() != 4 {
		t.Errorf("a refused push changed the version to %d", srv.Version())
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong token", []string{"--url", url, "--token", "nope", bad}, 2, "401"},
		{"no file", []string{"--url", url, "--token", "adm"}, 2, "want one FILE"},
		{"missing file", []string{"--url", url, "--token", "adm", bad + ".missing"}, 2, "missing"},
		{"no url", []string{"--token", "adm", bad}, 2, "--url is required"},
		{"bad url", []string{"--url", "localhost:8080", "--token", "adm", bad}, 2, "want http://"},
	} {
		code, _, stderr := runCmd(t, runPush, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: flags push = %d, stderr %q; want %d naming %q", tc.name, code, stderr, tc.code, tc.want)
		}
	}
	dead := httptest.NewServer(nil)
	dead.Close()
	if code, _, stderr := runCmd(t, runPush, "--url", dead.URL, "--token", "adm", bad); code != 1 {
		t.Errorf("push to a closed port = %d %q, want 1", code, stderr)
	}
}
