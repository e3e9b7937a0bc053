package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testDatabase creates a database for one test on the cluster of
// FLAGS_TEST_POSTGRES (skipping loudly without one, failing under
// FLAGS_REQUIRE_POSTGRES) and returns its URL.
func testDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("FLAGS_TEST_POSTGRES")
	if base == "" {
		msg := "FLAGS_TEST_POSTGRES is not set: SKIPPING `flags serve --store` against PostgreSQL (see README, Testing)"
		if os.Getenv("FLAGS_REQUIRE_POSTGRES") != "" {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "flagstream_cli_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// TestServeWithPostgresStore: `flags serve` over $FLAGS_STORE, seeded by
// `flags push`, switched by `flags switch`, its audit printed by `flags
// history`; a second `flags serve` on the same database serves the same.
func TestServeWithPostgresStore(t *testing.T) {
	db := testDatabase(t)
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
