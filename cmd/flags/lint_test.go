package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/server"
	"github.com/google/go-cmp/cmp"
)

const typoDoc = `{"flags": {"new-checkout": {"enabled": true, "on": true, "variations": [false, true],
  "rules": [{"id": "r", "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]},
    {"attribute": "country", "op": "in", "values": ["fr"], "negated": true}], "serve": {"variation": 1}}],
  "fallthrough": {"variation": 0}}}}`

// TestLintWarnsOnUnknownFields: the typos "enabled" and "negated" are
// warned about, with their path and the field they probably mean; only
// warnings exit 0, or 1 with --strict; warnings print after problems. A
// prerequisite flag or a segment the document does not hold is a warning
// too, except in a malformed flag (its problem is reported instead).
func TestLintWarnsOnUnknownFields(t *testing.T) {
	doc := writeFile(t, "typos.json", typoDoc)
	wantWarnings := `flags.new-checkout.enabled: warning: unknown field, ignored; did you mean "on"?
flags.new-checkout.rules[0].clauses[1].negated: warning: unknown field, ignored; did you mean "negate"?
`
	code, out, errOut := runCLI(t, "lint", doc)
	if code != 0 {
		t.Errorf("exit %d, want 0 (warnings only)", code)
	}
	if diff := cmp.Diff(wantWarnings, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if want := doc + ": 0 problems, 2 warnings"; !strings.Contains(errOut, want) {
		t.Errorf("stderr %q, want %q", errOut, want)
	}

	if code, out, _ := runCLI(t, "lint", "--strict", doc); code != 1 || out != wantWarnings {
		t.Errorf("lint --strict: exit %d, output %q; want 1 and the warnings", code, out)
	}
	if code, _, _ := runCLI(t, "lint", doc, "--strict"); code != 1 {
		t.Errorf("lint FILE --strict: exit %d, want 1", code)
	}

	both := writeFile(t, "both.json", `{"flgs": {}, "flags": {"a": {"on": "yes", "variations": [1], "fallthrough": {"variation": 0}, "salt ": "x"}}}`)
	code, out, _ = runCLI(t, "lint", both)
	want := `flags.a.on: got a string, want a bool
flgs: warning: unknown field, ignored; did you mean "flags"?
flags.a."salt ": warning: unknown field, ignored; did you mean "salt"?
`
	if code != 1 {
		t.Errorf("problems and warnings: exit %d, want 1", code)
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("problems and warnings (-want +got):\n%s", diff)
	}

	dangling := writeFile(t, "dangling.json", `{"flags": {"a": {"on": true, "variations": [1, 2], "prerequisites": [{"flag": "b", "variation": 0}, {"flag": "nope", "variation": 1}],
		"rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}, {"op": "inSegment", "values": ["beta", "btea"], "negate": true}], "serve": {"variation": 1}}],
		"fallthrough": {"variation": 0}},
	  "b": {"on": true, "variations": [1, 2], "fallthrough": {"variation": 0}},
	  "broken": {"on": true, "variations": [1, 2], "prerequisites": [{"flag": "gone", "variation": 0}], "fallthrough": {"variation": 9}}},
	 "segments": {"beta": {"included": ["u1"]}, "alpha": {"rules": [{"clauses": [{"op": "inSegment", "values": ["gamma"]}]}]}}}`)
	code, out, _ = runCLI(t, "lint", dangling)
	want = `flags.broken.fallthrough.variation: index 9 out of range: the flag has 2 variations
flags.a.prerequisites[1].flag: warning: flag "nope" is not in the document, so this prerequisite always fails
flags.a.rules[0].clauses[1].values[1]: warning: segment "btea" is not in the document, so no context is in it
segments.alpha.rules[0].clauses[0].values[0]: warning: segment "gamma" is not in the document, so no context is in it
`
	if code != 1 {
		t.Errorf("dangling references and a problem: exit %d, want 1", code)
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("dangling references (-want +got):\n%s", diff)
	}

	// The golden file of the README has no unknown field: unchanged.
	if code, out, _ := runCLI(t, "lint", "../../testdata/quickstart.json"); code != 0 || out != "" {
		t.Errorf("quickstart: exit %d, output %q; want 0 and nothing", code, out)
	}
}

// folderFiles of TestLintChecksAFolder: a.json and b.json both define the
// flag "dup" and reach each other's flags and segments.
var lintFolderFiles = map[string]string{
	"a.json": `{"version": 3, "flags": {
		"dup": {"on": true, "variations": [1, 2], "fallthrough": {"variation": 0}},
		"loop-a": {"on": true, "variations": [1, 2], "prerequisites": [{"flag": "loop-b", "variation": 0}], "fallthrough": {"variation": 0}},
		"bad": {"on": true, "variations": [1, 2], "fallthrough": {"variation": 5}}}}`,
	"b.json": `{"version": 9, "flags": {
		"dup": {"on": true, "variations": [1, 2], "fallthrough": {"variation": 7}},
		"loop-b": {"on": true, "variations": [1, 2], "prerequisites": [{"flag": "loop-a", "variation": 0}], "fallthrough": {"variation": 0}},
		"uses-seg": {"on": true, "variations": [1, 2], "rules": [{"clauses": [{"op": "inSegment", "values": ["beta"]}], "serve": {"variation": 1}}], "fallthrough": {"variation": 0}, "enabled": true}}}`,
	"c.json":       `{"segments": {"beta": {"included": ["u1"], "rules": [{"clauses": [{"op": "inSegment", "values": ["gamma"]}]}]}}}`,
	"d.json":       `{"segments": {"gamma": {"rules": [{"clauses": [{"op": "inSegment", "values": ["beta"]}], "wieght": 1}]}}}`,
	".hidden.json": `{`,
	"notes.txt":    `{`,
	"sub.json/":    ``,
}

// TestLintChecksAFolder: `flags lint FOLDER` checks the folder as `flags
// serve` merges it: each file's problems prefixed with its path, a key
// defined in two files named with both, cross-file references resolved
// (prerequisite and segment cycles across files are found).
func TestLintChecksAFolder(t *testing.T) {
	dir := writeFolder(t, lintFolderFiles)
	code, out, errOut := runCLI(t, "lint", dir)
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr %q", code, errOut)
	}
	a, b, c, d := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), filepath.Join(dir, "c.json"), filepath.Join(dir, "d.json")
	want := strings.Join([]string{
		a + ": flags.bad.fallthrough.variation: index 5 out of range: the flag has 2 variations",
		a + ": flags.loop-a.prerequisites: prerequisite cycle: loop-a → loop-b → loop-a",
		b + ": flags.dup: also defined in " + a,
		b + ": flags.dup.fallthrough.variation: index 7 out of range: the flag has 2 variations",
		b + ": flags.loop-b.prerequisites: prerequisite cycle: loop-b → loop-a → loop-b",
		c + ": segments.beta.rules: segment cycle: beta → gamma → beta",
		d + ": segments.gamma.rules: segment cycle: gamma → beta → gamma",
		b + `: flags.uses-seg.enabled: warning: unknown field, ignored; did you mean "on"?`,
		d + `: segments.gamma.rules[0].wieght: warning: unknown field, ignored; did you mean "weight"?`,
	}, "\n") + "\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("lint FOLDER (-want +got):\n%s", diff)
	}
	if !strings.Contains(errOut, dir+": 7 problems, 2 warnings") {
		t.Errorf("stderr %q, want the counts", errOut)
	}

	t.Run("a file that does not parse", func(t *testing.T) {
		dir := writeFolder(t, map[string]string{"a.json": lintFolderFiles["a.json"], "broken.json": `{"flags": [`})
		code, out, errOut := runCLI(t, "lint", dir)
		if code != 2 || !strings.Contains(errOut, filepath.Join(dir, "broken.json")+": flags: invalid document") {
			t.Errorf("exit %d, stderr %q; want 2 and the broken file named", code, errOut)
		}
		if !strings.Contains(out, "flags.bad.fallthrough.variation") {
			t.Errorf("output %q, want the other files' problems still", out)
		}
	})
	t.Run("references resolve across files", func(t *testing.T) {
		dir := writeFolder(t, map[string]string{
			"a.json": `{"flags": {"f": {"on": true, "variations": [1, 2], "prerequisites": [{"flag": "from-b", "variation": 0}, {"flag": "from-z", "variation": 0}],
				"rules": [{"clauses": [{"op": "inSegment", "values": ["seg-c", "seg-z"]}], "serve": {"variation": 1}}], "fallthrough": {"variation": 0}}}}`,
			"b.json": `{"flags": {"from-b": {"on": true, "variations": [1, 2], "fallthrough": {"variation": 0}}}}`,
			"c.json": `{"segments": {"seg-c": {"included": ["u1"]}}}`,
		})
		a := filepath.Join(dir, "a.json")
		want := a + `: flags.f.prerequisites[1].flag: warning: flag "from-z" is not in the document, so this prerequisite always fails
` + a + `: flags.f.rules[0].clauses[0].values[1]: warning: segment "seg-z" is not in the document, so no context is in it
`
		code, out, _ := runCLI(t, "lint", dir)
		if code != 0 {
			t.Errorf("exit %d, want 0 (warnings only)", code)
		}
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("lint FOLDER (-want +got):\n%s", diff)
		}
	})
	t.Run("empty", func(t *testing.T) {
		dir := writeFolder(t, map[string]string{"readme.md": "x"})
		code, out, _ := runCLI(t, "lint", dir)
		if code != 0 || out != dir+": warning: no *.json files: flags serve would serve no flags\n" {
			t.Errorf("exit %d, output %q; want 0 and a warning", code, out)
		}
		if code, _, _ := runCLI(t, "lint", "--strict", dir); code != 1 {
			t.Errorf("--strict: exit %d, want 1", code)
		}
	})
	t.Run("clean", func(t *testing.T) {
		dir := writeFolder(t, map[string]string{"c.json": lintFolderFiles["c.json"],
			"e.json": `{"segments": {"gamma": {"included": ["u2"]}}}`})
		if code, out, errOut := runCLI(t, "lint", dir); code != 0 || out != "" || errOut != "" {
			t.Errorf("exit %d, output %q, stderr %q; want 0 and nothing", code, out, errOut)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		if code, _, errOut := runCLI(t, "lint", filepath.Join(dir, "nope")); code != 2 || !strings.Contains(errOut, "nope") {
			t.Errorf("exit %d, stderr %q; want 2", code, errOut)
		}
	})
}

