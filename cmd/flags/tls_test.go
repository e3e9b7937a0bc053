package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/stream"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files, and returns their paths and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c := newCert(t, nil, time.Now().Add(time.Hour), []net.IP{net.IPv4(127, 0, 0, 1)})
	pool = x509.NewCertPool()
	pool.AddCert(c.cert)
	return c.certFile, c.keyFile, pool
}

// testCert is a certificate with its key, parsed and written as PEM files.
type testCert struct {
	cert              *x509.Certificate
	key               *ecdsa.PrivateKey
	certFile, keyFile string
}

// newCert makes a server certificate for ips and dns, valid from an hour
// ago until notAfter and signed by issuer; with issuer nil, it is
// self-signed and a CA (it can sign others, and --ca-cert can name it).
func newCert(t *testing.T, issuer *testCert, notAfter time.Time, ips []net.IP, dns ...string) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "flagstream test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		IPAddresses:           ips,
		DNSNames:              dns,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	parent, signer := tmpl, key
	if issuer == nil {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.Subject.CommonName = "flagstream test server"
		parent, signer = issuer.cert, issuer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{
		cert:     cert,
		key:      key,
		certFile: writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		keyFile:  writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))),
	}
}

// TestServeTLS: with --tls-cert and --tls-key, `flags serve` speaks HTTPS
// (HTTP/2 included: streams flow over it) and nothing else; a client that
// does not trust the certificate is refused by its own TLS check.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	doc := writeFile(t, "flags.json", serveDoc)
	url, stop := startServe(t, []string{"--flags", doc, "--addr", "127.0.0.1:0", "--token", "sdk", "--tls-cert", certFile, "--tls-key", keyFile})
	defer stop()
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("listening on %s, want an https:// URL", url)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	get := func(c *http.Client, path string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer sdk")
		return c.Do(req)
	}
	resp, err := get(client, "/v1/flags")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || resp.ProtoMajor != 2 {
		t.Errorf("GET /v1/flags over TLS = %d, proto %s, TLS %+v; want 200 over HTTP/2, TLS 1.2 or later", resp.StatusCode, resp.Proto, resp.TLS)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer sdk")
	stream, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if line, err := bufio.NewReader(stream.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "id: ") {
		t.Errorf("the stream over TLS starts with %q, %v", line, err)
	}
	cancel()

	_, err = get(&http.Client{}, "/v1/flags") // the system's roots: not this certificate
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client without the CA: %v, want x509.UnknownAuthorityError", err)
	}
	plain, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/v1/flags")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port = %d, want 400", plain.StatusCode)
		}
	}
}

func TestServeTLSBadArguments(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	otherCert, _, _ := selfSigned(t)
	doc := writeFile(t, "flags.json", serveDoc)
	checkRefusals(t, runServe, []string{"--flags", doc, "--addr", "127.0.0.1:0"}, []refusal{
		{"cert without key", []string{"--tls-cert", certFile}, "go together"},
		{"key without cert", []string{"--tls-key", keyFile}, "go together"},
		{"missing cert", []string{"--tls-cert", certFile + ".missing", "--tls-key", keyFile}, "missing"},
		{"key of another cert", []string{"--tls-cert", otherCert, "--tls-key", keyFile}, "private key does not match"},
		{"key as cert", []string{"--tls-cert", keyFile, "--tls-key", keyFile}, "--tls-cert"},
	})
}

// TestCACert: `flags watch` without the server's CA reports a certificate
// error as such in its status; with --ca-cert it follows the server; the
// admin commands take --ca-cert too.
func TestCACert(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t)
	doc := writeFile(t, "flags.json", serveDoc)
	url, stop := startServe(t, []string{"--flags", doc, "--addr", "127.0.0.1:0", "--token", "sdk", "--admin-token", "adm",
		"--tls-cert", certFile, "--tls-key", keyFile})
	defer stop()

	// The SDK's status names the certificate (errors.Is ErrCertificate);
	// `flags watch` logs it on stderr (and prints it in a status line:
	// TestWatchCertificateError).
	client, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: url, Token: "sdk"})))
	if err != nil {
		t.Fatal(err)
	}
	if !testkit.Await(10*time.Second, 10*time.Millisecond, func() bool { return errors.Is(client.Status().Err, stream.ErrCertificate) }) {
		t.Fatalf("status %+v, want an error matching stream.ErrCertificate", client.Status())
	}
	if msg := client.Status().Err.Error(); !strings.Contains(msg, "server certificate not trusted") || !strings.Contains(msg, "unknown authority") {
		t.Errorf("status error %q does not say what is wrong with the certificate", msg)
	}
	client.Close()
	untrusted := startWatch(t, "--url", url, "--token", "sdk", "--context", `{"key": "u"}`)
	if !testkit.Await(10*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(untrusted.Stderr.String(), "server certificate not trusted")
	}) {
		t.Fatalf("flags watch stderr without the certificate error:\n%s", untrusted.Stderr)
	}
	untrusted.Stop(t)

	client, err = flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: url, Token: "sdk", RootCAs: roots})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.WaitReady(ctx); err != nil {
		t.Errorf("SDK with RootCAs: %v", err)
	}
	client.Close()

	trusted := startWatch(t, "--url", url, "--token", "sdk", "--ca-cert", certFile, "--context", `{"key": "u"}`)
	trusted.waitLine(t, 0, "READY over TLS", func(line string) bool { return strings.Contains(line, `"state":"READY"`) })
	trusted.waitLine(t, 0, "flag f", func(line string) bool { return strings.Contains(line, `"flag":"f"`) })
	trusted.Stop(t)

	var stdout, stderr bytes.Buffer
	if code := runSwitch(context.Background(), []string{"--url", url, "--token", "adm", "--ca-cert", certFile, "f", "off"}, &stdout, &stderr); code != 0 {
		t.Errorf("flags switch --ca-cert = %d: %s", code, stderr.String())
	}
	stderr.Reset()
	if code := runSwitch(context.Background(), []string{"--url", url, "--token", "adm", "f", "on"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "certificate") {
		t.Errorf("flags switch without the CA = %d %q, want a certificate error", code, stderr.String())
	}
	if code := runSwitch(context.Background(), []string{"--url", url, "--token", "adm", "--ca-cert", doc, "f", "on"}, &stdout, &stderr); code != 2 {
		t.Errorf("flags switch --ca-cert of a file without certificates = %d, want 2", code)
	}
}

