package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagstream/flags/internal/testkit"
)

// TestServeRolesAndKillSwitch: `flags serve --tokens FILE` accepts the
// file's tokens by role; `flags switch FLAG off` with an operator token is
// the kill switch, recorded in the audit log under the token's name (the
// log beside the document, or --audit-log).
func TestServeRolesAndKillSwitch(t *testing.T) {
	doc := writeFile(t, "flags.json", serveDoc)
	tokens := testkit.TokensFile(t,
		testkit.Token{Name: "oncall", Role: "operator", Secret: "secret-oncall"},
		testkit.Token{Name: "app", Role: "reader", Secret: "secret-app"},
		testkit.Token{Name: "ci", Role: "admin", Secret: "secret-ci"})
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	url, stop := startServe(t, []string{"--flags", doc, "--addr", "127.0.0.1:0", "--tokens", tokens, "--audit-log", auditLog})
	defer stop()

	code, stdout, stderr := runCmd(t, runSwitch, "--url", url, "--token", "secret-oncall", "--comment", "3 a.m. page", "f", "off")
	if code != 0 || stdout != "flags.f off: flag version 1, published as version 5\n" {
		t.Fatalf("flags switch f off = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	data, err := os.ReadFile(doc)
	if err != nil || !strings.Contains(string(data), `"on": false`) {
		t.Errorf("the document after the kill switch: %s (%v), want \"on\": false", data, err)
	}
	logged, err := os.ReadFile(auditLog)
	if err != nil || !strings.Contains(string(logged), `"actor":"oncall","action":"patch","kind":"flag","key":"f"`) ||
		!strings.Contains(string(logged), `"comment":"3 a.m. page"`) {
		t.Errorf("audit log %s (%v), want the operator's patch with its comment", logged, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(doc), "flags.audit.jsonl")); !os.IsNotExist(err) {
		t.Errorf("an audit log beside the document despite --audit-log: %v", err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"reader", []string{"--url", url, "--token", "secret-app", "f", "on"}, 2, "403"},
		{"unknown token", []string{"--url", url, "--token", "nope", "f", "on"}, 2, "401"},
		{"stale version", []string{"--url", url, "--token", "secret-ci", "--if-match", "0", "f", "on"}, 2, "412"},
		{"missing flag", []string{"--url", url, "--token", "secret-ci", "g", "on"}, 2, "404"},
		{"no state", []string{"--url", url, "--token", "secret-ci", "f"}, 2, "want FLAG on|off"},
		{"bad state", []string{"--url", url, "--token", "secret-ci", "f", "false"}, 2, "want FLAG on|off"},
		{"bad key", []string{"--url", url, "--token", "secret-ci", "f g", "on"}, 2, "not a flag key"},
	} {
		if code, _, stderr := runCmd(t, runSwitch, tc.args...); code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: flags switch = %d %q, want %d naming %q", tc.name, code, stderr, tc.code, tc.want)
		}
	}
	code, stdout, _ = runCmd(t, runSwitch, "--url", url, "--token", "secret-ci", "--if-match", "1", "f", "on")
	if code != 0 || !strings.HasPrefix(stdout, "flags.f on: flag version 2") {
		t.Errorf("flags switch f on with the current version = %d %q", code, stdout)
	}
	if resp, _ := testkit.Do(t, "GET", url+"/v1/flags", "secret-app", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/flags with the reader token = %d, want 200", resp.StatusCode)
	}
}
