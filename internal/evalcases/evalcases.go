// Package evalcases reads the SPEC conformance cases of testdata/eval, whose
// format testdata/eval/README.md describes, for the tests of every package
// that runs or checks them. It imports only the standard library so that the
// tests of internal/eval, which internal/testkit depends on, can use it too.
package evalcases

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// File is one testdata/eval/*.json file.
type File struct {
	Path        string          `json:"-"` // where it was read from
	Description string          `json:"description"`
	Document    json.RawMessage `json:"document"`
	Cases       []Case          `json:"cases"`
}

// Case is one evaluation a File pins down. Want is the `flags eval` line
// without its "flag" member.
type Case struct {
	Name    string          `json:"name"`
	Flag    string          `json:"flag"`
	Context json.RawMessage `json:"context"`
	At      string          `json:"at"`
	Type    string          `json:"type"`
	Default json.RawMessage `json:"default"`
	Want    json.RawMessage `json:"want"`
}

// Read reads every *.json file in dir (the path of testdata/eval from the
// calling test's package), in file name order. It fails tb when there is
// none, since a test over no cases would pass without checking anything,
// and when one cannot be read or decoded.
func Read(tb testing.TB, dir string) []File {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no case files in %s: %v", dir, err)
	}
	files := make([]File, 0, len(paths))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		f := File{Path: path}
		if err := json.Unmarshal(data, &f); err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		files = append(files, f)
	}
	return files
}