// statusWithError matches a status line whose error contains every one of
// parts.
func statusWithError(parts ...string) func(string) bool {
	return func(line string) bool {
		var v struct{ Status *status }
		if json.Unmarshal([]byte(line), &v) != nil || v.Status == nil || v.Status.Error == "" {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(v.Status.Error, p) {
				return false
			}
		}
		return true
	}
}

// TestWatchCertificateError: `flags watch` with a CA that did not sign the
// server's certificate prints a status line whose error says so (SPEC §10:
// "reported in the status error as such"), streaming and polling, although
// the state stays INITIALIZING; and only once, though the client retries
// (and the stream's fallback poll fails too, naming another URL).
func TestWatchCertificateError(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	otherCA, _, _ := selfSigned(t)
	doc := writeFile(t, "flags.json", serveDoc)
	url, stop := startServe(t, []string{"--flags", doc, "--addr", "127.0.0.1:0", "--token", "sdk", "--tls-cert", certFile, "--tls-key", keyFile})
	defer stop()

	for _, source := range []string{"stream", "poll"} {
		t.Run(source, func(t *testing.T) {
			args := []string{"--url", url, "--token", "sdk", "--ca-cert", otherCA, "--context", `{"key":"u"}`}
			retried := `msg="flags: stream: connection failed; retrying"`
			if source == "poll" {
				args = append(args, "--poll")
				retried = `msg="flags: poll: failed; retrying"`
			}
			w := startWatch(t, args...)
			i := w.waitLine(t, 0, "a status line with the certificate error", statusWithError("certificate"))
			s, _ := parseStatus(t, w.Stdout.Lines()[i])
			if s.State != "INITIALIZING" || s.Source != source || s.Version != 0 ||
				!strings.Contains(s.Error, "server certificate not trusted") || !strings.Contains(s.Error, "unknown authority") {
				t.Errorf("status line %s, want INITIALIZING/%s at version 0 with an error naming the untrusted certificate", w.Stdout.Lines()[i], source)
			}
			// Three failures (the stream's fallback poll, from the second,
			// failed in between): still one line with the error.
			if !testkit.Await(watchWait, 10*time.Millisecond, func() bool {
				return strings.Count(w.Stderr.String(), retried) >= 3
			}) {
				t.Fatalf("waited %v for three failures; stderr:\n%s", watchWait, w.Stderr)
			}
			if code := w.Stop(t); code != 0 {
				t.Errorf("exit status = %d, want 0", code)
			}
			lines := w.Stdout.Lines()
			withError := 0
			for _, line := range lines {
				s, ok := parseStatus(t, line)
				switch {
				case !ok:
					t.Errorf("line %s, want only status lines: no flags without a snapshot", line)
				case s.Error != "":
					withError++
				}
			}
			if withError != 1 {
				t.Errorf("%d status lines with an error, want 1 (retries of one failure print nothing):\n%s", withError, w.Stdout)
			}
			if last := lines[len(lines)-1]; last != fmt.Sprintf(`{"status":{"state":"CLOSED","source":%q,"version":0}}`, source) {
				t.Errorf("last line %s, want CLOSED/%s", last, source)
			}
		})
	}
}

// TestWatchCertificateChanged: a server that a READY `flags watch` follows
// restarts with a certificate for another name; the watch prints a status
// line (STALE, the last good version) whose error names that certificate
// problem, not only the end of the stream that came first.
func TestWatchCertificateChanged(t *testing.T) {
	ca := newCert(t, nil, time.Now().Add(time.Hour), nil)
	good := newCert(t, ca, time.Now().Add(time.Hour), []net.IP{net.IPv4(127, 0, 0, 1)})
	wrongName := newCert(t, ca, time.Now().Add(time.Hour), nil, "example.com")
	doc := writeFile(t, "flags.json", serveDoc)
	serveArgs := func(c *testCert, addr string) []string {
		return []string{"--flags", doc, "--addr", addr, "--token", "sdk", "--tls-cert", c.certFile, "--tls-key", c.keyFile}
	}
	url, stop := startServe(t, serveArgs(good, "127.0.0.1:0"))
	defer stop()
	w := startWatch(t, "--url", url, "--token", "sdk", "--ca-cert", ca.certFile, "--context", `{"key":"u"}`)
	ready := w.waitLine(t, 0, "READY over TLS", isStatus("READY", "stream"))

	stop()
	_, stopWrong := startServe(t, serveArgs(wrongName, strings.TrimPrefix(url, "https://")))
	defer stopWrong()
	i := w.waitLine(t, ready+1, "a status line naming the certificate", statusWithError("certificate"))
	s, _ := parseStatus(t, w.Stdout.Lines()[i])
	if s.State != "STALE" || s.Source != "stream" || s.Version != 4 ||
		!strings.Contains(s.Error, "server certificate not trusted") || !strings.Contains(s.Error, "validate certificate for 127.0.0.1") {
		t.Errorf("status line %s, want STALE/stream at version 4 with an error naming the certificate's wrong name", w.Stdout.Lines()[i])
	}
	if code := w.Stop(t); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
}
