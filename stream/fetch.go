package stream

import (
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

// watchdog cancels a connection on which nothing has been received for its
// idle time. Every byte read through the transport it wraps (and every
// response header block) kicks it.
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

// activityTransport calls touch whenever headers or body bytes arrive.
// When cut is not nil, it is set when a body ends (EOF or error) after bytes
// that do not end with a blank line: the last event was cut short.
type activityTransport struct {
	base  http.RoundTripper
	touch func()
	cut   *atomic.Bool
}

func (t *activityTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	t.touch()
	resp.Body = &activityBody{rc: resp.Body, touch: t.touch, cut: t.cut}
	return resp, nil
}

type activityBody struct {
	rc    io.ReadCloser
	touch func()
	cut   *atomic.Bool
	tail  []byte // the last bytes read, at most 4
}

func (b *activityBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.touch()
		if b.cut != nil {
			b.tail = append(b.tail, p[max(0, n-4):n]...)
			b.tail = b.tail[max(0, len(b.tail)-4):]
		}
	}
	if err != nil && b.cut != nil && len(b.tail) > 0 && !endsWithBlankLine(b.tail) {
		b.cut.Store(true)
	}
	return n, err
}

// endsWithBlankLine reports whether b ends with two line terminators (CRLF,
// LF or CR), which ends an event-stream event.
func endsWithBlankLine(b []byte) bool {
	terms := 0
	for i := len(b) - 1; i >= 0; i-- {
		switch {
		case b[i] == '\n' && i > 0 && b[i-1] == '\r':
			terms++
			i--
		case b[i] == '\n' || b[i] == '\r':
			terms++
		default:
			return terms >= 2
		}
	}
	return terms >= 2
}

func (b *activityBody) Close() error { return b.rc.Close() }

// watchedClient returns a copy of c whose transport kicks touch (and sets
// cut, when not nil; see activityTransport).
func watchedClient(c *http.Client, touch func(), cut *atomic.Bool, keepTimeout bool) *http.Client {
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out := &http.Client{
		Transport:     &activityTransport{base: base, touch: touch, cut: cut},
		CheckRedirect: c.CheckRedirect,
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
// empty. Errors: *StatusError for any status but 200 and 304, a wrapped
// ErrSnapshotTooLarge, rules.ErrInvalidDocument, ErrIdleTimeout, or a
// network error; a done ctx gives ctx's error.
func fetchFlags(ctx context.Context, s *settings, etag string) (fetched, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	wd := startWatchdog(rctx, cancel, s.IdleTimeout)
	defer wd.wait()
	defer cancel(nil)

	res, err := doFetch(rctx, s, watchedClient(s.HTTPClient, wd.touch, nil, true), etag)
	if err != nil {
		if ctx.Err() != nil {
			return fetched{}, ctx.Err()
		}
		if cause := context.Cause(rctx); errors.Is(cause, ErrIdleTimeout) {
			return fetched{}, fmt.Errorf("flags: GET %s: %w", s.flagsURL, ErrIdleTimeout)
		}
	}
	return res, err
}

func doFetch(ctx context.Context, s *settings, client *http.Client, etag string) (fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.flagsURL, nil)
	if err != nil {
		return fetched{}, fmt.Errorf("flags: GET %s: %w", s.flagsURL, err)
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
		return fetched{}, fmt.Errorf("flags: GET %s: %w", s.flagsURL, err)
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
			s.flagsURL, ErrSnapshotTooLarge, resp.ContentLength, s.MaxSnapshotSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxSnapshotSize+1))
	if err != nil {
		return fetched{}, fmt.Errorf("flags: GET %s: reading body: %w", s.flagsURL, err)
	}
	if int64(len(body)) > s.MaxSnapshotSize {
		return fetched{}, fmt.Errorf("flags: GET %s: %w: over %d bytes", s.flagsURL, ErrSnapshotTooLarge, s.MaxSnapshotSize)
	}
	doc, err := rules.ParseDocument(body)
	if err != nil {
		return fetched{}, fmt.Errorf("flags: GET %s: %w", s.flagsURL, err)
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