// TestLintFolderMergesAsServe: the folder lint sees the files and the
// merged document that `flags serve` (server.FileStore) loads.
func TestLintFolderMergesAsServe(t *testing.T) {
	files := map[string]string{}
	for name, content := range lintFolderFiles {
		files[name] = content
	}
	delete(files, "b.json") // the duplicate: FileStore refuses to open
	files[".hidden.json"] = `{"flags": {"hidden": {}}}`
	files["notes.txt"] = `{"flags": {"notes": {}}}`
	dir := writeFolder(t, files)

	store, err := server.OpenFileStore(dir, server.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names, err := server.FolderDocuments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.json", "c.json", "d.json"}, names); diff != "" {
		t.Errorf("server.FolderDocuments (-want +got):\n%s", diff)
	}
	var sources []*lintSource
	for _, name := range names {
		src, err := readDocument(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, src)
	}
	got, _, lost := mergeSources(sources)
	if len(lost) != 0 {
		t.Errorf("lost %v, want none", lost)
	}
	if diff := cmp.Diff(testkit.DocJSON(t, want), testkit.DocJSON(t, got)); diff != "" {
		t.Errorf("merged document (-serve +lint):\n%s", diff)
	}
}

// TestLintSeveralPaths: each PATH is checked on its own, every line
// prefixed with its file; problems of all of them first, then warnings; the
// exit status is the worst.
func TestLintSeveralPaths(t *testing.T) {
	typos := writeFile(t, "typos.json", typoDoc)
	bad := writeFile(t, "bad.json", `{"flags": {"x": {"on": 1, "variations": [1], "fallthrough": {"variation": 0}}}}`)
	code, out, _ := runCLI(t, "lint", typos, bad)
	want := bad + ": flags.x.on: got a number, want a bool\n" +
		typos + `: flags.new-checkout.enabled: warning: unknown field, ignored; did you mean "on"?` + "\n" +
		typos + `: flags.new-checkout.rules[0].clauses[1].negated: warning: unknown field, ignored; did you mean "negate"?` + "\n"
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if code, _, _ := runCLI(t, "lint", typos, "/nonexistent.json"); code != 2 {
		t.Errorf("with an unreadable path: exit %d, want 2", code)
	}
	if code, _, errOut := runCLI(t, "lint"); code != 2 || !strings.Contains(errOut, "usage: flags lint") {
		t.Errorf("no path: exit %d, stderr %q; want 2 and the usage", code, errOut)
	}
	if code, _, errOut := runCLI(t, "lint", "-h"); code != 0 || !strings.Contains(errOut, "--strict") {
		t.Errorf("-h: exit %d, stderr %q; want 0 and the usage", code, errOut)
	}
}
