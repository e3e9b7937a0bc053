package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flagstream/flags/rules"
)

// event is one patch as written on every stream (and kept for replay).
type event struct {
	version int64
	wire    []byte // the whole SSE frame: id, event, data, blank line
}

func patchWire(epoch string, version int64, data []byte) []byte {
	head := "id: " + epoch + ":" + strconv.FormatInt(version, 10) + "\nevent: patch\ndata: "
	b := make([]byte, 0, len(head)+len(data)+2)
	b = append(b, head...)
	b = append(b, data...)
	return append(b, '\n', '\n')
}

// subscriber is one connected stream. The publisher never blocks on it: it
// queues events without waiting, and a subscriber whose queue is full is
// dropped.
type subscriber struct {
	queue chan *event
	done  chan struct{} // closed when removed
	kick  func()        // aborts a write in progress
	drain bool          // set before done is closed: write what is queued first
	who   principal     // whose token opened the stream
}

// endRevokedStreams ends the streams whose token set no longer lets read
// (a token removed from the tokens file, or an anonymous stream once reads
// need a token): a revoked token, leaked say, must stop receiving changes
// at once, not when its connection happens to end. Its client reconnects
// and is answered 401.
func (s *Server) endRevokedStreams(set *tokenSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		if !set.admits(sub.who) {
			s.removeLocked(sub, "token revoked")
			sub.kick()
		}
	}
}

// remember adds a patch to the replay ring, trimming it to its bounds.
// mu must be held.
func (s *Server) remember(ev *event) {
	s.ring = append(s.ring, ev)
	s.ringBytes += int64(len(ev.wire))
	for len(s.ring) > 0 && (len(s.ring) > s.opts.ReplayPatches || s.ringBytes > s.opts.ReplayBytes) {
		s.ringBytes -= int64(len(s.ring[0].wire))
		s.ring[0] = nil
		s.ring = s.ring[1:]
	}
	if cap(s.ring) > 4*s.opts.ReplayPatches && len(s.ring) < cap(s.ring)/2 {
		s.ring = append([]*event(nil), s.ring...)
	}
}

// broadcast queues ev for every subscriber. mu must be held.
func (s *Server) broadcast(ev *event) {
	for sub := range s.subs {
		select {
		case sub.queue <- ev:
		default:
			// Its handler is stuck writing: cut that write short rather
			// than let the stuck client hold it until WriteTimeout.
			s.removeLocked(sub, "fell behind")
			sub.kick()
		}
	}
}

// removeLocked ends sub. mu must be held.
func (s *Server) removeLocked(sub *subscriber, reason string) {
	if _, ok := s.subs[sub]; !ok {
		return
	}
	delete(s.subs, sub)
	close(sub.done)
	if reason != "client gone" && reason != "server closing" {
		s.log.Warn("flags: stream subscriber dropped", "reason", reason)
	}
	if s.onRemove != nil {
		s.onRemove(reason)
	}
}

func (s *Server) remove(sub *subscriber, reason string) {
	s.mu.Lock()
	s.removeLocked(sub, reason)
	s.mu.Unlock()
}

// subscribe registers a subscriber and returns what it must be sent first:
// the current state (for a snapshot), or the patches that follow lastID.
//
// fetched, when not empty, holds the patches that follow lastID, fetched
// from a Ledger's change log because the ring no longer reaches that far:
// they are sent, followed by those of the ring, when together they lead
// without a gap to the version served.
func (s *Server) subscribe(who principal, lastID string, kick func(), fetched []*event) (sub *subscriber, snapshot *state, replay []*event, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, nil, nil, ErrClosed
	}
	st := s.cur.Load()
	snapshot = st
	if v, ok := s.resumeFrom(lastID, st.version); ok {
		snapshot = nil
		for _, ev := range s.ring {
			if ev.version > v {
				replay = append(replay, ev)
			}
		}
	} else if r, ok := s.fetchedReplay(lastID, fetched, st.version); ok {
		snapshot, replay = nil, r
	}
	sub = &subscriber{queue: make(chan *event, s.opts.SubscriberQueue), done: make(chan struct{}), kick: kick, who: who}
	s.subs[sub] = struct{}{}
	s.streams.Add(1)
	return sub, snapshot, replay, nil
}

