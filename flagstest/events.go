package flagstest

import (
	"context"
	"sync"

	"github.com/flagstream/flags"
)

// EventRecorder is a flags.Exporter that keeps the events a client sends,
// for tests to assert which exposures and track events happened, in the
// manner of httptest.ResponseRecorder:
//
//	rec := new(flagstest.EventRecorder)
//	client := td.NewClient(flags.WithEventExporter(rec))
//	checkout(client, user) // evaluates, calls client.Track
//	client.FlushEvents(ctx)
//	rec.Tracks() // [{Kind: "track", Name: "purchase", ContextKey: "ann", ...}]
//
// It is safe for concurrent use.
type EventRecorder struct {
	mu     sync.Mutex
	events []flags.Event
}

// Export keeps b's events.
func (r *EventRecorder) Export(_ context.Context, b *flags.EventBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, b.Events...)
	return nil
}

// Events returns every event kept, in the order sent.
func (r *EventRecorder) Events() []flags.Event { return r.kind("") }

// Exposures returns the exposure events kept.
func (r *EventRecorder) Exposures() []flags.Event { return r.kind(flags.EventExposure) }

// Tracks returns the track events kept.
func (r *EventRecorder) Tracks() []flags.Event { return r.kind(flags.EventTrack) }

// Summaries returns the summary events kept.
func (r *EventRecorder) Summaries() []flags.Event { return r.kind(flags.EventSummary) }

func (r *EventRecorder) kind(k string) []flags.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []flags.Event
	for _, e := range r.events {
		if k == "" || e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}
