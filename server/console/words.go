package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/flagstream/flags/bucketing"
	"github.com/flagstream/flags/experiment"
	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/internal/linediff"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// opWords says each operator in words.
var opWords = map[rules.Op][2]string{ // positive, negated
	rules.OpIn:                 {"is one of", "is none of"},
	rules.OpStartsWith:         {"starts with", "does not start with"},
	rules.OpEndsWith:           {"ends with", "does not end with"},
	rules.OpContains:           {"contains", "does not contain"},
	rules.OpMatches:            {"matches", "does not match"},
	rules.OpLessThan:           {"is less than", "is not less than"},
	rules.OpLessThanOrEqual:    {"is at most", "is more than"},
	rules.OpGreaterThan:        {"is greater than", "is not greater than"},
	rules.OpGreaterThanOrEqual: {"is at least", "is less than"},
	rules.OpBefore:             {"is before", "is not before"},
	rules.OpAfter:              {"is after", "is not after"},
	rules.OpSemVerEqual:        {"is version", "is not version"},
	rules.OpSemVerLessThan:     {"is a version below", "is not a version below"},
	rules.OpSemVerGreaterThan:  {"is a version above", "is not a version above"},
	rules.OpInSegment:          {"is in segment", "is in none of the segments"},
	rules.OpExists:             {"is set", "is not set"},
}

// rawClause is a clause as written, for segments (which keep no compiled
// form the console can read).
type rawClause struct {
	Attribute string   `json:"attribute"`
	Op        rules.Op `json:"op"`
	Values    []any    `json:"values"`
	Negate    bool     `json:"negate"`
}

func clauseInWords(attr string, op rules.Op, values []any, negate bool) string {
	w, ok := opWords[op]
	if !ok {
		w = [2]string{string(op), "not " + string(op)}
	}
	verb := w[0]
	if negate {
		verb = w[1]
	}
	var vs []string
	for _, v := range values {
		vs = append(vs, valueInWords(v))
	}
	switch op {
	case rules.OpInSegment:
		return "the user " + verb + " " + strings.Join(vs, ", ")
	case rules.OpExists:
		return attr + " " + verb
	}
	if attr == "" {
		attr = "now" // a clause on the clock
	}
	return attr + " " + verb + " " + strings.Join(vs, ", ")
}

// valueInWords is a clause value as the document holds it: a string as
// written (a pattern's backslashes are the pattern's), anything else in
// JSON. The page escapes it for HTML, not for JSON.
func valueInWords(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func clausesInWords(cs []rawClause) string {
	if len(cs) == 0 {
		return "everyone"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, clauseInWords(c.Attribute, c.Op, c.Values, c.Negate))
	}
	return strings.Join(parts, " and ")
}

// describeFlag says what a flag does, a line per step of SPEC §3.
func describeFlag(f *eval.Flag) []string {
	var out []string
	if f.Err != nil {
		return []string{"Malformed: " + f.Err.Error() + ". Evaluations serve the caller's default."}
	}
	if !f.On {
		out = append(out, "The flag is off: everyone gets "+variation(f, f.OffVariation)+".")
		return out
	}
	for _, p := range f.Prerequisites {
		out = append(out, fmt.Sprintf("Requires %s to serve variation %d, else %s.", p.Key, p.Variation, variation(f, f.OffVariation)))
	}
	for _, t := range f.Targets {
		out = append(out, fmt.Sprintf("%d listed %s values → %s.", t.Values.Len(), t.Attribute, variation(f, t.Variation)))
	}
	for i, r := range f.Rules {
		name := fmt.Sprintf("Rule %d", i+1)
		if r.ID != "" {
			name += " (" + r.ID + ")"
		}
		var parts []string
		for _, c := range r.Clauses {
			parts = append(parts, clauseInWords(c.Attribute.String(), c.Op, c.Values, c.Negate))
		}
		when := "everyone left"
		if len(parts) > 0 {
			when = "if " + strings.Join(parts, " and ")
		}
		out = append(out, fmt.Sprintf("%s: %s → %s.", name, when, serveInWords(f, r.Serve)))
	}
	out = append(out, "Everyone else → "+serveInWords(f, f.Fallthrough)+".")
	out = append(out, "Switched off, it serves everyone "+variation(f, f.OffVariation)+".")
	return out
}

