package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/stream"
)

// statusLine is the JSON shape of a `flags watch` status line.
type statusLine struct {
	Status struct {
		State   flags.State `json:"state"`
		Source  string      `json:"source,omitempty"`
		Version int64       `json:"version"`
		Error   string      `json:"error,omitempty"`
	} `json:"status"`
}

// watcher prints what a client sees, one JSON line at a time.
type watcher struct {
	mu         sync.Mutex
	out        *bufio.Writer
	client     *flags.Client
	ec         flags.Context
	names      []string          // asked for; empty: all flags
	last       map[string]string // flag -> last printed value+variation+reason
	lastState  flags.State
	lastSource string
	lastErr    string // errorKind of the error last printed; "" for none
	printed    bool   // a status line has been printed
	fatal      chan struct{}
	fatalOnce  sync.Once
}

// runWatch implements `flags watch` (SPEC §6): the SDK's own client as a
// command, printing evaluation changes and status changes as JSON lines.
func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flags watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "the server's base URL")
	tokenOpt := addTokenOption(fs, "token", "FLAGS_TOKEN", "the SDK token")
	poll := fs.Bool("poll", false, "poll GET /v1/flags instead of streaming")
	pollInterval := fs.Duration("poll-interval", stream.DefaultPollInterval, "time between polls")
	idle := fs.Duration("idle-timeout", stream.DefaultIdleTimeout, "reconnect after this long without hearing from the server")
	cache := fs.String("cache", "", "last-known-good file: written after each update, served at start when the server is out of reach")
	ctxArg := fs.String("context", "", "the evaluation context: a JSON object, or @FILE")
	caCert := fs.String("ca-cert", "", "trust the certificate authorities in this PEM `FILE` (a private CA) instead of the system's")
	names, code, ok := parseCommand(fs, args)
	if !ok {
		return code
	}
	if *url == "" || *ctxArg == "" {
		fmt.Fprintln(stderr, "flags watch: --url and --context are required")
		return 2
	}
	token, err := tokenOpt.resolve(fs)
	if err != nil {
		fmt.Fprintf(stderr, "flags watch: %v\n", err)
		return 2
	}
	ec, err := parseContextArg(*ctxArg)
	if err != nil {
		fmt.Fprintf(stderr, "flags watch: %v\n", err)
		return 2
	}
	roots, err := readCACert(*caCert)
	if err != nil {
		fmt.Fprintf(stderr, "flags watch: %v\n", err)
		return 2
	}
	src := stream.New(stream.Config{BaseURL: *url, Token: token, IdleTimeout: *idle,
		Poll: *poll, PollInterval: *pollInterval, Cache: *cache, RootCAs: roots})
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	w := &watcher{out: bufio.NewWriter(stdout), ec: ec, names: names, last: map[string]string{}, fatal: make(chan struct{})}
	// Listeners are attached right after New; whatever happened in between
	// is printed by the first pass below, and the listeners (which wait for
	// w.mu) print only what differs from it.
	w.mu.Lock()
	client, err := flags.New(flags.WithSource(src), flags.WithLogger(logger))
	if err != nil {
		w.mu.Unlock()
		fmt.Fprintf(stderr, "flags watch: %v\n", err)
		return 2
	}
	w.client = client
	stopStatus := client.OnStatus(w.onStatus)
	client.OnChange(func(flags.Change) { w.onChange() })
	// An INITIALIZING status with a snapshot already stored means an install
	// is under way: the listeners registered above will print it, in order
	// (status first, then evaluations).
	st := client.Status()
	w.printStatusLocked(st)
	if st.State == flags.StateFatal {
		w.fatalOnce.Do(func() { close(w.fatal) })
	}
	if st.State != flags.StateInitializing {
		w.printEvaluationsLocked()
	}
	w.out.Flush()
	w.mu.Unlock()

	code = 0
	select {
	case <-ctx.Done():
	case <-w.fatal:
		code = 1
	}
	if code != 0 {
		stopStatus() // after FATAL, that line is the last word
	}
	client.Close()
	if code == 0 {
		w.mu.Lock()
		w.printStatusLocked(client.Status())
		w.out.Flush()
		w.mu.Unlock()
	}
	return code
}

