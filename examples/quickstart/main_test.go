package main

import "testing"

// TestQuickstart runs the quickstart end to end: server, streaming client,
// evaluations and a live change seen by the client.
func TestQuickstart(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
