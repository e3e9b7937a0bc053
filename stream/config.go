package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flagstream/flags/internal/logging"
	"github.com/flagstream/flags/rules"
)

// Source names where a document came from.
type Source string

// The sources of documents and statuses.
const (
	// SourceStream is the server-sent event stream, GET /v1/stream.
	SourceStream Source = "stream"
	// SourcePoll is a full document fetched with GET /v1/flags, by a Poller
	// or by a Streamer falling back (see the package documentation).
	SourcePoll Source = "poll"
	// SourceCache is a last-known-good file read with ReadCache. This package
	// never produces it; callers that seed their handler from a cache use it.
	SourceCache Source = "cache"
)

// Handler receives what a client learns. Its methods are called from the
// goroutine running Run, one at a time, never concurrently.
type Handler interface {
	// Apply installs a complete document. An error rejects it: the previous
	// document stays in force and the client treats its own state as
	// unchanged (a later patch then shows a version gap and the client
	// resyncs).
	Apply(doc *rules.Document, src Source) error
	// Status reports every change of connection health.
	Status(st Status)
}

// Status describes the health of a client's source of documents.
type Status struct {
	// Source is the source the status is about.
	Source Source
	// Healthy is true while the source delivers (a stream connection was
	// accepted, or the last poll succeeded).
	Healthy bool
	// Fatal is true when the server refused the token (401 or 403); the
	// client has stopped and Run returns a *StatusError.
	Fatal bool
	// Err is why the source is not healthy; nil when Healthy.
	Err error
	// HTTPStatus is the status code of the failed response, 0 when the
	// failure was not an HTTP status (a network error, an idle timeout…).
	HTTPStatus int
}

// Default values of Config fields left zero.
const (
	DefaultIdleTimeout     = 45 * time.Second
	DefaultMaxEventSize    = 1 << 20
	DefaultMaxSnapshotSize = 64 << 20
	DefaultPollInterval    = 30 * time.Second
)

