package flags

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// sharedSpec is where the contract lives outside the repository: in the
// directory that holds the checkout (the CI clone's parent has shared/).
var sharedSpec = filepath.Join("..", "shared", "SPEC.md")

// TestSpecCopyIsCurrent holds docs/SPEC.md, the copy of the contract that
// ships with the code, to the shared original byte for byte. Where the
// original is not beside the checkout (a clone on its own), it skips.
func TestSpecCopyIsCurrent(t *testing.T) {
	want, err := os.ReadFile(sharedSpec)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s not found: nothing to compare docs/SPEC.md with", sharedSpec)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("docs", "SPEC.md"))
	if err != nil {
		t.Fatalf("docs/SPEC.md: %v (copy %s there)", err, sharedSpec)
	}
	if !bytes.Equal(got, want) {
		line := 1 + bytes.Count(want[:commonPrefix(got, want)], []byte("\n"))
		t.Fatalf("docs/SPEC.md differs from %s: copy it (first difference on line %d; %d bytes, want %d)",
			sharedSpec, line, len(got), len(want))
	}
}

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
