package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/pgtest"
)

// TestServeWithPostgresStore: `flags serve` over $FLAGS_STORE, seeded by
// `flags push`, switched by `flags switch`, its audit printed by `flags
// history`; a second `flags serve` on the same database serves the same.
func TestServeWithPostgresStore(t *testing.T) {
	db := pgtest.FreshDatabase(t, pgtest.URL(t, "`flags serve --store` against PostgreSQL"))
	t.Setenv("FLAGS_STORE", db)
	start := func() string {
		ctx, cancel := context.WithCancel(context.Background())
		stderr := newLineWriter()
		exit := make(chan int, 1)
		go func() {
			exit <- runServe(ctx, []string{"--addr", "127.0.0.1:0", "--admin-token", "adm"}, io.Discard, stderr)
		}()
		t.Cleanup(func() {
			cancel()
			select {
			case <-exit:
			case <-time.After(10 * time.Second):
				t.Error("flags serve did not stop")
			}
		})
		line := stderr.await(t, "listening")
		if !strings.Contains(line, "store=postgres") {
			t.Errorf("start-up line %q does not name the store", line)
		}
		i := strings.Index(line, "url=")
		return strings.Fields(line[i+4:])[0]
	}
	a := start()
	doc := writeFile(t, "flags.json", serveDoc)
	if code, out, errOut := runCmd(t, runPush, "--url", a, "--token", "adm", doc); code != 0 {
		t.Fatalf("flags push = %d %s %s", code, out, errOut)
	}
	var stdout, stderr bytes.Buffer
	if code := runSwitch(context.Background(), []string{"--url", a, "--token", "adm", "--comment", "incident 9", "f", "off"}, &stdout, &stderr); code != 0 {
		t.Fatalf("flags switch = %d %s %s", code, stdout.String(), stderr.String())
	}
	b := start()
	code, out, errOut := runCmd(t, runHistory, "--url", b, "--token", "adm", "f")
	if code != 0 || !strings.Contains(out, "push flag f") || !strings.Contains(out, "patch flag f") || !strings.Contains(out, "# incident 9") {
		t.Fatalf("flags history on the second replica = %d\n%s\n%s", code, out, errOut)
	}
	adminCall(t, "GET", b+"/readyz", "", "")
}
