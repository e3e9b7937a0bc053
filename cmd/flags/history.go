package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flagstream/flags/server"
)

// historyContext is how many unchanged lines a diff shows around a change.
const historyContext = 3

// maxDiffCells bounds the line diff's table (lines before × lines after);
// objects larger than that are shown whole, before then after.
const maxDiffCells = 4 << 20

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
	before, after := jsonLines(e.Before), jsonLines(e.After)
	for _, l := range lineDiff(before, after, historyContext) {
		w.WriteString(l)
		w.WriteByte('\n')
	}
}

// jsonLines is v indented, one line a slice element; none for null.
func jsonLines(v json.RawMessage) []string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	var b bytes.Buffer
	if err := json.Indent(&b, v, "", "  "); err != nil {
		return []string{string(v)}
	}
	return strings.Split(b.String(), "\n")
}

// lineDiff lists the lines of a and b as a diff: "  " for a line both have,
// "- " for one only a has, "+ " for one only b has, with context unchanged
// lines around each change and "  ..." where unchanged lines are left out.
// Objects too large for the table are shown whole, a then b.
func lineDiff(a, b []string, context int) []string {
	if len(a)*len(b) > maxDiffCells {
		var out []string
		for _, l := range a {
			out = append(out, "- "+l)
		}
		for _, l := range b {
			out = append(out, "+ "+l)
		}
		return out
	}
	// lcs[i][j] is the length of the longest common subsequence of a[i:]
	// and b[j:].
	w := len(b) + 1
	lcs := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	type line struct {
		op   byte // ' ', '-', '+'
		text string
	}
	var all []line
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			all = append(all, line{' ', a[i]})
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			all = append(all, line{'-', a[i]})
			i++
		default:
			all = append(all, line{'+', b[j]})
			j++
		}
	}
	// Keep the unchanged lines within context of a change.
	keep := make([]bool, len(all))
	for k, l := range all {
		if l.op == ' ' {
			continue
		}
		for d := max(0, k-context); d <= min(len(all)-1, k+context); d++ {
			keep[d] = true
		}
	}
	var out []string
	skipped := false
	for k, l := range all {
		if !keep[k] {
			skipped = true
			continue
		}
		if skipped {
			out = append(out, "  ...")
		}
		skipped = false
		out = append(out, string(l.op)+" "+l.text)
	}
	if skipped && len(out) > 0 {
		out = append(out, "  ...")
	}
	return out
}
