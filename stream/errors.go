package stream

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors, for errors.Is.
var (
	// ErrUnauthorized matches a *StatusError whose code is 401 or 403: the
	// server refused the token, and the client stopped.
	ErrUnauthorized = errors.New("flags: unauthorized")
	// ErrIdleTimeout reports a connection or request on which nothing was
	// received for Config.IdleTimeout (on a stream: no complete event or
	// comment line).
	ErrIdleTimeout = errors.New("flags: idle timeout")
	// ErrRequestTimeout reports a GET /v1/flags that did not complete within
	// its deadline (RequestTimeout), such as a server trickling its body.
	ErrRequestTimeout = errors.New("flags: request deadline exceeded")
	// ErrRedirectRefused reports a redirect the client did not follow: to
	// another scheme, host or port than Config.BaseURL's, which would send
	// the token elsewhere (https to http included). It is retried like any
	// failure: fix the base URL or the server's redirect.
	ErrRedirectRefused = errors.New("flags: redirect to another origin refused")
	// ErrEventTooLarge reports a stream event larger than
	// Config.MaxEventSize; the client then takes the document with
	// GET /v1/flags.
	ErrEventTooLarge = errors.New("flags: stream event too large")
	// ErrSnapshotTooLarge reports a GET /v1/flags body larger than
	// Config.MaxSnapshotSize.
	ErrSnapshotTooLarge = errors.New("flags: snapshot too large")
	// ErrCertificate reports a server certificate the client does not
	// trust (unknown authority, wrong host name, expired): the TLS
	// handshake failed before any request. It is retried like any failure,
	// but only a CA the client trusts (Config.RootCAs, `flags watch
	// --ca-cert`) or a corrected certificate will fix it.
	ErrCertificate = errors.New("flags: server certificate not trusted")
	// ErrStreamEnded reports a stream the server ended cleanly.
	ErrStreamEnded = errors.New("flags: stream ended")
	// ErrResync reports a stream connection the client closed because its
	// state no longer follows the server's (a version gap, an event of
	// another epoch, an event it could not decode).
	ErrResync = errors.New("flags: resync")
)

// StatusError is an HTTP response the client did not expect: any status
// other than 200 (and 304 for GET /v1/flags).
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// URL is the requested URL, its password redacted (url.URL.Redacted).
	URL string
	// RetryAfter is the Retry-After of a 429 or 503, 0 when absent.
	RetryAfter time.Duration
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("flags: GET %s: %d %s", e.URL, e.Code, http.StatusText(e.Code))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Is reports whether target is ErrUnauthorized and the code is 401 or 403.
func (e *StatusError) Is(target error) bool {
	return target == ErrUnauthorized && e.Fatal()
}

// Fatal reports whether the status ends the client: 401 or 403.
func (e *StatusError) Fatal() bool {
	return e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden
}

// statusError builds the error for resp, which it does not close.
func statusError(resp *http.Response, now time.Time) *StatusError {
	e := &StatusError{Code: resp.StatusCode, URL: resp.Request.URL.Redacted()}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// retryAfterOf returns the Retry-After carried by err, 0 when none.
func retryAfterOf(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}
