package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

const lintUsage = `usage: flags lint [--strict] PATH...

Checks flag documents. PATH is a document file, or a folder checked as
"flags serve --flags FOLDER" merges it: every *.json file in it (not those
whose name starts with a dot), each line prefixed with the file it is about,
a key that two files define reported as a problem, references resolved
across the files. Several PATHs are checked one by one.

Problems (a flag or segment that cannot be evaluated) print first, then
warnings: a field the format does not define (ignored, often a typo), and a
prerequisite flag or an inSegment segment the document does not hold (the
prerequisite always fails, the segment holds no context: often a misspelt
key).
Exit status: 0 clean or only warnings, 1 problems (an invalid document
among them, or warnings with --strict), 2 a file unreadable or not JSON.

`

// lintReport is what linting one PATH found.
type lintReport struct {
	problems []string // lines for stdout
	warnings []string // lines for stdout, after every problem
	failed   bool     // a file unreadable or invalid (said on stderr)
}

// runLint implements `flags lint [--strict] PATH...` (SPEC §6).
func runLint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flags lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	strict := fs.Bool("strict", false, "exit 1 when there are warnings, as for problems")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), lintUsage)
		fs.PrintDefaults()
	}
	paths, code, ok := parseCommand(fs, args)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		fmt.Fprint(stderr, lintUsage)
		return 2
	}
	reports := make([]lintReport, len(paths))
	for i, path := range paths {
		reports[i] = lintPath(path, len(paths) > 1, stderr)
	}
	writeLintLines(stdout, reports)
	return lintSummary(paths, reports, *strict, stderr)
}

// writeLintLines writes the problems of every report, then their warnings.
func writeLintLines(stdout io.Writer, reports []lintReport) {
	w := bufio.NewWriter(stdout)
	for _, r := range reports {
		for _, line := range r.problems {
			fmt.Fprintln(w, line)
		}
	}
	for _, r := range reports {
		for _, line := range r.warnings {
			fmt.Fprintln(w, line)
		}
	}
	w.Flush()
}

// lintSummary counts each path's problems and warnings on stderr and
// returns the exit status: the worst of the paths'.
func lintSummary(paths []string, reports []lintReport, strict bool, stderr io.Writer) int {
	code := 0
	for i, r := range reports {
		if n, m := len(r.problems), len(r.warnings); n > 0 || m > 0 {
			fmt.Fprintf(stderr, "flags lint: %s: %s, %s\n", paths[i], count(n, "problem"), count(m, "warning"))
		}
		switch {
		case r.failed:
			code = 2
		case len(r.problems) > 0 || (strict && len(r.warnings) > 0):
			code = max(code, 1)
		}
	}
	return code
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// lintPath lints a file or a folder. With label set, the lines of a file
// are prefixed with its path (those of a folder's files always are).
func lintPath(path string, label bool, stderr io.Writer) lintReport {
	fi, err := os.Stat(path)
	if err != nil {
		fmt.Fprintf(stderr, "flags lint: %v\n", err)
		return lintReport{failed: true}
	}
	if fi.IsDir() {
		return lintFolder(path, stderr)
	}
	prefix := ""
	if label {
		prefix = path + ": "
	}
	src, err := readDocument(path)
	var invalid *invalidDocument
	if errors.As(err, &invalid) {
		return lintReport{problems: invalid.lines(prefix)}
	}
	if err != nil {
		fmt.Fprintf(stderr, "flags lint: %v\n", err)
		return lintReport{failed: true}
	}
	var r lintReport
	for _, p := range rules.Validate(src.doc) {
		r.problems = append(r.problems, prefix+p.Error())
	}
	r.warnings = warningLines(prefix, src)
	for _, d := range rules.DanglingReferences(src.doc) {
		r.warnings = append(r.warnings, danglingLine(prefix, d))
	}
	return r
}

// danglingLine is the warning line of a dangling reference.
func danglingLine(prefix string, d *rules.DanglingReference) string {
	return prefix + d.Path() + ": warning: " + d.Message()
}

// lintSource is one document file, read and parsed.
type lintSource struct {
	path string
	data []byte
	doc  *rules.Document
}

// readDocument reads and parses a document file, refusing what `flags
// serve` would refuse: a file larger than its limit or not a valid document.
func readDocument(path string) (*lintSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, server.DefaultMaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > server.DefaultMaxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes, which flags serve refuses", path, server.DefaultMaxFileBytes)
	}
	doc, err := rules.ParseDocument(data)
	if err != nil && json.Valid(data) {
		return nil, &invalidDocument{err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &lintSource{path: path, data: data, doc: doc}, nil
}

// invalidDocument is the error of a file that is JSON but not a valid
// document (a version that is not an integer, flags that are not an
// object, nesting past 64 levels, a lone surrogate): problems, exit
// status 1, as SPEC §6 keeps 2 for a file unreadable or not JSON.
type invalidDocument struct{ err error }

func (e *invalidDocument) Error() string { return e.err.Error() }

func (e *invalidDocument) Unwrap() error { return e.err }

// lines are the problem lines of the document, one for each of its
// top-level problems.
func (e *invalidDocument) lines(prefix string) []string {
	errs := []error{e.err}
	if joined, ok := e.err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = prefix + err.Error()
	}
	return lines
}

// warningLines lists the unknown fields of a parsed document.
func warningLines(prefix string, src *lintSource) []string {
	unknown, err := rules.UnknownFields(src.data)
	if err != nil { // not reached: the document parsed
		return []string{prefix + "warning: " + err.Error()}
	}
	lines := make([]string, len(unknown))
	for i, u := range unknown {
		lines[i] = prefix + u.Path() + ": warning: " + u.Message()
	}
	return lines
}

// lintKey names a flag or segment.
type lintKey struct{ kind, key string }

func (k lintKey) String() string { return k.kind + "s." + k.key }

// lintLine is a problem line of a folder, sorted by file, kind and key.
type lintLine struct {
	file int
	key  lintKey
	text string
}

// lintFolder lints a folder of *.json documents as `flags serve` merges it
// (see mergeSources). Problems are found in the merged document, so that
// prerequisites and segments resolve across files.
func lintFolder(dir string, stderr io.Writer) lintReport {
	var r lintReport
	names, err := server.FolderDocuments(dir)
	if err != nil {
		fmt.Fprintf(stderr, "flags lint: %v\n", err)
		return lintReport{failed: true}
	}
	var sources []*lintSource
	for _, name := range names {
		src, err := readDocument(filepath.Join(dir, name))
		var invalid *invalidDocument
		if errors.As(err, &invalid) {
			r.problems = append(r.problems, invalid.lines(filepath.Join(dir, name)+": ")...)
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "flags lint: %v\n", err)
			r.failed = true
			continue
		}
		sources = append(sources, src)
	}
	if len(names) == 0 {
		r.warnings = append(r.warnings, dir+": warning: no *.json files: flags serve would serve no flags")
		return r
	}
	for _, l := range folderProblems(sources) {
		r.problems = append(r.problems, l.text)
	}
	for _, src := range sources {
		r.warnings = append(r.warnings, warningLines(src.path+": ", src)...)
	}
	// References resolve across the files: a segment another file defines
	// is not missing. Each line names the file that defines the flag or
	// segment naming the missing key.
	merged, owner, _ := mergeSources(sources)
	for _, d := range rules.DanglingReferences(merged) {
		r.warnings = append(r.warnings, danglingLine(sources[owner[lintKey{d.Kind, d.Key}]].path+": ", d))
	}
	return r
}

