package main

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/flagstream/flags/internal/testkit"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads GET /metrics with the Prometheus text parser.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := testkit.Do(t, "GET", url+"/metrics", token, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return mf
}

// value returns the value of the family's series whose labels include
// want (name=value pairs).
func value(mf map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := mf[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if !ok {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestServeMetrics: `flags serve` exposes Prometheus metrics at /metrics
// to a token that may read; the series move as clients connect, admins
// write and SDKs send events.
func TestServeMetrics(t *testing.T) {
	path := writeFile(t, "flags.json", serveDoc)
	url, stop := startServe(t, []string{"--flags", path, "--addr", "127.0.0.1:0", "--token", "sdk", "--admin-token", "adm"})
	defer stop()
	if resp, err := http.Get(url + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without a token: %v %v, want 401", resp, err)
	}
	before := scrape(t, url, "sdk")
	if value(before, "flagstream_server_connected_clients") != 0 || value(before, "flagstream_server_patches_published_total") != 0 {
		t.Errorf("at start: clients %v, patches %v", value(before, "flagstream_server_connected_clients"), value(before, "flagstream_server_patches_published_total"))
	}
	if value(before, "go_goroutines") <= 0 {
		t.Error("no Go runtime metrics")
	}

	req, _ := http.NewRequest("GET", url+"/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer sdk")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	bufio.NewReader(stream.Body).ReadString('\n')
	adminCall(t, "PATCH", url+"/v1/admin/flags/f", "adm", `{"on": false}`, "Content-Type", "application/merge-patch+json")
	// Refused writes count too: a body that is no flag, a wrong token, the SDK's.
	testkit.Do(t, "PUT", url+"/v1/admin/flags/g", "adm", `not json`)
	testkit.Do(t, "PUT", url+"/v1/admin/flags/g", "nope", `{}`)
	testkit.Do(t, "PUT", url+"/v1/admin/flags/g", "sdk", `{}`)
	if resp, body := testkit.Do(t, "POST", url+"/v1/events", "sdk",
		`{"batch":"metrics-batch-00000001","events":[{"kind":"track","at":1,"name":"m","contextKey":"u"},{"kind":"bogus"}]}`); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events = %d %s", resp.StatusCode, body)
	}

	after := scrape(t, url, "sdk")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"flagstream_server_connected_clients", nil, 1},
		{"flagstream_server_patches_published_total", nil, 1},
		{"flagstream_server_publish_duration_seconds", nil, 1},
		{"flagstream_server_snapshot_version", nil, 5},
		{"flagstream_server_admin_writes_total", []string{"actor", "admin", "status", "200"}, 1},
		{"flagstream_server_admin_writes_total", []string{"actor", "admin", "status", "400"}, 1},
		{"flagstream_server_admin_writes_total", []string{"actor", "-", "status", "401"}, 1},
		{"flagstream_server_admin_writes_total", []string{"actor", "token", "status", "403"}, 1},
		{"flagstream_server_events_total", []string{"result", "accepted"}, 1},
		{"flagstream_server_events_total", []string{"result", "rejected"}, 1},
	} {
		if got := value(after, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
