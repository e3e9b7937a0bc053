package console

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/server/console/internal/consoletest"
)

const testDoc = `{"flags": {
  "checkout": {"version": 2, "on": true, "variations": [false, true], "description": "the new checkout", "tags": ["payments"],
    "rules": [{"id": "fr", "clauses": [{"attribute": "country", "op": "in", "values": ["fr", "de"]}], "serve": {"variation": 1}}],
    "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
    "guard": {"metric": "errors", "better": "lower", "control": 0, "treatment": 1}},
  "banner": {"on": false, "variations": ["a", "b"], "offVariation": 0, "fallthrough": {"variation": 1},
    "prerequisites": [{"flag": "checkout", "variation": 1}]}},
  "segments": {"beta": {"included": ["u1"], "rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "weight": 10000}]}}}`

type fixture struct {
	srv *server.Server
	url string
}

// newFixture serves testDoc with an admin "alice" and an operator "olga"
// (secrets "alice-secret", "olga-secret") and a reader.
func newFixture(t testing.TB, doc string) *fixture {
	t.Helper()
	srv, base := consoletest.Serve(t, doc, New(Options{}),
		consoletest.Token{Name: "alice", Role: "admin", Secret: "alice-secret"},
		consoletest.Token{Name: "olga", Role: "operator", Secret: "olga-secret"},
		consoletest.Token{Name: "rita", Role: "reader", Secret: "rita-secret"})
	return &fixture{srv: srv, url: base}
}

// browser is an HTTP client with cookies, signed in as token.
type browser struct {
	t    testing.TB
	c    *http.Client
	base string
}

func (f *fixture) signIn(t testing.TB, token string) (*browser, int) {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, base: f.url}
	return b, b.signIn(token).StatusCode
}

// signIn fills in the sign-in form as a browser does: it loads the form
// (which sets the form's CSRF cookie) and posts the token with the form's
// CSRF token. b's client must keep cookies.
func (b *browser) signIn(token string) *http.Response {
	b.t.Helper()
	_, form := b.get("/ui/login")
	resp, _ := b.post("/ui/login", url.Values{"token": {token}, "csrf": {csrfOf(b.t, form)}})
	return resp
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t testing.TB, page string) string {
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

func TestSignInAndSessions(t *testing.T) {
	f := newFixture(t, testDoc)
	anon := &browser{t: t, c: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, base: f.url}
	if resp, _ := anon.get("/ui/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("the list without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, tc := range []struct {
		token string
		code  int
	}{{"nope", 401}, {"rita-secret", 403}, {"olga-secret", 200}} {
		if _, code := f.signIn(t, tc.token); code != tc.code {
			t.Errorf("sign in with %s: %d, want %d", tc.token, code, tc.code)
		}
	}
	// The cookie: HttpOnly, SameSite=Strict, scoped to /ui/.
	jar, _ := cookiejar.New(nil)
	anon.c.Jar = jar
	resp := anon.signIn("alice-secret")
	anon.c.Jar = nil
	ck := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"flags_console=", "Path=/ui/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(resp.Header.Get("Location"), "secret") {
		t.Error("the token appears in a URL")
	}
	b, _ := f.signIn(t, "alice-secret")
	_, page := b.get("/ui/")
	if !strings.Contains(page, "checkout") || !strings.Contains(page, "alice (admin)") {
		t.Fatalf("the list: %s", page)
	}
	// Sign-out ends the session.
	b.post("/ui/logout", url.Values{"csrf": {csrfOf(t, page)}})
	if _, page := b.get("/ui/"); !strings.Contains(page, "Sign in") {
		t.Error("still signed in after signing out")
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t, testDoc)
	now := time.Now()
	ui := New(Options{Now: func() time.Time { return now }})
	ui.Attach(f.srv)
	ts := httptest.NewServer(http.StripPrefix("", ui))
	defer ts.Close()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, base: ts.URL}
	b.signIn("olga-secret")
	if _, page := b.get("/ui/"); !strings.Contains(page, "olga") {
		t.Fatal("not signed in")
	}
	now = now.Add(IdleTimeout + time.Minute)
	if _, page := b.get("/ui/"); !strings.Contains(page, "Sign in") {
		t.Error("a session idle for longer than IdleTimeout still works")
	}
}