func (w *watcher) onStatus(s flags.Status) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.client == nil {
		return
	}
	w.printStatusLocked(s)
	w.out.Flush()
	if s.State == flags.StateFatal {
		w.fatalOnce.Do(func() { close(w.fatal) })
	}
}

func (w *watcher) onChange() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.client == nil {
		return
	}
	w.printEvaluationsLocked()
	w.out.Flush()
}

// printStatusLocked prints a status line when the state or source changed,
// or when an error of another kind than the one last printed appeared: a
// client failing from the start stays INITIALIZING, one failing later stays
// STALE, and SPEC §10 wants a certificate error seen in the status as such.
// A retry that fails the same way prints nothing, nor does an error that
// only clears (a connection accepted): the READY that follows prints, and a
// server that keeps accepting then failing would otherwise print two lines
// a retry.
func (w *watcher) printStatusLocked(s flags.Status) {
	kind := errorKind(s.Err)
	if w.printed && s.State == w.lastState && s.Source == w.lastSource && (kind == "" || kind == w.lastErr) {
		return
	}
	w.printed, w.lastState, w.lastSource, w.lastErr = true, s.State, s.Source, kind
	var line statusLine
	line.Status.State, line.Status.Source, line.Status.Version = s.State, s.Source, s.Version
	if s.Err != nil {
		line.Status.Error = s.Err.Error()
	}
	b, _ := json.Marshal(line)
	w.out.Write(b)
	w.out.WriteByte('\n')
}

// errorKind names what went wrong in a status error ("" for none), the same
// for every retry of one failure, whose messages differ: the stream and its
// fallback poll name different URLs, an expired certificate's error the
// current time, a reset connection its local port. It is the HTTP status
// of a *stream.StatusError, the certificate problem behind
// stream.ErrCertificate, a sentinel of package stream or rules, or else the
// message of the innermost error (a network error's "connection refused").
func errorKind(err error) string {
	if err == nil {
		return ""
	}
	var (
		se       *stream.StatusError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	if errors.As(err, &se) {
		return "HTTP " + strconv.Itoa(se.Code)
	}
	if errors.Is(err, stream.ErrCertificate) {
		switch {
		case errors.As(err, &unknown):
			return "certificate: unknown authority"
		case errors.As(err, &hostname):
			return "certificate: wrong host name"
		case errors.As(err, &invalid): // expired, not a CA...: Reason says which
			return "certificate: invalid, reason " + strconv.Itoa(int(invalid.Reason))
		}
		return "certificate"
	}
	for _, known := range []error{stream.ErrStreamEnded, stream.ErrIdleTimeout, stream.ErrRequestTimeout,
		stream.ErrResync, stream.ErrRedirectRefused, stream.ErrEventTooLarge, stream.ErrSnapshotTooLarge,
		rules.ErrInvalidDocument} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err.Error()
		}
		err = inner
	}
}

// printEvaluationsLocked prints every asked-for flag whose value, variation
// or reason differs from what was last printed for it.
func (w *watcher) printEvaluationsLocked() {
	snap := w.client.Snapshot()
	if snap == nil {
		return
	}
	names := w.names
	if len(names) == 0 {
		names = snap.FlagKeys()
		for key := range w.last { // flags deleted since: print their new state once
			if !snap.Has(key) {
				names = append(names, key)
			}
		}
	}
	now := time.Now
	for _, name := range names {
		r := evalLine(snap, name, w.ec, now)
		sig, _ := json.Marshal(struct {
			V any
			N int
			R flags.Reason
		}{r.Value, r.Variation, r.Reason})
		if prev, ok := w.last[name]; ok && prev == string(sig) {
			continue
		}
		w.last[name] = string(sig)
		b, err := json.Marshal(r)
		if err != nil {
			continue
		}
		w.out.Write(b)
		w.out.WriteByte('\n')
	}
}
