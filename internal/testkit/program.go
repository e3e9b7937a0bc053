package testkit

import (
	"context"
	"io"
	"testing"
	"time"
)

// Program is a command's logic (the run function behind a main) running
// in the background with its output captured: a test starts it, waits for
// what it prints and stops it. T is what the run function returns (an exit
// status, an error).
type Program[T any] struct {
	Stdout, Stderr *SyncBuffer

	cancel context.CancelFunc
	done   chan T
	limit  time.Duration
}

// StartProgram runs run in the background with a context that Stop, or the
// end of the test, cancels. limit bounds every wait, turning a hang into a
// failure.
func StartProgram[T any](t testing.TB, limit time.Duration, run func(ctx context.Context, stdout, stderr io.Writer) T) *Program[T] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Program[T]{Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, cancel: cancel, done: make(chan T, 1), limit: limit}
	go func() { p.done <- run(ctx, p.Stdout, p.Stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(limit):
			t.Errorf("the program did not stop within %v of its context being cancelled", limit)
		}
	})
	return p
}

// WaitLines waits until stdout has at least n lines, and returns them all;
// what names them in the failure.
func (p *Program[T]) WaitLines(t testing.TB, n int, what string) []string {
	t.Helper()
	var lines []string
	if !Await(p.limit, 5*time.Millisecond, func() bool { lines = p.Stdout.Lines(); return len(lines) >= n }) {
		t.Fatalf("waited %v for %s (%d lines); stdout:\n%s\nstderr:\n%s", p.limit, what, n, p.Stdout, p.Stderr)
	}
	return lines
}

// Stop cancels the program's context and returns what run returned.
func (p *Program[T]) Stop(t testing.TB) T {
	t.Helper()
	p.cancel()
	return p.Wait(t)
}

// Wait waits for run to return, and returns what it returned; it fails the
// test when run is still going after the limit.
func (p *Program[T]) Wait(t testing.TB) T {
	t.Helper()
	select {
	case v := <-p.done:
		p.done <- v // for the cleanup
		return v
	case <-time.After(p.limit):
		t.Fatalf("the program did not return within %v; stdout:\n%s\nstderr:\n%s", p.limit, p.Stdout, p.Stderr)
		var zero T
		return zero
	}
}
