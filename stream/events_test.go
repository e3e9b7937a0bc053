package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/experiment"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
)

// TestEventsReachTheServer: a streaming client sends its exposures and
// track events to its server's POST /v1/events, whose experiment report
// counts them; with a token the server refuses for events, the client
// stops sending.
func TestEventsReachTheServer(t *testing.T) {
	doc, err := rules.ParseDocument([]byte(`{"flags": {"checkout": {"on": true, "variations": [false, true],
	  "fallthrough": {"rollout": {"experiment": true, "variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.NewMemoryStore(doc), server.Options{Token: "sdk", AdminToken: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: ts.URL, Token: "sdk"})),
		flags.WithEventOptions(flags.EventOptions{FlushInterval: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		u := flags.NewContext(fmt.Sprintf("user-%d", i)).Build()
		if c.Bool(ctx, "checkout", u, false) {
			c.Track(ctx, "purchase", u, 10)
		}
	}
	if err := c.FlushEvents(ctx); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v1/admin/experiments/checkout", nil)
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r experiment.Report
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	row, _ := r.Row("purchase", 1)
	if r.Units(0)+r.Units(1) != 200 || row.Conversions != r.Units(1) || row.Sum != 10*float64(r.Units(1)) {
		t.Errorf("the server's report: %s", body)
	}
}

// TestEventExporterAnswers: how the exporter reads the server's answers —
// 401/403 stop the client, 429 and 5xx are retried, other 4xx dropped —
// and that it sends the token and compresses large batches.
func TestEventExporterAnswers(t *testing.T) {
	var status int
	var gotAuth, gotEncoding string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotEncoding = r.Header.Get("Authorization"), r.Header.Get("Content-Encoding")
		w.WriteHeader(status)
	}))
	defer ts.Close()
	exp := stream.New(stream.Config{BaseURL: ts.URL, Token: "sdk"}).EventExporter()
	small := &flags.EventBatch{ID: "0123456789abcdef0123", Events: []flags.Event{{Kind: flags.EventTrack, At: 1, Name: "m", ContextKey: "u"}}}
	for _, tc := range []struct {
		status                          int
		unauthorized, drop, unsupported bool
		ok                              bool
	}{{202, false, false, false, true}, {401, true, false, false, false}, {403, true, false, false, false},
		{400, false, true, false, false}, {413, false, true, false, false}, {404, false, false, true, false},
		{429, false, false, false, false}, {503, false, false, false, false}} {
		status = tc.status
		err := exp.Export(context.Background(), small)
		if (err == nil) != tc.ok || errors.Is(err, flags.ErrEventsUnauthorized) != tc.unauthorized ||
			errors.Is(err, flags.ErrEventsRejected) != tc.drop || errors.Is(err, flags.ErrEventsUnsupported) != tc.unsupported {
			t.Errorf("status %d: %v", tc.status, err)
		}
	}
	if gotAuth != "Bearer sdk" || gotEncoding != "" {
		t.Errorf("Authorization %q, Content-Encoding %q", gotAuth, gotEncoding)
	}
	big := &flags.EventBatch{ID: small.ID}
	for i := range 500 {
		big.Events = append(big.Events, flags.Event{Kind: flags.EventTrack, At: int64(i), Name: "metric", ContextKey: fmt.Sprint("user-", i)})
	}
	status = 202
	if err := exp.Export(context.Background(), big); err != nil || gotEncoding != "gzip" {
		t.Errorf("a large batch: %v, Content-Encoding %q; want gzip", err, gotEncoding)
	}
}
