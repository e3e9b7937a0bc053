package stream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flagstream/flags/rules"
)

// Cache errors, for errors.Is. A missing file wraps fs.ErrNotExist instead.
var (
	// ErrCacheCorrupt reports a cache file that is not one WriteCache wrote
	// whole: not JSON, truncated, another format, or a checksum mismatch.
	ErrCacheCorrupt = errors.New("flags: cache file corrupt")
	// ErrCacheForeignURL reports a cache file written for another base URL.
	ErrCacheForeignURL = errors.New("flags: cache file is for another base URL")
)

// cacheFormat identifies the file layout; a reader refuses any other.
const cacheFormat = "flagstream-cache/1"

// cacheFile is the layout of a last-known-good file:
//
//	{"format":"flagstream-cache/1","baseURL":"…","sha256":"…","document":{…}}
//
// sha256 is the hex SHA-256 of the document's bytes exactly as they appear
// in the file, so a file damaged anywhere in the document is refused even
// when it still parses.
type cacheFile struct {
	Format   string          `json:"format"`
	BaseURL  string          `json:"baseURL"`
	SHA256   string          `json:"sha256"`
	Document json.RawMessage `json:"document"`
}

// WriteCache stores doc as the last-known-good document for baseURL at
// path, atomically: it writes a temporary file in the same directory,
// syncs it, renames it over path and syncs the directory, so a reader (or a
// crash) sees the old file or the new one, never a mix.
func WriteCache(path, baseURL string, doc *rules.Document) error {
	if doc == nil {
		return errors.New("flags: cache: nil document")
	}
	body, err := doc.MarshalJSON()
	if err != nil {
		return fmt.Errorf("flags: cache: encoding document: %w", err)
	}
	sum := sha256.Sum256(body)
	head, err := json.Marshal(struct {
		Format  string `json:"format"`
		BaseURL string `json:"baseURL"`
		SHA256  string `json:"sha256"`
	}{cacheFormat, normalizeBaseURL(baseURL), hex.EncodeToString(sum[:])})
	if err != nil {
		return fmt.Errorf("flags: cache: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(head) + len(body) + 16)
	b.Write(head[:len(head)-1]) // drop the closing brace
	b.WriteString(`,"document":`)
	b.Write(body)
	b.WriteString("}\n")

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, tempPrefix(base)+"*")
	if err != nil {
		return fmt.Errorf("flags: cache: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(b.Bytes()); err != nil {
		return fmt.Errorf("flags: cache: writing %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("flags: cache: syncing %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("flags: cache: closing %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("flags: cache: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("flags: cache: syncing directory %s: %w", dir, err)
		}
	} else {
		return fmt.Errorf("flags: cache: %w", err)
	}
	return nil
}

// ReadCache reads a file written by WriteCache for baseURL. It never trusts
// a damaged file: a file that is not JSON, truncated, of another format or
// whose checksum does not match gives an error wrapping ErrCacheCorrupt; a
// file written for another base URL one wrapping ErrCacheForeignURL; a
// missing file one wrapping fs.ErrNotExist.
func ReadCache(path, baseURL string) (*rules.Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("flags: cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("flags: cache %s: %w: %v", path, ErrCacheCorrupt, err)
	}
	if f.Format != cacheFormat {
		return nil, fmt.Errorf("flags: cache %s: %w: format %q, want %q", path, ErrCacheCorrupt, f.Format, cacheFormat)
	}
	sum := sha256.Sum256(f.Document)
	if len(f.Document) == 0 || hex.EncodeToString(sum[:]) != f.SHA256 {
		return nil, fmt.Errorf("flags: cache %s: %w: checksum mismatch", path, ErrCacheCorrupt)
	}
	if f.BaseURL != normalizeBaseURL(baseURL) {
		return nil, fmt.Errorf("flags: cache %s: %w: written for %q, not %q", path, ErrCacheForeignURL, f.BaseURL, normalizeBaseURL(baseURL))
	}
	doc, err := rules.ParseDocument(f.Document)
	if err != nil {
		return nil, fmt.Errorf("flags: cache %s: %w: %w", path, ErrCacheCorrupt, err)
	}
	return doc, nil
}

// normalizeBaseURL makes "http://h/x/" and "http://h/x" the same key. A
// password in the URL is redacted: it is not written to disk, and does not
// tell servers apart.
func normalizeBaseURL(u string) string {
	return strings.TrimRight(redactURL(strings.TrimSpace(u)), "/")
}