func serveInWords(f *eval.Flag, s eval.Serve) string {
	if s.Rollout == nil {
		return variation(f, s.Variation)
	}
	var parts []string
	for i, v := range s.Rollout.Variations {
		w := int64(0)
		if i < len(s.Rollout.Weights) {
			w = s.Rollout.Weights[i]
		}
		parts = append(parts, percent(w)+" "+variation(f, v))
	}
	text := "a rollout: " + strings.Join(parts, ", ")
	if len(s.Rollout.Schedule) > 0 {
		text = "a scheduled rollout of " + fmt.Sprint(len(s.Rollout.Schedule)) + " steps"
	}
	if by := s.Rollout.BucketBy.String(); by != "" && by != "key" {
		text += ", by " + by
	}
	if s.Rollout.Experiment {
		text += " (an experiment)"
	}
	return text
}

func variation(f *eval.Flag, i int) string {
	if i < 0 || i >= len(f.Variations) {
		return "the caller's default"
	}
	return fmt.Sprintf("variation %d (%s)", i, f.Variations[i].JSON)
}

func percent(w int64) string {
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.3f", float64(w)/1000), "0"), ".00") + " %"
}

// scheduleProgress says where a flag's scheduled rollouts are now.
func scheduleProgress(f *eval.Flag, now int64) string {
	for _, r := range f.Rollouts() {
		if len(r.Schedule) == 0 {
			continue
		}
		first, last := r.Schedule[0].At, r.Schedule[len(r.Schedule)-1].At
		switch {
		case now < first:
			return "scheduled: starts " + time.UnixMilli(first).UTC().Format("2006-01-02 15:04")
		case now >= last:
			return "schedule done"
		}
		return fmt.Sprintf("schedule %d %% of the way from its first step to its last", int(100*(now-first)/(last-first)))
	}
	return ""
}

// guardState says whether a flag's guard is armed or tripped, when and why.
func guardState(f *eval.Flag) string {
	if f.Metadata == nil || f.Guard == nil {
		return ""
	}
	g := f.Guard
	if g.Tripped == nil {
		return fmt.Sprintf("guard armed: %s, %s is better, variation %d against control %d", g.Metric, g.Better, g.Treatment, g.Control)
	}
	t := g.Tripped
	return fmt.Sprintf("guard tripped %s: %s %.2f %% (treatment) against %.2f %% (control), sequential p %.2g, units %d/%d; rolled back to %d",
		t.At.UTC().Format("2006-01-02 15:04:05 UTC"), g.Metric, 100*t.Rates[1], 100*t.Rates[0], t.PValue, t.Units[1], t.Units[0], g.Control)
}

func segmentsUsed(f *eval.Flag) []string {
	seen := map[string]bool{}
	for _, r := range f.Rules {
		for _, c := range r.Clauses {
			if c.Op == rules.OpInSegment {
				for _, v := range c.Values {
					if s, ok := v.(string); ok {
						seen[s] = true
					}
				}
			}
		}
	}
	return sortedKeys(seen)
}

// bar is one bar of a chart.
type bar struct {
	Label string
	Share float64 // 0..1
}

// rolloutChart is a rollout's weights now and, for a schedule, its steps.
type rolloutChart struct {
	Where string
	Now   []bar
	Steps []stepView
}

type stepView struct {
	At   string
	Bars []bar
}

