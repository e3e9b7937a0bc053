package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// Token is an API token of a test server: its name, its role and the
// secret a client sends.
type Token struct {
	Name, Role, Secret string
}

// TokenLine is one entry of a server tokens file: it holds the SHA-256 of
// secret, as the server reads it, never the secret.
func TokenLine(name, role, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return fmt.Sprintf(`{"name": %q, "role": %q, "sha256": %q}`, name, role, hex.EncodeToString(sum[:]))
}

// TokensFile writes tokens as a server tokens file in a new temporary
// directory, readable by its owner only as a file of secrets should be,
// and returns its path.
func TokensFile(t testing.TB, tokens ...Token) string {
	t.Helper()
	entries := make([]string, len(tokens))
	for i, tk := range tokens {
		entries[i] = TokenLine(tk.Name, tk.Role, tk.Secret)
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte("["+strings.Join(entries, ",")+"]"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
