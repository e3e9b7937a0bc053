// Streaming: a client that follows a flag server you start yourself, and
// prints every evaluation that changes until you interrupt it.
//
// In one terminal, from the repository root, start the reference server over
// the quickstart flags:
//
//	go run ./cmd/flags serve --flags testdata/quickstart.json
//
// In another, follow it:
//
//	go run ./examples/streaming
//
// Then edit testdata/quickstart.json (turn "kill-switch-payments" on, say):
// the server publishes the edit as a patch and this program prints the new
// evaluation within milliseconds. Stop the server and the client goes STALE,
// still serving the last flags it had; start it again and it is READY.
//
// Flags (all optional):
//
//	-url URL       the server's base URL (default http://127.0.0.1:8080)
//	-token T       the SDK token, when the server has one (default $FLAGS_TOKEN)
//	-context JSON  the evaluation context (default {"key":"user-123"})
//	FLAG ...       the flags to follow (default: all of them)
//
// For example:
//
//	go run ./examples/streaming -context '{"key":"ann","email":"ann@corp.com"}' new-checkout kill-switch-payments
//
// The client's callbacks (OnChange, OnStatus) run while the client applies
// an update, so they only signal; the printing is done by this program's own
// loop, which evaluates the flags again and prints those whose value or
// reason changed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/stream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run follows the server until ctx is done (it then returns nil) or the
// server refuses the token.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("streaming", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the flag server's base URL")
	token := fs.String("token", os.Getenv("FLAGS_TOKEN"), "the SDK token, when the server requires one")
	ctxJSON := fs.String("context", `{"key":"user-123"}`, "the evaluation context, a JSON object with a string key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys := fs.Args()
	user, err := flags.ContextFromJSON([]byte(*ctxJSON))
	if err != nil {
		return fmt.Errorf("-context: %w", err)
	}
	if err := user.Err(); err != nil {
		return fmt.Errorf("-context: %w", err)
	}

	client, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: *url, Token: *token})))
	if err != nil {
		return err
	}
	defer client.Close()

	// The listeners only signal (a buffered channel of one coalesces a
	// burst of updates); the loop below does the work.
	changed := make(chan struct{}, 1)
	wake := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	client.OnChange(func(flags.Change) { wake() })
	client.OnStatus(func(flags.Status) { wake() })

	fmt.Fprintf(stdout, "following %s as %s (Ctrl-C to stop)\n", *url, *ctxJSON)
	p := printer{out: stdout, last: map[string]string{}}
	for {
		st := client.Status()
		p.status(st)
		if st.State != flags.StateInitializing {
			// A snapshot is in force and its status is out. (A snapshot can
			// be stored a moment before its status: a wake-up follows.)
			p.evaluations(ctx, client, user, keys)
		}
		if st.State == flags.StateFatal {
			return fmt.Errorf("streaming: the server refused us: %w", st.Err)
		}
		select {
		case <-ctx.Done():
			client.Close()
			p.status(client.Status())
			return nil
		case <-changed:
		}
	}
}

// printer prints what changed since it last printed.
type printer struct {
	out       io.Writer
	lastState string
	last      map[string]string // flag key -> last line printed
}

// status prints a line when the state or the source changed.
func (p *printer) status(st flags.Status) {
	line := fmt.Sprintf("%s (%s)", st.State, st.Source)
	if line == p.lastState {
		return
	}
	p.lastState = line
	switch {
	case st.State == flags.StateInitializing && st.Err != nil:
		line += fmt.Sprintf(": %v; is `flags serve` running?", st.Err)
	case st.Err != nil && st.State != flags.StateClosed:
		line += fmt.Sprintf(", flags version %d: %v", st.Version, st.Err)
	case st.Version > 0:
		line += fmt.Sprintf(", flags version %d", st.Version)
	}
	fmt.Fprintf(p.out, "status: %s\n", line)
}

// evaluations prints every followed flag whose value or reason changed.
func (p *printer) evaluations(ctx context.Context, client *flags.Client, user flags.Context, keys []string) {
	if client.Snapshot() == nil {
		return // nothing but defaults yet
	}
	var results []flags.Result[any]
	if len(keys) == 0 {
		results = client.AllFlags(ctx, user).AppendTo(nil)
		for key := range p.last { // deleted since
			if !client.Snapshot().Has(key) {
				results = append(results, client.Value(ctx, key, user, nil))
			}
		}
	} else {
		for _, key := range keys {
			results = append(results, client.Value(ctx, key, user, nil))
		}
	}
	for _, r := range results {
		line := fmt.Sprintf("%s = %s (%s)", r.Flag, value(r.Value), why(r.Reason))
		if p.last[r.Flag] == line {
			continue
		}
		p.last[r.Flag] = line
		fmt.Fprintln(p.out, line)
	}
}

// value formats a flag value: strings quoted, JSON values as JSON.
func value(v any) string {
	switch v := v.(type) {
	case nil:
		return "(default)"
	case string:
		return fmt.Sprintf("%q", v)
	case bool, float64:
		return fmt.Sprint(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// why formats a reason briefly: "RULE_MATCH staff", "FALLTHROUGH, rollout".
func why(r flags.Reason) string {
	s := string(r.Kind)
	switch {
	case r.Kind == flags.ReasonRuleMatch && r.RuleID != "":
		s += " " + r.RuleID
	case r.Kind == flags.ReasonPrerequisiteFailed:
		s += " " + r.PrerequisiteKey
	case r.Kind == flags.ReasonError:
		s += " " + string(r.ErrorKind)
	}
	if r.InRollout {
		s += ", rollout"
	}
	return s
}
