package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/server/console"
	"github.com/flagstream/flags/server/pgstore"
	"github.com/flagstream/flags/server/promexport"
)

// Timeouts of the `flags serve` HTTP server. There is no overall write
// timeout: streams last; the server bounds each of their writes itself.
const (
	serveReadHeaderTimeout = 10 * time.Second
	serveIdleTimeout       = 2 * time.Minute
	serveShutdownTimeout   = 10 * time.Second
)

// serveConfig is what `flags serve` was asked for, once its arguments are
// parsed and its secrets and certificate read.
type serveConfig struct {
	path, storeURL, addr, tokensFile, auditLog string
	token, adminToken                          string
	previous                                   []string
	tls                                        *tls.Config // nil: plain HTTP
}

// serveFlags holds the flag values of `flags serve` between fs.Parse and
// the reading of the secrets they name.
type serveFlags struct {
	serveConfig
	tokenOpt, adminOpt *tokenOption
	previousFile       string
	tlsCert, tlsKey    string
}

// runServe implements `flags serve` (SPEC §6): the reference server over a
// document file or a folder of *.json documents, reloading on change, until
// ctx is cancelled. It logs to stderr. Exit status: 0 after a graceful
// shutdown, 2 for bad arguments or a document that cannot be loaded at
// start, 1 when the server cannot listen or fails.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code := parseServeArgs(args, stderr)
	if cfg == nil {
		return code
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	store, where, closeStore, err := openStore(ctx, cfg.path, cfg.storeURL, cfg.auditLog, logger)
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return 2
	}
	defer closeStore()
	srv, err := newServeServer(store, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return 2
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return 1
	}
	return serveUntilDone(ctx, ln, srv, cfg, logger, where)
}

// parseServeArgs parses the arguments of `flags serve` and reads the
// secrets and certificate they name. A nil config means stop with the
// returned exit status (0 for -help, 2 for bad arguments), the reason
// already written to stderr.
func parseServeArgs(args []string, stderr io.Writer) (*serveConfig, int) {
	f, code := parseServeFlags(args, stderr)
	if f == nil {
		return nil, code
	}
	if err := f.readSecrets(); err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return nil, 2
	}
	return &f.serveConfig, 0
}

