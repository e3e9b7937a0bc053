// Package pgtest gives the tests of the PostgreSQL store and of `flags
// serve --store` a database of their own on the test cluster. It is a
// package apart from internal/testkit so that only the tests that use
// PostgreSQL build its driver.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// URL returns the URL of the test cluster, $FLAGS_TEST_POSTGRES. Without
// one it skips the test loudly, naming what is skipped (what), since a
// skip nobody sees hides that the store went untested; with
// FLAGS_REQUIRE_POSTGRES set (CI) it fails instead.
func URL(t testing.TB, what string) string {
	t.Helper()
	u := os.Getenv("FLAGS_TEST_POSTGRES")
	if u == "" {
		msg := "FLAGS_TEST_POSTGRES is not set: SKIPPING " + what + " (run `source .ci/postgres.sh && pg_start` first; see README, Testing)"
		if os.Getenv("FLAGS_REQUIRE_POSTGRES") != "" {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg)
	}
	return u
}

// FreshDatabase creates an empty database with a random name on the cluster
// at base for one test, drops it at the test's end, and returns its URL:
// tests that share the cluster never see each other's data.
func FreshDatabase(t testing.TB, base string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to the test cluster: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "flagstream_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return // the cluster is gone: nothing to drop
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("the test cluster's URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
