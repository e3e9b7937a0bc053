package stream_test

import (
	"context"
	"log"
	"sync/atomic"

	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/stream"
)

// current is a Handler that keeps the last document in an atomic pointer,
// so that readers never wait for the client.
type current struct {
	doc atomic.Pointer[rules.Document]
}

func (c *current) Apply(doc *rules.Document, src stream.Source) error {
	c.doc.Store(doc)
	return nil
}

func (c *current) Status(st stream.Status) {
	if !st.Healthy {
		log.Printf("flags %s unhealthy (HTTP %d): %v", st.Source, st.HTTPStatus, st.Err)
	}
}

func ExampleStreamer() {
	s, err := stream.NewStreamer(stream.Config{BaseURL: "https://flags.example.com", Token: "sdk-token"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &current{}
	go func() {
		// Run returns nil when ctx is cancelled, a *StatusError when the
		// token is refused.
		if err := s.Run(ctx, h); err != nil {
			log.Printf("flags: stream stopped: %v", err)
		}
	}()
	// ... evaluate with h.doc.Load() ...
}
