package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/server"
)

// adminCall sends one admin request and fails the test unless it is 200.
func adminCall(t *testing.T, method, url, token, body string, header ...string) {
	t.Helper()
	if resp, _ := testkit.Do(t, method, url, token, body, header...); resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d", method, url, resp.StatusCode)
	}
}

var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

func TestHistoryCommand(t *testing.T) {
	_, url, _ := startFileServer(t, serveDoc, server.Options{AdminToken: "adm"})
	adminCall(t, "PUT", url+"/v1/admin/flags/g", "adm", `{"on": true, "variations": ["a", "b"], "fallthrough": {"variation": 0}}`,
		"X-Flags-Comment", "launch g")
	adminCall(t, "PATCH", url+"/v1/admin/flags/f", "adm", `{"on": false}`, "Content-Type", "application/merge-patch+json",
		"X-Flags-Comment", "incident 7: kill switch")
	adminCall(t, "DELETE", url+"/v1/admin/flags/g", "adm", "")

	code, stdout, stderr := runCmd(t, runHistory, "--url", url, "--token", "adm", "--page", "1", "f")
	want := `version 6  TIME  admin  patch flag f
  # incident 7: kill switch
  {
-   "version": 0,
-   "on": true,
+   "version": 1,
+   "on": false,
    "variations": [
      true,
      false
  ...
`
	if got := rfc3339.ReplaceAllString(stdout, "TIME"); code != 0 || got != want {
		t.Errorf("flags history f = %d, stderr %q, stdout\n%s\nwant\n%s", code, stderr, got, want)
	}

	code, stdout, _ = runCmd(t, runHistory, "--url", url, "--token", "adm", "--page", "2", "--kind", "flag", "g")
	want = `version 5  TIME  admin  put flag g
  # launch g
+ {
+   "version": 1,
+   "on": true,
+   "variations": [
+     "a",
+     "b"
+   ],
+   "fallthrough": {
+     "variation": 0
+   }
+ }

version 7  TIME  admin  delete flag g
- {
-   "version": 1,
-   "on": true,
-   "variations": [
-     "a",
-     "b"
-   ],
-   "fallthrough": {
-     "variation": 0
-   }
- }
`
	if got := rfc3339.ReplaceAllString(stdout, "TIME"); code != 0 || got != want {
		t.Errorf("flags history g = %d, stdout\n%s\nwant\n%s", code, got, want)
	}
	code, stdout, _ = runCmd(t, runHistory, "--url", url, "--token", "adm", "--since", "5", "--limit", "1")
	if code != 0 || !strings.HasPrefix(stdout, "version 6 ") || strings.Contains(stdout, "version 7") {
		t.Errorf("--since 5 --limit 1 = %d\n%s\nwant version 6 alone", code, stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--url", url, "--token", "nope"}, 2, "refused (401"},
		{[]string{"--url", url, "--token", "adm", "--kind", "flags"}, 2, "want flag or segment"},
		{[]string{"--url", url, "--token", "adm", "a", "b"}, 2, "at most one KEY"},
		{[]string{"--url", url, "--token", "adm", "bad key"}, 2, "key"},
		{[]string{"--url", url, "--token", "adm", "none"}, 0, "no changes"},
	} {
		if code, _, stderr := runCmd(t, runHistory, tc.args...); code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("flags history %q = %d %q, want %d naming %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