// Config configures a Streamer or a Poller. Only BaseURL is required.
type Config struct {
	// BaseURL is the server's base URL; the client uses BaseURL/v1/stream
	// and BaseURL/v1/flags. It must be an absolute http or https URL.
	BaseURL string
	// Token, when not empty, is sent as "Authorization: Bearer TOKEN".
	Token string
	// HTTPClient sends the requests; default: a new http.Client. Its
	// Transport and Jar are used. Its CheckRedirect is consulted only for
	// redirects to the configured origin: a redirect to another scheme,
	// host or port is always refused (ErrRedirectRefused), so the token
	// never leaves that origin. Its Timeout applies to GET /v1/flags only,
	// on top of the client's own deadline (see RequestTimeout): a stream
	// connection lives until it fails, and silence is caught by
	// IdleTimeout instead.
	HTTPClient *http.Client
	// Logger receives what the client wants to tell an operator (rejected
	// events, reconnections, failures); default: warnings and errors go to
	// slog.Default(), lower levels are dropped.
	Logger *slog.Logger

	// IdleTimeout: the stream connection is abandoned when, for this long,
	// neither response headers nor a complete line of activity have arrived
	// (an event ended by its blank line, or a comment line such as
	// ": ping"); bytes of an event still in progress do not count, so a
	// server trickling a byte at a time cannot hold the connection. A GET
	// /v1/flags is abandoned when no byte has arrived for this long.
	// Default DefaultIdleTimeout (45s).
	IdleTimeout time.Duration
	// MaxEventSize is the largest stream event the reader accepts, in bytes
	// including its field names and the blank line that ends it. A larger
	// event is taken with GET /v1/flags instead. Default
	// DefaultMaxEventSize (1 MiB).
	MaxEventSize int
	// MaxSnapshotSize is the largest GET /v1/flags body accepted. Default
	// DefaultMaxSnapshotSize (64 MiB).
	MaxSnapshotSize int64
	// PollInterval is the time between two polls of a Poller, and the
	// shortest time between two fallback polls of a Streamer whose stream
	// is down. It also bounds every GET /v1/flags: see RequestTimeout.
	// Default DefaultPollInterval (30s).
	PollInterval time.Duration

	// Now returns the current time; default time.Now. Used for the backoff
	// reset and the fallback poll interval, never for timeouts.
	Now func() time.Time
	// Rand returns a number in [0, 1) for the backoff jitter; default
	// math/rand/v2.Float64.
	Rand func() float64
	// Sleep waits d or until ctx is done, returning ctx.Err() in that case.
	// Every wait between attempts (backoff, poll interval) goes through it.
	// Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Bounds of the deadline of a GET /v1/flags (see RequestTimeout).
const (
	// MaxRequestTimeout is the longest a GET /v1/flags may take, whatever
	// the poll interval (SPEC §13).
	MaxRequestTimeout = 30 * time.Second
	// MinRequestTimeout is the shortest deadline of a GET /v1/flags, so
	// that a sub-second PollInterval (as in tests) does not make every
	// request on a busy machine fail.
	MinRequestTimeout = 1 * time.Second
)

// RequestTimeout returns the overall deadline of every GET /v1/flags a
// client with this PollInterval sends (0: the default): the poll interval,
// kept between MinRequestTimeout and MaxRequestTimeout. A request still
// running then is abandoned with ErrRequestTimeout, however steadily bytes
// arrive. (A stream connection has no overall deadline: it is meant to
// last; IdleTimeout bounds the wait for its headers and between its
// events.)
func RequestTimeout(pollInterval time.Duration) time.Duration {
	if pollInterval <= 0 {
		pollInterval = DefaultPollInterval
	}
	return min(max(pollInterval, MinRequestTimeout), MaxRequestTimeout)
}

// settings is a validated Config with its defaults filled in.
type settings struct {
	Config
	streamURL      string // requested
	flagsURL       string
	shownStream    string // the same, redacted, for messages and logs
	shownFlags     string
	origin         *url.URL // scheme and host of BaseURL: redirects stay there
	requestTimeout time.Duration
}

func (c Config) resolve() (*settings, error) {
	if c.BaseURL == "" {
		return nil, errors.New("flags: stream: BaseURL is required")
	}
	shown := redactURL(c.BaseURL)
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message holds the URL, unredacted
		}
		return nil, fmt.Errorf("flags: stream: BaseURL %q: %w", shown, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("flags: stream: BaseURL %q: scheme must be http or https", shown)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("flags: stream: BaseURL %q: no host", shown)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("flags: stream: BaseURL %q: must not have a query or fragment", shown)
	}
	if strings.ContainsAny(c.Token, "\r\n") {
		return nil, errors.New("flags: stream: Token contains a line break")
	}
	if c.IdleTimeout < 0 || c.MaxEventSize < 0 || c.MaxSnapshotSize < 0 || c.PollInterval < 0 {
		return nil, errors.New("flags: stream: negative IdleTimeout, MaxEventSize, MaxSnapshotSize or PollInterval")
	}
	s := &settings{Config: c}
	s.streamURL = u.JoinPath("v1", "stream").String()
	s.flagsURL = u.JoinPath("v1", "flags").String()
	s.shownStream = u.JoinPath("v1", "stream").Redacted()
	s.shownFlags = u.JoinPath("v1", "flags").Redacted()
	s.origin = &url.URL{Scheme: u.Scheme, Host: u.Host}
	s.requestTimeout = RequestTimeout(c.PollInterval)
	if s.HTTPClient == nil {
		s.HTTPClient = &http.Client{}
	}
	if s.Logger == nil {
		s.Logger = logging.Default()
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.MaxEventSize == 0 {
		s.MaxEventSize = DefaultMaxEventSize
	}
	if s.MaxSnapshotSize == 0 {
		s.MaxSnapshotSize = DefaultMaxSnapshotSize
	}
	if s.PollInterval == 0 {
		s.PollInterval = DefaultPollInterval
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Rand == nil {
		s.Rand = rand.Float64
	}
	if s.Sleep == nil {
		s.Sleep = sleepCtx
	}
	return s, nil
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// reporter forwards statuses to a Handler, dropping exact repeats.
type reporter struct {
	h    Handler
	last *Status
}

func (r *reporter) report(st Status) {
	if r.last != nil && sameStatus(*r.last, st) {
		return
	}
	r.last = &st
	r.h.Status(st)
}

func sameStatus(a, b Status) bool {
	if a.Source != b.Source || a.Healthy != b.Healthy || a.Fatal != b.Fatal || a.HTTPStatus != b.HTTPStatus {
		return false
	}
	if (a.Err == nil) != (b.Err == nil) {
		return false
	}
	return a.Err == nil || a.Err.Error() == b.Err.Error()
}
