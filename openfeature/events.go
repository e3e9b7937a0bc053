package openfeature

import (
	"fmt"
	"slices"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/flagstream/flags"
)

// The provider's events go through a queue that one goroutine (send)
// hands to the SDK, one at a time, on the unbuffered EventChannel. The
// client's listeners only queue (push), so a slow SDK never holds the
// client's source, and no event is dropped. Behind a slow SDK,
// CONFIGURATION_CHANGED events that follow one another become one, with
// the union of their flag keys, as flags.Client.OnChange merges changes
// behind a slow listener. States (READY, STALE, ERROR) are handed over in
// order, each one, the latest last; a state OpenFeature is in already
// (once what is queued is applied) is not queued. Nothing is queued or
// handed over after Shutdown.

// maxQueued bounds the queue. Only states that keep changing faster than
// the SDK takes them (or with no SDK reading at all) reach it; the queue
// is then folded into one CONFIGURATION_CHANGED with every key, then the
// latest state: the state OpenFeature ends in is still the client's.
const maxQueued = 32

// EventChannel delivers the provider's events to the SDK.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// onStatus turns the client's state changes into READY, STALE and ERROR
// (PROVIDER_FATAL). INITIALIZING and CLOSED have no event.
func (p *Provider) onStatus(s flags.Status) {
	ev, ok := statusEvent(s)
	if !ok {
		return
	}
	p.mu.Lock()
	p.pushLocked(ev)
	p.mu.Unlock()
}

// onChange turns a change into CONFIGURATION_CHANGED with the changed keys.
func (p *Provider) onChange(c flags.Change) {
	p.mu.Lock()
	p.pushLocked(of.Event{ProviderName: "flagstream", EventType: of.ProviderConfigChange,
		ProviderEventDetails: of.ProviderEventDetails{Message: fmt.Sprintf("flags at version %d", c.Version), FlagChanges: slices.Clone(c.Flags)}})
	p.mu.Unlock()
}

// statusEvent is the event that reports state s, if there is one.
func statusEvent(s flags.Status) (of.Event, bool) {
	msg := string(s.State)
	if s.Err != nil {
		msg += ": " + s.Err.Error()
	}
	ev := of.Event{ProviderName: "flagstream", ProviderEventDetails: of.ProviderEventDetails{Message: msg}}
	switch s.State {
	case flags.StateReady:
		ev.EventType = of.ProviderReady
	case flags.StateStale:
		ev.EventType = of.ProviderStale
	case flags.StateFatal:
		ev.EventType, ev.ErrorCode = of.ProviderError, of.ProviderFatalCode
	default:
		return of.Event{}, false
	}
	return ev, true
}

// stateOf is the state the SDK puts a provider in on ev (go-sdk's
// statesMap); ok is false for CONFIGURATION_CHANGED, which changes none.
func stateOf(ev of.Event) (st of.State, ok bool) {
	switch ev.EventType {
	case of.ProviderReady:
		return of.ReadyState, true
	case of.ProviderStale:
		return of.StaleState, true
	case of.ProviderError:
		if ev.ErrorCode == of.ProviderFatalCode {
			return of.FatalState, true
		}
		return of.ErrorState, true
	}
	return "", false
}

// lastLocked is the state OpenFeature will be in once every queued event is
// applied. p.mu is held.
func (p *Provider) lastLocked() of.State {
	for i := len(p.queue) - 1; i >= 0; i-- {
		if st, ok := stateOf(p.queue[i]); ok {
			return st
		}
	}
	return p.sent
}

// pushLocked queues ev, merging it as the comment at the top of this file
// says, and wakes send. p.mu is held.
func (p *Provider) pushLocked(ev of.Event) {
	if p.closed {
		return
	}
	k := len(p.queue)
	if st, ok := stateOf(ev); ok {
		if st == p.lastLocked() {
			return // OpenFeature is in it, or will be
		}
		p.queue = append(p.queue, ev)
	} else if k > 0 && p.queue[k-1].EventType == of.ProviderConfigChange {
		tail := &p.queue[k-1]
		tail.Message = ev.Message
		tail.FlagChanges = union(tail.FlagChanges, ev.FlagChanges)
	} else {
		p.queue = append(p.queue, ev)
	}
	if len(p.queue) > maxQueued {
		p.foldLocked()
	}
	p.wakeSender()
}

// wakeSender tells send the queue (or p.inits) changed.
func (p *Provider) wakeSender() {
	select {
	case p.wake <- struct{}{}:
	default: // send is woken already
	}
}

// foldLocked folds the queue into one CONFIGURATION_CHANGED with every
// key, then the latest state if OpenFeature is not in it. p.mu is held.
func (p *Provider) foldLocked() {
	var change, state *of.Event
	var keys []string
	for i := range p.queue {
		ev := p.queue[i]
		if _, ok := stateOf(ev); ok {
			state = &ev
			continue
		}
		change = &ev
		keys = append(keys, ev.FlagChanges...)
	}
	p.queue = nil
	if change != nil {
		change.FlagChanges = union(keys, nil)
		p.queue = append(p.queue, *change)
	}
	if state != nil {
		if st, _ := stateOf(*state); st != p.sent {
			p.queue = append(p.queue, *state)
		}
	}
}

// union returns the sorted keys of a and b, each once.
func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// initSettle is how long after an Init returned send waits before it
// hands an event over. go-sdk applies Init's result on the goroutine that
// called Init, once Init has returned, and the provider's events on
// another: an event handed over the moment Init returns can still be
// applied before Init's result, which then overwrites it (a READY for
// flags that came just after a timed-out Init returned its error, applied
// first, left OpenFeature in ERROR with the client READY, for good). The
// SDK applies Init's result microseconds after Init returns; initSettle
// leaves it far more, and delays only events that come right after an
// Init.
const initSettle = 20 * time.Millisecond

// send hands the queued events to the SDK, one at a time, until Shutdown.
// While an Init is under way, and for initSettle after it returned, it
// waits: OpenFeature applies Init's result (READY, ERROR or FATAL) when
// Init returns, and an event handed over before then could be applied
// first and then overwritten.
func (p *Provider) send() {
	for {
		p.mu.Lock()
		for (len(p.queue) == 0 || p.inits > 0) && !p.closed {
			p.mu.Unlock()
			select {
			case <-p.wake:
			case <-p.done:
				return
			}
			p.mu.Lock()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		if wait := initSettle - time.Since(p.initReturned); wait > 0 {
			p.mu.Unlock()
			select {
			case <-time.After(wait):
			case <-p.done:
				return
			}
			continue // an Init may have started meanwhile
		}
		ev := p.queue[0]
		p.queue[0] = of.Event{}
		p.queue = p.queue[1:]
		if st, ok := stateOf(ev); ok {
			p.sent = st
		}
		p.mu.Unlock()
		select {
		case p.events <- ev:
		case <-p.done:
			return
		}
	}
}
