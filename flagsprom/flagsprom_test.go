package flagsprom_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagsprom"
	"github.com/flagstream/flags/flagstest"
)

// TestCollector evaluates flags a known number of times, through two
// versions of one flag, a missing key and an invalid context, then reads
// the collector as Prometheus would: the counts summed over versions, the
// state, and a source failure and its recovery.
func TestCollector(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool("ramp", true), flagstest.Bool("off", true).On(false))
	c := td.NewClient(flags.WithMetrics())
	ctx, user := context.Background(), flags.NewContext("u").Build()
	for range 3 {
		c.Bool(ctx, "ramp", user, false)
	}
	c.Bool(ctx, "off", user, true)
	c.Bool(ctx, "ramp", flags.Context{}, false) // invalid context: the default
	c.Bool(ctx, "typo", user, false)
	td.Set(flagstest.Bool("ramp", true).Description("a new version")) // its counts add to the first version's
	eventually(t, "the new version", func() bool { return c.Status().Version == td.Version() })
	c.Bool(ctx, "ramp", user, false)
	td.Fail(errors.New("connection lost"), false)
	eventually(t, "STALE", func() bool { return c.Status().State == flags.StateStale })

	reg := prometheus.NewRegistry()
	reg.MustRegister(flagsprom.NewCollector(c))
	want := `
# HELP flagstream_client_evaluations_total Evaluations by flag and variation served (-1: the caller's default), with flags.WithMetrics.
# TYPE flagstream_client_evaluations_total counter
flagstream_client_evaluations_total{flag="off",variation="-1"} 1
flagstream_client_evaluations_total{flag="ramp",variation="-1"} 1
flagstream_client_evaluations_total{flag="ramp",variation="1"} 4
# HELP flagstream_client_flags_not_found_total Evaluations of a key the snapshot does not hold (FLAG_NOT_FOUND), all keys together.
# TYPE flagstream_client_flags_not_found_total counter
flagstream_client_flags_not_found_total 1
# HELP flagstream_client_source_failures_total Failures the source reported (connection lost, server error...).
# TYPE flagstream_client_source_failures_total counter
flagstream_client_source_failures_total 1
# HELP flagstream_client_state 1 for the client's state now (INITIALIZING, READY, STALE, FATAL, CLOSED), 0 for the others.
# TYPE flagstream_client_state gauge
flagstream_client_state{state="CLOSED"} 0
flagstream_client_state{state="FATAL"} 0
flagstream_client_state{state="INITIALIZING"} 0
flagstream_client_state{state="READY"} 0
flagstream_client_state{state="STALE"} 1
`
	names := []string{"flagstream_client_evaluations_total", "flagstream_client_flags_not_found_total",
		"flagstream_client_source_failures_total", "flagstream_client_state"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if got := valueOf(t, reg, "flagstream_client_snapshot_version"); got != float64(td.Version()) {
		t.Errorf("snapshot_version = %v, want %d", got, td.Version())
	}

	td.Recover()
	eventually(t, "READY", func() bool { return c.Status().State == flags.StateReady })
	if got := valueOf(t, reg, "flagstream_client_recoveries_total"); got != 1 {
		t.Errorf("recoveries_total = %v, want 1", got)
	}
	if got := valueOf(t, reg, "flagstream_client_updates_applied_total"); got != 2 {
		t.Errorf("updates_applied_total = %v, want 2", got)
	}
	if lint, err := testutil.GatherAndLint(reg); err != nil || len(lint) > 0 {
		t.Errorf("promlint: %v %v", lint, err)
	}
}

// valueOf returns the value of the one series name in reg.
func valueOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}

// eventually fails the test when cond is not true within 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}
