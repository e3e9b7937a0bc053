// The commands an operator runs against a running server's admin API:
// switch (a kill switch in one command), history (the audit log) and
// experiment (SPEC §8's analysis of a flag). They share adminclient.go.

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/flagstream/flags/experiment"
	"github.com/flagstream/flags/internal/linediff"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// runSwitch implements `flags switch FLAG on|off`: the kill switch as one
// command. It sends PATCH /v1/admin/flags/FLAG with the merge patch
// {"on": false} (or true), which changes nothing else of the flag, so an
// operator token is enough (SPEC §10), and prints the flag's new version and
// the snapshot version that published it. With --if-match it changes the
// flag only if it is still at that version. Exit status: 0 once published;
// 2 for bad arguments or a refusal; 1 when the server cannot be reached or
// fails.
func runSwitch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, opts := newAdminFlags("flags switch", "an operator or admin token", stderr)
	ifMatch := fs.String("if-match", "", `switch only if the flag is still at this version (its ETag, "3" or 3)`)
	comment := fs.String("comment", "", "why: recorded in the audit log (X-Flags-Comment)")
	c, pos, code := opts.parse(fs, args, func(pos []string) string {
		switch {
		case len(pos) != 2 || (pos[1] != "on" && pos[1] != "off"):
			return "want FLAG on|off (usage: flags switch --url BASE [--token-file F] FLAG off)"
		case !rules.ValidKey(pos[0]):
			return fmt.Sprintf("%q is not a flag key", pos[0])
		}
		return ""
	})
	if c == nil {
		return code
	}
	key, state := pos[0], pos[1]
	tag := *ifMatch
	if tag != "" && !strings.HasPrefix(tag, `"`) {
		tag = `"` + tag + `"`
	}
	body := fmt.Sprintf(`{"on": %t}`, state == "on")
	a, code := c.call(ctx, stderr, "flags switch", http.MethodPatch, "/v1/admin/flags/"+url.PathEscape(key), []byte(body),
		"Content-Type", "application/merge-patch+json", "If-Match", tag, "X-Flags-Comment", *comment)
	if a == nil {
		return code
	}
	var patch struct {
		Version int64                      `json:"version"`
		Flags   map[string]json.RawMessage `json:"flags"`
	}
	var flagVersion struct {
		Version int64 `json:"version"`
	}
	if json.Unmarshal(a.body, &patch) != nil || json.Unmarshal(patch.Flags[key], &flagVersion) != nil {
		fmt.Fprintf(stderr, "flags switch: the server's answer does not decode: %s\n", a.body)
		return 1
	}
	fmt.Fprintf(stdout, "flags.%s %s: flag version %d, published as version %d\n", key, state, flagVersion.Version, patch.Version)
	return 0
}

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

// runExperiment implements `flags experiment` (SPEC §12): SPEC §8's
// analysis of a flag as a table, or the server's JSON with --json. Exit
// status: 0; 2 for bad arguments or a refusal (unknown flag, a reader
// token); 1 when the server cannot be reached or fails.
func runExperiment(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, opts := newAdminFlags("flags experiment", "an operator or admin token", stderr)
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	alpha := fs.Float64("alpha", 0.05, "the significance level the verdict uses")
	c, keys, code := opts.parse(fs, args, func(keys []string) string {
		switch {
		case len(keys) != 1:
			return "want exactly one FLAG"
		case !(*alpha > 0 && *alpha < 1):
			return "--alpha must be between 0 and 1"
		}
		return ""
	})
	if c == nil {
		return code
	}
	a, code := c.call(ctx, stderr, "flags experiment", http.MethodGet, "/v1/admin/experiments/"+url.PathEscape(keys[0]), nil)
	if a == nil {
		return code
	}
	if *asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, a.body, "", "  "); err != nil {
			fmt.Fprintf(stderr, "flags experiment: the server's answer is not JSON: %v\n", err)
			return 1
		}
		out.WriteByte('\n')
		_, _ = stdout.Write(out.Bytes())
	}
	var r experiment.Report
	if err := json.Unmarshal(a.body, &r); err != nil {
		fmt.Fprintf(stderr, "flags experiment: the server's answer does not decode: %v\n", err)
		return 1
	}
	if *asJSON {
		// stdout stays the server's JSON; the warning SPEC §12 asks for
		// goes beside it.
		if w := srmWarning(&r); w != "" {
			fmt.Fprintln(stderr, "flags experiment: "+w)
		}
		return 0
	}
	printReport(stdout, &r, *alpha)
	return 0
}

