package stream

// The stream client's failure policy (SPEC §5). Each rule names the
// constants or errors that implement it.
//
//  1. Connect: GET BaseURL/v1/stream with "Authorization: Bearer TOKEN" and,
//     unless a resync is pending, "Last-Event-ID: EPOCH:VERSION" of the
//     document last applied (not of the last event seen).
//  2. 401 and 403 are final, on the stream and on any GET /v1/flags it makes:
//     exactly one request, Updates.Failed(…, fatal true) with the
//     *StatusError, and Run returns it (errors.Is(err, ErrUnauthorized)).
//  3. Everything else is a failure, retried after a Backoff wait
//     (BackoffBase, BackoffMax, BackoffResetAfter): another status, a
//     response that is not text/event-stream, a network error, a clean end
//     of stream (ErrStreamEnded), an idle connection (ErrIdleTimeout), a
//     resync (ErrResync). A Retry-After on 429/503 is a floor under the wait
//     (capped at MaxRetryAfter). The client keeps its last good document.
//  4. Idle: when neither the response headers nor a complete event or
//     comment line (": ping") arrive for Config.IdleTimeout (45 s), the
//     connection is dropped (ErrIdleTimeout). Bytes of an unfinished event
//     do not count: a server trickling a byte every few seconds is dropped
//     like a silent one. So the request has a deadline for its headers, and
//     the connection one between events, but none overall: it is meant to
//     last.
//  5. snapshot: replaces the state whatever its version or epoch.
//  6. patch: applied when its version is the state's + 1; ignored when it is
//     not above the state's (a replayed duplicate); a gap, an id of another
//     epoch, or a patch before any snapshot → resync. Versions never wrap:
//     one that does not fit an int64 (or is negative) is malformed (rule
//     8), and the comparison cannot overflow at math.MaxInt64, past which
//     no patch can follow (the server must start a new epoch).
//  7. A document the client rejects (Apply returns an error) leaves the
//     state unchanged and the connection open: the next patch then shows a
//     gap (or another epoch) and rule 6 resyncs.
//  8. Malformed event (data that is not a document or patch, an id that is
//     not EPOCH:VERSION): rejected and logged, state unchanged, then resync:
//     a lost patch would otherwise only show at the next patch, which may
//     come hours later.
//  9. Resync: close the connection, count a failure (rule 3: a server that
//     keeps sending what the client cannot follow is retried with backoff,
//     never in a loop) and reconnect without Last-Event-ID, which makes the
//     server start with a snapshot.
//  10. An event over Config.MaxEventSize (ErrEventTooLarge): the document is
//     taken with GET /v1/flags (If-None-Match: the state's ETag; body limit
//     Config.MaxSnapshotSize) and the stream resumes at once with the
//     Last-Event-ID of its ETag. When the resumed connection hits an
//     oversized event again before handling any event, the server is
//     resending it: that counts as a failure (rule 3) before the next GET,
//     so the client never loops.
//  11. Fallback: from the FallbackPollAfter-th consecutive failure, a
//     backoff wait starts with GET /v1/flags (conditional) when
//     Config.PollInterval has passed since the last one. Documents it brings
//     are applied with OriginPoll and the stream resumes from their ETag.
//     Its health is reported with OriginPoll; while that is healthy, stream
//     failures are logged, not reported, until a stream connection is up.
//  12. A connection accepted with 200 reports Healthy(OriginStream) — once
//     its snapshot is applied when it starts with one (no Last-Event-ID
//     sent, or rules.StreamStartHeader says so), so that READY carries the
//     version it will serve. The failure count resets when a connection
//     that was accepted fails BackoffResetAfter (60 s) or more after it
//     was accepted.
//  13. When ctx is done, every request, wait and read ends, every goroutine
//     the client started has returned, and Run returns nil.
//  14. Every GET /v1/flags (rules 10 and 11) must complete within
//     RequestTimeout(Config.PollInterval) — the poll interval, between
//     MinRequestTimeout and MaxRequestTimeout (30 s) — or fails with
//     ErrRequestTimeout (rule 3), however steadily its bytes arrive.
//  15. Redirects are followed only within the origin (scheme, host, port)
//     of Config.BaseURL; one to another origin, https to http included,
//     fails with ErrRedirectRefused (rule 3), so the token never leaves it.
//  16. URLs in errors and logs have their password redacted
//     (url.URL.Redacted).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/flagstream/flags/rules"
)

