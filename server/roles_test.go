package server

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
)

func TestParseTokens(t *testing.T) {
	good := "[" + testkit.TokenLine("ci", "admin", "s1") + ", " + testkit.TokenLine("oncall", "operator", "s2") + "]"
	tokens, err := ParseTokens([]byte(good))
	if err != nil || len(tokens) != 2 || tokens[0].Name != "ci" || tokens[1].Role != RoleOperator || tokens[0].SHA256 != sha256.Sum256([]byte("s1")) {
		t.Fatalf("ParseTokens(%s) = %+v, %v", good, tokens, err)
	}
	if tokens, err := ParseTokens([]byte(" [] ")); err != nil || len(tokens) != 0 {
		t.Errorf("an empty list: %v, %v", tokens, err)
	}
	hexOf := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	for _, tc := range []struct{ data, want string }{
		{`{}`, "want [{"},
		{`[{"name": "a", "role": "admin"}]`, "tokens[0].sha256: missing"},
		{`[{"role": "admin", "sha256": "` + hexOf("x") + `"}]`, "tokens[0].name: missing"},
		{`[{"name": "a", "sha256": "` + hexOf("x") + `"}]`, "tokens[0].role: missing"},
		{`[{"name": "a", "role": "root", "sha256": "` + hexOf("x") + `"}]`, `tokens[0].role: "root"`},
		{`[{"name": "a", "role": "admin", "sha256": "s3cret"}]`, "tokens[0].sha256: want the 64 hex digits"},
		{`[{"name": "a", "role": "admin", "sha256": "` + hexOf("x")[:62] + `"}]`, "tokens[0].sha256"},
		{`[{"name": "a b", "role": "admin", "sha256": "` + hexOf("x") + `"}]`, `tokens[0].name: "a b"`},
		{`[{"name": "file", "role": "admin", "sha256": "` + hexOf("x") + `"}]`, `tokens[0].name: "file" is taken`},
		{"[" + testkit.TokenLine("a", "admin", "x") + "," + testkit.TokenLine("a", "reader", "y") + "]", `tokens[1].name: "a" is taken`},
		{"[" + testkit.TokenLine("a", "admin", "x") + "," + testkit.TokenLine("b", "reader", "x") + "]", "tokens[1].sha256: the same secret"},
		{`[{"name": "a", "role": "admin", "sha256": "` + hexOf("x") + `", "secret": "x"}]`, "unknown field"},
		{"[]" + "[]", "more after the array"},
		{`[{"name": "a", "role": "admin", "role": "reader", "sha256": "` + hexOf("x") + `"}]`, "tokens[0].role: named twice"},
		{`[{"name": "a", "role": "admin", "sha256": "` + hexOf("x") + `", "\u006eame": "b"}]`, "tokens[0].name: named twice"},
		{`[7]`, "tokens[0]: want {"},
		{`[{"name": "ci", "role": "admin", "sha256": "` + hexOf("") + `"}]`, "tokens[0].sha256: the SHA-256 of an empty secret"},
	} {
		if _, err := ParseTokens([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTokens(%s) = %v, want an error naming %q", tc.data, err, tc.want)
		}
	}
	static := Options{Token: "sdk", AdminToken: "adm"}
	for _, tc := range []struct {
		tokens []Token
		want   string
	}{
		{[]Token{{Name: "token", Role: RoleReader, SHA256: sha256.Sum256([]byte("z"))}}, `"token" is taken`},
		{[]Token{{Name: "x", Role: RoleReader, SHA256: sha256.Sum256([]byte("adm"))}}, "same secret"},
		{[]Token{{Name: "x", Role: "boss", SHA256: sha256.Sum256([]byte("z"))}}, "role"},
	} {
		opts := static
		opts.Tokens = tc.tokens
		if _, err := New(NewMemoryStore(nil), opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with Tokens %+v = %v, want an error naming %q", tc.tokens, err, tc.want)
		}
	}
	// The SDK token every service holds must never be the admin token.
	for _, opts := range []Options{{Token: "same", AdminToken: "same"}, {Token: "sdk", PreviousTokens: []string{"same"}, AdminToken: "same"}} {
		if _, err := New(NewMemoryStore(nil), opts); err == nil || !strings.Contains(err.Error(), "are the same secret") {
			t.Errorf("New(%+v) = %v, want the same secret refused", opts, err)
		}
	}
}

// TestRolesMatrix: reader, operator and admin tokens against every kind of
// request: 401 for no token or an unknown one, 403 for a known token
// without the role. An operator may switch a flag on or off and nothing
// more; the audit names it.
func TestRolesMatrix(t *testing.T) {
	var tokens []Token
	for _, tk := range []struct {
		name string
		role Role
	}{{"r", RoleReader}, {"o", RoleOperator}, {"a", RoleAdmin}} {
		tokens = append(tokens, Token{Name: tk.name, Role: tk.role, SHA256: sha256.Sum256([]byte("secret-" + tk.name))})
	}
	_, ts := newTestServer(t, baseDoc, Options{Token: "sdk", Tokens: tokens})
	flag := `{"variations": [true], "fallthrough": {"variation": 0}}`
	mp := []string{"Content-Type", mergePatchType}
	for _, tc := range []struct {
		method, path, body string
		header             []string
		want               [6]int // no token, unknown, sdk, r, o, a
	}{
		{"GET", "/v1/flags", "", nil, [6]int{401, 401, 200, 200, 200, 200}},
		{"HEAD", "/v1/stream", "", nil, [6]int{401, 401, 200, 200, 200, 200}},
		{"GET", "/v1/admin/flags/new-checkout", "", nil, [6]int{401, 401, 403, 403, 200, 200}},
		{"GET", "/v1/admin/segments/beta-testers", "", nil, [6]int{401, 401, 403, 403, 200, 200}},
		{"GET", "/v1/admin/audit", "", nil, [6]int{401, 401, 403, 403, 200, 200}},
		{"PATCH", "/v1/admin/flags/banner-text", `{"on": true}`, mp, [6]int{401, 401, 403, 403, 200, 200}},
		{"PATCH", "/v1/admin/flags/banner-text", `{"on": false, "version": 1}`, mp, [6]int{401, 401, 403, 403, 200, 200}},
		{"PATCH", "/v1/admin/flags/banner-text", `{"on": true, "offVariation": 1}`, mp, [6]int{401, 401, 403, 403, 403, 200}},
		{"PATCH", "/v1/admin/segments/beta-testers", `{"included": []}`, mp, [6]int{401, 401, 403, 403, 403, 200}},
		{"PUT", "/v1/admin/flags/x", flag, nil, [6]int{401, 401, 403, 403, 403, 200}},
		{"DELETE", "/v1/admin/flags/x", "", nil, [6]int{401, 401, 403, 403, 403, 200}},
		{"PUT", "/v1/admin/document", baseDoc, nil, [6]int{401, 401, 403, 403, 403, 200}},
	} {
		for i, tok := range []string{"", "nope", "sdk", "secret-r", "secret-o", "secret-a"} {
			resp, body := do(t, tc.method, ts.URL+tc.path, tok, tc.body, tc.header...)
			if resp.StatusCode != tc.want[i] {
				t.Errorf("%s %s %s with token %q = %d %s, want %d", tc.method, tc.path, tc.body, tok, resp.StatusCode, body, tc.want[i])
			}
			if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with token %q: 401 without WWW-Authenticate", tc.method, tc.path, tok)
			}
			if resp.StatusCode == http.StatusOK && tc.method == "DELETE" {
				resp, body := do(t, "PUT", ts.URL+tc.path, "secret-a", flag) // back for the next token
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("PUT back = %d %s", resp.StatusCode, body)
				}
			}
		}
	}
	p := auditPage(t, ts.URL, "secret-o", "key=banner-text&kind=flag&limit=1")
	if len(p.Entries) != 1 || p.Entries[0].Actor != "o" || p.Entries[0].Action != ActionPatch {
		t.Errorf("the first change of banner-text: %+v, want the operator's PATCH, actor o", p.Entries)
	}
}

