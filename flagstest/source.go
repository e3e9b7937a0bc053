package flagstest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
)

// Bounds of TestSource. They only turn a hang into a failure: a source that
// works answers in milliseconds.
const (
	sourceDeliverWithin = 10 * time.Second
	sourceStopWithin    = 5 * time.Second
)

// TestSource checks an implementation of flags.Source, in the manner of
// testing/fstest.TestFS: given a source whose backing store holds a
// document, it checks that the source delivers a document (Apply) — from
// Load, when it is a flags.Loader, or from Run within 10 s — that every
// document it delivers is valid (not nil) and named (a non-empty origin),
// that Failed always carries an error, that Run returns within 5 s of its
// context being cancelled, and that no method of flags.Updates is called
// once Run has returned. Its records go to tb.Log. It reports failures
// through tb.Errorf and returns the first document delivered (nil when
// none was).
//
//	func TestMySource(t *testing.T) {
//		src := mysource.New(testStore(t)) // a store holding some flags
//		flagstest.TestSource(t, src)
//	}
func TestSource(tb testing.TB, src flags.Source) *rules.Document {
	tb.Helper()
	rec := &recorder{delivered: make(chan struct{})}
	rec.logger = slog.New(slog.NewTextHandler(tbWriter{rec, tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if l, ok := src.(flags.Loader); ok {
		if err := l.Load(rec); err != nil {
			rec.stop()
			tb.Errorf("flagstest: TestSource: Load: %v", err)
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()

	select {
	case <-rec.delivered:
	case err := <-done:
		select {
		case <-rec.delivered: // a source with nothing more to deliver
		default:
			rec.stop()
			tb.Errorf("flagstest: TestSource: Run returned before delivering a document: %v", err)
			return nil
		}
		done <- err
	case <-time.After(sourceDeliverWithin):
		tb.Errorf("flagstest: TestSource: no document delivered within %v", sourceDeliverWithin)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(sourceStopWithin):
		rec.stop()
		tb.Errorf("flagstest: TestSource: Run did not return within %v of its context being cancelled", sourceStopWithin)
		return rec.first()
	}
	rec.stop()
	if errs := rec.errors(); len(errs) > 0 {
		tb.Errorf("flagstest: TestSource: %v", errors.Join(errs...))
	}
	return rec.first()
}

// tbWriter sends a recorder's log records to tb.Log until Run returned.
// testLogger returns a logger that writes to tb.Log, so that what a
// client logs is told under its own test rather than interleaved on
// stderr, until tb's cleanups have run (a later record is dropped:
// tb.Log would panic). A client registered after it is closed before.
func testLogger(tb testing.TB) *slog.Logger {
	w := &tbLog{tb: tb}
	tb.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{} // the test log has its own order; times are noise
		}
		return a
	}}))
}

// tbLog writes each record to tb.Log until done.
type tbLog struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *tbLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

type tbWriter struct {
	r  *recorder
	tb testing.TB
}

func (w tbWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	if !w.r.stopped {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// recorder is the Updates that TestSource hands to the source.
type recorder struct {
	logger    *slog.Logger
	mu        sync.Mutex
	docs      []*rules.Document
	stopped   bool
	problems  []error
	delivered chan struct{}
	once      sync.Once
}

func (r *recorder) check(method string) bool {
	if r.stopped {
		r.problems = append(r.problems, errors.New(method+" called after Run returned"))
		return false
	}
	return true
}

func (r *recorder) Apply(doc *rules.Document, origin string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.check("Apply") {
		return flags.ErrClosed
	}
	if doc == nil {
		r.problems = append(r.problems, errors.New("Apply called with a nil document"))
		return errors.New("flagstest: nil document")
	}
	if origin == "" {
		r.problems = append(r.problems, errors.New("Apply called with an empty origin"))
	}
	r.docs = append(r.docs, doc)
	r.once.Do(func() { close(r.delivered) })
	return nil
}

func (r *recorder) Healthy(origin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.check("Healthy")
}

func (r *recorder) Failed(origin string, err error, fatal bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.check("Failed") && err == nil {
		r.problems = append(r.problems, errors.New("Failed called with a nil error"))
	}
}

func (r *recorder) Logger() *slog.Logger { return r.logger }

func (r *recorder) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
}

func (r *recorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.problems...)
}

func (r *recorder) first() *rules.Document {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.docs) == 0 {
		return nil
	}
	return r.docs[0]
}
