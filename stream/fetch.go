package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flagstream/flags/rules"
)

// watchdog cancels a connection on which no activity has been seen for its
// idle time. The transport it wraps kicks it (see activityTransport).
type watchdog struct {
	kick chan struct{}
	done chan struct{}
}

// startWatchdog cancels ctx with ErrIdleTimeout (through cancel) when kick
// has not been called for idle. It stops when ctx is done; wait for that
// with stop.
func startWatchdog(ctx context.Context, cancel context.CancelCauseFunc, idle time.Duration) *watchdog {
	w := &watchdog{kick: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTimer(idle)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
				t.Reset(idle)
			case <-t.C:
				cancel(ErrIdleTimeout)
				return
			}
		}
	}()
	return w
}

func (w *watchdog) touch() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// wait returns once the watchdog goroutine has ended; the caller cancels
// its context first.
func (w *watchdog) wait() { <-w.done }

// activityTransport calls touch when response headers arrive and when the
// body shows progress. With cut nil (GET /v1/flags), every byte is
// progress. With cut set (an event stream), only a complete event (ended by
// its blank line) or a complete comment line (": ping") is: bytes of an
// event in progress are not, so a server trickling a byte at a time, or
// field lines that never end an event, cannot keep a connection alive; and
// cut records the events completed and whether the body ended (EOF or
// error) inside one, which was therefore cut short.
type activityTransport struct {
	base  http.RoundTripper
	touch func()
	cut   *cutEvents
}

// cutEvents is what a stream's body tells the handler of its events: how
// many were complete (ended by their blank line), and whether the body
// ended inside one. r3labs hands over what it holds when a stream ends,
// a cut event included, which the handler must then tell from the others.
type cutEvents struct {
	cut      atomic.Bool
	complete atomic.Int64
}

// isCut reports whether the n-th event handed over (from 1) is the one
// the end of the body cut: the body ended inside an event, and fewer than
// n were complete.
func (c *cutEvents) isCut(n int64) bool { return c.cut.Load() && c.complete.Load() < n }

func (t *activityTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	t.touch()
	b := &activityBody{rc: resp.Body, touch: t.touch, cut: t.cut}
	if t.cut != nil {
		b.lines = &eventScanner{}
	}
	resp.Body = b
	return resp, nil
}

type activityBody struct {
	rc    io.ReadCloser
	touch func()
	cut   *cutEvents
	lines *eventScanner // nil: every byte is progress
}

func (b *activityBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 && b.lines == nil {
		b.touch()
	} else if n > 0 {
		progress, events := b.lines.scan(p[:n])
		b.cut.complete.Add(int64(events))
		if progress {
			b.touch()
		}
	}
	if err != nil && b.lines != nil && b.lines.partial() {
		b.cut.cut.Store(true)
	}
	return n, err
}

func (b *activityBody) Close() error { return b.rc.Close() }

// eventScanner follows the lines of an event stream (each ended by CR, LF
// or CRLF) to tell when an event or a comment line is complete. It keeps
// four booleans, whatever the size of the events.
type eventScanner struct {
	inLine  bool // some bytes of the current line have been seen
	comment bool // the current line is a comment (it starts with ':')
	fields  bool // a field line ended since the last blank line: an event is open
	afterCR bool // the last byte was a CR: an LF right after it is part of the same line end
}

// scan reads the next bytes of the stream and reports whether they
// completed an event or a comment line, and how many events they completed.
func (s *eventScanner) scan(b []byte) (progress bool, events int) {
	for len(b) > 0 {
		c := b[0]
		if s.afterCR {
			s.afterCR = false
			if c == '\n' {
				b = b[1:]
				continue
			}
		}
		if c != '\r' && c != '\n' {
			if !s.inLine {
				s.inLine, s.comment = true, c == ':'
			}
			i := bytes.IndexAny(b, "\r\n")
			if i < 0 {
				return progress, events
			}
			b = b[i:]
			continue
		}
		switch { // a line ends
		case s.inLine && s.comment:
			// A heartbeat between events is progress; comment lines inside
			// an open event are not, or a server could hold an event open
			// for ever with one a second.
			progress = progress || !s.fields
		case s.inLine:
			s.fields = true
		case s.fields: // a blank line ends the open event
			progress, s.fields = true, false
			events++
		}
		s.inLine, s.comment, s.afterCR = false, false, c == '\r'
		b = b[1:]
	}
	return progress, events
}

// partial reports whether the bytes scanned so far end inside an event: in
// a field line, or after field lines with no blank line to end them.
func (s *eventScanner) partial() bool { return s.inLine && !s.comment || s.fields }