// TestTokensFileReload: the tokens file is read again when it changes; a
// change that does not parse is logged and the previous tokens stay.
func TestTokensFileReload(t *testing.T) {
	path := testkit.TokensFile(t, testkit.Token{Name: "ci", Role: "admin", Secret: "one"})
	logger, logs := newLogSink()
	srv, err := New(NewMemoryStore(mustParse(t, baseDoc)), Options{TokensFile: path, TokensPollInterval: 5 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, srv)
	status := func(tok string) int {
		resp, _ := do(t, "GET", ts.URL+"/v1/admin/flags/new-checkout", tok, "")
		return resp.StatusCode
	}
	if got := status("one"); got != 200 {
		t.Fatalf("token one = %d, want 200", got)
	}
	if resp, _ := do(t, "GET", ts.URL+"/v1/flags", "", ""); resp.StatusCode != 200 {
		t.Errorf("no reader token: reads = %d, want open (200)", resp.StatusCode)
	}
	writeFile(t, path, "["+testkit.TokenLine("ci", "admin", "two")+", "+testkit.TokenLine("app", "reader", "three")+"]")
	awaitLog(t, logs, "tokens file reloaded", "tokens=2")
	if a, b := status("one"), status("two"); a != 401 || b != 200 {
		t.Errorf("after the reload: old token %d, new token %d; want 401 and 200", a, b)
	}
	if resp, _ := do(t, "GET", ts.URL+"/v1/flags", "", ""); resp.StatusCode != 401 {
		t.Errorf("with a reader token in the file, reads without a token = %d, want 401", resp.StatusCode)
	}
	writeFile(t, path, `[{"name": "ci", "role": "admin", "sha256": "two"}]`)
	awaitLog(t, logs, "tokens file not reloaded", "tokens[0].sha256")
	writeFile(t, path, "["+testkit.TokenLine("admin-2", "admin", "four")+", "+testkit.TokenLine("admin-2", "reader", "five")+"]")
	awaitLog(t, logs, "tokens file not reloaded", `"admin-2" is taken`)
	if got := status("two"); got != 200 {
		t.Errorf("after bad reloads the previous token = %d, want 200", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	awaitLog(t, logs, "tokens file not reloaded", "no such file")
	if got := status("two"); got != 200 {
		t.Errorf("with the file gone the previous token = %d, want 200", got)
	}
	if _, err := New(NewMemoryStore(nil), Options{TokensFile: path}); err == nil || !strings.Contains(err.Error(), "tokens.json") {
		t.Errorf("New with a missing tokens file = %v, want an error naming it", err)
	}
}

// TestRevokedTokenEndsItsStreams: removing a token from the tokens file
// ends the streams it opened (a leaked token stops receiving changes at
// once) and not the others; adding the first reader token ends the
// anonymous streams that open reads allowed.
func TestRevokedTokenEndsItsStreams(t *testing.T) {
	tokens := testkit.TokensFile(t, testkit.Token{Name: "leaked", Role: "reader", Secret: "leaked-secret"},
		testkit.Token{Name: "kept", Role: "reader", Secret: "kept-secret"})
	srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken, TokensFile: tokens, TokensPollInterval: 5 * time.Millisecond})
	leaked, kept := openStream(t, ts.URL, "leaked-secret", ""), openStream(t, ts.URL, "kept-secret", "")
	leaked.next(t)
	kept.next(t)
	rewrite := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(tokens, []byte("["+strings.Join(lines, ",")+"]"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(testkit.TokenLine("kept", "reader", "kept-secret"))
	ended(t, leaked, "the revoked token's stream")
	publishN(t, srv, 1)
	if _, p := kept.nextPatch(t); p.Version != srv.Version() {
		t.Errorf("the kept token's stream got version %d, want %d", p.Version, srv.Version())
	}
	if resp, _ := do(t, "GET", ts.URL+"/v1/stream", "leaked-secret", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked token reconnecting: %d, want 401", resp.StatusCode)
	}

	rewrite() // the last reader token removed: reads stay closed
	time.Sleep(50 * time.Millisecond)
	for _, tok := range []string{"", "kept-secret", "made-up"} {
		if resp, _ := do(t, "GET", ts.URL+"/v1/flags", tok, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("reads with token %q after the last reader token went: %d, want 401", tok, resp.StatusCode)
		}
	}
	ended(t, kept, "the stream of a token removed with the last reader token")

	// A server whose reads are open: adding a reader token ends the
	// streams opened without one.
	open := testkit.TokensFile(t)
	srv2, ts2 := newTestServer(t, baseDoc, Options{AdminToken: adminToken, TokensFile: open, TokensPollInterval: 5 * time.Millisecond})
	anon := openStream(t, ts2.URL, "", "")
	anon.next(t)
	if err := os.WriteFile(open, []byte("["+testkit.TokenLine("kept", "reader", "kept-secret")+"]"), 0o600); err != nil {
		t.Fatal(err)
	}
	ended(t, anon, "an anonymous stream once reads need a token")
	withToken := openStream(t, ts2.URL, "kept-secret", "")
	withToken.next(t)
	publishN(t, srv2, 1)
	if _, p := withToken.nextPatch(t); p.Version != srv2.Version() {
		t.Errorf("the reader's stream got version %d, want %d", p.Version, srv2.Version())
	}
}

// ended fails unless the stream ends within waitLimit (comments and
// events before the end are skipped).
func ended(t *testing.T, c *sseClient, what string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("%s still open %v later", what, waitLimit)
		}
	}
}

// TestOpenReadsRefuseUnknownTokens: while reads are open (no reader
// token), a request without a token reads, but one with a token the
// server does not know is 401 (SPEC §5), a revoked one included; a known
// token reads. A server with no token at all takes any.
func TestOpenReadsRefuseUnknownTokens(t *testing.T) {
	_, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	for _, tc := range []struct {
		token  string
		status int
	}{{"", 200}, {"bogus", 401}, {adminToken, 200}} {
		if resp, _ := do(t, "GET", ts.URL+"/v1/flags", tc.token, ""); resp.StatusCode != tc.status {
			t.Errorf("open reads with token %q: %d, want %d", tc.token, resp.StatusCode, tc.status)
		}
	}
	_, none := newTestServer(t, baseDoc, Options{})
	if resp, _ := do(t, "GET", none.URL+"/v1/flags", "anything", ""); resp.StatusCode != 200 {
		t.Errorf("a server without tokens, a token sent: %d, want 200", resp.StatusCode)
	}
}