// undecodableError marks a resync caused by event data that does not decode.
type undecodableError struct{ err error }

func (e *undecodableError) Error() string { return e.err.Error() }
func (e *undecodableError) Unwrap() error { return e.err }

// FallbackPollAfter is the number of consecutive stream failures after which
// the stream client also polls GET /v1/flags while it waits (policy rule 11).
const FallbackPollAfter = 2

// streamer follows GET /v1/stream and hands every document it learns to
// the client: a Source's Run without Config.Poll.
type streamer struct {
	cfg *settings
}

// runState is what one Run knows. Only the Run goroutine touches it.
type runState struct {
	out    *out
	bo     *Backoff
	doc    *rules.Document // last document the client accepted; nil before
	epoch  string          // epoch of doc; "" when unknown
	resync bool            // next connection without Last-Event-ID

	// snapshotDue is set while the connection is to start with a snapshot
	// not yet applied: no Last-Event-ID was sent, or the server said so
	// (rules.StreamStartHeader). The stream is reported healthy once it is
	// applied, so that READY never shows the version being replaced.
	snapshotDue bool

	oversizeStreak bool      // the last connection ended on an oversized event
	lastPoll       time.Time // last fallback poll
	pollHealthy    bool      // the last fallback poll succeeded, no stream since
}

func (st *runState) resumeID() string {
	if st.resync || st.doc == nil || st.epoch == "" {
		return ""
	}
	return eventID(st.epoch, st.doc.Version)
}

func (st *runState) etag() string {
	if st.doc == nil || st.epoch == "" {
		return ""
	}
	return `"` + eventID(st.epoch, st.doc.Version) + `"`
}

// connEnd says how a stream connection ended.
type connEnd struct {
	err      error // never nil
	oversize bool
	handled  int // events decoded and processed on this connection
}

// run follows the stream until ctx is done (it then returns nil) or the
// server refuses the token (it returns a *StatusError that matches
// ErrUnauthorized). See the failure policy above.
func (s *streamer) run(ctx context.Context, o *out) error {
	st := &runState{out: o, bo: NewBackoff(s.cfg.Rand)}
	for ctx.Err() == nil {
		end := s.connect(ctx, st)
		if ctx.Err() != nil {
			break
		}
		if end.handled > 0 {
			st.oversizeStreak = false
		}
		if errors.Is(end.err, ErrResync) {
			st.resync = true
		}
		if end.oversize {
			if st.oversizeStreak && end.handled == 0 {
				if err := s.fail(ctx, st, end.err); err != nil {
					return err
				}
				if ctx.Err() != nil {
					break
				}
			}
			st.oversizeStreak = true
			err := s.takeSnapshot(ctx, st)
			if err == nil {
				continue
			}
			end.err = err
		}
		if err := s.fail(ctx, st, end.err); err != nil {
			return err
		}
	}
	return nil
}

// fail reports and logs a failure, polls when rule 11 says so, and waits.
// It returns a non-nil error only when the client must stop (a fatal
// status); a done ctx makes it return nil early.
func (s *streamer) fail(ctx context.Context, st *runState, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	var se *StatusError
	if errors.As(err, &se) && se.Fatal() {
		st.out.report(status{origin: OriginStream, fatal: true, err: err})
		s.cfg.Logger.Error("flags: stream: server refused the token; stopping", "err", err)
		return err
	}
	now := s.cfg.Now()
	wait := st.bo.Failure(now, retryAfterOf(err))
	s.cfg.Logger.Warn("flags: stream: connection failed; retrying",
		"err", err, "failures", st.bo.Failures(), "wait", wait)
	if !st.pollHealthy {
		st.out.report(status{origin: OriginStream, err: err})
	}
	if st.bo.Failures() >= FallbackPollAfter && (st.lastPoll.IsZero() || now.Sub(st.lastPoll) >= s.cfg.PollInterval) {
		if err := s.fallbackPoll(ctx, st); err != nil {
			return err
		}
	}
	_ = s.cfg.Sleep(ctx, wait) // a done ctx ends the wait; Run checks ctx
	return nil
}

