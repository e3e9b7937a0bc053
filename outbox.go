package flags

import "sync"

// notice is one call owed to the listeners: a Change, or a Status when
// change is nil.
type notice struct {
	change *Change
	status Status
}

// outbox holds the notices not yet delivered, in the order the client's
// state changed. Notices are queued under updateMu and delivered after it
// is released (Client.deliver), so a listener can never block an update,
// nor deadlock by calling back into the client.
type outbox struct {
	mu         sync.Mutex
	queue      []notice
	delivering bool // a goroutine is in Client.deliver's loop
}

// push queues n. Behind a slow listener the queue would grow with every
// update, so what only moves the version on is merged: a change right
// behind a change becomes one change (the latest version, the union of the
// flags), and a status that differs from an undelivered one only in its
// version replaces it (then the change queued after that status, if any,
// moves on to the same version, and the next change merges into it). A
// change of state, source or error is never merged away.
func (o *outbox) push(n notice) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queue
	k := len(q)
	switch {
	case n.change != nil && k > 0 && q[k-1].change != nil:
		q[k-1].change = &Change{Version: n.change.Version, Flags: mergeSorted(q[k-1].change.Flags, n.change.Flags)}
	case n.change == nil && k > 0 && q[k-1].change == nil && sameHealth(q[k-1].status, n.status):
		q[k-1] = n
	case n.change == nil && k > 1 && q[k-1].change != nil && q[k-2].change == nil && sameHealth(q[k-2].status, n.status):
		q[k-2] = n
		q[k-1].change = &Change{Version: n.status.Version, Flags: q[k-1].change.Flags}
	default:
		o.queue = append(q, n)
	}
}

// sameHealth reports whether two statuses differ at most in version and
// time.
func sameHealth(a, b Status) bool {
	return a.State == b.State && a.Source == b.Source && sameErr(a.Err, b.Err)
}

// deliver calls the listeners with every queued notice, in order, unless
// another goroutine is doing so already (it will deliver those too). It is
// called without updateMu.
func (c *Client) deliver() {
	o := &c.outbox
	o.mu.Lock()
	if o.delivering {
		o.mu.Unlock()
		return
	}
	o.delivering = true
	finished := false
	defer func() {
		if !finished { // a listener called runtime.Goexit
			o.mu.Lock()
			o.delivering = false
			o.mu.Unlock()
		}
	}()
	for len(o.queue) > 0 {
		n := o.queue[0]
		o.queue[0] = notice{}
		o.queue = o.queue[1:]
		o.mu.Unlock()
		for _, id := range c.listenerIDs(n.change != nil) {
			c.notify(id, n)
		}
		o.mu.Lock()
	}
	o.queue = nil // let the backing array go
	o.delivering = false
	finished = true
	o.mu.Unlock()
}

// mergeSorted returns the sorted union of two sorted lists of keys.
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