// srmWarning is the warning for a report whose sample-ratio check failed,
// or "".
func srmWarning(r *experiment.Report) string {
	if r.SRM == nil || r.SRM.PValue >= experiment.SRMThreshold {
		return ""
	}
	return fmt.Sprintf("WARNING: sample-ratio mismatch (chi-square %.2f, p = %.2g < %g): units did not split as the rollout's weights say; the assignment is broken, do not trust these results",
		r.SRM.ChiSquare, r.SRM.PValue, experiment.SRMThreshold)
}

// printReport writes the report as people read it: units per variation,
// then per metric a row per variation with its rate, interval, lift and
// sequential p-value, and a verdict line; an SRM warning first.
func printReport(w io.Writer, r *experiment.Report, alpha float64) {
	fmt.Fprintf(w, "experiment %s (control: variation %d)\n", r.Flag, r.Control)
	var total int64
	for _, v := range r.Variations {
		total += v.Units
	}
	fmt.Fprintf(w, "units: %d", total)
	for _, v := range r.Variations {
		fmt.Fprintf(w, "  [%d] %d", v.Variation, v.Units)
	}
	fmt.Fprintf(w, "  (switched: %d)\n", r.Switched)
	if warning := srmWarning(r); warning != "" {
		fmt.Fprintln(w, warning)
	}
	if len(r.Metrics) == 0 {
		fmt.Fprintln(w, "no metric events counted yet")
		return
	}
	for _, m := range r.MetricNames() {
		fmt.Fprintf(w, "\nmetric %s\n", printable(m))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "variation\tunits\tconversions\trate\tci95 of diff\trelative\tsequential p\t")
		for _, row := range r.Metrics[m] {
			units := r.Units(row.Variation)
			ci, rel, seq := "", "", ""
			if row.Variation == r.Control {
				ci, rel, seq = "(control)", "", ""
			} else if c := row.VsControl; c != nil {
				ci = "-"
				if c.CI95 != nil {
					ci = fmt.Sprintf("[%+.2f%%, %+.2f%%]", 100*c.CI95[0], 100*c.CI95[1])
				}
				rel = "-"
				if c.Relative != nil {
					rel = fmt.Sprintf("%+.1f%%", 100**c.Relative)
				}
				seq = "-"
				if c.SequentialP != nil {
					seq = fmt.Sprintf("%.4f", *c.SequentialP)
				}
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f%%\t%s\t%s\t%s\t\n", row.Variation, units, row.Conversions, 100*row.Rate, ci, rel, seq)
		}
		tw.Flush()
		fmt.Fprintln(w, verdict(r, m, alpha))
	}
}

// printable is s, quoted when it holds a character a terminal would not
// print: metric names come from any SDK's track events, and escape
// sequences in them could retitle the window or rewrite lines of the
// report.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// verdict says, for metric m, which variations differ from the control with
// a sequential p-value below alpha.
func verdict(r *experiment.Report, m string, alpha float64) string {
	var found []string
	for _, row := range r.Metrics[m] {
		c := row.VsControl
		if c == nil || c.SequentialP == nil || *c.SequentialP >= alpha {
			continue
		}
		dir := "higher"
		if c.Diff < 0 {
			dir = "lower"
		}
		found = append(found, fmt.Sprintf("variation %d's rate is %s than control's (sequential p %.4f < %g)", row.Variation, dir, *c.SequentialP, alpha))
	}
	if len(found) == 0 {
		return fmt.Sprintf("verdict: no difference established yet at alpha %g (sequential p-values stay valid as data comes in: keep watching)", alpha)
	}
	return "verdict: " + strings.Join(found, "; ")
}
