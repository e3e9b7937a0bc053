package flags

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
)

// listenerWait bounds every wait of these tests; the bound only turns a
// hang into a failure.
const listenerWait = 10 * time.Second

// within runs f on a goroutine of its own and fails the test when it has
// not returned after listenerWait: a deadlock becomes a failure, not a hang.
// f must not call t's methods (it may outlive the test).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(listenerWait):
		t.Fatalf("%s did not return within %v: blocked by a listener", what, listenerWait)
	}
}

// TestListenersRunOutsideUpdateLock: "`flags watch` then spins at 100 % CPU
// forever, because change listeners run while the update lock is held".
// Listeners now run after the lock is released: one that calls back into
// the client, or waits for another goroutine that updates it, goes on.
func TestListenersRunOutsideUpdateLock(t *testing.T) {
	c, u := manualClient(t)
	ctx := context.Background()
	ec := NewContext("user-1").Build()

	type seen struct {
		version int64
		gen     int
		state   State
	}
	doc2 := testkit.GenDoc(t, 2, 2)
	var mu sync.Mutex
	var changes []seen
	var states []State
	c.OnStatus(func(s Status) {
		mu.Lock()
		states = append(states, s.State)
		mu.Unlock()
	})
	c.OnChange(func(ch Change) {
		// Calls back into the client: evaluations, Status, (un)registration.
		got := seen{ch.Version, c.Int(ctx, "gen", ec, -1), c.Status().State}
		c.OnChange(func(Change) {})()
		c.OnStatus(func(Status) {})()
		if r := c.IntDetail(ctx, "gen", ec, -1); r.Err != nil {
			t.Errorf("IntDetail in a listener: %v", r.Err)
		}
		mu.Lock()
		changes = append(changes, got)
		mu.Unlock()
		if ch.Version != 1 {
			return
		}
		// Waits for another goroutine that updates the client. Under the
		// update lock, this never returned.
		var err error
		within(t, "an update from another goroutine, while a listener waits for it", func() {
			u.Failed("manual", errors.New("link down"), false)
			err = u.Apply(doc2, "manual")
		})
		if err != nil {
			t.Errorf("Apply(version 2): %v", err)
		}
	})

	if err := u.Apply(testkit.GenDoc(t, 1, 1), "manual"); err != nil {
		t.Fatal(err)
	}
	// This goroutine delivered everything queued meanwhile, in order, before
	// its Apply returned.
	mu.Lock()
	defer mu.Unlock()
	wantChanges := []seen{{1, 1, StateReady}, {2, 2, StateReady}}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("OnChange saw %+v, want %+v", changes, wantChanges)
	}
	wantStates := []State{StateReady, StateStale, StateReady}
	if !slices.Equal(states, wantStates) {
		t.Errorf("OnStatus saw %v, want %v", states, wantStates)
	}
}

// TestSlowListenerDoesNotStallInstall: while a listener is stuck, other
// goroutines install snapshots, report health and evaluate without waiting
// for it; the changes that queued up behind it are delivered afterwards,
// in order, as one.
func TestSlowListenerDoesNotStallInstall(t *testing.T) {
	c, u := manualClient(t)
	ctx := context.Background()
	ec := NewContext("user-1").Build()
	if err := u.Apply(testkit.GenDoc(t, 1, 1), "manual"); err != nil {
		t.Fatal(err)
	}

	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free)
	var mu sync.Mutex
	var changes []Change
	var statuses []Status
	c.OnStatus(func(s Status) {
		mu.Lock()
		statuses = append(statuses, s)
		mu.Unlock()
	})
	c.OnChange(func(ch Change) {
		mu.Lock()
		changes = append(changes, ch)
		mu.Unlock()
		if ch.Version == 2 {
			close(entered)
			<-release
		}
	})
	applied := make(chan error, 1)
	go func() { applied <- u.Apply(testkit.GenDoc(t, 2, 2), "manual") }() // delivers, and gets stuck
	<-entered

	for v := int64(3); v <= 5; v++ {
		doc := testkit.GenDoc(t, v, int(v))
		var err error
		within(t, "Apply behind a stuck listener", func() { err = u.Apply(doc, "manual") })
		if err != nil {
			t.Errorf("Apply(version %d): %v", v, err)
		}
	}
	if got := c.Int(ctx, "gen", ec, -1); got != 5 {
		t.Errorf("Int(gen) behind a stuck listener = %d, want 5", got)
	}
	within(t, "Failed behind a stuck listener", func() { u.Failed("manual", errors.New("link down"), false) })
	if st := c.Status(); st.State != StateStale || st.Version != 5 {
		t.Errorf("Status behind a stuck listener = %+v, want STALE at version 5", st)
	}

	free()
	if err := <-applied; err != nil {
		t.Fatalf("Apply(version 2): %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []Change{
		{Version: 2, Flags: []string{"gen", "label"}},
		{Version: 5, Flags: []string{"gen", "label"}}, // 3, 4 and 5, merged
	}
	if len(changes) != len(want) {
		t.Fatalf("OnChange saw %+v, want %+v", changes, want)
	}
	for i := range want {
		if changes[i].Version != want[i].Version || !slices.Equal(changes[i].Flags, want[i].Flags) {
			t.Errorf("change %d = %+v, want %+v", i, changes[i], want[i])
		}
	}
	// Statuses: READY at 2 before the stuck listener; then READY at 3, 4
	// and 5, merged into the last, and the STALE that followed.
	type brief struct {
		State   State
		Version int64
	}
	var got []brief
	for _, s := range statuses {
		got = append(got, brief{s.State, s.Version})
	}
	wantStatuses := []brief{{StateReady, 2}, {StateReady, 5}, {StateStale, 5}}
	if !slices.Equal(got, wantStatuses) {
		t.Errorf("OnStatus saw %+v, want %+v", got, wantStatuses)
	}
}

func TestMergeSorted(t *testing.T) {
	for _, tc := range []struct{ a, b, want []string }{
		{nil, nil, []string{}},
		{[]string{"a"}, nil, []string{"a"}},
		{nil, []string{"b"}, []string{"b"}},
		{[]string{"a", "c", "e"}, []string{"b", "c", "d", "f"}, []string{"a", "b", "c", "d", "e", "f"}},
	} {
		if got := mergeSorted(tc.a, tc.b); !slices.Equal(got, tc.want) {
			t.Errorf("mergeSorted(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestStatusErrorsComparedWithErrorsIs: "errors are compared by their text
// (flags.go sameErr)". A status listener hears of a new error value even
// when it reads like the last one; the same error reported again (or
// wrapping it) is no news.
func TestStatusErrorsComparedWithErrorsIs(t *testing.T) {
	c, u := manualClient(t)
	if err := u.Apply(testkit.GenDoc(t, 1, 1), "manual"); err != nil {
		t.Fatal(err)
	}
	var errs []error
	c.OnStatus(func(s Status) { errs = append(errs, s.Err) })
	down := errors.New("link down")
	u.Failed("manual", down, false)
	u.Failed("manual", down, false)
	u.Failed("manual", fmt.Errorf("retrying: %w", down), false)
	again := errors.New("link down")
	u.Failed("manual", again, false)
	if len(errs) != 2 || errs[0] != down || errs[1] != again {
		t.Errorf("OnStatus saw errors %v, want [%v %v] (the second a new value with the same text)", errs, down, again)
	}
}
