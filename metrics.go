package flags

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Metrics is a snapshot of a client's health and counters.
type Metrics struct {
	Status         Status            // as Status returns it
	UpdatesApplied int64             // snapshots installed (documents and patches applied)
	SourceFailures int64             // failures the source reported (connection lost, server error...)
	Recoveries     int64             // times the source was healthy again after failing (stream reconnects, resyncs)
	EventsDropped  int64             // events dropped (full buffer, failed delivery) since the start
	FlagsNotFound  int64             // evaluations of a key the snapshot does not hold (FLAG_NOT_FOUND): a typo or a deleted flag still asked for
	Evaluations    []EvaluationCount // evaluations per flag version and variation, with WithMetrics; sorted
}

// EvaluationCount is how many evaluations of a flag version served a
// variation (-1: the caller's default) since the client started.
type EvaluationCount struct {
	Flag      string `json:"flag"`      // the flag evaluated
	Version   int64  `json:"version"`   // its version, or EarlierVersions
	Variation int    `json:"variation"` // the variation served, -1 for the caller's default
	Count     int64  `json:"count"`     // how many evaluations
}

// EarlierVersions is the Version of an EvaluationCount that sums a flag's
// versions before its newest. Metrics keeps one count per flag version
// until it holds MaxEvaluationCounts of them; it then folds every flag's
// versions but the newest into one count per variation, so that a flag
// edited every few minutes for months does not grow the list (and the sort
// every Metrics call makes) without bound. Sums per flag and variation,
// what dashboards plot, are unchanged by folding.
const EarlierVersions = -1

// MaxEvaluationCounts is how many counts Metrics.Evaluations holds before
// it folds earlier versions (see EarlierVersions).
const MaxEvaluationCounts = 10_000

// clientStats are the counters behind Metrics.
type clientStats struct {
	updates    atomic.Int64
	failures   atomic.Int64
	recoveries atomic.Int64
	notFound   atomic.Int64 // evaluations of a key not in the snapshot; one counter, not one per key, which callers choose

	mu     sync.Mutex
	totals map[lateKey]int64 // evaluations drained from the client's evalCounter
}

// WithMetrics counts evaluations per flag version and variation for
// Client.Metrics: one atomic add per evaluation, no allocation. The other
// counters are always kept.
func WithMetrics() Option {
	return optionFunc(func(c *config) error {
		c.metrics = true
		return nil
	})
}

// Metrics returns the client's counters now.
func (c *Client) Metrics() Metrics {
	m := Metrics{Status: c.Status(), UpdatesApplied: c.stats.updates.Load(),
		SourceFailures: c.stats.failures.Load(), Recoveries: c.stats.recoveries.Load(), FlagsNotFound: c.stats.notFound.Load()}
	if c.events != nil {
		m.EventsDropped = c.events.droppedTotal.Load()
	}
	if c.evals == nil {
		return m
	}
	c.stats.mu.Lock()
	defer c.stats.mu.Unlock()
	if c.stats.totals == nil {
		c.stats.totals = map[lateKey]int64{}
	}
	for k, n := range c.evals.drain() {
		c.stats.totals[k] += n
	}
	if len(c.stats.totals) > MaxEvaluationCounts {
		foldEarlierVersions(c.stats.totals)
	}
	for _, k := range slices.SortedFunc(maps.Keys(c.stats.totals), func(a, b lateKey) int {
		return cmp.Or(cmp.Compare(a.flag, b.flag), cmp.Compare(a.version, b.version), cmp.Compare(a.variation, b.variation))
	}) {
		m.Evaluations = append(m.Evaluations, EvaluationCount{Flag: k.flag, Version: k.version, Variation: int(k.variation), Count: c.stats.totals[k]})
	}
	return m
}

// foldEarlierVersions adds the counts of every flag's versions but its
// newest to its EarlierVersions count of the same variation.
func foldEarlierVersions(totals map[lateKey]int64) {
	newest := map[string]int64{}
	for k := range totals {
		if v, ok := newest[k.flag]; !ok || k.version > v {
			newest[k.flag] = k.version
		}
	}
	for k, n := range totals {
		if k.version == newest[k.flag] || k.version == EarlierVersions {
			continue
		}
		delete(totals, k)
		totals[lateKey{flag: k.flag, version: EarlierVersions, variation: k.variation}] += n
	}
}