// fallbackPoll is rule 11. It returns an error only for a fatal status.
func (s *streamer) fallbackPoll(ctx context.Context, st *runState) error {
	st.lastPoll = s.cfg.Now()
	res, err := fetchFlags(ctx, s.cfg, st.etag())
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Fatal() {
			st.out.report(status{origin: OriginPoll, fatal: true, err: err})
			return err
		}
		s.cfg.Logger.Warn("flags: stream: fallback poll failed", "err", err)
		st.pollHealthy = false
		st.out.report(status{origin: OriginPoll, err: err})
		return nil
	}
	s.install(st, res, OriginPoll)
	st.pollHealthy = true
	st.out.report(status{origin: OriginPoll, healthy: true})
	return nil
}

// takeSnapshot is rule 10: the document that did not fit the reader.
func (s *streamer) takeSnapshot(ctx context.Context, st *runState) error {
	s.cfg.Logger.Info("flags: stream: event over the reader limit; taking the snapshot with GET",
		"limit", s.cfg.MaxEventSize)
	res, err := fetchFlags(ctx, s.cfg, st.etag())
	if err != nil {
		return err
	}
	s.install(st, res, OriginPoll)
	return nil
}

// install hands a fetched document to the client and, when accepted, makes
// it the state the stream resumes from.
func (s *streamer) install(st *runState, res fetched, origin string) {
	if res.notModified {
		return
	}
	if res.epoch != "" && res.epoch == st.epoch && st.doc != nil && res.doc.Version <= st.doc.Version {
		s.cfg.Logger.Debug("flags: stream: fetched document is not newer; kept the current one",
			"fetched", res.doc.Version, "current", st.doc.Version)
		return
	}
	if res.version >= 0 && res.version != res.doc.Version {
		s.cfg.Logger.Warn("flags: stream: ETag version differs from the document's",
			"etag", res.version, "document", res.doc.Version)
	}
	if err := st.out.apply(res.doc, origin); err != nil {
		s.cfg.Logger.Warn("flags: stream: client rejected the document", "version", res.doc.Version, "err", err)
		return
	}
	st.doc, st.epoch, st.resync = res.doc, res.epoch, false
}

// connect runs one stream connection until it ends.
func (s *streamer) connect(ctx context.Context, st *runState) connEnd {
	cctx, cancel := context.WithCancelCause(ctx)
	wd := startWatchdog(cctx, cancel, s.cfg.IdleTimeout)
	defer wd.wait()
	defer cancel(nil)

	c := sse.NewClient(s.cfg.streamURL, sse.ClientMaxBufferSize(s.cfg.MaxEventSize))
	var cut cutEvents
	c.Connection = watchedClient(s.cfg, wd.touch, &cut, false)
	c.ReconnectStrategy = &backoff.StopBackOff{} // our loop reconnects, not r3labs
	if s.cfg.Token != "" {
		c.Headers["Authorization"] = "Bearer " + s.cfg.Token
	}
	if id := st.resumeID(); id != "" {
		c.Headers["Last-Event-ID"] = id
	}
	c.ResponseValidator = s.validator(st)

	end := connEnd{}
	var handed int64 // events r3labs handed over
	err := c.SubscribeWithContext(cctx, "", func(ev *sse.Event) {
		handed++
		if cctx.Err() != nil {
			// Cancelled (idle, resync, ctx): r3labs still hands over what it
			// had buffered, including a cut final event. Ignore it all.
			return
		}
		if cut.isCut(handed) {
			// The stream ended inside an event and r3labs handed over the
			// remainder: a cut, not an event, even when what it holds
			// reads as one (SSE dispatches an event at its blank line
			// only). Resume normally.
			s.cfg.Logger.Debug("flags: stream: event cut by the end of the connection ignored")
			return
		}
		stop := s.handle(st, ev, &end)
		if stop != nil {
			cancel(stop)
		}
	})
	s.classifyEnd(ctx, cctx, err, &end)
	return end
}

// validator checks the answer to the stream request: a 200 of
// text/event-stream is a connection (the backoff resets and the stream is
// healthy); anything else ends it with an error.
func (s *streamer) validator(st *runState) func(*sse.Client, *http.Response) error {
	return func(_ *sse.Client, resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			return statusError(resp, s.cfg.Now())
		}
		if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/event-stream" {
			resp.Body.Close()
			return fmt.Errorf("flags: GET %s: Content-Type %q, want text/event-stream",
				s.cfg.shownStream, resp.Header.Get("Content-Type"))
		}
		st.bo.Up(s.cfg.Now())
		st.pollHealthy = false
		st.snapshotDue = resp.Request.Header.Get("Last-Event-ID") == "" || resp.Header.Get(rules.StreamStartHeader) == "snapshot"
		if !st.snapshotDue {
			st.out.report(status{origin: OriginStream, healthy: true})
		}
		s.cfg.Logger.Debug("flags: stream: connected", "lastEventID", resp.Request.Header.Get("Last-Event-ID"))
		return nil
	}
}

