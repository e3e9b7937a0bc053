package stream

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
)

// The origins this package reports to flags.Updates, shown as
// flags.Status.Source. A snapshot read from Config.Cache is applied with
// flags.OriginCache.
const (
	// OriginStream is the server-sent event stream, GET /v1/stream.
	OriginStream = "stream"
	// OriginPoll is a full document fetched with GET /v1/flags: by polling
	// (Config.Poll), or by the stream client falling back or taking a
	// snapshot too large for its reader (see the package documentation).
	OriginPoll = "poll"
)

// Default values of Config fields left zero.
const (
	DefaultIdleTimeout     = 45 * time.Second
	DefaultMaxEventSize    = 1 << 20
	DefaultMaxSnapshotSize = 64 << 20
	DefaultPollInterval    = 30 * time.Second
)

// Config configures a Source. Only BaseURL is required.
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
	// RootCAs, when not nil, are the certificate authorities the client
	// trusts for an https BaseURL instead of the system's: for a server
	// whose certificate a private CA signed. It configures the default
	// HTTPClient's transport; with an HTTPClient of your own, set them in
	// its transport's TLSClientConfig instead (both is an error).
	RootCAs *x509.CertPool
	// Logger receives what the client wants to tell an operator (rejected
	// events, reconnections, failures); default: the flags.Client's logger
	// (flags.WithLogger, whose own default sends warnings and errors to
	// slog.Default()).
	Logger *slog.Logger

	// Poll, when true, fetches GET /v1/flags every PollInterval (with
	// If-None-Match) instead of following the stream, for networks that cut
	// long-lived connections.
	Poll bool
	// Cache, when not empty, is the path of a last-known-good file: Load
	// applies the document it holds (flags.OriginCache), so that a service
	// restarted while the server is out of reach serves real flags at once;
	// Run rewrites it atomically after the documents applied (at most once
	// per CacheWriteInterval while they pour in, and always with the last
	// one, before Run returns). A file that is corrupt, truncated or was
	// written for another BaseURL is logged and ignored; temporary files a
	// killed process left beside it are removed.
	Cache string

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
	// PollInterval is the time between two polls (Poll), and the shortest
	// time between two fallback polls of a stream that is down. It also bounds every GET /v1/flags: see RequestTimeout.
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
	eventsURL      string // POST /v1/events
	shownEvents    string
	shownStream    string // the same, redacted, for messages and logs
	shownFlags     string
	origin         *url.URL // scheme and host of BaseURL: redirects stay there
	requestTimeout time.Duration
}

func (c Config) resolve() (*settings, error) {
	u, err := parseBaseURL(c.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	s := &settings{Config: c}
	s.streamURL = u.JoinPath("v1", "stream").String()
	s.flagsURL = u.JoinPath("v1", "flags").String()
	s.eventsURL = u.JoinPath("v1", "events").String()
	s.shownEvents = u.JoinPath("v1", "events").Redacted()
	s.shownStream = u.JoinPath("v1", "stream").Redacted()
	s.shownFlags = u.JoinPath("v1", "flags").Redacted()
	s.origin = &url.URL{Scheme: u.Scheme, Host: u.Host}
	s.requestTimeout = RequestTimeout(c.PollInterval)
	s.fillDefaults()
	return s, nil
}

// parseBaseURL parses Config.BaseURL: an http or https URL with a host and
// no query or fragment. Its errors show the URL redacted.
func parseBaseURL(baseURL string) (*url.URL, error) {
	if baseURL == "" {
		return nil, errors.New("flags: stream: BaseURL is required")
	}
	shown := redactURL(baseURL)
	u, err := url.Parse(baseURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message holds the URL, unredacted
		}
		return nil, fmt.Errorf("flags: stream: BaseURL %q: %w", shown, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("flags: stream: BaseURL %q: scheme must be http or https", shown)
	case u.Host == "":
		return nil, fmt.Errorf("flags: stream: BaseURL %q: no host", shown)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("flags: stream: BaseURL %q: must not have a query or fragment", shown)
	}
	return u, nil
}

// check checks the fields of c other than BaseURL.
func (c Config) check() error {
	switch {
	case strings.ContainsAny(c.Token, "\r\n"):
		return errors.New("flags: stream: Token contains a line break")
	case c.IdleTimeout < 0 || c.MaxEventSize < 0 || c.MaxSnapshotSize < 0 || c.PollInterval < 0:
		return errors.New("flags: stream: negative IdleTimeout, MaxEventSize, MaxSnapshotSize or PollInterval")
	case c.RootCAs != nil && c.HTTPClient != nil:
		return errors.New("flags: stream: RootCAs and HTTPClient: set the CAs in your HTTPClient's transport (TLSClientConfig.RootCAs)")
	}
	return nil
}

// fillDefaults gives every field left zero its default.
func (s *settings) fillDefaults() {
	if s.HTTPClient == nil {
		s.HTTPClient = &http.Client{}
		if s.RootCAs != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = &tls.Config{RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
			s.HTTPClient.Transport = t
		}
	}
	s.IdleTimeout = cmp.Or(s.IdleTimeout, DefaultIdleTimeout)
	s.MaxEventSize = cmp.Or(s.MaxEventSize, DefaultMaxEventSize)
	s.MaxSnapshotSize = cmp.Or(s.MaxSnapshotSize, DefaultMaxSnapshotSize)
	s.PollInterval = cmp.Or(s.PollInterval, DefaultPollInterval)
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Rand == nil {
		s.Rand = rand.Float64
	}
	if s.Sleep == nil {
		s.Sleep = sleepCtx
	}
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

// status is one report of a run's health, before it goes to flags.Updates
// (Healthy, or Failed with the error).
type status struct {
	origin  string
	healthy bool
	fatal   bool // the server refused the token (401/403): the run stops
	err     error
}

// out is what a run reports to: the client's flags.Updates, with exact
// repeats of a status dropped and every document applied handed to the
// cache writer. Only the goroutine running Run uses it.
type out struct {
	u     flags.Updates
	cache *cacheWriter // nil without Config.Cache
	last  *status
}

// apply hands doc to the client; an error rejects it (policy rule 7).
func (o *out) apply(doc *rules.Document, origin string) error {
	if err := o.u.Apply(doc, origin); err != nil {
		return err
	}
	if o.cache != nil {
		o.cache.Store(doc) // written soon, coalesced with the next ones
	}
	return nil
}

// report tells the client about st unless it said exactly that last.
func (o *out) report(st status) {
	if o.last != nil && sameStatus(*o.last, st) {
		return
	}
	o.last = &st
	if st.healthy {
		o.u.Healthy(st.origin)
		return
	}
	o.u.Failed(st.origin, st.err, st.fatal)
}

func sameStatus(a, b status) bool {
	if a.origin != b.origin || a.healthy != b.healthy || a.fatal != b.fatal {
		return false
	}
	if (a.err == nil) != (b.err == nil) {
		return false
	}
	return a.err == nil || a.err.Error() == b.err.Error()
}
