package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects is how many redirects a request follows, as net/http's
// default policy, when the Config's HTTPClient has no CheckRedirect.
const maxRedirects = 10

// checkRedirect is the CheckRedirect of every http.Client the package
// builds (SPEC §13, tokens): a redirect is followed only within origin, the
// scheme, host and port of Config.BaseURL, then by user's own policy
// (net/http's default when nil).
func checkRedirect(origin *url.URL, user func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(origin, req.URL) {
			from := origin.Redacted()
			if len(via) > 0 {
				from = via[len(via)-1].URL.Redacted()
			}
			why := "another host or port"
			switch {
			case origin.Scheme == "https" && req.URL.Scheme == "http":
				why = "from https to http"
			case !strings.EqualFold(origin.Scheme, req.URL.Scheme):
				why = "another scheme"
			}
			return fmt.Errorf("%w: %s redirected to %s (%s; the token is only sent to %s)",
				ErrRedirectRefused, from, req.URL.Redacted(), why, origin.Redacted())
		}
		if user != nil {
			return user(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("flags: stopped after %d redirects", maxRedirects)
		}
		return nil
	}
}

// sameOrigin reports whether u has the scheme, host and port of origin, a
// missing port being the scheme's default.
func sameOrigin(origin, u *url.URL) bool {
	if !strings.EqualFold(origin.Scheme, u.Scheme) || !strings.EqualFold(origin.Hostname(), u.Hostname()) {
		return false
	}
	return portOf(origin) == portOf(u)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// redactURL is url.URL.Redacted for a URL held as a string. A string that
// does not parse loses its whole user information, if it seems to have one.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	rest := raw
	scheme := ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	auth := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth = rest[:i]
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		return scheme + "xxxxx" + rest[i:]
	}
	return raw
}

// redactErr returns err, a *url.Error as net/http's client returns them,
// with its URL redacted. net/http hides passwords itself; this keeps that
// true of every error the package reports, whatever produced it.
func redactErr(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return certificateErr(err)
	}
	if shown := redactURL(ue.URL); shown != ue.URL {
		return certificateErr(&url.Error{Op: ue.Op, URL: shown, Err: ue.Err})
	}
	return certificateErr(err)
}

// certificateErr marks a failed verification of the server's certificate
// with ErrCertificate, so that the status says so rather than report a
// network error: retrying will not help, a CA (Config.RootCAs) or the
// server's certificate must change.
func certificateErr(err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	if errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	return err
}
