package server

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a server's counters, for metrics (package
// server/promexport exposes them to Prometheus).
type Stats struct {
	Version          int64            // the snapshot version served
	ConnectedClients int              // streams open now
	PatchesPublished int64            // patches published since the start
	Publish          Histogram        // how long publishing a patch to every stream took
	AdminWrites      map[AdminKey]int // admin writes by actor and status
	EventsAccepted   int64            // events POST /v1/events accepted
	EventsRejected   int64            // events it rejected
	GuardTrips       map[string]int   // rollbacks by flag
}

// Histogram counts durations in buckets.
type Histogram struct {
	Bounds []float64 // bucket upper bounds, seconds, ascending
	Counts []uint64  // observations at or below each bound (cumulative)
	Count  uint64    // all observations
	Sum    float64   // their sum, seconds
}

// PublishBuckets are the bounds of Stats.Publish.
var PublishBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// AdminKey identifies a series of admin writes.
type AdminKey struct {
	Actor  string
	Status int
}

// stats holds the counters behind Stats.
type stats struct {
	patches        atomic.Int64
	eventsAccepted atomic.Int64
	eventsRejected atomic.Int64

	mu      sync.Mutex
	buckets []uint64 // per PublishBuckets bound, not cumulative
	count   uint64
	sum     float64
	admin   map[AdminKey]int
	trips   map[string]int
}

func (st *stats) published(d time.Duration) {
	st.patches.Add(1)
	sec := d.Seconds()
	st.mu.Lock()
	if st.buckets == nil {
		st.buckets = make([]uint64, len(PublishBuckets))
	}
	for i, b := range PublishBuckets {
		if sec <= b {
			st.buckets[i]++
			break
		}
	}
	st.count++
	st.sum += sec
	st.mu.Unlock()
}

func (st *stats) adminWrite(actor string, status int) {
	st.mu.Lock()
	if st.admin == nil {
		st.admin = map[AdminKey]int{}
	}
	st.admin[AdminKey{actor, status}]++
	st.mu.Unlock()
}

func (st *stats) guardTrip(flag string) {
	st.mu.Lock()
	if st.trips == nil {
		st.trips = map[string]int{}
	}
	st.trips[flag]++
	st.mu.Unlock()
}

// Stats returns the server's counters now.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	clients := len(s.subs)
	s.mu.Unlock()
	st := &s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	return Stats{
		Version:          s.Version(),
		ConnectedClients: clients,
		PatchesPublished: st.patches.Load(),
		Publish:          st.histogram(),
		AdminWrites:      maps.Clone(st.admin),
		EventsAccepted:   st.eventsAccepted.Load(),
		EventsRejected:   st.eventsRejected.Load(),
		GuardTrips:       maps.Clone(st.trips),
	}
}

// histogram builds the cumulative Histogram; st.mu is held.
func (st *stats) histogram() Histogram {
	h := Histogram{Bounds: PublishBuckets, Counts: make([]uint64, len(PublishBuckets)), Count: st.count, Sum: st.sum}
	var run uint64
	for i := range PublishBuckets {
		if st.buckets != nil {
			run += st.buckets[i]
		}
		h.Counts[i] = run
	}
	return h
}
