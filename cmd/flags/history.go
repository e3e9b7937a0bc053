package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/flagstream/flags/internal/linediff"
	"github.com/flagstream/flags/server"
)

// historyContext is how many unchanged lines a diff shows around a change.
const historyContext = 3

// historyRequest is what `flags history` was asked for: the audit query
// and how many changes to print at most (0: all).
type historyRequest struct {
	client *adminClient
	query  url.Values
	limit  int
}

// runHistory implements `flags history` (SPEC §10): it pages through GET
// /v1/admin/audit and prints every change, oldest first: its version, time,
// actor, action and key, its comment, then a line diff of the object before
// and after, as indented JSON. Exit status: 0; 2 for bad arguments or a
// refusal; 1 when the server cannot be reached or fails.
func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	req, code := parseHistoryArgs(args, stderr)
	if req == nil {
		return code
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	return req.print(ctx, out, stderr)
}

// parseHistoryArgs parses the arguments of `flags history`. A nil request
// means stop with the returned exit status (0 for -help, 2 for bad
// arguments), the reason already written to stderr.
func parseHistoryArgs(args []string, stderr io.Writer) (*historyRequest, int) {
	fs, opts := newAdminFlags("flags history", "an operator or admin token", stderr)
	since := fs.Int64("since", 0, "only changes published after this version")
	kind := fs.String("kind", "", "only flags (flag) or only segments (segment)")
	limit := fs.Int("limit", 0, "print at most this many changes (0: all)")
	page := fs.Int("page", server.MaxAuditLimit, "entries asked for per request")
	c, keys, code := opts.parse(fs, args, func(keys []string) string {
		return historyArgsProblem(keys, *kind, *since, *limit, *page)
	})
	if c == nil {
		return nil, code
	}
	q := url.Values{"since": {strconv.FormatInt(*since, 10)}, "limit": {strconv.Itoa(*page)}}
	if len(keys) == 1 {
		q.Set("key", keys[0])
	}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	return &historyRequest{client: c, query: q, limit: *limit}, 0
}

// historyArgsProblem says what is wrong with the arguments of `flags
// history`, or "" when nothing is.
func historyArgsProblem(keys []string, kind string, since int64, limit, page int) string {
	switch {
	case len(keys) > 1:
		return "at most one KEY"
	case kind != "" && kind != "flag" && kind != "segment":
		return fmt.Sprintf("--kind %q: want flag or segment", kind)
	case since < 0 || limit < 0 || page < 1:
		return "--since and --limit must be >= 0, --page >= 1"
	}
	return ""
}

// print pages through the audit and prints its changes to out, up to
// r.limit. It returns the exit status of `flags history`.
func (r *historyRequest) print(ctx context.Context, out *bufio.Writer, stderr io.Writer) int {
	printed := 0
	for {
		p, code := r.fetchPage(ctx, stderr)
		if p == nil {
			return code
		}
		for _, e := range p.Entries {
			if printed > 0 {
				out.WriteByte('\n')
			}
			printEntry(out, e)
			printed++
			if printed == r.limit {
				return 0
			}
		}
		if p.Next == "" {
			break
		}
		r.query.Set("after", p.Next)
	}
	if printed == 0 {
		fmt.Fprintln(stderr, "flags history: no changes")
	}
	return 0
}

// fetchPage asks for the page of the audit r.query names. A nil page means
// stop with the returned exit status, the reason already written to stderr.
func (r *historyRequest) fetchPage(ctx context.Context, stderr io.Writer) (*server.AuditPage, int) {
	a, code := r.client.call(ctx, stderr, "flags history", http.MethodGet, "/v1/admin/audit?"+r.query.Encode(), nil)
	if a == nil {
		return nil, code
	}
	var p server.AuditPage
	if err := json.Unmarshal(a.body, &p); err != nil {
		fmt.Fprintf(stderr, "flags history: the server's answer does not decode: %v\n", err)
		return nil, 1
	}
	return &p, 0
}

// printEntry writes one change: a heading, its comment ("  # ..."), and the
// diff.
func printEntry(w *bufio.Writer, e server.AuditEntry) {
	fmt.Fprintf(w, "version %d  %s  %s  %s %s %s\n", e.Version, e.At.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Kind, e.Key)
	if e.Comment != "" {
		fmt.Fprintf(w, "  # %s\n", e.Comment)
	}
	for _, l := range linediff.Diff(linediff.JSONLines(e.Before), linediff.JSONLines(e.After), historyContext) {
		if l.Op == '.' {
			w.WriteString("  ...\n")
			continue
		}
		w.WriteByte(l.Op)
		w.WriteByte(' ')
		w.WriteString(l.Text)
		w.WriteByte('\n')
	}
}
