package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flagstream/flags/experiment"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/server"
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

const experimentDoc = `{"flags": {"checkout": {"on": true, "variations": ["old", "new"],
  "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}}}}`

// postUnits sends exposures of n0 and n1 units and c0 and c1 conversions.
func postUnits(t *testing.T, url, prefix string, n0, n1, c0, c1 int) {
	t.Helper()
	var evs []string
	for v, n := range []int{n0, n1} {
		for i := range n {
			unit := fmt.Sprintf("%s-v%d-u%d", prefix, v, i)
			evs = append(evs, fmt.Sprintf(`{"kind":"exposure","at":1,"flag":"checkout","version":1,"variation":%d,"contextKey":%q,"inRollout":true}`, v, unit))
			if i < []int{c0, c1}[v] {
				evs = append(evs, fmt.Sprintf(`{"kind":"track","at":2,"name":"purchase","contextKey":%q}`, unit))
			}
		}
	}
	body := fmt.Sprintf(`{"batch":"cli-batch-%016d","events":[%s]}`, n0*1000+n1, strings.Join(evs, ","))
	resp, err := http.Post(url+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events = %d", resp.StatusCode)
	}
}

func TestExperimentCommand(t *testing.T) {
	_, url, _ := startFileServer(t, experimentDoc, server.Options{AdminToken: "adm"})
	code, out, errOut := runCmd(t, runExperiment, "--url", url, "--token", "adm", "checkout")
	if code != 0 || !strings.Contains(out, "no metric events counted yet") {
		t.Fatalf("before any event: %d\n%s\n%s", code, out, errOut)
	}
	postUnits(t, url, "a", 1000, 1000, 100, 160)
	code, out, errOut = runCmd(t, runExperiment, "--url", url, "--token", "adm", "checkout")
	for _, want := range []string{
		"experiment checkout (control: variation 0)",
		"units: 2000  [0] 1000  [1] 1000  (switched: 0)",
		"metric purchase",
		"variation  units  conversions  rate",
		"(control)",
		"+60.0%",
		"verdict: variation 1's rate is higher than control's",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s%s", want, out, errOut)
		}
	}
	if strings.Contains(out, "WARNING") || code != 0 {
		t.Errorf("a balanced split warned or failed (%d):\n%s", code, out)
	}

	code, out, _ = runCmd(t, runExperiment, "--url", url, "--token", "adm", "--json", "checkout")
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r["flag"] != "checkout" || r["srm"] == nil {
		t.Errorf("--json: %d %v\n%s", code, err, out)
	}

	// A lopsided split: the SRM warning.
	postUnits(t, url, "b", 1000, 0, 0, 0) // 1,000 more control units
	_, out, _ = runCmd(t, runExperiment, "--url", url, "--token", "adm", "checkout")
	if !strings.Contains(out, "WARNING: sample-ratio mismatch") {
		t.Errorf("no SRM warning for 2000/1000 on a 50/50 rollout:\n%s", out)
	}
	code, out, errOut = runCmd(t, runExperiment, "--url", url, "--token", "adm", "--json", "checkout")
	if !strings.Contains(errOut, "WARNING: sample-ratio mismatch") || json.Unmarshal([]byte(out), &r) != nil || code != 0 {
		t.Errorf("--json with a mismatch: %d, stdout not JSON or no warning on stderr:\n%s\n%s", code, out, errOut)
	}

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--url", url, "--token", "adm", "nope"}, 2},
		{[]string{"--url", url, "--token", "wrong", "checkout"}, 2},
		{[]string{"--url", url, "--token", "adm"}, 2},
		{[]string{"--url", "http://127.0.0.1:1", "--token", "adm", "checkout"}, 1},
		{[]string{"-h"}, 0},
	} {
		if code, _, errOut := runCmd(t, runExperiment, tc.args...); code != tc.code {
			t.Errorf("flags experiment %q = %d (%s), want %d", tc.args, code, errOut, tc.code)
		}
	}
}

// TestReportPrintsNoEscapes: a metric name is whatever an SDK's track
// event said; one holding terminal escapes is printed quoted, so it cannot
// retitle the window or rewrite the report's lines.
func TestReportPrintsNoEscapes(t *testing.T) {
	hostile := "errors\x1b]0;pwned\x07\x1b[2A\rverdict: ship it"
	r := &experiment.Report{Flag: "f", Variations: []experiment.VariationUnits{{Variation: 0, Units: 1}},
		Metrics: map[string][]experiment.MetricRow{hostile: {{Variation: 0, Conversions: 1, Rate: 1}}}}
	var out bytes.Buffer
	printReport(&out, r, 0.05)
	if strings.ContainsAny(out.String(), "\x1b\x07\r") {
		t.Errorf("the report holds terminal control characters: %q", out.String())
	}
	if !strings.Contains(out.String(), `metric "errors\x1b]0;pwned\a\x1b[2A\rverdict: ship it"`) {
		t.Errorf("the metric name is not shown quoted: %q", out.String())
	}
}
