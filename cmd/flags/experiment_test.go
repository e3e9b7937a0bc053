package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/flagstream/flags/server"
)

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
