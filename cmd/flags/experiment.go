package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/flagstream/flags/experiment"
)

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
		return 0
	}
	var r experiment.Report
	if err := json.Unmarshal(a.body, &r); err != nil {
		fmt.Fprintf(stderr, "flags experiment: the server's answer does not decode: %v\n", err)
		return 1
	}
	printReport(stdout, &r, *alpha)
	return 0
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
	if r.SRM != nil && r.SRM.PValue < experiment.SRMThreshold {
		fmt.Fprintf(w, "WARNING: sample-ratio mismatch (chi-square %.2f, p = %.2g < %g): units did not split as the rollout's weights say; the assignment is broken, do not trust these results\n",
			r.SRM.ChiSquare, r.SRM.PValue, experiment.SRMThreshold)
	}
	if len(r.Metrics) == 0 {
		fmt.Fprintln(w, "no metric events counted yet")
		return
	}
	for _, m := range r.MetricNames() {
		fmt.Fprintf(w, "\nmetric %s\n", m)
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