func TestKillSwitchCSRFAndRoles(t *testing.T) {
	f := newFixture(t, testDoc)
	op, _ := f.signIn(t, "olga-secret")
	_, page := op.get("/ui/")
	csrf := csrfOf(t, page)
	// Without the CSRF token: refused, nothing changes.
	if resp, _ := op.post("/ui/flags/checkout/switch", url.Values{"on": {"false"}, "version": {"2"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("switch without CSRF: %d, want 403", resp.StatusCode)
	}
	if string(f.srv.Document().Flags["checkout"]) == "" || strings.Contains(string(f.srv.Document().Flags["checkout"]), `"on":false`) {
		t.Fatal("the flag changed without a CSRF token")
	}
	// The operator switches it off.
	_, page = op.post("/ui/flags/checkout/switch", url.Values{"csrf": {csrf}, "on": {"false"}, "version": {"2"}, "back": {"/ui/"}})
	if !strings.Contains(page, "checkout is now off") || !strings.Contains(string(f.srv.Document().Flags["checkout"]), `"on":false`) {
		t.Errorf("switch off: %s", page)
	}
	// The operator sees no editor, and a forged edit is refused.
	_, page = op.get("/ui/flags/checkout")
	if strings.Contains(page, `id="edit"`) {
		t.Error("an operator sees the editor")
	}
	if resp, _ := op.post("/ui/flags/checkout/edit", url.Values{"csrf": {csrf}, "version": {"3"}, "json": {`{"on":true,"variations":[1],"fallthrough":{"variation":0}}`}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an operator's forged edit: %d, want 403", resp.StatusCode)
	}
	// A stale page: the switch shows the conflict and the newer value.
	resp, page := op.post("/ui/flags/checkout/switch", url.Values{"csrf": {csrf}, "on": {"true"}, "version": {"2"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "now at version 3") || !strings.Contains(page, `&#34;on&#34;: false`) {
		t.Errorf("a stale switch: %d %s", resp.StatusCode, page)
	}
	// The audit names the operator.
	_, page = op.get("/ui/audit")
	if !strings.Contains(page, "<b>olga</b>") || !strings.Contains(page, "from the console") {
		t.Errorf("audit page: %s", page)
	}
}

func TestFlagPageInWords(t *testing.T) {
	f := newFixture(t, testDoc)
	b, _ := f.signIn(t, "alice-secret")
	_, page := b.get("/ui/flags/checkout")
	for _, want := range []string{
		"Rule 1 (fr): if country is one of fr, de → variation 1 (true).",
		"Everyone else → a rollout: 50 % variation 0 (false), 50 % variation 1 (true).",
		"guard armed: errors, lower is better",
		"Switched off, it serves everyone the caller&#39;s default.",
		"Required by: <a href=\"/ui/flags/banner\">banner</a>",
		`id="edit"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("flag page lacks %q", want)
		}
	}
	// A prerequisite flag or a segment the document lacks is named on the
	// page, as valid but missing (most often a misspelt key).
	tb, _ := newFixture(t, `{"flags": {"typo": {"on": true, "variations": [false, true],
	    "prerequisites": [{"flag": "checkuot", "variation": 1}],
	    "rules": [{"clauses": [{"op": "inSegment", "values": ["beta", "btea"]}], "serve": {"variation": 1}}],
	    "fallthrough": {"variation": 0}}},
	  "segments": {"beta": {"included": ["u1"]}}}`).signIn(t, "alice-secret")
	_, page = tb.get("/ui/flags/typo")
	for _, want := range []string{
		`<p class="bad missing" role="alert">prerequisites[0].flag: flag &#34;checkuot&#34; is not in the document, so this prerequisite always fails.</p>`,
		`<p class="bad missing" role="alert">rules[0].clauses[0].values[1]: segment &#34;btea&#34; is not in the document, so no context is in it.</p>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("flag page of typo lacks %q", want)
		}
	}
	if _, page = b.get("/ui/flags/checkout"); strings.Contains(page, `class="bad missing"`) {
		t.Errorf("checkout names nothing missing, but its page says it does")
	}
	_, page = b.get("/ui/segments")
	if !strings.Contains(page, "Rule: plan is one of pro (10 % of them)") {
		t.Errorf("segments page: %s", page)
	}
	// An admin edit through the form, then a stale one.
	csrf := csrfOf(t, page)
	_, page = b.post("/ui/flags/banner/edit", url.Values{"csrf": {csrf}, "version": {"0"}, "comment": {"retire"},
		"json": {`{"on": true, "variations": ["a", "b"], "fallthrough": {"variation": 1}}`}})
	if !strings.Contains(page, "banner saved") {
		t.Errorf("edit: %s", page)
	}
	resp, _ := b.post("/ui/flags/banner/edit", url.Values{"csrf": {csrf}, "version": {"0"}, "json": {`{"on": false, "variations": ["a"], "fallthrough": {"variation": 0}}`}})
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("a stale edit: %d, want 409 with the newer value", resp.StatusCode)
	}
}

// BenchmarkPages10000Flags: the console's pages over 10,000 flags (SPEC
// §11: under 200 ms), every one of which uses one segment and requires one
// flag: the list, page 50 of a search, a flag page, the flag every other
// requires, the segments, the flags using the segment, the audit log.
func BenchmarkPages10000Flags(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"segments": {"beta": {"included": ["u1"]}}, "flags": {`)
	for i := range 10000 {
		if i > 0 {
			sb.WriteString(",")
		}
		prereq := ""
		if i > 0 {
			prereq = `"prerequisites": [{"flag": "flag-00000", "variation": 1}], `
		}
		fmt.Fprintf(&sb, `"flag-%05d": {"on": %v, "variations": [false, true], "tags": ["team-%d"], %s"rules": [{"id": "r", "clauses": [{"attribute": "country", "op": "in", "values": ["fr"]}, {"op": "inSegment", "values": ["beta"]}], "serve": {"variation": 1}}], "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}}`, i, i%2 == 0, i%7, prereq)
	}
	sb.WriteString(`}}`)
	f := newFixture(b, sb.String())
	br, _ := f.signIn(b, "alice-secret")
	for _, path := range []string{"/ui/", "/ui/?q=flag-0&page=50", "/ui/flags/flag-04242", "/ui/flags/flag-00000", "/ui/segments", "/ui/?segment=beta&page=7", "/ui/audit"} {
		b.Run(path, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if resp, _ := br.get(path); resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", path, resp.StatusCode)
				}
			}
		})
	}
}