func rolloutCharts(f *eval.Flag, now int64) []rolloutChart {
	var out []rolloutChart
	add := func(where string, r *eval.Rollout) {
		ch := rolloutChart{Where: where}
		weights := r.Weights
		if len(r.Schedule) > 0 {
			at := make([]int64, len(r.Schedule))
			steps := make([][]int64, len(r.Schedule))
			for i, s := range r.Schedule {
				at[i], steps[i] = s.At, s.Weights
				sv := stepView{At: time.UnixMilli(s.At).UTC().Format("2006-01-02 15:04")}
				for j, v := range r.Variations {
					sv.Bars = append(sv.Bars, bar{variation(f, v), float64(s.Weights[j]) / 100000})
				}
				ch.Steps = append(ch.Steps, sv)
			}
			weights = make([]int64, len(r.Variations))
			bucketing.ScheduleWeights(weights, at, steps, now)
		}
		for i, v := range r.Variations {
			ch.Now = append(ch.Now, bar{variation(f, v), float64(weights[i]) / 100000})
		}
		out = append(out, ch)
	}
	for i := range f.Rules {
		if r := f.Rules[i].Serve.Rollout; r != nil {
			add(fmt.Sprintf("rule %d", i+1), r)
		}
	}
	if r := f.Fallthrough.Rollout; r != nil {
		add("everyone else", r)
	}
	return out
}

// metricView is one metric of an experiment, ready for the chart.
type metricView struct {
	Name    string
	Rows    []experiment.MetricRow
	Verdict string
	Chart   template.HTML
}

func experimentView(r *experiment.Report) map[string]any {
	if r == nil {
		return nil
	}
	var metrics []metricView
	for _, m := range r.MetricNames() {
		mv := metricView{Name: m, Rows: r.Metrics[m], Verdict: "no difference established yet (sequential p-values stay valid as data comes in)"}
		var found []string
		for _, row := range r.Metrics[m] {
			if c := row.VsControl; c != nil && c.SequentialP != nil && *c.SequentialP < 0.05 {
				dir := "higher"
				if c.Diff < 0 {
					dir = "lower"
				}
				found = append(found, fmt.Sprintf("variation %d's rate is %s than the control's (sequential p %.3g)", row.Variation, dir, *c.SequentialP))
			}
		}
		if found != nil {
			mv.Verdict = strings.Join(found, "; ")
		}
		mv.Chart = ciChart(r.Metrics[m])
		metrics = append(metrics, mv)
	}
	srm := ""
	if r.SRM != nil && r.SRM.PValue < experiment.SRMThreshold {
		srm = fmt.Sprintf("Sample-ratio mismatch (χ² %.2f, p %.2g): units did not split as the weights say; do not trust these results.", r.SRM.ChiSquare, r.SRM.PValue)
	}
	return map[string]any{"Report": r, "Metrics": metrics, "SRM": srm}
}

