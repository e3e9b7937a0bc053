package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/server/console/internal/consoletest"
)

// TestSignInFormCSRF: signing in replaces the browser's session, so a
// form on another site that posts a token of its own must not sign the
// browser in (login CSRF): the sign-in form's CSRF token must come back,
// with the cookie only this site's pages get.
func TestSignInFormCSRF(t *testing.T) {
	f := newFixture(t, testDoc)
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, base: f.url}
	// A post that did not come from the form: refused, no session.
	resp, page := b.post("/ui/login", url.Values{"token": {"olga-secret"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "another site") {
		t.Errorf("sign-in without the form's token: %d %s", resp.StatusCode, page)
	}
	if _, page := b.get("/ui/"); !strings.Contains(page, "Sign in") {
		t.Fatal("signed in by a post that did not come from the sign-in form")
	}
	// The form's token with a browser saying another site sent the form.
	_, form := b.get("/ui/login")
	req, _ := http.NewRequest(http.MethodPost, f.url+"/ui/login", strings.NewReader(url.Values{"token": {"olga-secret"}, "csrf": {csrfOf(t, form)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site sign-in: %d, want 403", resp.StatusCode)
	}
	// From the form: signed in. Signing in again ends the first session.
	resp = b.signIn("olga-secret")
	first := sessionCookie(t, jar, f.url)
	if resp.StatusCode != http.StatusOK || first == "" {
		t.Fatalf("sign-in from the form: %d", resp.StatusCode)
	}
	b.signIn("alice-secret")
	old := &browser{t: t, c: &http.Client{Jar: singleCookie(t, f.url, first)}, base: f.url}
	if _, page := old.get("/ui/"); !strings.Contains(page, "Sign in") {
		t.Error("the session a new sign-in replaced still works")
	}
	// A change whose browser says another site sent it is refused, CSRF
	// token or not.
	_, page = b.get("/ui/")
	req, _ = http.NewRequest(http.MethodPost, f.url+"/ui/flags/checkout/switch", strings.NewReader(url.Values{"on": {"false"}, "version": {"2"}, "csrf": {csrfOf(t, page)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-site")
	if resp, err = b.c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(f.srv.Document().Flags["checkout"]), `"on":false`) {
		t.Errorf("a switch sent by another site: %d", resp.StatusCode)
	}
}

func sessionCookie(t *testing.T, jar http.CookieJar, base string) string {
	u, _ := url.Parse(base + "/ui/")
	for _, c := range jar.Cookies(u) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

func singleCookie(t *testing.T, base, value string) http.CookieJar {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base + "/ui/")
	jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: value, Path: "/ui/"}})
	return jar
}

// TestSessionFollowsTokensFile: a session has the rights its token has
// now. An admin demoted to operator in the tokens file no longer sees the
// editor; a token removed from it is signed out.
func TestSessionFollowsTokensFile(t *testing.T) {
	tokens := testkit.TokensFile(t, testkit.Token{Name: "alice", Role: "admin", Secret: "alice-secret"})
	f := optionsFixture(t, server.Options{TokensFile: tokens, TokensPollInterval: 5 * time.Millisecond})
	b, _ := f.signIn(t, "alice-secret")
	if _, page := b.get("/ui/flags/checkout"); !strings.Contains(page, "alice (admin)") || !strings.Contains(page, `id="edit"`) {
		t.Fatalf("an admin's flag page: %s", page)
	}
	rewrite := func(content string) {
		if err := os.WriteFile(tokens, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	awaitPage := func(path, want string) string {
		t.Helper()
		var page string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, page = b.get(path); strings.Contains(page, want) {
				return page
			}
		}
		t.Fatalf("%s never showed %q: %s", path, want, page)
		return ""
	}
	rewrite("[" + testkit.TokenLine("alice", "operator", "alice-secret") + "]")
	if page := awaitPage("/ui/flags/checkout", "alice (operator)"); strings.Contains(page, `id="edit"`) {
		t.Error("an admin demoted to operator still sees the editor")
	}
	rewrite("[" + testkit.TokenLine("bob", "admin", "bob-secret") + "]")
	awaitPage("/ui/flags/checkout", "Sign in")
}

// TestLongListsAreCapped: a segment that every flag uses, and a flag that
// every flag requires, list the first listCap flags on their pages and
// link to the whole list; the flag list filters by either.
func TestLongListsAreCapped(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"segments": {"s": {"included": ["u1"]}}, "flags": {"base": {"on": true, "variations": [false, true], "fallthrough": {"variation": 1}}`)
	const n = 50
	for i := range n {
		fmt.Fprintf(&sb, `, "f%02d": {"on": true, "variations": [false, true], "prerequisites": [{"flag": "base", "variation": 1}], "rules": [{"clauses": [{"op": "inSegment", "values": ["s"]}], "serve": {"variation": 1}}], "fallthrough": {"variation": 0}}`, i)
	}
	sb.WriteString(`}}`)
	f := newFixture(t, sb.String())
	b, _ := f.signIn(t, "alice-secret")
	more := fmt.Sprintf("and %d more", n-listCap)
	for path, all := range map[string]string{"/ui/segments": "/ui/?segment=s", "/ui/flags/base": "/ui/?requires=base"} {
		_, page := b.get(path)
		if got := strings.Count(page, `<a href="/ui/flags/f`); got != listCap || !strings.Contains(page, more) || !strings.Contains(page, all) {
			t.Errorf("%s lists %d flags (want %d), %q or a link to %s missing", path, got, listCap, more, all)
		}
		_, page = b.get(all)
		if !strings.Contains(page, fmt.Sprintf(`<span class="muted">%d</span>`, n)) {
			t.Errorf("%s does not count %d flags", all, n)
		}
	}
	if _, page := b.get("/ui/segments?key=s"); strings.Count(page, `class="segment"`) != 1 {
		t.Error("a link to one segment does not show it alone")
	}
	// A segment's change in the audit log links to the segment.
	req, _ := http.NewRequest(http.MethodPut, f.url+"/v1/admin/segments/s", strings.NewReader(`{"included": ["u2"]}`))
	req.Header.Set("Authorization", "Bearer alice-secret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("put segment: %v %v", resp, err)
	}
	if _, page := b.get("/ui/audit"); !strings.Contains(page, `segment <a href="/ui/segments?key=s">s</a>`) {
		t.Errorf("the audit log's link to segment s: %s", page)
	}
	if _, page := b.get("/ui/audit?key=s&kind=flag"); strings.Contains(page, `segment <a href`) {
		t.Error("the audit log of flag s shows segment s's changes")
	}
}

// TestStaticFiles: the style sheet and the script are served to anyone;
// nothing else of the embedded assets is (no listing, no templates).
func TestStaticFiles(t *testing.T) {
	f := newFixture(t, testDoc)
	for path, want := range map[string]int{"/ui/static/console.css": 200, "/ui/static/console.js": 200,
		"/ui/static/": 404, "/ui/static/pages.html": 404, "/ui/static/../console.go": 404} {
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestPageNumbersAnySize: a page number past the end, however large, is
// an empty page, not a crash.
func TestPageNumbersAnySize(t *testing.T) {
	f := newFixture(t, testDoc)
	b, _ := f.signIn(t, "alice-secret")
	for _, path := range []string{"/ui/", "/ui/segments", "/ui/audit"} {
		for _, p := range []string{"9223372036854775807", "92233720368547758", "-5", "x", "2"} {
			if resp, _ := b.get(path + "?page=" + p); resp.StatusCode != http.StatusOK {
				t.Errorf("%s?page=%s: %d", path, p, resp.StatusCode)
			}
		}
	}
}

// TestEditsAndSwitchesAsTyped: a key with a slash has a page of its own; a
// refused edit keeps what was typed; a switch says on or off, nothing
// else; a clause's values read as written; a stale edit of a flag deleted
// since says so and shows the edit.
func TestEditsAndSwitchesAsTyped(t *testing.T) {
	f := newFixture(t, `{"flags": {"team/a": {"on": true, "variations": [false, true], "fallthrough": {"variation": 0}},
		"pat": {"on": true, "variations": [false, true], "fallthrough": {"variation": 0}, "description": "`+strings.Repeat("é", 500)+`",
		"rules": [{"clauses": [{"attribute": "email", "op": "matches", "values": ["^a.*@x\\.com$"]}], "serve": {"variation": 1}}]}}}`)
	b, _ := f.signIn(t, "alice-secret")
	_, list := b.get("/ui/")
	if !strings.Contains(list, `href="/ui/flags/team%2fa"`) && !strings.Contains(list, `href="/ui/flags/team%2Fa"`) {
		t.Fatalf("the list's link to team/a: %s", list)
	}
	if strings.Contains(list, `id="switch-team/a"`) || !strings.Contains(list, `id="switch-pat"`) {
		t.Error("the list offers a switch for the malformed flag team/a, or none for pat")
	}
	if strings.Contains(list, strings.Repeat("é", 201)) || !strings.Contains(list, strings.Repeat("é", 200)+"…") {
		t.Error("the list does not clip a long description to 200 characters")
	}
	if resp, page := b.get("/ui/flags/team%2Fa"); resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>team/a") {
		t.Fatalf("team/a's page: %d %s", resp.StatusCode, page)
	}
	resp, page := b.get("/ui/flags/pat")
	if !strings.Contains(page, `email matches ^a.*@x\.com$`) {
		t.Fatalf("pat's page: %d %s", resp.StatusCode, page)
	}
	csrf := csrfOf(t, page)
	typed := `{"on": true, "variations": [false, true], "fallthrough": {"variation": 7}} MY-UNSAVED-WORK`
	resp, page = b.post("/ui/flags/pat/edit", url.Values{"csrf": {csrf}, "version": {"0"}, "json": {typed}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "MY-UNSAVED-WORK") || !strings.Contains(page, "was not saved") {
		t.Errorf("a refused edit: %d, the page lacks the edit or the reason: %s", resp.StatusCode, page)
	}
	if resp, _ := b.post("/ui/flags/pat/switch", url.Values{"csrf": {csrf}, "version": {"0"}, "on": {"maybe"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("on=maybe: %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(string(f.srv.Document().Flags["pat"]), `"on":true`) {
		t.Errorf("pat changed: %s", f.srv.Document().Flags["pat"])
	}
	req, _ := http.NewRequest(http.MethodDelete, f.url+"/v1/admin/flags/pat", nil)
	req.Header.Set("Authorization", "Bearer alice-secret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("delete: %v %v", resp, err)
	}
	resp, page = b.post("/ui/flags/pat/edit", url.Values{"csrf": {csrf}, "version": {"0"}, "json": {`{"on": false, "variations": ["EDIT-2"], "fallthrough": {"variation": 0}}`}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "deleted pat") || !strings.Contains(page, "EDIT-2") {
		t.Errorf("an edit of a deleted flag: %d %s", resp.StatusCode, page)
	}
}

// auditDown is a memory store whose audit log cannot be read while down.
type auditDown struct {
	*server.MemoryStore
	down atomic.Bool
}

func (s *auditDown) Audit(ctx context.Context, q server.AuditQuery) (*server.AuditPage, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("%w: connection refused", server.ErrUnavailable)
	}
	return s.MemoryStore.Audit(ctx, q)
}

// TestAuditOutOfReach: when the audit log cannot be read, the audit page
// and a flag's history say so (503 for the page) rather than showing an
// empty log, which reads as "no change recorded".
func TestAuditOutOfReach(t *testing.T) {
	d, err := rules.ParseDocument([]byte(testDoc))
	if err != nil {
		t.Fatal(err)
	}
	store := &auditDown{MemoryStore: server.NewMemoryStore(d)}
	_, base := consoletest.ServeStore(t, store, New(Options{}), consoletest.Token{Name: "alice", Role: "admin", Secret: "alice-secret"})
	f := &fixture{url: base}
	b, _ := f.signIn(t, "alice-secret")
	_, page := b.get("/ui/")
	if _, page := b.post("/ui/flags/checkout/switch", url.Values{"csrf": {csrfOf(t, page)}, "on": {"false"}, "version": {"2"}}); !strings.Contains(page, "checkout is now off") {
		t.Fatalf("switch: %s", page)
	}
	if _, page := b.get("/ui/audit"); !strings.Contains(page, "checkout") || strings.Contains(page, "No change recorded") {
		t.Fatal("the audit page does not show the switch of checkout")
	}
	store.down.Store(true)
	resp, page := b.get("/ui/audit")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "cannot be read") || strings.Contains(page, "No change recorded") {
		t.Errorf("the audit page with the log out of reach: %d, want 503 saying it cannot be read", resp.StatusCode)
	}
	if _, page := b.get("/ui/flags/checkout"); !strings.Contains(page, "cannot be read") || strings.Contains(page, "No change recorded") {
		t.Error("the flag page's history with the log out of reach does not say it cannot be read")
	}
}

// TestSessionsPerTokenCapped: signing in with one token more than
// MaxSessionsPerToken times ends that token's oldest session, not another
// token's, and the sessions kept go on working.
func TestSessionsPerTokenCapped(t *testing.T) {
	f := newFixture(t, testDoc)
	other, _ := f.signIn(t, "alice-secret")
	var held []*browser
	for range MaxSessionsPerToken + 1 {
		b, code := f.signIn(t, "olga-secret")
		if code != http.StatusOK {
			t.Fatalf("sign in: %d", code)
		}
		held = append(held, b)
	}
	if _, page := held[0].get("/ui/"); !strings.Contains(page, "Sign in") {
		t.Errorf("the oldest of %d sessions of one token still works", len(held))
	}
	for i, b := range held[1:] {
		if _, page := b.get("/ui/"); !strings.Contains(page, "olga (operator)") {
			t.Fatalf("session %d of %d was ended", i+2, len(held))
		}
	}
	if _, page := other.get("/ui/"); !strings.Contains(page, "alice (admin)") {
		t.Error("another token's session was ended")
	}
}

// TestDotKeys: the keys "." and ".." are valid, but dot segments of a
// path, which browsers remove even escaped: their pages and switches
// work all the same.
func TestDotKeys(t *testing.T) {
	flag := `{"version": 1, "on": true, "variations": [true, false], "fallthrough": {"variation": 0}, "offVariation": 1}`
	f := newFixture(t, `{"flags": {".": `+flag+`, "..": `+flag+`}}`)
	b, _ := f.signIn(t, "olga-secret")
	_, list := b.get("/ui/")
	for _, key := range []string{".", ".."} {
		action := `action="/ui/flags/~` + key + `/switch"`
		if !strings.Contains(list, action) {
			t.Fatalf("the list has no %s: %s", action, list)
		}
		if resp, page := b.get("/ui/flags/~" + key); resp.StatusCode != 200 || !strings.Contains(page, "<h1>"+key+" ") {
			t.Fatalf("the page of %q: %d %s", key, resp.StatusCode, page)
		}
		b.post("/ui/flags/~"+key+"/switch", url.Values{"csrf": {csrfOf(t, list)}, "on": {"false"}, "version": {"1"}, "back": {"/ui/"}})
		if got := f.srv.Document().Flags[key]; strings.Contains(string(got), `"on":true`) || !strings.Contains(string(got), `"on":false`) {
			t.Errorf("%q after the switch: %s", key, got)
		}
	}
}

// TestPlantedSessionCookie: a page of another port of this host (or of a
// sibling domain) can set a second session cookie with a longer path,
// which the browser sends first; a request with two session cookies is
// not signed in, whichever session they name.
func TestPlantedSessionCookie(t *testing.T) {
	f := newFixture(t, testDoc)
	victim, _ := f.signIn(t, "alice-secret")
	attacker, _ := f.signIn(t, "olga-secret")
	mine := sessionCookie(t, victim.c.Jar, f.url)
	theirs := sessionCookie(t, attacker.c.Jar, f.url)
	req, _ := http.NewRequest("GET", f.url+"/ui/flags/checkout", nil)
	req.Header.Add("Cookie", cookieName+"="+theirs) // the planted one, sent first
	req.Header.Add("Cookie", cookieName+"="+mine)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("two session cookies: %d %s, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Both are expired, at every path a planted one could have (a planted
	// cookie left in place sent the person to sign in from every page).
	expired := map[string]bool{}
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName && ck.MaxAge < 0 {
			expired[ck.Path] = true
		}
	}
	for _, path := range []string{"/ui/", "/ui/flags", "/ui/flags/", "/ui/flags/checkout"} {
		if !expired[path] {
			t.Errorf("the session cookie is not expired at %s: %v", path, resp.Header.Values("Set-Cookie"))
		}
	}
}

// TestSwitchStaysOnSite: the page a switch goes back to is cleaned before
// it is checked, so dot segments cannot turn it into another site.
func TestSwitchStaysOnSite(t *testing.T) {
	f := newFixture(t, testDoc)
	b, _ := f.signIn(t, "olga-secret")
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	version := regexp.MustCompile(`name="version" value="(\d+)"`)
	on := false
	for _, tc := range []struct{ back, want string }{
		{`/ui/../\evil.example`, "/ui/"}, {`/ui/..//evil.example`, "/ui/"}, {"//evil.example", "/ui/"},
		{`/ui/flags/checkout/..\..`, "/ui/"}, {"/ui/flags/checkout", "/ui/flags/checkout"},
	} {
		_, page := b.get("/ui/flags/checkout")
		m := version.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no version in the page: %s", page)
		}
		on = !on
		resp, _ := b.post("/ui/flags/checkout/switch", url.Values{"csrf": {csrfOf(t, page)}, "on": {strconv.FormatBool(on)}, "version": {m[1]}, "back": {tc.back}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != tc.want {
			t.Errorf("back %q: %d Location %q, want 303 %q", tc.back, resp.StatusCode, loc, tc.want)
		}
	}
}

// TestSignInTokenTrimmedNeverEmpty: a token pasted with spaces or a line
// end signs in as the API takes it; an empty token never does, even when a
// tokens file lists the empty string's digest.
func TestSignInTokenTrimmedNeverEmpty(t *testing.T) {
	f := newFixture(t, testDoc)
	if _, code := f.signIn(t, " olga-secret\n"); code != http.StatusOK {
		t.Errorf("a token with spaces around: %d, want 200", code)
	}
	ui := New(Options{})
	srv, base := consoletest.Serve(t, testDoc, ui, consoletest.Token{Name: "olga", Role: "operator", Secret: "olga-secret"})
	_ = srv
	g := &fixture{url: base}
	for _, tok := range []string{"", "   "} {
		if _, code := g.signIn(t, tok); code == http.StatusOK {
			t.Errorf("token %q signed in", tok)
		}
	}
}

// TestConsoleCallsLogTheirAddress: the API calls the console makes for a
// person appear in the access log with that person's address (they had
// httptest's 192.0.2.1), and the console's own pages and forms with the
// session's token name (they said "-").
func TestConsoleCallsLogTheirAddress(t *testing.T) {
	var logs testkit.SyncBuffer
	f := optionsFixture(t, server.Options{AccessLogger: slog.New(slog.NewTextHandler(&logs, nil))},
		consoletest.Token{Name: "olga", Role: "operator", Secret: "olga-secret"})
	b, _ := f.signIn(t, "olga-secret")
	_, page := b.get("/ui/flags/checkout")
	b.post("/ui/flags/checkout/switch", url.Values{"csrf": {csrfOf(t, page)}, "on": {"false"}, "version": {"1"}, "back": {"/ui/"}})
	found := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		// The API call the console made, and the form the browser posted.
		if strings.Contains(line, "method=PATCH") || strings.Contains(line, "path=/ui/flags/checkout/switch") {
			found++
			if !strings.Contains(line, "token=olga") || !strings.Contains(line, "remote=127.0.0.1:") {
				t.Errorf("not named olga from 127.0.0.1: %s", line)
			}
		}
	}
	if found != 2 {
		t.Errorf("%d of the PATCH and the form in the access log:\n%s", found, logs.String())
	}
}

// optionsFixture serves testDoc with the console and server options of the
// test's own (see consoletest.ServeOptions).
func optionsFixture(t *testing.T, opts server.Options, tokens ...consoletest.Token) *fixture {
	t.Helper()
	d, err := rules.ParseDocument([]byte(testDoc))
	if err != nil {
		t.Fatal(err)
	}
	srv, base := consoletest.ServeOptions(t, server.NewMemoryStore(d), New(Options{}), opts, tokens...)
	return &fixture{srv: srv, url: base}
}
