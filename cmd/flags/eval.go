package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// runEval implements `flags eval` (SPEC §6): one JSON line per flag asked
// for, or for every flag in key order, evaluated with no caller default.
func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flags eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files stringList
	fs.Var(&files, "flags", "the flag document (JSON), or a folder whose *.json documents are merged as flags serve merges them; repeat it to merge several")
	ctxArg := fs.String("context", "", "the evaluation context: a JSON object, or @FILE")
	at := fs.String("at", "", "evaluate at this RFC 3339 time instead of now")
	explain := fs.Bool("explain", false, "after each flag's line, say why: each prerequisite, target, rule and clause tried, the bucket and the weights (lines starting with two spaces and #)")
	names, code, ok := parseCommand(fs, args)
	if !ok {
		return code
	}
	if len(files) == 0 || *ctxArg == "" {
		fmt.Fprintln(stderr, "flags eval: --flags and --context are required")
		return 2
	}
	snap, err := loadSnapshot(files...)
	if err != nil {
		fmt.Fprintf(stderr, "flags eval: %v\n", err)
		return 2
	}
	ec, err := parseContextArg(*ctxArg)
	if err != nil {
		fmt.Fprintf(stderr, "flags eval: %v\n", err)
		return 2
	}
	now := time.Now()
	atSet := false
	fs.Visit(func(f *flag.Flag) { atSet = atSet || f.Name == "at" })
	if atSet { // --at '' is a mistake, not "now"
		if now, err = rules.ParseTime(*at); err != nil {
			fmt.Fprintf(stderr, "flags eval: --at %q is not an RFC 3339 time: %v\n", *at, err)
			return 2
		}
	}
	clock := func() time.Time { return now }
	if len(names) == 0 {
		names = snap.FlagKeys()
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for _, name := range names {
		line, err := json.Marshal(evalLine(snap, name, ec, clock))
		if err != nil {
			fmt.Fprintf(stderr, "flags eval: %s: %v\n", name, err)
			return 2
		}
		w.Write(line)
		w.WriteByte('\n')
		if *explain {
			for _, step := range flags.Explain(snap, name, ec, clock).Steps {
				fmt.Fprintf(w, "  # %s\n", step)
			}
		}
	}
	return 0
}

// evalLine evaluates one flag and keeps the variation's JSON exactly as the
// document wrote it (key order, number spelling).
func evalLine(snap *flags.Snapshot, key string, ec flags.Context, clock func() time.Time) flags.Result[any] {
	r := flags.Evaluate(snap, key, ec, clock)
	if raw, ok := snap.Variation(key, r.Variation); ok {
		r.Value = raw
	}
	return r
}

// loadSnapshot reads and compiles a document file.
func loadSnapshot(paths ...string) (*flags.Snapshot, error) {
	if len(paths) == 1 {
		if fi, err := os.Stat(paths[0]); err == nil && !fi.IsDir() {
			data, err := os.ReadFile(paths[0])
			if err != nil {
				return nil, err
			}
			doc, err := rules.ParseDocument(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", paths[0], err)
			}
			return flags.Compile(doc), nil
		}
	}
	// Several documents, or folders: merged as flags serve merges a folder.
	var sources []*lintSource
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		names := []string{p}
		if fi.IsDir() {
			inside, err := server.FolderDocuments(p)
			if err != nil {
				return nil, err
			}
			names = names[:0]
			for _, n := range inside {
				names = append(names, filepath.Join(p, n))
			}
		}
		for _, n := range names {
			src, err := readDocument(n)
			if err != nil {
				return nil, err
			}
			sources = append(sources, src)
		}
	}
	merged, _, lost := mergeSources(sources)
	for i := range sources {
		if keys := lost[i]; len(keys) > 0 {
			return nil, fmt.Errorf("%s: %s is also defined by another document", sources[i].path, keys[0])
		}
	}
	return flags.Compile(merged), nil
}

// parseContextArg reads --context: a JSON object, or @FILE holding one.
func parseContextArg(arg string) (flags.Context, error) {
	data := []byte(arg)
	if strings.HasPrefix(arg, "@") {
		var err error
		if data, err = os.ReadFile(arg[1:]); err != nil {
			return flags.Context{}, fmt.Errorf("--context: %w", err)
		}
	}
	ec, err := flags.ContextFromJSON(data)
	if err != nil {
		return flags.Context{}, fmt.Errorf("--context must be a JSON object: %w", err)
	}
	return ec, nil
}
