package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagstream/flags/internal/evalcases"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// runCLI runs the command in-process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeFile writes content as name in a new temporary directory and returns
// its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFolder writes files (name -> content) into a new folder.
func writeFolder(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestEvalAgreesWithCases runs every SPEC conformance case that has no
// caller default and no type through `flags eval` and compares the printed
// line with the case's expectation.
func TestEvalAgreesWithCases(t *testing.T) {
	ran := 0
	for _, cf := range evalcases.Read(t, "../../testdata/eval") {
		doc := writeFile(t, "doc.json", string(cf.Document))
		for _, tc := range cf.Cases {
			if (tc.Type != "" && tc.Type != "any") || (len(tc.Default) > 0 && string(tc.Default) != "null") {
				continue // eval has no caller default and no type
			}
			at := tc.At
			if at == "" {
				at = "2026-01-01T00:00:00Z"
			}
			code, out, errOut := runCLI(t, "eval", "--flags", doc, "--context", string(tc.Context), "--at", at, tc.Flag)
			if code != 0 {
				t.Errorf("%s / %s: exit %d: %s", filepath.Base(cf.Path), tc.Name, code, errOut)
				continue
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%s: output %q: %v", tc.Name, out, err)
			}
			if got["flag"] != tc.Flag {
				t.Errorf("%s: flag = %v, want %s", tc.Name, got["flag"], tc.Flag)
			}
			delete(got, "flag")
			var want map[string]any
			if err := json.Unmarshal(tc.Want, &want); err != nil {
				t.Fatalf("%s: want: %v", tc.Name, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s / %s (-want +got):\n%s", filepath.Base(cf.Path), tc.Name, diff)
			}
			ran++
		}
	}
	t.Logf("%d cases through flags eval", ran)
}

func TestEvalOutput(t *testing.T) {
	doc := writeFile(t, "flags.json", `{"version":3,"flags":{
		"b":{"version":3,"on":true,"variations":[false,true],"rules":[{"id":"beta","clauses":[{"attribute":"email","op":"endsWith","values":["@corp.com"]}],"serve":{"variation":1}}],"fallthrough":{"variation":0}},
		"a":{"on":false,"variations":["x","y"],"fallthrough":{"variation":1}}}}`)
	ctx := `{"key":"u1","email":"ann@corp.com"}`
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"all flags sorted", []string{"eval", "--flags", doc, "--context", ctx},
			`{"flag":"a","value":null,"version":0,"reason":{"kind":"OFF"}}` + "\n" +
				`{"flag":"b","value":true,"variation":1,"version":3,"reason":{"kind":"RULE_MATCH","ruleIndex":0,"ruleId":"beta"}}` + "\n"},
		{"named flags in the order asked, options after names", []string{"eval", "b", "missing", "--flags", doc, "--context", ctx},
			`{"flag":"b","value":true,"variation":1,"version":3,"reason":{"kind":"RULE_MATCH","ruleIndex":0,"ruleId":"beta"}}` + "\n" +
				`{"flag":"missing","value":null,"reason":{"kind":"ERROR","errorKind":"FLAG_NOT_FOUND"}}` + "\n"},
		{"context without key", []string{"eval", "--flags", doc, "--context", `{"email":"x"}`, "b"},
			`{"flag":"b","value":null,"version":3,"reason":{"kind":"ERROR","errorKind":"INVALID_CONTEXT"}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEvalTimesAreRFC3339: before/after values and --at are RFC 3339
// (§5.6): a lower-case t and z are RFC 3339; a comma before the fraction
// and an offset of +24:00 are not, and never match.
func TestEvalTimesAreRFC3339(t *testing.T) {
	doc := writeFile(t, "flags.json", `{"flags":{"t":{"on":true,"variations":[false,true],
		"rules":[{"clauses":[{"attribute":"createdAt","op":"before","values":["2030-01-01T00:00:00Z"]}],"serve":{"variation":1}}],"fallthrough":{"variation":0}}}}`)
	for createdAt, want := range map[string]string{
		"2026-06-01t00:00:00z":      "RULE_MATCH",
		"2026-06-01T00:00:00.5Z":    "RULE_MATCH",
		"2026-06-01T00:00:00,5Z":    "FALLTHROUGH",
		"2026-06-01T00:00:00+24:00": "FALLTHROUGH",
		"2026-06-01T00:00:00+00:60": "FALLTHROUGH",
	} {
		code, out, errOut := runCLI(t, "eval", "--flags", doc, "--context", `{"key":"u","createdAt":"`+createdAt+`"}`, "--at", "2026-06-01t00:00:00z", "t")
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("createdAt %s: exit %d, %s%s; want %s", createdAt, code, out, errOut, want)
		}
	}
}

func TestEvalExitStatus(t *testing.T) {
	good := writeFile(t, "good.json", `{"flags":{}}`)
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"unreadable document", []string{"eval", "--flags", "/nonexistent/flags.json", "--context", `{"key":"u"}`}, "no such file"},
		{"not JSON", []string{"eval", "--flags", writeFile(t, "bad.json", "{nope"), "--context", `{"key":"u"}`}, "invalid document"},
		{"wrong top level", []string{"eval", "--flags", writeFile(t, "bad2.json", `{"flags":[]}`), "--context", `{"key":"u"}`}, "flags: want an object"},
		{"version not an integer", []string{"eval", "--flags", writeFile(t, "bad3.json", `{"version":"3"}`), "--context", `{"key":"u"}`}, "version"},
		{"flags null", []string{"eval", "--flags", writeFile(t, "null.json", `{"flags":null}`), "--context", `{"key":"u"}`}, "flags: got null, want an object"},
		{"context not JSON", []string{"eval", "--flags", good, "--context", `{key}`}, "--context must be a JSON object"},
		{"context an array", []string{"eval", "--flags", good, "--context", `[]`}, "want a JSON object"},
		// SPEC §13: a context nests at most 64 levels, itself level 1.
		{"context nested 65 levels", []string{"eval", "--flags", good, "--context",
			`{"key":"u","a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`}, "nest deeper than 64 levels"},
		{"document nested 65 levels", []string{"eval", "--flags", writeFile(t, "deep.json", `{"x":`+strings.Repeat("[", 64)+strings.Repeat("]", 64)+`}`),
			"--context", `{"key":"u"}`}, "nest deeper than 64 levels"},
		{"bad --at", []string{"eval", "--flags", good, "--context", `{"key":"u"}`, "--at", "yesterday"}, "RFC 3339"},
		// RFC 3339 §5.6, not time.Parse: a dot before the fraction, offsets of
		// hours 00-23 and minutes 00-59; and --at given empty is a mistake.
		{"--at comma fraction", []string{"eval", "--flags", good, "--context", `{"key":"u"}`, "--at", "2026-06-01T00:00:00,5Z"}, "RFC 3339"},
		{"--at offset +24:00", []string{"eval", "--flags", good, "--context", `{"key":"u"}`, "--at", "2026-06-01T00:00:00+24:00"}, "RFC 3339"},
		{"--at offset +00:60", []string{"eval", "--flags", good, "--context", `{"key":"u"}`, "--at", "2026-06-01T00:00:00+00:60"}, "RFC 3339"},
		{"--at empty", []string{"eval", "--flags", good, "--context", `{"key":"u"}`, "--at", ""}, "RFC 3339"},
		{"missing --flags", []string{"eval", "--context", `{"key":"u"}`}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("stderr %q, want it to mention %q", errOut, tt.wantStderr)
			}
		})
	}
}

