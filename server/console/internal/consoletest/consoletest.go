// Package consoletest serves a rules document with the web console attached,
// for the console's tests: the HTTP tests of package console and the browser
// tests of its nested module start their server the same way.
package consoletest

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// Token is an API token of the test server, the one the other tests of
// the module write their tokens files with.
type Token = testkit.Token

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
	return ServeStore(t, server.NewMemoryStore(d), ui, tokens...)
}

// ServeStore is Serve over a store of the test's own.
func ServeStore(t testing.TB, store server.Store, ui Console, tokens ...Token) (*server.Server, string) {
	t.Helper()
	return ServeOptions(t, store, ui, server.Options{}, tokens...)
}

// ServeOptions is ServeStore with server options of the test's own (a
// logger, a tokens file it rewrites); the tokens go to a tokens file of
// their own unless opts names one, and ui is the console.
func ServeOptions(t testing.TB, store server.Store, ui Console, opts server.Options, tokens ...Token) (*server.Server, string) {
	t.Helper()
	if opts.TokensFile == "" {
		opts.TokensFile = testkit.TokensFile(t, tokens...)
	}
	// Guards are checked once an hour: the tests post events that would
	// trip a guard at the next check, and show it armed.
	opts.Console, opts.GuardInterval = ui, time.Hour
	srv, err := server.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ui.Attach(srv)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { srv.Close() })
	return srv, ts.URL
}
