package stream

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
)

// countingWriter replaces a cacheWriter's write and sleep: it counts the
// writes (the first one waits for release when hold is set) and records
// the waits without waiting.
type countingWriter struct {
	mu      sync.Mutex
	writes  []int64 // versions written
	sleeps  []time.Duration
	entered chan struct{} // closed when the first write starts
	release chan struct{}
}

func newCountingWriter(w *cacheWriter, hold bool) *countingWriter {
	cw := &countingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	if !hold {
		close(cw.release)
	}
	w.write = func(path, baseURL string, doc *rules.Document) error {
		cw.mu.Lock()
		cw.writes = append(cw.writes, doc.Version)
		first := len(cw.writes) == 1
		cw.mu.Unlock()
		if first {
			close(cw.entered)
			<-cw.release
		}
		return WriteCache(path, baseURL, doc)
	}
	w.sleep = func(ctx context.Context, d time.Duration) error {
		cw.mu.Lock()
		cw.sleeps = append(cw.sleeps, d)
		cw.mu.Unlock()
		return ctx.Err()
	}
	return cw
}

func (cw *countingWriter) counts() ([]int64, []time.Duration) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return slices.Clone(cw.writes), slices.Clone(cw.sleeps)
}

// runWriter runs w.Run until the returned stop is called; stop waits for
// Run to return.
func runWriter(w *cacheWriter) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// TestCacheWritesCoalesced: "The cache fsyncs every patch (≈800 patches/s
// ceiling)". While a write is under way, 999 documents are stored: they
// cost one more write, of the last of them, and every two writes are
// separated by a CacheWriteInterval wait.
func TestCacheWritesCoalesced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.cache")
	w := newCacheWriter(path, cacheURL, nil)
	cw := newCountingWriter(w, true)
	stop := runWriter(w)
	w.Store(mustDoc(t, docJSON(1, "a")))
	<-cw.entered
	for v := int64(2); v <= 1000; v++ {
		w.Store(mustDoc(t, docJSON(v, "a")))
	}
	close(cw.release)
	stop() // the last document is written before Run returns
	writes, sleeps := cw.counts()
	if !slices.Equal(writes, []int64{1, 1000}) {
		t.Errorf("wrote versions %v, want [1 1000]", writes)
	}
	if len(sleeps) < len(writes)-1 {
		t.Errorf("%d waits between %d writes, want at least %d", len(sleeps), len(writes), len(writes)-1)
	}
	for _, d := range sleeps {
		if d != CacheWriteInterval {
			t.Errorf("waited %v between writes, want CacheWriteInterval (%v)", d, CacheWriteInterval)
		}
	}
	if doc, err := ReadCache(path, cacheURL); err != nil || doc.Version != 1000 {
		t.Errorf("ReadCache = %v, %v; want version 1000", doc, err)
	}
}

// TestCacheWriterWritesLastOnStop: a document stored just before the
// context ends is written before Run returns; nothing stored, nothing
// written.
func TestCacheWriterWritesLastOnStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.cache")
	w := newCacheWriter(path, cacheURL, nil)
	cw := newCountingWriter(w, false)
	stop := runWriter(w)
	stop()
	if writes, _ := cw.counts(); len(writes) != 0 {
		t.Errorf("wrote %v with nothing stored", writes)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.Store(mustDoc(t, docJSON(7, "a")))
	w.Run(ctx) // already done: writes what is pending, returns
	if writes, _ := cw.counts(); !slices.Equal(writes, []int64{7}) {
		t.Errorf("wrote %v, want [7]", writes)
	}
	if doc, err := ReadCache(path, cacheURL); err != nil || doc.Version != 7 {
		t.Errorf("ReadCache = %v, %v; want version 7", doc, err)
	}
}

// TestCacheWriterRemovesOnlyItsLeftovers: "temp files stay after kill -9".
// Run starts by removing the temporary files WriteCache names for its own
// file, and nothing else.
func TestCacheWriterRemovesOnlyItsLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.cache")
	gone := []string{".flags.cache.tmp-123456", ".flags.cache.tmp-4294967295"}
	kept := []string{".flags.cache.tmp-12ab", ".flags.cache.tmp-", ".other.cache.tmp-1", "flags.cache.tmp-1", "flags.cache", "notes.txt"}
	for _, name := range append(slices.Clone(gone), kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".flags.cache.tmp-99"), 0o755); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, ".flags.cache.tmp-99")
	// A real leftover: what WriteCache creates, under the same pattern.
	tmp, err := os.CreateTemp(dir, tempPrefix("flags.cache")+"*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	gone = append(gone, filepath.Base(tmp.Name()))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	newCacheWriter(path, cacheURL, nil).Run(ctx)
	testkit.CheckSwept(t, dir, gone, kept)
}
