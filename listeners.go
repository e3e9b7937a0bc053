package flags

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// OnChange registers fn to be called after every new snapshot, with the
// flags whose evaluation may have changed. It returns a function that
// unregisters fn.
//
// Calls are made one at a time, in the order the snapshots were installed,
// and never while the client holds its own lock: fn may call any method of
// the client (evaluations, Status, OnChange...) except Close. They run on
// the goroutine that installed the snapshot (the source's, usually), after
// the installation and before it returns, unless another goroutine is
// calling listeners at that moment: that one then makes this call too,
// after the ones before it. A slow fn never delays evaluations or another
// source's updates; it delays only the next update of the source it runs
// on. Changes that queue up behind a slow listener are delivered as one
// (the latest version, the union of the flags). A fn that blocks holds its
// source, and Close waits for it; Shutdown does so only until its context
// ends. A fn that panics is recovered and logged, and the listeners after
// it are called. Once unregister has returned, fn is not called again
// (a call already under way may still be running).
func (c *Client) OnChange(fn func(Change)) (unregister func()) {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	c.nextID++
	id := c.nextID
	c.changeFns[id] = fn
	return func() { c.removeListener(id) }
}

// OnStatus registers fn to be called on every change of Status, under the
// same rules as OnChange: statuses queued behind a slow listener that
// differ only in version are delivered as the latest; a change of state,
// source or error is always delivered. It returns a function that
// unregisters fn.
func (c *Client) OnStatus(fn func(Status)) (unregister func()) {
	id := c.addStatusListener(fn)
	return func() { c.removeListener(id) }
}

func (c *Client) addStatusListener(fn func(Status)) int {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	c.nextID++
	c.statusFns[c.nextID] = fn
	return c.nextID
}

func (c *Client) removeListener(id int) {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	delete(c.changeFns, id)
	delete(c.statusFns, id)
}

// listenerIDs returns the ids of the change listeners (of the status
// listeners, when change is false), in registration order.
func (c *Client) listenerIDs(change bool) []int {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	var ids []int
	if change {
		ids = slices.Collect(maps.Keys(c.changeFns))
	} else {
		ids = slices.Collect(maps.Keys(c.statusFns))
	}
	slices.Sort(ids)
	return ids
}

// notify calls listener id with n, if it is still registered: a listener
// unregistered while others were being called for n is not called after
// its unregister function returned. A listener that panics is recovered
// and logged: it runs on the source's goroutine, where the program cannot
// recover, and one bad listener must not end the process.
func (c *Client) notify(id int, n notice) {
	c.listenMu.Lock()
	changeFn, statusFn := c.changeFns[id], c.statusFns[id]
	c.listenMu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			c.logger.Error("flags: a listener panicked; the next ones are called", "panic", fmt.Sprint(p))
		}
	}()
	switch {
	case n.change != nil && changeFn != nil:
		changeFn(*n.change)
	case n.change == nil && statusFn != nil:
		statusFn(n.status)
	}
}

// changedFlags lists the flags whose evaluation may differ between two
// snapshots: flags added, removed or edited, flags using an edited segment
// (directly or through nested segments) and flags depending on any of those
// as prerequisites.
func changedFlags(prev, next *eval.Snapshot) []string {
	if prev == nil {
		return slices.Clone(next.FlagKeys())
	}
	pd, nd := prev.Document(), next.Document()
	changed := changedKeys(pd.Flags, nd.Flags)
	if segChanged := changedKeys(pd.Segments, nd.Segments); len(segChanged) > 0 {
		addSegmentUsers(next, changed, segChanged)
	}
	addDependents(next, changed)
	out := make([]string, 0, len(changed))
	for k := range changed {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// changedKeys returns the keys added, removed or edited from prev to next.
func changedKeys(prev, next map[string]json.RawMessage) map[string]bool {
	changed := map[string]bool{}
	for k, raw := range next {
		if old, ok := prev[k]; !ok || string(old) != string(raw) {
			changed[k] = true
		}
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			changed[k] = true
		}
	}
	return changed
}

// addSegmentUsers adds to changed the flags of next whose rules use a
// segment of segChanged, or a segment that includes one (segChanged grows
// to hold those).
func addSegmentUsers(next *eval.Snapshot, changed, segChanged map[string]bool) {
	for grew := true; grew; {
		grew = false
		for k := range next.Document().Segments {
			if s := next.Segment(k); s != nil && !segChanged[k] && segmentUses(s.Rules, segChanged) {
				segChanged[k] = true
				grew = true
			}
		}
	}
	for _, f := range next.Flags() {
		for i := range f.Rules {
			if clausesUse(f.Rules[i].Clauses, segChanged) {
				changed[f.Key] = true
			}
		}
	}
}

// addDependents adds to changed the flags of next that have a changed flag
// as a prerequisite, directly or not.
func addDependents(next *eval.Snapshot, changed map[string]bool) {
	for grew := true; grew; {
		grew = false
		for _, f := range next.Flags() {
			if !changed[f.Key] && prerequisiteIn(f, changed) {
				changed[f.Key] = true
				grew = true
			}
		}
	}
}

// prerequisiteIn reports whether one of f's prerequisites is in set.
func prerequisiteIn(f *eval.Flag, set map[string]bool) bool {
	for _, p := range f.Prerequisites {
		if set[p.Key] {
			return true
		}
	}
	return false
}

func segmentUses(rs []eval.SegmentRule, set map[string]bool) bool {
	for i := range rs {
		if clausesUse(rs[i].Clauses, set) {
			return true
		}
	}
	return false
}

func clausesUse(cs []eval.Clause, set map[string]bool) bool {
	for i := range cs {
		if cs[i].Op == rules.OpInSegment {
			for _, s := range cs[i].Segments() {
				if set[s] {
					return true
				}
			}
		}
	}
	return false
}
