package stream

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flagstream/flags/internal/logging"
	"github.com/flagstream/flags/rules"
)

// CacheWriteInterval is the shortest time between two writes of a
// cacheWriter: documents stored faster than that are coalesced, and only
// the last one is written.
const CacheWriteInterval = 100 * time.Millisecond

// cacheWriter keeps a last-known-good file (WriteCache) current while
// documents pour in. Store records the latest document and returns at
// once; Run writes it, at most once per CacheWriteInterval, so a burst of
// patches costs one write and one fsync per interval rather than one per
// patch. The last document stored is always written: when Run's context is
// done, Run writes what is pending before it returns.
//
// Use one cacheWriter per file: when Run starts, it removes the temporary
// files WriteCache leaves behind when a process dies between creating and
// renaming one (".NAME.tmp-DIGITS" beside the file NAME), which a second
// writer of the same file might still be using.
type cacheWriter struct {
	path    string
	baseURL string
	logger  *slog.Logger

	mu      sync.Mutex
	pending *rules.Document // stored and not written yet
	kick    chan struct{}   // capacity 1: something is pending

	// write and sleep are WriteCache and a timer; tests replace them.
	write func(path, baseURL string, doc *rules.Document) error
	sleep func(ctx context.Context, d time.Duration) error
}

// newCacheWriter returns a cacheWriter of the file at path, holding
// documents of the server at baseURL; write failures are logged to logger
// (nil: warnings and errors to slog.Default()). It starts nothing.
func newCacheWriter(path, baseURL string, logger *slog.Logger) *cacheWriter {
	if logger == nil {
		logger = logging.Default()
	}
	return &cacheWriter{
		path: path, baseURL: baseURL, logger: logger,
		kick:  make(chan struct{}, 1),
		write: WriteCache,
		sleep: sleepCtx,
	}
}

// Store records doc as the document to write; a document stored earlier
// and not written yet is dropped. It never waits for the disk.
func (w *cacheWriter) Store(doc *rules.Document) {
	if doc == nil {
		return
	}
	w.mu.Lock()
	w.pending = doc
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run removes leftover temporary files of the cache, then writes stored
// documents until ctx is done, and finally writes the one still pending, if
// any. A failed write is logged; the next Store tries again.
func (w *cacheWriter) Run(ctx context.Context) {
	w.removeLeftovers()
	for {
		select {
		case <-ctx.Done():
			w.flush()
			return
		case <-w.kick:
		}
		w.flush()
		_ = w.sleep(ctx, CacheWriteInterval) // a done ctx ends it early
	}
}

// flush writes the pending document, if any.
func (w *cacheWriter) flush() {
	w.mu.Lock()
	doc := w.pending
	w.pending = nil
	w.mu.Unlock()
	if doc == nil {
		return
	}
	if err := w.write(w.path, w.baseURL, doc); err != nil {
		w.logger.Warn("flags: writing the last-known-good cache", "path", w.path, "version", doc.Version, "err", err)
	}
}

// removeLeftovers removes the temporary files of WriteCache for w.path, and
// only those.
func (w *cacheWriter) removeLeftovers() {
	dir, base := filepath.Split(w.path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // WriteCache will report the directory
	}
	prefix := tempPrefix(base)
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, prefix) || !allDigits(name[len(prefix):]) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			w.logger.Warn("flags: removing a leftover temporary cache file", "path", filepath.Join(dir, name), "err", err)
			continue
		}
		w.logger.Info("flags: removed a leftover temporary cache file", "path", filepath.Join(dir, name))
	}
}

// tempPrefix is the name of WriteCache's temporary files for a cache file
// named base, before the random digits os.CreateTemp adds.
func tempPrefix(base string) string { return "." + base + ".tmp-" }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