// ciChart draws each variation's difference from the control with its 95 %
// interval, on one axis through 0.
func ciChart(rows []experiment.MetricRow) template.HTML {
	lo, hi := -0.01, 0.01
	for _, r := range rows {
		if c := r.VsControl; c != nil && c.CI95 != nil {
			lo, hi = min(lo, c.CI95[0]), max(hi, c.CI95[1])
		}
	}
	span := hi - lo
	x := func(v float64) float64 { return 20 + 360*(v-lo)/span }
	var b strings.Builder
	h := 30 + 28*len(rows)
	fmt.Fprintf(&b, `<svg class="ci" role="img" aria-label="differences from the control with 95%% intervals" viewBox="0 0 400 %d" width="400" height="%d">`, h, h)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="5" x2="%.1f" y2="%d" class="zero"/>`, x(0), x(0), h-5)
	for i, r := range rows {
		y := 20 + 28*i
		c := r.VsControl
		if c == nil || c.CI95 == nil {
			fmt.Fprintf(&b, `<text x="22" y="%d">variation %d (control or no data)</text>`, y+4, r.Variation)
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="interval"/>`, x(c.CI95[0]), y, x(c.CI95[1]), y)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="4" class="point"/>`, x(c.Diff), y)
		fmt.Fprintf(&b, `<text x="22" y="%d">variation %d: %+.2f %% [%+.2f, %+.2f]</text>`, y+16, r.Variation, 100*c.Diff, 100*c.CI95[0], 100*c.CI95[1])
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// change is an audit entry ready to show, its diff as lines.
type change struct {
	server.AuditEntry
	Lines []diffLine
}

type diffLine struct {
	Op   string // "+", "-", " ", or "…" for unchanged lines left out
	Text string
}

// historyView diffs each entry's before and after with `flags history`'s
// line diff, 3 lines of context.
func historyView(entries []server.AuditEntry) []change {
	out := make([]change, 0, len(entries))
	for _, e := range entries {
		ch := change{AuditEntry: e}
		for _, l := range linediff.Diff(linediff.JSONLines(e.Before), linediff.JSONLines(e.After), 3) {
			if l.Op == '.' {
				ch.Lines = append(ch.Lines, diffLine{Op: " ", Text: "…"})
				continue
			}
			ch.Lines = append(ch.Lines, diffLine{Op: string(l.Op), Text: l.Text})
		}
		out = append(out, ch)
	}
	return out
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"spark": sparkline,
	"stack": stackedBar,
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) },
	"width": func(f float64) string { return fmt.Sprintf("%.1f", 300*f) },
	"ptr": func(p *float64) string {
		if p == nil {
			return "–"
		}
		return fmt.Sprintf("%.4g", *p)
	},
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"add":  func(a, b int) int { return a + b },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"row":        func(f *eval.Flag) flagRow { return flagRow{Key: f.Key, On: f.On, Version: f.Version} },
	"flagURL":    flagURL,
	"segmentURL": func(key string) string { return "/ui/segments?key=" + url.QueryEscape(key) },
}

// palette colors variations in charts; the last color is the caller's default.
var palette = []string{"#3b6fd8", "#e07b39", "#1f9d55", "#9b59b6", "#c0392b", "#16a085", "#7f8c8d"}

func color(v int) string {
	if v < 0 {
		return palette[len(palette)-1]
	}
	return palette[v%(len(palette)-1)]
}

// sparkline draws the last hour's evaluations per minute, stacked by
// variation (and the caller's default, in grey), from the SDKs' summaries.
func sparkline(minutes []server.SummaryMinute) template.HTML {
	if len(minutes) == 0 {
		return `<span class="muted">no evaluations reported</span>`
	}
	var peak int64 = 1
	for _, m := range minutes {
		n := m.Default
		for _, c := range m.Variations {
			n += c
		}
		peak = max(peak, n)
	}
	var b strings.Builder
	start := minutes[0].Start
	fmt.Fprintf(&b, `<svg class="spark" role="img" aria-label="evaluations per minute and variation, last hour" viewBox="0 0 180 20" width="180" height="20">`)
	for _, m := range minutes {
		x := 3 * int((m.Start-start)/60000)
		y := 20.0
		keys := make([]string, 0, len(m.Variations))
		for k := range m.Variations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			h := 18 * float64(m.Variations[k]) / float64(peak)
			y -= h
			var v int
			fmt.Sscan(k, &v)
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="2" height="%.1f" fill="%s"><title>variation %s: %d</title></rect>`, x, y, h, color(v), k, m.Variations[k])
		}
		if m.Default > 0 {
			h := 18 * float64(m.Default) / float64(peak)
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="2" height="%.1f" fill="%s"><title>default: %d</title></rect>`, x, y-h, h, color(-1), m.Default)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// stackedBar draws a rollout's weights as one bar of 300 px.
func stackedBar(bars []bar) template.HTML {
	var b strings.Builder
	b.WriteString(`<svg class="stack" width="300" height="14" role="img" aria-label="weights">`)
	x := 0.0
	for i, br := range bars {
		w := 300 * br.Share
		fmt.Fprintf(&b, `<rect x="%.1f" width="%.1f" height="14" fill="%s"><title>%s: %.1f %%</title></rect>`, x, w, color(i), template.HTMLEscapeString(br.Label), 100*br.Share)
		x += w
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
