// Command benchtable reads `go test -bench` output of this module (one or
// more rounds, from files or standard input) and prints the markdown tables
// of docs/PERFORMANCE.md: for every scenario and library the median ns/op
// and allocs/op over the rounds, then the load time of 10,000 flags and the
// heap held per 1,000 loaded flags.
//
// Usage:
//
//	go run ./cmd/benchtable [FILE ...]
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/flagstream/flags/benchmarks"
)

// samples holds every value of every metric of one benchmark, by unit.
type samples map[string][]float64

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func parse(r io.Reader, into map[string]samples) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fields := strings.Fields(m[2])
		s := into[m[1]]
		if s == nil {
			s = samples{}
			into[m[1]] = s
		}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return fmt.Errorf("benchtable: %q: %w", sc.Text(), err)
			}
			s[fields[i+1]] = append(s[fields[i+1]], v)
		}
	}
	return sc.Err()
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread is (max - min) / median.
func spread(vs []float64) float64 {
	m := median(vs)
	if m == 0 {
		return 0
	}
	return (slices.Max(vs) - slices.Min(vs)) / m
}

// group formats n with thousands separators.
func group(n float64) string {
	s := strconv.FormatFloat(n, 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func duration(ns float64) string {
	switch {
	case ns >= 10e6:
		return group(ns/1e6) + " ms"
	case ns >= 1e6:
		return strconv.FormatFloat(ns/1e6, 'f', 2, 64) + " ms"
	case ns >= 10e3:
		return group(ns/1e3) + " µs"
	case ns >= 100:
		return group(ns) + " ns"
	}
	return strconv.FormatFloat(ns, 'f', 1, 64) + " ns"
}

func main() {
	results, err := readResults(os.Args[1:])
	if err != nil {
		fail(err)
	}
	t := newTable(benchmarks.Libraries())
	t.printScenarios(results)
	t.printLoad(results)
	t.printFooter()
}

// readResults parses the files named, or standard input when there are
// none.
func readResults(names []string) (map[string]samples, error) {
	results := map[string]samples{}
	if len(names) == 0 {
		if err := parse(os.Stdin, results); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if err := parseFile(name, results); err != nil {
			return nil, err
		}
	}
	if len(results) == 0 {
		return nil, errors.New("benchtable: no benchmark lines in the input")
	}
	return results, nil
}

func parseFile(name string, into map[string]samples) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return parse(f, into)
}

// table prints the tables, one column a library, and keeps what the
// footer says: the footnotes, the number of rounds seen and the largest
// spread of a scenario cell.
type table struct {
	libs         []benchmarks.Library
	header, rule string
	notes        []string
	worst        float64
	worstCell    string
	rounds       map[int]bool
}

func newTable(libs []benchmarks.Library) *table {
	t := &table{libs: libs, header: "| scenario |", rule: "|---|", rounds: map[int]bool{}}
	for _, l := range libs {
		t.header += " " + l.Name + " |"
		t.rule += "---:|"
	}
	return t
}

// note returns the mark of the footnote text, adding it the first time.
func (t *table) note(text string) string {
	for i, n := range t.notes {
		if n == text {
			return fmt.Sprintf("[%d]", i+1)
		}
	}
	t.notes = append(t.notes, text)
	return fmt.Sprintf("[%d]", len(t.notes))
}

// printScenarios prints the table of scenarios: median ns/op and
// allocs/op.
func (t *table) printScenarios(results map[string]samples) {
	fmt.Println("Median ns/op · allocs/op per evaluation (S8: per evaluation of all 1,000 flags; R1: per evaluation, over the mix's 300,000 (flag, user) pairs in turn).")
	fmt.Println()
	fmt.Println(t.header)
	fmt.Println(t.rule)
	for _, s := range benchmarks.Scenarios() {
		fmt.Println(t.scenarioRow(s, results))
	}
	if r := results["FlagstreamAllFlags"]; len(r["ns/op"]) > 0 {
		fmt.Printf("\nflagstream S8 with AllFlags (a fresh result slice per call) instead of AppendAllFlags into a reused buffer: %s · %s allocs.\n",
			duration(median(r["ns/op"])), group(median(r["allocs/op"])))
	}
	fmt.Println()
}

func (t *table) scenarioRow(s benchmarks.Scenario, results map[string]samples) string {
	row := "| " + strings.ReplaceAll(string(s), "_", " ") + " |"
	for _, l := range t.libs {
		r := results["Scenarios/"+string(s)+"/"+l.Slug()]
		ns := r["ns/op"]
		if len(ns) == 0 {
			row += " " + missing(l, s, t.note) + " |"
			continue
		}
		t.rounds[len(ns)] = true
		if sp := spread(ns); sp > t.worst {
			t.worst, t.worstCell = sp, string(s)+" / "+l.Name
		}
		row += fmt.Sprintf(" %s · %s |", duration(median(ns)), group(median(r["allocs/op"])))
	}
	return row
}

// loadRows are the rows of the load table.
var loadRows = []struct {
	label string
	cell  func(samples) string
}{
	{"time to load 10,000 flags", func(r samples) string { return duration(median(r["ns/op"])) }},
	{"allocations to load", func(r samples) string { return group(median(r["allocs/op"])) }},
	{"heap held per 1,000 flags", func(r samples) string { return group(median(r["heapB/1000flags"])/1024) + " KiB" }},
}

// printLoad prints the table of loading 10,000 flags.
func (t *table) printLoad(results map[string]samples) {
	fmt.Println("Loading a 10,000-flag document (bytes in, client ready out): median time and allocations; heap the loaded client holds per 1,000 flags.")
	fmt.Println()
	fmt.Println(strings.Replace(t.header, "scenario", "load", 1))
	fmt.Println(t.rule)
	for _, row := range loadRows {
		line := "| " + row.label + " |"
		for _, l := range t.libs {
			r := results["Load10000/"+l.Slug()]
			if len(r["ns/op"]) == 0 {
				line += " — |"
				continue
			}
			t.rounds[len(r["ns/op"])] = true
			line += " " + row.cell(r) + " |"
		}
		fmt.Println(line)
	}
	if r := results["Load10000Distinct"]; len(r["ns/op"]) > 0 {
		fmt.Printf("\nflagstream with every flag distinct (a version of its own in each, a value of its own in each rule: the 5,000 flags with a rule are each compiled, the simple ones share one definition): %s · %s allocs · %s KiB per 1,000 flags.\n",
			duration(median(r["ns/op"])), group(median(r["allocs/op"])), group(median(r["heapB/1000flags"])/1024))
	}
	fmt.Println()
}

// printFooter prints the rounds seen, the largest spread and the
// footnotes.
func (t *table) printFooter() {
	var rs []string
	for n := range t.rounds {
		rs = append(rs, strconv.Itoa(n))
	}
	slices.Sort(rs)
	fmt.Printf("Rounds per cell: %s. Largest spread of a scenario cell, (max − min) / median: %.0f%% (%s).\n",
		strings.Join(rs, ", "), t.worst*100, t.worstCell)
	if len(t.notes) > 0 {
		fmt.Println()
		for i, n := range t.notes {
			fmt.Printf("[%d] %s\n", i+1, n)
		}
	}
}

// missing explains an empty cell: n/a with the library's reason, or not run.
func missing(l benchmarks.Library, s benchmarks.Scenario, note func(string) string) string {
	c, err := l.Setup(s)
	if err == nil {
		c.Close()
		return "not run"
	}
	if errors.Is(err, benchmarks.ErrNotApplicable) {
		return "n/a " + note(l.Name+": "+strings.TrimPrefix(err.Error(), "n/a: "))
	}
	return "failed " + note(l.Name+": "+err.Error())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
