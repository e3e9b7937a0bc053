package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
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

// runHistory implements `flags history` (SPEC §10): it pages through GET
// /v1/admin/audit and prints every change, oldest first: its version, time,
// actor, action and key, its comment, then a line diff of the object before
// and after, as indented JSON. Exit status: 0; 2 for bad arguments or a
// refusal; 1 when the server cannot be reached or fails.
func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flags history", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := addAdminOptions(fs, "an operator or admin token")
	since := fs.Int64("since", 0, "only changes published after this version")
	kind := fs.String("kind", "", "only flags (flag) or only segments (segment)")
	limit := fs.Int("limit", 0, "print at most this many changes (0: all)")
	page := fs.Int("page", server.MaxAuditLimit, "entries asked for per request")
	keys, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(keys) > 1 {
		fmt.Fprintln(stderr, "flags history: at most one KEY")
		return 2
	}
	if *kind != "" && *kind != "flag" && *kind != "segment" {
		fmt.Fprintf(stderr, "flags history: --kind %q: want flag or segment\n", *kind)
		return 2
	}
	if *since < 0 || *limit < 0 || *page < 1 {
		fmt.Fprintln(stderr, "flags history: --since and --limit must be >= 0, --page >= 1")
		return 2
	}
	c, err := opts.client(fs)
	if err != nil {
		fmt.Fprintf(stderr, "flags history: %v\n", err)
		return 2
	}
	q := url.Values{"since": {strconv.FormatInt(*since, 10)}, "limit": {strconv.Itoa(*page)}}
	if len(keys) == 1 {
		q.Set("key", keys[0])
	}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	printed := 0
	for {
		a, err := c.do(ctx, http.MethodGet, "/v1/admin/audit?"+q.Encode(), nil)
		if err != nil {
			fmt.Fprintf(stderr, "flags history: %v\n", err)
			return 1
		}
		if a.status != http.StatusOK {
			return refused(stderr, "flags history", a)
		}
		var p server.AuditPage
		if err := json.Unmarshal(a.body, &p); err != nil {
			fmt.Fprintf(stderr, "flags history: the server's answer does not decode: %v\n", err)
			return 1
		}
		for _, e := range p.Entries {
			if printed > 0 {
				out.WriteByte('\n')
			}
			printEntry(out, e)
			printed++
			if printed == *limit {
				return 0
			}
		}
		if p.Next == "" {
			break
		}
		q.Set("after", p.Next)
	}
	if printed == 0 {
		fmt.Fprintln(stderr, "flags history: no changes")
	}
	return 0
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
