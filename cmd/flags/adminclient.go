package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxAdminAnswerBytes bounds what the commands that call the admin API read
// of an answer (a push answers its patch, up to a document's size).
const maxAdminAnswerBytes = 128 << 20

// defaultAdminTimeout bounds one command's requests altogether.
const defaultAdminTimeout = time.Minute

// adminClient calls a flag server's admin API for `flags push`, `flags
// history` and `flags switch`.
type adminClient struct {
	base  string // the server's base URL, without a trailing slash
	token string
	http  *http.Client
}

// adminAnswer is one answer of the admin API.
type adminAnswer struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the JSON error of the admin API.
type apiError struct {
	Error    string `json:"error"`
	Problems []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"problems"`
}

// adminOptions are the options every admin command takes.
type adminOptions struct {
	url     *string
	token   *tokenOption
	timeout *time.Duration
	caCert  *string
}

// newAdminFlags starts the flag set of the admin command cmd ("flags
// push") with the options every admin command takes; who says which token
// the command needs. The command adds its own options before calling parse.
func newAdminFlags(cmd, who string, stderr io.Writer) (*flag.FlagSet, adminOptions) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, adminOptions{
		url:     fs.String("url", "", "the server's base URL"),
		token:   addTokenOption(fs, "token", "FLAGS_TOKEN", who),
		timeout: fs.Duration("timeout", defaultAdminTimeout, "give up after this long"),
		caCert:  fs.String("ca-cert", "", "trust the certificate authorities in this PEM `FILE` (a private CA) instead of the system's"),
	}
}

// parse parses an admin command's arguments, lets problem vet them (it
// returns what is wrong, or "" when nothing is) and returns the client the
// options describe, with the positional arguments. The command's own
// arguments are vetted before the options, so a mistyped FLAG is reported
// even when --url is missing too. A nil client means the command stops with
// the returned exit status: 0 for -help, 2 for bad arguments, the reason
// written to fs's output.
func (o adminOptions) parse(fs *flag.FlagSet, args []string, problem func(positional []string) string) (*adminClient, []string, int) {
	pos, code, ok := parseCommand(fs, args)
	if !ok {
		return nil, nil, code
	}
	if msg := problem(pos); msg != "" {
		fmt.Fprintf(fs.Output(), "%s: %s\n", fs.Name(), msg)
		return nil, nil, 2
	}
	c, err := o.client(fs)
	if err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
		return nil, nil, 2
	}
	return c, pos, 0
}

// readCACert reads a PEM file of CA certificates (--ca-cert); nil for "".
func readCACert(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// client checks the options once fs is parsed and returns the client.
func (o adminOptions) client(fs *flag.FlagSet) (*adminClient, error) {
	if *o.url == "" {
		return nil, errors.New("--url is required")
	}
	u, err := url.Parse(*o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q: want http://HOST[:PORT] or https://HOST[:PORT]", *o.url)
	}
	token, err := o.token.resolve(fs)
	if err != nil {
		return nil, err
	}
	if *o.timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	roots, err := readCACert(*o.caCert)
	if err != nil {
		return nil, err
	}
	c := &adminClient{
		base:  strings.TrimSuffix(*o.url, "/"),
		token: token,
		http: &http.Client{
			Timeout: *o.timeout,
			// The token goes to the URL given and nowhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if roots != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		c.http.Transport = t
	}
	return c, nil
}

// do sends one request; header holds name, value pairs.
func (c *adminClient) do(ctx context.Context, method, path string, body []byte, header ...string) (*adminAnswer, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if len(data) > maxAdminAnswerBytes {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, path, maxAdminAnswerBytes)
	}
	return &adminAnswer{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// call sends a request as do does and expects 200 OK. A nil answer means
// the command (cmd, "flags push") stops with the returned exit status,
// the reason written to stderr: 1 when the server cannot be reached, as
// refused says when it refuses.
func (c *adminClient) call(ctx context.Context, stderr io.Writer, cmd, method, path string, body []byte, header ...string) (*adminAnswer, int) {
	a, err := c.do(ctx, method, path, body, header...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return nil, 1
	}
	if a.status != http.StatusOK {
		return nil, refused(stderr, cmd, a)
	}
	return a, 0
}

// refused prints the server's refusal and returns the exit status: 1 when
// the server failed (5xx), 2 when it refused the request.
func refused(w io.Writer, cmd string, a *adminAnswer) int {
	printRefusal(w, cmd, a)
	if a.status >= 500 {
		return 1
	}
	return 2
}

// printRefusal writes the error of a refused request to w: the server's
// message, then every problem on a line of its own.
func printRefusal(w io.Writer, cmd string, a *adminAnswer) {
	var e apiError
	if json.Unmarshal(a.body, &e) != nil || e.Error == "" {
		fmt.Fprintf(w, "%s: the server answered %d %s: %s\n", cmd, a.status, http.StatusText(a.status), strings.TrimSpace(string(a.body)))
		return
	}
	fmt.Fprintf(w, "%s: refused (%d %s): %s\n", cmd, a.status, http.StatusText(a.status), e.Error)
	for _, p := range e.Problems {
		if p.Path == "" {
			fmt.Fprintf(w, "  %s\n", p.Message)
			continue
		}
		fmt.Fprintf(w, "  %s: %s\n", p.Path, p.Message)
	}
}
