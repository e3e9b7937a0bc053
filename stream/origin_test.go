package stream

import (
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/flagstream/flags"
)

// seenAuth records the requests a server received, with their
// Authorization header: "PATH AUTH".
type seenAuth struct {
	mu   sync.Mutex
	reqs []string
}

func (s *seenAuth) add(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r.URL.Path+" "+r.Header.Get("Authorization"))
}

func (s *seenAuth) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

// startClient runs a Source on cfg, polling (poll) or streaming.
func startClient(t *testing.T, cfg Config, poll bool, h flags.Updates) *runner {
	t.Helper()
	if poll {
		return startRun(t, newTestPoller(t, cfg).Run, h)
	}
	return startRun(t, newTestStreamer(t, cfg).Run, h)
}

// TestRedirectToAnotherOriginRefused: "The SDK follows same-host redirects
// with the token, including https → http". A redirect to another port, or
// from https to http, is refused before any request leaves for it: the
// server behind it never sees the token.
func TestRedirectToAnotherOriginRefused(t *testing.T) {
	var elsewhere seenAuth
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.add(r)
		http.NotFound(w, r)
	}))
	t.Cleanup(other.Close)
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	for _, tc := range []struct {
		name string
		tls  bool
		poll bool
		why  string
	}{
		{"stream to another port", false, false, "another host or port"},
		{"poll to another port", false, true, "another host or port"},
		{"stream from https to http", true, false, "from https to http"},
		{"poll from https to http", true, true, "from https to http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(redirect)
			if tc.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			cfg, clock := gatedConfig(srv.URL)
			cfg.HTTPClient = srv.Client() // trusts the test certificate
			rec := newRecorder()
			run := startClient(t, cfg, tc.poll, rec)
			nextSleep(t, clock) // the first failure is reported before the wait
			run.stop(t)
			_, sts := rec.snapshot()
			if len(sts) == 0 || !errors.Is(sts[0].Err, ErrRedirectRefused) || sts[0].Healthy {
				t.Fatalf("statuses = %v, want a failure with ErrRedirectRefused", sts)
			}
			if msg := sts[0].Err.Error(); !strings.Contains(msg, tc.why) || !strings.Contains(msg, other.URL) {
				t.Errorf("error %q does not say where the redirect went and why (%s)", msg, tc.why)
			}
			if got := elsewhere.list(); len(got) != 0 {
				t.Errorf("the other origin received %v, want nothing", got)
			}
		})
	}
}

// TestRedirectWithinOriginFollowed: a redirect to another path of the same
// scheme, host and port is followed, with the token; a user's
// CheckRedirect is still consulted for it.
func TestRedirectWithinOriginFollowed(t *testing.T) {
	var seen seenAuth
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/flags", func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		http.Redirect(w, r, "/moved/flags", http.StatusFound)
	})
	mux.HandleFunc("/moved/flags", func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		w.Header().Set("ETag", `"e1:4"`)
		_, _ = w.Write([]byte(docJSON(4, "a")))
	})
	mux.HandleFunc("/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		http.Redirect(w, r, "/moved/stream", http.StatusFound)
	})
	mux.HandleFunc("/moved/stream", func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		sseStart(w)
		sseEvent(w, "snapshot", "e1:4", docJSON(4, "a"))
		holdStream(r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, poll := range []bool{false, true} {
		clock := newFakeClock()
		cfg := testConfig(srv.URL, clock)
		var consulted sync.Map
		cfg.HTTPClient.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			consulted.Store(req.URL.Path, true)
			return nil
		}
		rec := newRecorder()
		run := startClient(t, cfg, poll, rec)
		if docs := rec.waitDocs(t, 1); docs[0].Version != 4 {
			t.Errorf("poll=%v: applied %v, want version 4", poll, versions(docs))
		}
		run.stop(t)
		moved := "/moved/stream"
		if poll {
			moved = "/moved/flags"
		}
		if _, ok := consulted.Load(moved); !ok {
			t.Errorf("poll=%v: the HTTPClient's CheckRedirect was not consulted for %s", poll, moved)
		}
	}
	for _, r := range seen.list() {
		if !strings.HasSuffix(r, " Bearer sdk-token") {
			t.Errorf("request %q, want the token on every request to the origin", r)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"http://h", "http://h:80/x", true},
		{"https://h", "https://H:443/x", true},
		{"HTTP://h:8080", "http://h:8080/y", true},
		{"http://h:8080", "http://h:8081", false},
		{"https://h", "http://h:443", false},
		{"http://h", "http://h.evil", false},
		{"http://127.0.0.1:1", "http://localhost:1", false},
	} {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if got := sameOrigin(a, b); got != tc.want {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestRedactURL: passwords are hidden in URLs that parse and in those
// that do not (url.Parse's own error would show them).
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://ann:pw@h:1/x":      "http://ann:xxxxx@h:1/x",
		"http://h/x":               "http://h/x",
		"http://ann@h/":            "http://ann@h/",
		"http://ann:pw@h:port/x":   "http://xxxxx@h:port/x",
		"http://a:p@w@h:bad/?q=@x": "http://xxxxx@h:bad/?q=@x",
		"not a url %zz":            "not a url %zz",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	err := redactErr(&url.Error{Op: "Get", URL: "http://ann:pw@h/", Err: errors.New("boom")})
	if msg := err.Error(); strings.Contains(msg, "pw") || !strings.Contains(msg, "boom") {
		t.Errorf("redactErr = %q, want the password hidden and the cause kept", msg)
	}
	if err := New(Config{BaseURL: "http://ann:pw@h:port/"}).Load(newRecorder()); err == nil || strings.Contains(err.Error(), ":pw@") {
		t.Errorf("Load with a bad BaseURL = %v, want an error without the password", err)
	}
}

// TestRootCAsWithOwnHTTPClient: RootCAs configure the default client only;
// given with a client of one's own, Load says where the CAs belong.
func TestRootCAsWithOwnHTTPClient(t *testing.T) {
	err := New(Config{BaseURL: "https://127.0.0.1:1", RootCAs: x509.NewCertPool(), HTTPClient: &http.Client{}}).Load(newRecorder())
	if err == nil || !strings.Contains(err.Error(), "TLSClientConfig.RootCAs") {
		t.Errorf("Load with RootCAs and HTTPClient = %v, want an error naming TLSClientConfig.RootCAs", err)
	}
}
