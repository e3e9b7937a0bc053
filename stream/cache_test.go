package stream

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
)

const cacheURL = "https://flags.example.com/base"

func mustDoc(t *testing.T, s string) *rules.Document {
	t.Helper()
	d, err := rules.ParseDocument([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCacheRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.cache")
	doc := mustDoc(t, `{"version":12,"flags":{"a":{"on":true,"variations":[1,2],"fallthrough":{"variation":0},"future":{"x":[1]}}},"segments":{"s":{"included":["u1"]}}}`)
	if err := WriteCache(path, cacheURL, doc); err != nil {
		t.Fatalf("WriteCache: %v", err)
	}
	for _, u := range []string{cacheURL, cacheURL + "/"} {
		got, err := ReadCache(path, u)
		if err != nil {
			t.Fatalf("ReadCache(%q): %v", u, err)
		}
		if testkit.DocJSON(t, got) != testkit.DocJSON(t, doc) || got.Version != 12 {
			t.Errorf("ReadCache = %s, want %s", testkit.DocJSON(t, got), testkit.DocJSON(t, doc))
		}
	}
	// A second write replaces the first.
	doc2 := mustDoc(t, docJSON(13, "b"))
	if err := WriteCache(path, cacheURL, doc2); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadCache(path, cacheURL); err != nil || testkit.DocJSON(t, got) != testkit.DocJSON(t, doc2) {
		t.Errorf("after rewrite ReadCache = %v, %v; want version 13", got, err)
	}
	assertNoTemp(t, filepath.Dir(path))
}

func TestCacheForeignURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.cache")
	if err := WriteCache(path, cacheURL, mustDoc(t, docJSON(1, "a"))); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"https://other.example.com/base", "http://flags.example.com/base", cacheURL + "/v2"} {
		if _, err := ReadCache(path, u); !errors.Is(err, ErrCacheForeignURL) {
			t.Errorf("ReadCache(%q) = %v, want ErrCacheForeignURL", u, err)
		}
	}
}

func TestCacheCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.cache")
	if err := WriteCache(path, cacheURL, mustDoc(t, docJSON(3, "a", "b"))); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Replace(good, []byte(`"on":true`), []byte(`"on":fals`), 1)
	flipped = bytes.Replace(flipped, []byte(`"on":fals`), []byte(`"on":false`), 1) // still valid JSON
	cases := map[string][]byte{
		"empty":             {},
		"not JSON":          []byte("hello"),
		"a document":        []byte(docJSON(3, "a")), // a bare document is not a cache file
		"other format":      bytes.Replace(good, []byte(cacheFormat), []byte("flagstream-cache/9"), 1),
		"document changed":  flipped,
		"checksum changed":  bytes.Replace(good, []byte(`"sha256":"`), []byte(`"sha256":"0`), 1),
		"no document":       []byte(`{"format":"flagstream-cache/1","baseURL":"` + cacheURL + `","sha256":""}`),
		"null document":     []byte(`{"format":"flagstream-cache/1","baseURL":"` + cacheURL + `","sha256":"74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b","document":null}`),
		"trailing garbage":  append(append([]byte{}, good...), []byte("{}")...),
		"binary":            {0xff, 0xfe, 0x00, 0x01},
		"valid JSON, array": []byte(`[1,2,3]`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			doc, err := ReadCache(p, cacheURL)
			if !errors.Is(err, ErrCacheCorrupt) || doc != nil {
				t.Errorf("ReadCache = %v, %v; want nil, ErrCacheCorrupt", doc, err)
			}
		})
	}
	if _, err := ReadCache(filepath.Join(dir, "missing"), cacheURL); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadCache(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestCacheTruncated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.cache")
	if err := WriteCache(path, cacheURL, mustDoc(t, docJSON(3, "a", "b", "c"))); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every cut but the final newline must be refused.
	cut := filepath.Join(dir, "cut")
	for n := 0; n < len(good)-1; n++ {
		if err := os.WriteFile(cut, good[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if doc, err := ReadCache(cut, cacheURL); !errors.Is(err, ErrCacheCorrupt) {
			t.Fatalf("ReadCache(first %d of %d bytes) = %v, %v; want ErrCacheCorrupt", n, len(good), doc, err)
		}
	}
}

func TestCacheAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.cache")
	small := mustDoc(t, docJSON(1, "a"))
	keys := make([]string, 2000)
	for i := range keys {
		keys[i] = "flag-" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + "-" + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
	}
	large := mustDoc(t, docJSON(2, keys...))
	if err := WriteCache(path, cacheURL, small); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{testkit.DocJSON(t, small): true, testkit.DocJSON(t, large): true}

	// A reader running beside the writer must only ever see a whole file.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	reads := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		reads, readErr = readWholeCaches(t, path, want, stop)
	}()
	for i := range 60 {
		d := small
		if i%2 == 0 {
			d = large
		}
		if err := WriteCache(path, cacheURL, d); err != nil {
			t.Fatalf("WriteCache %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("concurrent ReadCache after %d good reads: %v", reads, readErr)
	}
	assertNoTemp(t, dir)

	// A write that cannot complete leaves no temporary file behind and the
	// previous file intact.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteCache(blocked, cacheURL, small); err == nil {
		t.Fatal("WriteCache over a non-empty directory succeeded")
	}
	assertNoTemp(t, dir)
	if _, err := ReadCache(path, cacheURL); err != nil {
		t.Errorf("previous cache damaged: %v", err)
	}
	if err := WriteCache(filepath.Join(dir, "no", "such", "dir"), cacheURL, small); err == nil {
		t.Error("WriteCache into a missing directory succeeded")
	}
	if err := WriteCache(path, cacheURL, nil); err == nil {
		t.Error("WriteCache(nil) succeeded")
	}
}

// readWholeCaches reads the cache at path until stop is closed or a read
// fails or gives a document not in want (by its canonical JSON). It
// returns the number of good reads and the failure.
func readWholeCaches(t *testing.T, path string, want map[string]bool, stop <-chan struct{}) (int, error) {
	reads := 0
	for {
		select {
		case <-stop:
			return reads, nil
		default:
		}
		doc, err := ReadCache(path, cacheURL)
		if err != nil {
			return reads, err
		}
		if !want[testkit.DocJSON(t, doc)] {
			return reads, errors.New("read a document that was never written")
		}
		reads++
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}
