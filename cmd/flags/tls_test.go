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
	"encoding/pem"
	"errors"
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flagstream test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
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
	// `flags watch` logs it on stderr (its status lines change with the
	// state only, SPEC §6).
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