// fetchedReplay is what a stream resuming after lastID is sent from the
// patches fetched from a Ledger's change log (subscribe): those up to the
// version served, then the ring's, when together they lead to it without a
// gap. mu must be held.
func (s *Server) fetchedReplay(lastID string, fetched []*event, current int64) ([]*event, bool) {
	// fetched was made under lastID's epoch: a reset since then makes it
	// another lineage's.
	if _, sameEpoch := s.eventVersion(lastID); !sameEpoch || len(fetched) == 0 || fetched[0].version > current {
		return nil, false
	}
	var r []*event
	for _, ev := range fetched {
		if ev.version <= current {
			r = append(r, ev)
		}
	}
	last := r[len(r)-1].version
	if last == current {
		return r, true
	}
	if len(s.ring) == 0 || s.ring[0].version > last+1 {
		return nil, false
	}
	for _, ev := range s.ring {
		if ev.version > last {
			r = append(r, ev)
		}
	}
	return r, true
}

// eventVersion is the version that lastID, a stream's Last-Event-ID, names
// when it is an event id of this server's epoch (EPOCH:VERSION).
func (s *Server) eventVersion(lastID string) (int64, bool) {
	i := strings.LastIndexByte(lastID, ':')
	if i < 0 || strings.TrimSpace(lastID[:i]) != s.cur.Load().epoch {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(lastID[i+1:]), 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// resumeFrom reports whether a stream can resume after lastID: same epoch,
// a version not ahead of current, and every later patch still in the ring.
// mu must be held.
func (s *Server) resumeFrom(lastID string, current int64) (int64, bool) {
	v, ok := s.eventVersion(lastID)
	if !ok || v > current {
		return 0, false
	}
	if v == current {
		return v, true
	}
	if len(s.ring) == 0 || s.ring[0].version > v+1 {
		return 0, false
	}
	return v, true
}

// handleStream serves GET /v1/stream.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	who, ok := s.authorize(w, r, RoleReader)
	if !ok {
		return
	}
	if ok, last := canFlush(w); !ok {
		// Unflushed, the events would wait in a buffer for ever: say so
		// instead of streaming nothing.
		s.log.Error("flags: stream refused: the ResponseWriter cannot flush; a middleware's ResponseWriter needs a Flush or an Unwrap method",
			"writer", fmt.Sprintf("%T", last))
		writeError(w, http.StatusInternalServerError, "flags: streaming is not supported here: the response cannot be flushed", nil)
		return
	}
	rc := http.NewResponseController(w)
	kick := func() { _ = rc.SetWriteDeadline(time.Now().Add(-time.Second)) }
	lastID := r.Header.Get("Last-Event-ID")
	sub, snap, replay, err := s.subscribe(who, lastID, kick, s.ledgerReplay(r.Context(), lastID))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return
	}
	defer s.streams.Done()
	reason := "client gone"
	defer func() { s.remove(sub, reason) }()

	start := "resume"
	if snap != nil {
		start = "snapshot"
	}
	w.Header().Set(rules.StreamStartHeader, start)
	writeStreamHeader(w, r)
	if r.Method == http.MethodHead {
		return
	}
	out := &sseWriter{w: w, rc: rc, timeout: s.opts.WriteTimeout, noDeadline: s.warnNoDeadline}
	// What net/http writes after the handler (the end of the body) is
	// bounded too.
	defer func() { _ = out.extend() }()
	if err := writeBacklog(out, snap, replay); err != nil {
		reason = "write failed: " + err.Error()
		return
	}
	if err := s.pump(r.Context(), sub, out); err != nil {
		reason = "write failed: " + err.Error()
	}
}

// writeStreamHeader answers 200 with an event stream's headers.
func writeStreamHeader(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 {
		// The connection ends with the stream: the write deadlines set on
		// it must not outlive the stream into another request.
		h.Set("Connection", "close")
	}
	w.WriteHeader(http.StatusOK)
}