func TestLint(t *testing.T) {
	t.Run("five mistakes", func(t *testing.T) {
		code, out, _ := runCLI(t, "lint", "../../testdata/lint/five-mistakes.json")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		golden := "../../testdata/lint/five-mistakes.golden"
		if *update {
			os.WriteFile(golden, []byte(out), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), out); diff != "" {
			t.Errorf("lint output (-want +got):\n%s", diff)
		}
	})
	t.Run("clean", func(t *testing.T) {
		code, out, _ := runCLI(t, "lint", "../../testdata/quickstart.json")
		if code != 0 || out != "" {
			t.Errorf("exit %d, output %q; want 0 and nothing", code, out)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		if code, _, _ := runCLI(t, "lint", writeFile(t, "x.json", "{")); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
	// JSON, but not a valid document: problems (SPEC §6 keeps 2 for a file
	// unreadable or not JSON), each of the top level's.
	for name, tc := range map[string]struct{ content, want string }{
		"flags an array":       {`{"flags":[]}`, "flags: want an object\n"},
		"null members":         {`{"flags":null,"segments":null,"version":null}`, "version: got null, want an integer\nflags: invalid document: flags: got null, want an object\nflags: invalid document: segments: got null, want an object\n"},
		"three wrong":          {`{"flags":[],"segments":1,"version":"v"}`, "version: got a string, want an integer\nflags: invalid document: flags: want an object\nflags: invalid document: segments: want an object\n"},
		"65 levels":            {`{"x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, "64 levels"},
		"a lone surrogate":     {`{"flags":{"a":"\ud800"}}`, "UTF-8"},
		"a fractional version": {`{"version":1.5}`, "version"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, _ := runCLI(t, "lint", writeFile(t, "x.json", tc.content))
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, stdout %q; want 1 and %q", code, out, tc.want)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		if code, _, _ := runCLI(t, "lint", "/nonexistent.json"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
}

// TestEvalSeveralDocuments: --flags takes folders and repeats, merged as
// flags serve merges a folder; a key two documents define is an error.
func TestEvalSeveralDocuments(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "flags")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	writeAt := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeAt(filepath.Join(folder, "a.json"), `{"flags": {"a": {"on": true, "variations": [1, 2], "fallthrough": {"variation": 1}}}}`)
	writeAt(filepath.Join(folder, "b.json"), `{"flags": {"b": {"on": true, "variations": ["x"], "fallthrough": {"variation": 0}, "prerequisites": [{"flag": "a", "variation": 1}]}}}`)
	other := filepath.Join(dir, "c.json")
	writeAt(other, `{"flags": {"c": {"on": false, "variations": [true], "offVariation": 0, "fallthrough": {"variation": 0}}}}`)
	code, out, errOut := runCLI(t, "eval", "--flags", folder, "--flags", other, "--context", `{"key":"u"}`)
	want := `{"flag":"a","value":2,"variation":1,"version":0,"reason":{"kind":"FALLTHROUGH"}}
{"flag":"b","value":"x","variation":0,"version":0,"reason":{"kind":"FALLTHROUGH"}}
{"flag":"c","value":true,"variation":0,"version":0,"reason":{"kind":"OFF"}}
`
	if code != 0 || out != want {
		t.Errorf("eval over a folder and a file = %d %s\n%s\nwant\n%s", code, errOut, out, want)
	}
	writeAt(filepath.Join(folder, "dup.json"), `{"flags": {"c": {"on": true, "variations": [1], "fallthrough": {"variation": 0}}}}`)
	if code, _, errOut := runCLI(t, "eval", "--flags", folder, "--flags", other, "--context", `{"key":"u"}`); code != 2 || !strings.Contains(errOut, "flags.c is also defined") {
		t.Errorf("a key defined twice = %d %q, want 2 naming it", code, errOut)
	}
}

func TestEvalExplain(t *testing.T) {
	code, out, errOut := runCLI(t, "eval", "--flags", "../../testdata/quickstart.json", "--context", `{"key":"user-7","country":"fr"}`, "--explain", "new-checkout")
	want := `{"flag":"new-checkout","value":true,"variation":1,"version":3,"reason":{"kind":"RULE_MATCH","ruleIndex":1,"ruleId":"beta"}}
  # target 0: key = "user-7" is not one of the 1 targeted values → no match
  # rule 0 (staff), clause 0: email (absent) endsWith ["@corp.com"] → does not match
  # rule 1 (beta), clause 0: the context is in a segment of ["beta-testers"] → matches
  # rule 1 (beta) matched: served variation 1 (true)
`
	if code != 0 || out != want {
		t.Errorf("eval --explain = %d %s\n%s\nwant\n%s", code, errOut, out, want)
	}
}
