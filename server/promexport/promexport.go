// Package promexport exposes a flag server's counters (server.Stats) to
// Prometheus. It is the only package of flagstream that links
// github.com/prometheus/client_golang; the library and package server do
// not.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(promexport.NewCollector(srv))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// `flags serve` serves it at GET /metrics.
package promexport

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flagstream/flags/server"
)

// Collector is a prometheus.Collector of a server's Stats. It may be made
// before the server (for server.Options.Metrics) and attached after.
type Collector struct {
	srv atomic.Pointer[server.Server]
}

var (
	descClients = prometheus.NewDesc("flagstream_server_connected_clients",
		"Streams open now.", nil, nil)
	descVersion = prometheus.NewDesc("flagstream_server_snapshot_version",
		"The snapshot version served.", nil, nil)
	descPatches = prometheus.NewDesc("flagstream_server_patches_published_total",
		"Patches published to the streams since the start.", nil, nil)
	descPublish = prometheus.NewDesc("flagstream_server_publish_duration_seconds",
		"How long publishing a patch to every stream took.", nil, nil)
	descAdmin = prometheus.NewDesc("flagstream_server_admin_writes_total",
		"Admin writes (PUT, PATCH, DELETE, document push), refused ones included, by the token's name (- for none) and the HTTP status answered.",
		[]string{"actor", "status"}, nil)
	descEvents = prometheus.NewDesc("flagstream_server_events_total",
		"SDK events POST /v1/events accepted or rejected.", []string{"result"}, nil)
	descTrips = prometheus.NewDesc("flagstream_server_guard_trips_total",
		"Guarded rollouts rolled back, by flag.", []string{"flag"}, nil)
)

// NewCollector returns a Collector of srv's Stats (srv may be nil: see
// Attach).
func NewCollector(srv *server.Server) *Collector {
	c := &Collector{}
	if srv != nil {
		c.srv.Store(srv)
	}
	return c
}

// Attach sets the server whose Stats the Collector reports.
func (c *Collector) Attach(srv *server.Server) { c.srv.Store(srv) }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descClients, descVersion, descPatches, descPublish, descAdmin, descEvents, descTrips} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	srv := c.srv.Load()
	if srv == nil {
		return
	}
	st := srv.Stats()
	ch <- prometheus.MustNewConstMetric(descClients, prometheus.GaugeValue, float64(st.ConnectedClients))
	ch <- prometheus.MustNewConstMetric(descVersion, prometheus.GaugeValue, float64(st.Version))
	ch <- prometheus.MustNewConstMetric(descPatches, prometheus.CounterValue, float64(st.PatchesPublished))
	buckets := make(map[float64]uint64, len(st.Publish.Bounds))
	for i, b := range st.Publish.Bounds {
		buckets[b] = st.Publish.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(descPublish, st.Publish.Count, st.Publish.Sum, buckets)
	for k, n := range st.AdminWrites {
		ch <- prometheus.MustNewConstMetric(descAdmin, prometheus.CounterValue, float64(n), k.Actor, strconv.Itoa(k.Status))
	}
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(st.EventsAccepted), "accepted")
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(st.EventsRejected), "rejected")
	for flag, n := range st.GuardTrips {
		ch <- prometheus.MustNewConstMetric(descTrips, prometheus.CounterValue, float64(n), flag)
	}
}