// folderProblems are the problem lines of a folder's documents, merged:
// the definitions that lost to an earlier file, the problems of the merged
// document, and those of each lost definition. By file, then kind and key;
// a key's "also defined" line first, then its problems in the order
// Problems gives them.
func folderProblems(sources []*lintSource) []lintLine {
	var lines []lintLine
	merged, owner, lost := mergeSources(sources)
	for i, keys := range lost {
		for _, k := range keys {
			lines = append(lines, lintLine{i, k, fmt.Sprintf("%s: %s: also defined in %s", sources[i].path, k, sources[owner[k]].path)})
		}
	}
	for _, p := range rules.Validate(merged) {
		i := owner[lintKey{p.Kind, p.Key}]
		lines = append(lines, lintLine{i, lintKey{p.Kind, p.Key}, sources[i].path + ": " + p.Error()})
	}
	for _, i := range slices.Sorted(maps.Keys(lost)) {
		lines = append(lines, lostProblems(merged, i, sources[i], lost[i])...)
	}
	sort.SliceStable(lines, func(a, b int) bool {
		x, y := lines[a], lines[b]
		if x.file != y.file {
			return x.file < y.file
		}
		if x.key.kind != y.key.kind {
			return x.key.kind < y.key.kind
		}
		return x.key.key < y.key.key
	})
	return lines
}

// lostProblems checks the definitions of source i (src) that lost to an
// earlier file: in the merged document, with them in place of the winners,
// so that what they refer to resolves as it would had they won.
func lostProblems(merged *rules.Document, i int, src *lintSource, keys []lintKey) []lintLine {
	doc := &rules.Document{Version: merged.Version, Flags: maps.Clone(merged.Flags), Segments: maps.Clone(merged.Segments)}
	mine := map[lintKey]bool{}
	for _, k := range keys {
		mine[k] = true
		if k.kind == "flag" {
			doc.Flags[k.key] = src.doc.Flags[k.key]
		} else {
			doc.Segments[k.key] = src.doc.Segments[k.key]
		}
	}
	var lines []lintLine
	for _, p := range rules.Validate(doc) {
		if k := (lintKey{p.Kind, p.Key}); mine[k] {
			lines = append(lines, lintLine{i, k, src.path + ": " + p.Error()})
		}
	}
	return lines
}

// mergeSources merges documents as server.FileStore does, which exports no
// merge of its own: the union of their flags and segments, at the largest of
// their versions. The first source that defines a key owns it (owner: key ->
// index of that source); lost lists, by source, the keys it defines too
// (`flags serve` refuses such a file), which the merge leaves out.
func mergeSources(sources []*lintSource) (merged *rules.Document, owner map[lintKey]int, lost map[int][]lintKey) {
	merged = &rules.Document{Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	owner, lost = map[lintKey]int{}, map[int][]lintKey{}
	for i, src := range sources {
		merged.Version = max(merged.Version, src.doc.Version)
		for _, kind := range []string{"flag", "segment"} {
			from, into := src.doc.Flags, merged.Flags
			if kind == "segment" {
				from, into = src.doc.Segments, merged.Segments
			}
			for _, key := range slices.Sorted(maps.Keys(from)) {
				k := lintKey{kind, key}
				if _, ok := owner[k]; ok {
					lost[i] = append(lost[i], k)
					continue
				}
				owner[k] = i
				into[key] = from[key]
			}
		}
	}
	return merged, owner, lost
}