// writeBacklog writes what a stream starts with: the headers (flushed),
// then the snapshot when there is one, then the patches replayed.
func writeBacklog(out *sseWriter, snap *state, replay []*event) error {
	if err := out.write(); err != nil {
		return err
	}
	if snap != nil {
		head := "id: " + snap.id + "\nevent: snapshot\ndata: "
		if err := out.write([]byte(head), snap.body, []byte("\n\n")); err != nil {
			return err
		}
	}
	for _, ev := range replay {
		if err := out.write(ev.wire); err != nil {
			return err
		}
	}
	return nil
}

// pump writes sub's events as they come, and a ping every
// HeartbeatInterval, until the subscriber is removed or the client goes.
// It returns the error of a write that failed; not that of the final
// flush of a server closing, which ends the stream either way.
func (s *Server) pump(ctx context.Context, sub *subscriber, out *sseWriter) error {
	ping := time.NewTicker(s.opts.HeartbeatInterval)
	defer ping.Stop()
	for {
		var err error
		select {
		case <-sub.done:
			if sub.drain { // the server is closing: a final flush
				drainQueue(sub, out)
			}
			return nil
		case <-ctx.Done():
			return nil
		case ev := <-sub.queue:
			err = out.write(ev.wire)
		case <-ping.C:
			err = out.write([]byte(": ping\n\n"))
		}
		if err != nil {
			return err
		}
	}
}

// drainQueue writes the events left in sub's queue, until one fails.
func drainQueue(sub *subscriber, out *sseWriter) {
	for {
		select {
		case ev := <-sub.queue:
			if err := out.write(ev.wire); err != nil {
				return
			}
		default:
			return
		}
	}
}

// warnNoDeadline reports, once per Server, streams served without write
// deadlines.
func (s *Server) warnNoDeadline() {
	s.noDeadline.Do(func() {
		s.log.Warn("flags: stream: the ResponseWriter cannot set write deadlines (a middleware without Unwrap?): " +
			"a client that stops reading is cut only when its connection fails")
	})
}

// sseWriter writes whole frames (or bodies), each chunk under a write
// deadline, and flushes.
type sseWriter struct {
	w          http.ResponseWriter
	rc         *http.ResponseController
	timeout    time.Duration
	deadline   bool
	noDeadline func() // called once when deadlines are not supported
}

// writeChunk is the most written under one deadline: a subscriber on a slow
// link that keeps reading a large snapshot is not dropped (with
// ConnContext: see there), one that stops reading is, after WriteTimeout.
const writeChunk = 64 << 10

func (o *sseWriter) write(parts ...[]byte) error {
	if err := o.extend(); err != nil {
		return err
	}
	for _, p := range parts {
		for len(p) > 0 {
			n := min(len(p), writeChunk)
			if _, err := o.w.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
			if len(p) > 0 {
				if err := o.extend(); err != nil {
					return err
				}
			}
		}
	}
	return o.flush()
}

// extend sets the write deadline WriteTimeout from now. A writer that
// cannot take deadlines (a middleware without Unwrap) is served without:
// noDeadline, when set, is told once.
func (o *sseWriter) extend() error {
	err := o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	if err == nil {
		o.deadline = true
		return nil
	}
	if errors.Is(err, http.ErrNotSupported) {
		if o.noDeadline != nil {
			o.noDeadline()
			o.noDeadline = nil
		}
		return nil
	}
	return err
}

// flush flushes; a writer that cannot is fine for GET /v1/flags, and
// streams check canFlush before they start.
func (o *sseWriter) flush() error {
	if err := o.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// canFlush reports whether http.ResponseController can flush w: w, or a
// writer it unwraps to, has a Flush method. When not, it returns the last
// writer it looked at, the one that lacks both.
func canFlush(w http.ResponseWriter) (bool, http.ResponseWriter) {
	for {
		switch t := w.(type) {
		case interface{ FlushError() error }, http.Flusher:
			return true, w
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false, w
		}
	}
}

// clearDeadline lifts the write deadline so a kept-alive connection can
// serve its next request. Call it only after a write that flushed
// everything (or failed, which makes the connection fail for good).
func (o *sseWriter) clearDeadline() {
	if o.deadline {
		_ = o.rc.SetWriteDeadline(time.Time{})
	}
}
