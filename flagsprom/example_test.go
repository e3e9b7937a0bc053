package flagsprom_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagsprom"
)

// A client's counters served at /metrics, beside the program's own.
func Example() {
	client, err := flags.New(flags.WithDocument([]byte(`{"version": 1, "flags": {
		"new-checkout": {"on": true, "variations": [false, true], "fallthrough": {"variation": 1}}}}`)),
		flags.WithMetrics())
	if err != nil {
		panic(err)
	}
	defer client.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(flagsprom.NewCollector(client))
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})

	user := flags.NewContext("user-1").Build()
	for range 2 {
		client.Bool(context.Background(), "new-checkout", user, false)
	}

	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for sc := bufio.NewScanner(rec.Body); sc.Scan(); {
		if line := sc.Text(); strings.HasPrefix(line, "flagstream_client_evaluations_total") ||
			strings.HasPrefix(line, `flagstream_client_state{state="READY"}`) {
			fmt.Println(line)
		}
	}
	// Output:
	// flagstream_client_evaluations_total{flag="new-checkout",variation="1"} 2
	// flagstream_client_state{state="READY"} 1
}