// parseServeFlags defines and parses the flags of `flags serve` and checks
// the combinations that exclude each other.
func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, int) {
	var f serveFlags
	fs := flag.NewFlagSet("flags serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.path, "flags", "", "the flag document: a JSON file, or a folder whose *.json files are merged")
	fs.StringVar(&f.storeURL, "store", "", "a PostgreSQL `URL` (postgres://…) to keep flags, change log and audit in, shared by every replica (default $FLAGS_STORE); instead of --flags")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "the address to listen on, HOST:PORT")
	f.tokenOpt = addTokenOption(fs, "token", "FLAGS_TOKEN", "the SDK token required to read (none: reads are open)")
	f.adminOpt = addTokenOption(fs, "admin-token", "FLAGS_ADMIN_TOKEN", "the token of the admin API (none: the admin API is off)")
	fs.Var((*stringList)(&f.previous), "previous-token", "an old SDK token still accepted for reads while clients move to the new one (repeatable; visible to other users in the process list: prefer --previous-token-file)")
	fs.StringVar(&f.previousFile, "previous-token-file", "", "read old SDK tokens still accepted for reads from `FILE`, one a line")
	fs.StringVar(&f.tokensFile, "tokens", "", "named tokens with roles: a JSON `FILE` of [{\"name\", \"role\": reader|operator|admin, \"sha256\"}], reloaded on change")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with the certificate chain in this PEM `FILE` (with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the private key of --tls-cert, a PEM `FILE`")
	fs.StringVar(&f.auditLog, "audit-log", "", "the audit log `FILE` (default: beside the document, NAME.audit.jsonl, or flags.audit.jsonl in a folder)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flags serve: unexpected argument %q\n", fs.Arg(0))
		return nil, 2
	}
	if f.storeURL == "" && f.path == "" {
		f.storeURL = os.Getenv("FLAGS_STORE")
	}
	if msg := f.conflict(); msg != "" {
		fmt.Fprintln(stderr, "flags serve: "+msg)
		return nil, 2
	}
	// The token options resolve against the parsed set (which of them was
	// given), so they are read here, while fs is at hand.
	var err error
	if f.token, err = f.tokenOpt.resolve(fs); err == nil {
		f.adminToken, err = f.adminOpt.resolve(fs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return nil, 2
	}
	return &f, 0
}

// conflict says what is wrong with the choice of document, store and audit
// log, or "" when nothing is.
func (f *serveFlags) conflict() string {
	switch {
	case f.path == "" && f.storeURL == "":
		return "--flags or --store (or $FLAGS_STORE) is required"
	case f.path != "" && f.storeURL != "":
		return "--flags and --store exclude each other: seed a database store with `flags push`"
	case f.storeURL != "" && f.auditLog != "":
		return "--audit-log is for --flags: a database store keeps its audit in a table"
	}
	return ""
}

// readSecrets reads the old SDK tokens of --previous-token-file and the key
// pair of --tls-cert/--tls-key.
func (f *serveFlags) readSecrets() error {
	if f.previousFile != "" {
		more, err := readTokenFile(f.previousFile)
		if err != nil {
			return fmt.Errorf("--previous-token-file: %w", err)
		}
		f.previous = append(f.previous, more...)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		f.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return nil
}

// newServeServer builds the reference server over store, with its
// Prometheus metrics and, when someone may be an operator or an admin, its
// console.
func newServeServer(store server.Store, cfg *serveConfig, logger *slog.Logger) (*server.Server, error) {
	metrics := promexport.NewCollector(nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := server.Options{Token: cfg.token, AdminToken: cfg.adminToken, PreviousTokens: cfg.previous,
		TokensFile: cfg.tokensFile, Logger: logger, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	var ui *console.Console
	if cfg.adminToken != "" || cfg.tokensFile != "" { // someone may be an operator or an admin
		ui = console.New(console.Options{Logger: logger})
		opts.Console = ui
	}
	srv, err := server.New(store, opts)
	if err != nil {
		return nil, err
	}
	metrics.Attach(srv)
	if ui != nil {
		ui.Attach(srv)
	}
	return srv, nil
}

// serveUntilDone serves srv on ln until ctx is cancelled, then shuts down
// gracefully. It returns the exit status: 0 after a graceful shutdown, 1
// when serving or the shutdown fails.
func serveUntilDone(ctx context.Context, ln net.Listener, srv *server.Server, cfg *serveConfig, logger *slog.Logger, where []any) int {
	hs := &http.Server{
		Handler:           srv,
		ConnContext:       server.ConnContext, // slow readers of large snapshots are served
		ReadHeaderTimeout: serveReadHeaderTimeout,
		IdleTimeout:       serveIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         cfg.tls,
	}
	scheme := "http"
	if cfg.tls != nil {
		scheme = "https"
	}
	if cfg.token == "" && cfg.tokensFile == "" {
		logger.Warn("flags serve: no SDK token (--token-file, $FLAGS_TOKEN, --token or --tokens): anyone who can connect can read the flags")
	}
	logger.Info("flags serve: listening", append([]any{"addr", ln.Addr().String(), "url", scheme + "://" + ln.Addr().String(),
		"version", srv.Version(), "epoch", srv.Epoch()}, where...)...)

	served := make(chan error, 1)
	go func() {
		if cfg.tls != nil {
			served <- hs.ServeTLS(ln, "", "") // HTTP/2 too
			return
		}
		served <- hs.Serve(ln)
	}()
	select {
	case err := <-served:
		logger.Error("flags serve: server failed", "err", err)
		return 1
	case <-ctx.Done():
	}
	return shutdownServe(hs, srv, served, logger)
}

// shutdownServe stops hs and srv within serveShutdownTimeout and waits for
// the serving goroutine, which reports on served.
func shutdownServe(hs *http.Server, srv *server.Server, served <-chan error, logger *slog.Logger) int {
	logger.Info("flags serve: shutting down")
	// Stop accepting connections at once (Shutdown closes the listener and
	// then waits for the requests under way); meanwhile the server refuses
	// new admin writes and streams, lets the writes under way finish and
	// publish, and ends the streams after a final flush, so that Shutdown
	// can return.
	sctx, cancel := context.WithTimeout(context.Background(), serveShutdownTimeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- hs.Shutdown(sctx) }()
	_ = srv.Close()
	code := 0
	if err := <-shut; err != nil {
		logger.Error("flags serve: shutdown", "err", err)
		_ = hs.Close()
		code = 1
	}
	<-served
	logger.Info("flags serve: stopped")
	return code
}

// openStore opens the file store at path or the PostgreSQL store at url,
// and says where its flags and audit are for the start-up log line.
func openStore(ctx context.Context, path, url, auditLog string, logger *slog.Logger) (server.Store, []any, func(), error) {
	if url != "" {
		st, err := pgstore.Open(ctx, url, pgstore.Options{Logger: logger})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--store: %w", err)
		}
		return st, []any{"store", "postgres"}, func() { _ = st.Close() }, nil
	}
	st, err := server.OpenFileStore(path, server.FileStoreOptions{Logger: logger, AuditPath: auditLog})
	if err != nil {
		return nil, nil, nil, err
	}
	return st, []any{"flags", path, "audit", st.AuditPath()}, func() {}, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
