// Package consoletest serves a rules document with the web console attached,
// for the console's tests: the HTTP tests of package console and the browser
// tests of its nested module start their server the same way.
package consoletest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// Token is an API token of the test server.
type Token struct {
	Name, Role, Secret string
}

// Console is the web console as Serve needs it: package console's
// *Console. It is an interface so that package console's own tests, which
// cannot import a package that imports console, can use Serve.
type Console interface {
	http.Handler
	Attach(*server.Server)
}

// Serve serves doc from a memory store, with ui at /ui/, to the given
// tokens, on an httptest server that is closed, with the server, when the
// test ends; guards are not checked while a test runs. It returns the server and the httptest server's URL.
func Serve(t testing.TB, doc string, ui Console, tokens ...Token) (*server.Server, string) {
	t.Helper()
	d, err := rules.ParseDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	// Guards are checked once an hour: the tests post events that would
	// trip a guard at the next check, and show it armed.
	srv, err := server.New(server.NewMemoryStore(d), server.Options{TokensFile: tokensFile(t, tokens), Console: ui, GuardInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ui.Attach(srv)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { srv.Close() })
	return srv, ts.URL
}

// tokensFile writes tokens, each with the SHA-256 of its secret, as a
// server tokens file in a temporary directory and returns its path.
func tokensFile(t testing.TB, tokens []Token) string {
	var entries []string
	for _, tk := range tokens {
		sum := sha256.Sum256([]byte(tk.Secret))
		entries = append(entries, fmt.Sprintf(`{"name":%q,"role":%q,"sha256":%q}`, tk.Name, tk.Role, hex.EncodeToString(sum[:])))
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte("["+strings.Join(entries, ",")+"]"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
