package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/flagstream/flags"
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
	printed    bool // a status line has been printed
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

// printStatusLocked prints a status line when the state or source changed.
func (w *watcher) printStatusLocked(s flags.Status) {
	if w.printed && s.State == w.lastState && s.Source == w.lastSource {
		return
	}
	w.printed, w.lastState, w.lastSource = true, s.State, s.Source
	var line statusLine
	line.Status.State, line.Status.Source, line.Status.Version = s.State, s.Source, s.Version
	if s.Err != nil {
		line.Status.Error = s.Err.Error()
	}
	b, _ := json.Marshal(line)
	w.out.Write(b)
	w.out.WriteByte('\n')
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
