// Package flagsprom exposes a flags.Client's Metrics to Prometheus: the
// SDK's side of what `flags serve` serves at /metrics for the server. It is
// a package of its own so that only the programs that use it link
// github.com/prometheus/client_golang; the library does not.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(flagsprom.NewCollector(client))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// A program with several clients registers one collector per client,
// each under a label of its own (prometheus.WrapRegistererWith).
package flagsprom

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flagstream/flags"
)

// Collector is a prometheus.Collector of a client's Metrics, read at every
// scrape.
type Collector struct {
	c *flags.Client
}

// NewCollector returns a Collector of c's Metrics. The evaluation counts
// (flagstream_client_evaluations_total) are there when c was made with
// flags.WithMetrics.
func NewCollector(c *flags.Client) *Collector { return &Collector{c: c} }

// states are the client states, in the order flagstream_client_state
// lists them.
var states = []flags.State{flags.StateInitializing, flags.StateReady, flags.StateStale, flags.StateFatal, flags.StateClosed}

var (
	descState       = desc("state", "1 for the client's state now (INITIALIZING, READY, STALE, FATAL, CLOSED), 0 for the others.", "state")
	descVersion     = desc("snapshot_version", "The version of the snapshot the client evaluates (0 before the first).")
	descUpdates     = desc("updates_applied_total", "Snapshots installed: documents and patches applied.")
	descFailures    = desc("source_failures_total", "Failures the source reported (connection lost, server error...).")
	descRecoveries  = desc("recoveries_total", "Times the source was healthy again after failing (stream reconnects, resyncs).")
	descDropped     = desc("events_dropped_total", "Exposure and track events dropped (full buffer, failed delivery).")
	descNotFound    = desc("flags_not_found_total", "Evaluations of a key the snapshot does not hold (FLAG_NOT_FOUND), all keys together.")
	descEvaluations = desc("evaluations_total",
		"Evaluations by flag and variation served (-1: the caller's default), with flags.WithMetrics.", "flag", "variation")
)

// desc describes the series flagstream_client_NAME.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("flagstream_client_"+name, help, labels, nil)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descVersion, descUpdates, descFailures, descRecoveries, descDropped, descNotFound, descEvaluations} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	m := c.c.Metrics()
	for _, s := range states {
		v := 0.0
		if m.Status.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, string(s))
	}
	ch <- prometheus.MustNewConstMetric(descVersion, prometheus.GaugeValue, float64(m.Status.Version))
	for _, x := range []struct {
		d *prometheus.Desc
		n int64
	}{{descUpdates, m.UpdatesApplied}, {descFailures, m.SourceFailures}, {descRecoveries, m.Recoveries},
		{descDropped, m.EventsDropped}, {descNotFound, m.FlagsNotFound}} {
		ch <- prometheus.MustNewConstMetric(x.d, prometheus.CounterValue, float64(x.n))
	}
	// Metrics counts by flag version; a series per version would start a
	// new series at every edit, so the versions of a flag are summed. Keys
	// are the snapshot's flags only (unknown keys are one counter, above),
	// so the labels stay as many as the flags.
	type series struct {
		flag      string
		variation int
	}
	sums := map[series]int64{}
	var order []series
	for _, e := range m.Evaluations {
		k := series{e.Flag, e.Variation}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += e.Count
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(descEvaluations, prometheus.CounterValue, float64(sums[k]), k.flag, strconv.Itoa(k.variation))
	}
}
