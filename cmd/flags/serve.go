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

// runServe implements `flags serve` (SPEC §6): the reference server over a
// document file or a folder of *.json documents, reloading on change, until
// ctx is cancelled. It logs to stderr. Exit status: 0 after a graceful
// shutdown, 2 for bad arguments or a document that cannot be loaded at
// start, 1 when the server cannot listen or fails.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flags serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("flags", "", "the flag document: a JSON file, or a folder whose *.json files are merged")
	storeURL := fs.String("store", "", "a PostgreSQL `URL` (postgres://…) to keep flags, change log and audit in, shared by every replica (default $FLAGS_STORE); instead of --flags")
	addr := fs.String("addr", "127.0.0.1:8080", "the address to listen on, HOST:PORT")
	tokenOpt := addTokenOption(fs, "token", "FLAGS_TOKEN", "the SDK token required to read (none: reads are open)")
	adminOpt := addTokenOption(fs, "admin-token", "FLAGS_ADMIN_TOKEN", "the token of the admin API (none: the admin API is off)")
	var previous stringList
	fs.Var(&previous, "previous-token", "an old SDK token still accepted for reads while clients move to the new one (repeatable; visible to other users in the process list: prefer --previous-token-file)")
	previousFile := fs.String("previous-token-file", "", "read old SDK tokens still accepted for reads from `FILE`, one a line")
	tokensFile := fs.String("tokens", "", "named tokens with roles: a JSON `FILE` of [{\"name\", \"role\": reader|operator|admin, \"sha256\"}], reloaded on change")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with the certificate chain in this PEM `FILE` (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "the private key of --tls-cert, a PEM `FILE`")
	auditLog := fs.String("audit-log", "", "the audit log `FILE` (default: beside the document, NAME.audit.jsonl, or flags.audit.jsonl in a folder)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flags serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *storeURL == "" && *path == "" {
		*storeURL = os.Getenv("FLAGS_STORE")
	}
	switch {
	case *path == "" && *storeURL == "":
		fmt.Fprintln(stderr, "flags serve: --flags or --store (or $FLAGS_STORE) is required")
		return 2
	case *path != "" && *storeURL != "":
		fmt.Fprintln(stderr, "flags serve: --flags and --store exclude each other: seed a database store with `flags push`")
		return 2
	case *storeURL != "" && *auditLog != "":
		fmt.Fprintln(stderr, "flags serve: --audit-log is for --flags: a database store keeps its audit in a table")
		return 2
	}
	token, err := tokenOpt.resolve(fs)
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return 2
	}
	adminToken, err := adminOpt.resolve(fs)
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return 2
	}
	if *previousFile != "" {
		more, err := readTokenFile(*previousFile)
		if err != nil {
			fmt.Fprintf(stderr, "flags serve: --previous-token-file: %v\n", err)
			return 2
		}
		previous = append(previous, more...)
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		fmt.Fprintln(stderr, "flags serve: --tls-cert and --tls-key go together")
		return 2
	}
	var tlsConfig *tls.Config
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			fmt.Fprintf(stderr, "flags serve: --tls-cert/--tls-key: %v\n", err)
			return 2
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	store, where, closeStore, err := openStore(ctx, *path, *storeURL, *auditLog, logger)
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return 2
	}
	defer closeStore()
	metrics := promexport.NewCollector(nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := server.Options{Token: token, AdminToken: adminToken, PreviousTokens: previous,
		TokensFile: *tokensFile, Logger: logger, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	var ui *console.Console
	if adminToken != "" || *tokensFile != "" { // someone may be an operator or an admin
		ui = console.New(console.Options{Logger: logger})
		opts.Console = ui
	}
	srv, err := server.New(store, opts)
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return 2
	}
	defer srv.Close()
	metrics.Attach(srv)
	if ui != nil {
		ui.Attach(srv)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "flags serve: %v\n", err)
		return 1
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: serveReadHeaderTimeout,
		IdleTimeout:       serveIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	if token == "" && *tokensFile == "" {
		logger.Warn("flags serve: no SDK token (--token-file, $FLAGS_TOKEN, --token or --tokens): anyone who can connect can read the flags")
	}
	logger.Info("flags serve: listening", append([]any{"addr", ln.Addr().String(), "url", scheme + "://" + ln.Addr().String(),
		"version", srv.Version(), "epoch", srv.Epoch()}, where...)...)

	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
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