// watchedClient returns the http.Client of one request or stream
// connection: s.HTTPClient's transport wrapped for the watchdog (touch and
// cut, see activityTransport), its cookie jar, and a redirect policy that
// never leaves the origin of the base URL. keepTimeout keeps
// s.HTTPClient.Timeout (GET /v1/flags only).
func watchedClient(s *settings, touch func(), cut *cutEvents, keepTimeout bool) *http.Client {
	c := s.HTTPClient
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out := &http.Client{
		Transport:     &activityTransport{base: base, touch: touch, cut: cut},
		CheckRedirect: checkRedirect(s.origin, c.CheckRedirect),
		Jar:           c.Jar,
	}
	if keepTimeout {
		out.Timeout = c.Timeout
	}
	return out
}

// fetched is the outcome of a GET /v1/flags.
type fetched struct {
	doc         *rules.Document // nil when notModified
	notModified bool
	etag        string // the ETag header as sent
	epoch       string // from the ETag; "" when the ETag is absent or unreadable
	version     int64  // from the ETag; -1 when unknown
}

// fetchFlags sends GET /v1/flags, with If-None-Match: etag when etag is not
// empty, and gives it s.requestTimeout to complete. Errors: *StatusError for
// any status but 200 and 304, a wrapped ErrSnapshotTooLarge,
// rules.ErrInvalidDocument, ErrIdleTimeout, ErrRequestTimeout,
// ErrRedirectRefused, or a network error; a done ctx gives ctx's error.
func fetchFlags(ctx context.Context, s *settings, etag string) (fetched, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	wd := startWatchdog(wctx, cancel, s.IdleTimeout)
	defer wd.wait()
	defer cancel(nil)
	rctx, stop := context.WithTimeoutCause(wctx, s.requestTimeout, ErrRequestTimeout)
	defer stop()

	res, err := doFetch(rctx, s, watchedClient(s, wd.touch, nil, true), etag)
	if err != nil {
		if ctx.Err() != nil {
			return fetched{}, ctx.Err()
		}
		switch cause := context.Cause(rctx); {
		case errors.Is(cause, ErrIdleTimeout):
			return fetched{}, fmt.Errorf("flags: GET %s: %w", s.shownFlags, ErrIdleTimeout)
		case errors.Is(cause, ErrRequestTimeout):
			return fetched{}, fmt.Errorf("flags: GET %s: %w (%s)", s.shownFlags, ErrRequestTimeout, s.requestTimeout)
		}
	}
	return res, err
}

func doFetch(ctx context.Context, s *settings, client *http.Client, etag string) (fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.flagsURL, nil)
	if err != nil {
		return fetched{}, fmt.Errorf("flags: GET %s: %w", s.shownFlags, redactErr(err))
	}
	req.Header.Set("Accept", "application/json")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fetched{}, fmt.Errorf("flags: GET %s: %w", s.shownFlags, redactErr(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		epoch, version := parseETag(resp.Header.Get("ETag"))
		return fetched{notModified: true, etag: resp.Header.Get("ETag"), epoch: epoch, version: version}, nil
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fetched{}, statusError(resp, s.Now())
	}
	if resp.ContentLength > s.MaxSnapshotSize {
		return fetched{}, fmt.Errorf("flags: GET %s: %w: Content-Length %d > %d bytes",
			s.shownFlags, ErrSnapshotTooLarge, resp.ContentLength, s.MaxSnapshotSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxSnapshotSize+1))
	if err != nil {
		return fetched{}, fmt.Errorf("flags: GET %s: reading body: %w", s.shownFlags, redactErr(err))
	}
	if int64(len(body)) > s.MaxSnapshotSize {
		return fetched{}, fmt.Errorf("flags: GET %s: %w: over %d bytes", s.shownFlags, ErrSnapshotTooLarge, s.MaxSnapshotSize)
	}
	doc, err := rules.ParseDocument(body)
	if err != nil {
		return fetched{}, fmt.Errorf("flags: GET %s: %w", s.shownFlags, err)
	}
	epoch, version := parseETag(resp.Header.Get("ETag"))
	return fetched{doc: doc, etag: resp.Header.Get("ETag"), epoch: epoch, version: version}, nil
}

// parseETag reads `"EPOCH:VERSION"` (a W/ prefix is tolerated). It returns
// ("", -1) when the tag does not have that shape.
func parseETag(tag string) (epoch string, version int64) {
	tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return "", -1
	}
	return parseEventID(tag[1 : len(tag)-1])
}

// parseEventID reads "EPOCH:VERSION"; ("", -1) when id does not have that
// shape. The epoch is opaque but not empty; it may contain colons (the
// version follows the last one).
func parseEventID(id string) (epoch string, version int64) {
	i := strings.LastIndexByte(id, ':')
	if i <= 0 {
		return "", -1
	}
	v, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil || v < 0 {
		return "", -1
	}
	return id[:i], v
}

// eventID formats the id the client resumes from.
func eventID(epoch string, version int64) string {
	return epoch + ":" + strconv.FormatInt(version, 10)
}
