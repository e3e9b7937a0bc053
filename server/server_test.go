package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/flagstream/flags/rules"
)

func TestFlagsETag(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{Epoch: "e1"})
	resp, body := do(t, "GET", ts.URL+"/v1/flags", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/flags: status %d", resp.StatusCode)
	}
	if got, want := resp.Header.Get("ETag"), `"e1:17"`; got != want {
		t.Errorf("ETag = %s, want %s", got, want)
	}
	doc, err := rules.ParseDocument([]byte(body))
	if err != nil {
		t.Fatalf("body does not parse: %v", err)
	}
	if doc.Version != 17 || len(doc.Flags) != 2 || len(doc.Segments) != 1 {
		t.Errorf("body = %s, want version 17, 2 flags, 1 segment", body)
	}
	if got := member(t, doc.Flags["new-checkout"], "owner"); got != "team-a" {
		t.Errorf("unknown field owner = %v, want kept", got)
	}

	resp, body = do(t, "GET", ts.URL+"/v1/flags", "", "", "If-None-Match", `"e1:17"`)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("If-None-Match current: status %d body %q, want 304 and no body", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", ts.URL+"/v1/flags", "", "", "If-None-Match", `"other:17", W/"e1:17"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match list with weak match: status %d, want 304", resp.StatusCode)
	}
	resp, _ = do(t, "GET", ts.URL+"/v1/flags", "", "", "If-None-Match", `"e2:17"`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match of another epoch: status %d, want 200", resp.StatusCode)
	}

	if err := srv.Publish(mustParse(t, strings.Replace(baseDoc, `"owner": "team-a"`, `"owner": "team-b"`, 1))); err != nil {
		t.Fatal(err)
	}
	resp, _ = do(t, "GET", ts.URL+"/v1/flags", "", "", "If-None-Match", `"e1:17"`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"e1:18"` {
		t.Errorf("after Publish: status %d ETag %s, want 200 \"e1:18\"", resp.StatusCode, resp.Header.Get("ETag"))
	}
}

func TestStreamSnapshotFirst(t *testing.T) {
	_, ts := newTestServer(t, baseDoc, Options{Epoch: "e1"})
	c := openStream(t, ts.URL, "", "")
	ev := c.next(t)
	if ev.Name != "snapshot" || ev.ID != "e1:17" {
		t.Fatalf("first event %q id %q, want snapshot id e1:17", ev.Name, ev.ID)
	}
	doc, err := rules.ParseDocument([]byte(ev.Data))
	if err != nil {
		t.Fatalf("snapshot data: %v", err)
	}
	if doc.Version != 17 || len(doc.Flags) != 2 {
		t.Errorf("snapshot = %s", ev.Data)
	}
}

func TestPublishPatch(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{Epoch: "e1"})
	c := openStream(t, ts.URL, "", "")
	c.next(t) // snapshot

	// new-checkout changes (its version in the document is ignored), banner-text
	// is rewritten with another layout and version only, beta-testers is
	// deleted, a flag is added.
	next := `{"version": 1, "flags": {
	  "new-checkout": {"version": 1, "on": false, "variations": [false, true], "fallthrough": {"variation": 1}, "owner": "team-a"},
	  "banner-text": {"version": 99, "offVariation": 0, "on": false, "variations": ["a","b"], "fallthrough": {"variation": 0}},
	  "added": {"version": 7, "variations": [1, 2], "fallthrough": {"variation": 0}}
	}}`
	if err := srv.Publish(mustParse(t, next)); err != nil {
		t.Fatal(err)
	}
	checkPublishedChanges(t, srv, c)

	// Nothing changed: nothing is published, so the next patch is 19.
	if err := srv.Publish(mustParse(t, next)); err != nil {
		t.Fatal(err)
	}
	if srv.Version() != 18 {
		t.Errorf("Version after a no-op Publish = %d, want 18", srv.Version())
	}
	// A deleted key that comes back continues its version.
	if err := srv.Publish(mustParse(t, strings.Replace(next, `"flags"`, `"segments": {"beta-testers": {"included": []}}, "flags"`, 1))); err != nil {
		t.Fatal(err)
	}
	_, p := c.nextPatch(t)
	if p.Version != 19 {
		t.Fatalf("patch version %d, want 19", p.Version)
	}
	if got := member(t, p.Segments["beta-testers"], "version"); got != 3.0 {
		t.Errorf("re-added beta-testers version = %v, want 3 (2 when deleted, bumped)", got)
	}
	if err := srv.Publish(nil); err == nil {
		t.Error("Publish(nil) = nil, want an error")
	}
}

// checkPublishedChanges checks the patch TestPublishPatch's first Publish
// sends on c: the changed and the added flag with their versions, the
// deleted segment as null, and the flag whose layout alone changed left out.
func checkPublishedChanges(t *testing.T, srv *Server, c *sseClient) {
	t.Helper()
	ev, p := c.nextPatch(t)
	if ev.ID != "e1:18" || p.Version != 18 {
		t.Fatalf("patch id %s version %d, want e1:18 and 18", ev.ID, p.Version)
	}
	if len(p.Flags) != 2 || len(p.Segments) != 1 {
		t.Fatalf("patch = %s, want new-checkout and added, and beta-testers deleted", ev.Data)
	}
	if got := member(t, p.Flags["new-checkout"], "version"); got != 4.0 {
		t.Errorf("new-checkout version = %v, want 4 (3 bumped)", got)
	}
	if got := member(t, p.Flags["new-checkout"], "owner"); got != "team-a" {
		t.Errorf("new-checkout unknown field owner = %v, want kept", got)
	}
	if got := member(t, p.Flags["added"], "version"); got != 7.0 {
		t.Errorf("added version = %v, want 7 (a new key keeps its own)", got)
	}
	if raw, ok := p.Segments["beta-testers"]; !ok || string(raw) != "null" {
		t.Errorf("beta-testers = %s, want null (deleted)", raw)
	}
	if got := srv.Document().Flags["banner-text"]; string(got) == "" || member(t, got, "version") != 0.0 {
		t.Errorf("banner-text = %s, want unchanged at version 0", got)
	}
}

func TestPublishTooLarge(t *testing.T) {
	srv, _ := newTestServer(t, baseDoc, Options{MaxDocumentBytes: 2048})
	big := `{"flags": {"x": {"variations": [true], "fallthrough": {"variation": 0}, "description": "` + strings.Repeat("x", 4096) + `"}}}`
	errorIs(t, srv.Publish(mustParse(t, big)), ErrTooLarge)
	if srv.Version() != 17 {
		t.Errorf("Version = %d after a refused Publish, want 17", srv.Version())
	}
	if _, err := New(NewMemoryStore(mustParse(t, big)), Options{MaxDocumentBytes: 2048}); err == nil {
		t.Error("New with a too large document = nil error")
	}
}

func TestAuth(t *testing.T) {
	_, ts := newTestServer(t, baseDoc, Options{Token: "sdk", AdminToken: "adm"})
	_, open := newTestServer(t, baseDoc, Options{})
	_, readOnly := newTestServer(t, baseDoc, Options{Token: "sdk"})
	flag := `{"variations": [true], "fallthrough": {"variation": 0}}`
	for _, tc := range []struct {
		name, method, url, path, token, body string
		want                                 int
	}{
		{"flags no token", "GET", ts.URL, "/v1/flags", "", "", 401},
		{"flags wrong token", "GET", ts.URL, "/v1/flags", "nope", "", 401},
		{"flags sdk token", "GET", ts.URL, "/v1/flags", "sdk", "", 200},
		{"flags admin token reads", "GET", ts.URL, "/v1/flags", "adm", "", 200},
		{"stream no token", "GET", ts.URL, "/v1/stream", "", "", 401},
		{"stream wrong token", "GET", ts.URL, "/v1/stream", "nope", "", 401},
		{"admin no token", "PUT", ts.URL, "/v1/admin/flags/x", "", flag, 401},
		{"admin sdk token", "PUT", ts.URL, "/v1/admin/flags/x", "sdk", flag, 403},
		{"admin wrong token", "DELETE", ts.URL, "/v1/admin/segments/beta-testers", "nope", "", 401},
		{"admin ok", "PUT", ts.URL, "/v1/admin/flags/x", "adm", flag, 200},
		{"unknown admin path", "GET", ts.URL, "/v1/admin/other/x", "adm", "", 404},
		{"admin read sdk token", "GET", ts.URL, "/v1/admin/flags/new-checkout", "sdk", "", 403},
		{"admin read", "GET", ts.URL, "/v1/admin/flags/new-checkout", "adm", "", 200},
		{"open server reads", "GET", open.URL, "/v1/flags", "", "", 200},
		{"open server any token reads", "GET", open.URL, "/v1/flags", "whatever", "", 200},
		{"no admin token: admin 404", "PUT", open.URL, "/v1/admin/flags/x", "", flag, 404},
		{"no admin token: delete 404", "DELETE", readOnly.URL, "/v1/admin/flags/new-checkout", "sdk", "", 404},
		{"no admin token: other method 404", "POST", readOnly.URL, "/v1/admin/flags/x", "sdk", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, tc.url+tc.path, tc.token, tc.body)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.want)
			}
			if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
			if tc.want >= 400 {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Errorf("error body %q, want JSON with an error", body)
				}
			}
		})
	}
}

func TestOptionsInvalid(t *testing.T) {
	store := NewMemoryStore(nil)
	for _, o := range []Options{
		{HeartbeatInterval: -1},
		{WriteTimeout: -1},
		{MaxBodyBytes: -1},
		{ReplayPatches: -1},
		{Epoch: "has:colon"},
		{Epoch: strings.Repeat("e", 65)},
	} {
		if _, err := New(store, o); err == nil {
			t.Errorf("New(%+v) = nil error", o)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil store) = nil error")
	}
	a, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Epoch() == "" || a.Epoch() == b.Epoch() {
		t.Errorf("default epochs %q and %q, want random", a.Epoch(), b.Epoch())
	}
}
