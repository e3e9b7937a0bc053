package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// ReplaceFile writes content beside path and renames it over path, as an
// editor saving atomically or a deployment tool does, so that a watcher of
// path never reads half a write the test did not mean it to.
func ReplaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// CheckSwept checks, after something swept dir of the temporary files an
// interrupted write leaves, that the files named gone are gone and those
// named kept are all still there (a sweep must not touch what only looks
// like its own leftovers).
func CheckSwept(t testing.TB, dir string, gone, kept []string) {
	t.Helper()
	for _, name := range gone {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s: still there (%v), want it removed", name, err)
		}
	}
	for _, name := range kept {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v, want it kept", name, err)
		}
	}
}