// classifyEnd says in end why the connection ended: ctx done, the cause it
// was cancelled with, an event too large, the error the subscription
// returned, or a clean end of stream.
func (s *streamer) classifyEnd(ctx, cctx context.Context, err error, end *connEnd) {
	cause := context.Cause(cctx)
	switch {
	case ctx.Err() != nil:
		end.err = ctx.Err()
	case cause != nil && !errors.Is(cause, context.Canceled):
		end.err = fmt.Errorf("flags: GET %s: %w", s.cfg.shownStream, cause)
	case errors.Is(err, bufio.ErrTooLong):
		end.oversize = true
		end.err = fmt.Errorf("flags: GET %s: %w (limit %d bytes)", s.cfg.shownStream, ErrEventTooLarge, s.cfg.MaxEventSize)
	case err != nil:
		var se *StatusError
		if errors.As(err, &se) {
			end.err = err
		} else {
			end.err = fmt.Errorf("flags: GET %s: %w", s.cfg.shownStream, redactErr(err))
		}
	default:
		end.err = fmt.Errorf("flags: GET %s: %w", s.cfg.shownStream, ErrStreamEnded)
	}
}

// handle processes one event (rules 5 to 8). A non-nil result ends the
// connection with a resync.
func (s *streamer) handle(st *runState, ev *sse.Event, end *connEnd) error {
	name, id := string(ev.Event), string(ev.ID)
	log := s.cfg.Logger.With("event", name, "id", id)
	epoch := ""
	if id != "" {
		var v int64
		if epoch, v = parseEventID(id); v < 0 {
			log.Warn("flags: stream: event rejected: id is not EPOCH:VERSION")
			return fmt.Errorf("%w: event id %q is not EPOCH:VERSION", ErrResync, id)
		}
	}
	switch name {
	case "snapshot":
		doc, err := rules.ParseDocument(ev.Data)
		if err != nil {
			log.Warn("flags: stream: snapshot event rejected", "err", err)
			return fmt.Errorf("%w: snapshot %s: %w", ErrResync, id, &undecodableError{err})
		}
		end.handled++
		if err := st.out.apply(doc, OriginStream); err != nil {
			log.Warn("flags: stream: client rejected the snapshot", "version", doc.Version, "err", err)
			return nil
		}
		st.doc, st.epoch, st.resync = doc, epoch, false
		if st.snapshotDue {
			st.snapshotDue = false
			st.out.report(status{origin: OriginStream, healthy: true})
		}
	case "patch":
		if st.doc == nil {
			log.Warn("flags: stream: patch before any snapshot")
			return fmt.Errorf("%w: patch %s before any snapshot", ErrResync, id)
		}
		if epoch != st.epoch {
			log.Warn("flags: stream: patch of another epoch", "epoch", st.epoch)
			return fmt.Errorf("%w: patch %s is not of epoch %q", ErrResync, id, st.epoch)
		}
		p, err := rules.ParsePatch(ev.Data)
		if err != nil {
			log.Warn("flags: stream: patch event rejected", "err", err)
			return fmt.Errorf("%w: patch %s: %w", ErrResync, id, &undecodableError{err})
		}
		end.handled++
		switch {
		case p.Version <= st.doc.Version:
			log.Debug("flags: stream: patch ignored: already applied", "version", p.Version, "current", st.doc.Version)
		case p.Version-st.doc.Version > 1: // both are >= 0: no overflow, unlike st.doc.Version+1
			log.Warn("flags: stream: patch version gap", "version", p.Version, "current", st.doc.Version)
			return fmt.Errorf("%w: patch version %d after %d", ErrResync, p.Version, st.doc.Version)
		default:
			next := st.doc.Apply(p)
			if err := st.out.apply(next, OriginStream); err != nil {
				log.Warn("flags: stream: client rejected the patched document", "version", next.Version, "err", err)
				return nil
			}
			st.doc = next
		}
	default:
		log.Debug("flags: stream: unknown event ignored")
	}
	return nil
}
