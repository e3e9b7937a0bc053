package stream_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/stream"
)

// A client that follows a flagstream server, with a last-known-good file
// for restarts while the server is out of reach.
func ExampleNew() {
	client, err := flags.New(flags.WithSource(stream.New(stream.Config{
		BaseURL: "https://flags.example.com",
		Token:   os.Getenv("FLAGS_TOKEN"),
		Cache:   "/var/cache/myservice/flags.json",
	})))
	if err != nil {
		log.Fatal(err) // a bad Config: nothing was started
	}
	defer client.Close()

	// New does not wait for the network. Until the first snapshot (or the
	// cached one) is in, evaluations return the caller's default.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.WaitReady(ctx); err != nil {
		log.Printf("flags: serving defaults for now: %v", err)
	}
	user := flags.NewContext("user-123").Build()
	if client.Bool(ctx, "new-checkout", user, false) {
		// ...
	}
}

// Polling, for networks that cut long-lived connections.
func ExampleNew_polling() {
	client, err := flags.New(flags.WithSource(stream.New(stream.Config{
		BaseURL:      "https://flags.example.com",
		Poll:         true,
		PollInterval: time.Minute,
	})))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	// ...
}
