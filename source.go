package flags

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/flagstream/flags/rules"
)

// Source delivers flag documents to a client. Every source implements it:
// WithDocument and WithFile, package stream (a flagstream server, streamed
// or polled, with its last-known-good cache), package flagstest (the test
// fake), and whatever a program writes to load flags from somewhere
// flagstream does not know (a database, an object store). Pass it to
// WithSource; flagstest.TestSource checks an implementation.
type Source interface {
	// Run delivers documents to u until ctx is done, then returns. New
	// calls it once, on a goroutine of its own, after every option was
	// validated and every Loader loaded; Close cancels ctx and waits for
	// Run to return. A source with nothing more to deliver may return nil
	// at once. An error it returns (other than at ctx's end) is logged.
	Run(ctx context.Context, u Updates) error
}

// Loader is a Source with something to deliver before New returns: a file
// that must be valid for New to succeed, a cached snapshot to serve at
// once. New calls Load on its own goroutine, after validating every option
// and before starting any Run; an error from Load is returned by New, which
// then starts nothing. Load must not block on the network: that is Run's
// work.
type Loader interface {
	Source
	// Load checks the source's settings and delivers what it has at hand
	// through u (Apply, possibly with OriginCache). It is called at most
	// once, before Run, with the Updates that Run receives.
	Load(u Updates) error
}

// Updates is what a Source reports to its client. Its methods are safe to
// call from any goroutine. A source names itself in every call with an
// origin ("file", "stream", "poll"...), shown as Status.Source.
type Updates interface {
	// Apply compiles doc and swaps it in. When Apply returns, every later
	// evaluation sees the new flags and OnChange listeners have run — on
	// this goroutine, after the client's lock was released — unless
	// another goroutine was calling listeners at the time: that one calls
	// them with this change too, in order. It returns ErrClosed once the
	// client is closed, and an error for a nil doc; a document with
	// malformed flags is installed (those flags evaluate to errors).
	// A document delivered with origin OriginCache is served as STALE
	// until a document of another origin is applied.
	Apply(doc *rules.Document, origin string) error
	// Healthy reports that the source works: it recovered from a failure,
	// or nothing has failed yet (a Loader that says so from Load is named
	// in Status from the start, before it delivers).
	Healthy(origin string)
	// Failed reports that the source cannot currently deliver; the client
	// keeps serving its last good snapshot (state STALE). fatal means it
	// will never recover (state FATAL), such as a refused token.
	Failed(origin string, err error, fatal bool)
	// Logger returns the client's logger (WithLogger), for the source's own
	// records. It is never nil.
	Logger() *slog.Logger
}

// sink is the client's side of Updates.
type sink struct{ c *Client }

func (s sink) Apply(doc *rules.Document, origin string) error { return s.c.install(doc, origin) }

func (s sink) Logger() *slog.Logger { return s.c.logger }

func (s sink) Healthy(origin string) {
	s.c.updateHealth(func(h *health) {
		if h.failing {
			s.c.stats.recoveries.Add(1)
		}
		h.failing, h.err = false, nil
		h.source = origin
		// A live source that is healthy vouches for the snapshot in force
		// (a stream resumed after a fallback poll continues from it); a
		// cached snapshot stays STALE until a live source delivers.
		if h.origin != "" && h.origin != OriginCache {
			h.origin = origin
		}
	})
}

func (s sink) Failed(origin string, err error, fatal bool) {
	s.c.stats.failures.Add(1)
	s.c.updateHealth(func(h *health) {
		h.failing, h.err = true, err
		// The source reported stays the first one heard from: a stream
		// whose fallback poll also fails must not flap between "stream"
		// and "poll" on every retry.
		if h.source == "" {
			h.source = origin
		}
		if fatal {
			h.fatal = true
		}
	})
}

// documentSource is WithDocument: one document, parsed and installed by
// Load.
type documentSource struct{ data []byte }

func (d *documentSource) Load(u Updates) error {
	doc, err := rules.ParseDocument(d.data) // a copy: the snapshot never aliases data
	if err != nil {
		return fmt.Errorf("flags: WithDocument: %w", err)
	}
	// The client keeps its source for its lifetime: dropping the caller's
	// bytes here keeps a second copy of the document (as large as the
	// snapshot's own, 135 bytes a flag for a compact document) from being
	// held with it.
	d.data = nil
	return u.Apply(doc, "document")
}

// Run has nothing more to deliver.
func (d *documentSource) Run(context.Context, Updates) error { return nil }

// fileSource is WithFile: a JSON document on disk, installed by Load (New
// fails when it cannot be read or parsed) and watched by Run. A change is
// picked up on the next poll once the file has stayed the same for one more
// interval (a debounce against half-written files); a file that cannot be
// read or parsed is logged and the last good snapshot stays in force.
type fileSource struct {
	path       string
	interval   time.Duration
	last       [sha256.Size]byte // of the content last loaded or refused
	unreadable bool              // a read failure was reported; cleared by the next read that works
	applied    bool              // last is the content in force (not one refused)
}

// fileSourceInterval is how often a watched file is checked.
const fileSourceInterval = 500 * time.Millisecond

// fail logs a problem with the file and reports it to the client.
func (f *fileSource) fail(u Updates, err error) {
	u.Logger().Warn("flags: flag file problem", "path", f.path, "err", err)
	u.Failed("file", err, false)
}

func (f *fileSource) Load(u Updates) error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("flags: reading %s: %w", f.path, err)
	}
	f.last = sha256.Sum256(data)
	doc, err := rules.ParseDocument(data)
	if err != nil {
		return fmt.Errorf("flags: %s: %w", f.path, err)
	}
	if err := u.Apply(doc, "file"); err != nil {
		return err
	}
	f.applied = true
	return nil
}

func (f *fileSource) Run(ctx context.Context, u Updates) error {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	var pending pendingContent
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if closed := f.poll(u, &pending); closed {
			return nil
		}
	}
}

// pendingContent is a changed content seen once, applied if the next poll
// sees it again.
type pendingContent struct {
	sum  [sha256.Size]byte
	have bool
}

// poll reads the file once and applies its content when it changed and
// has settled. A failure to read is reported once per outage, not every
// interval (a missing file with a change pending, mid-replace, not at all);
// reading the content in force again after an outage makes the source
// healthy. It reports whether the client is closed.
func (f *fileSource) poll(u Updates, pending *pendingContent) (closed bool) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		if !f.unreadable && (!errors.Is(err, fs.ErrNotExist) || !pending.have) {
			f.unreadable = true
			f.fail(u, fmt.Errorf("flags: reading %s: %w", f.path, err))
		}
		pending.have = false
		return false
	}
	recovered := f.unreadable
	f.unreadable = false
	sum := sha256.Sum256(data)
	if sum == f.last {
		pending.have = false
		if recovered && f.applied {
			u.Healthy("file")
		}
		return false
	}
	if !pending.have || sum != pending.sum {
		pending.sum, pending.have = sum, true // changed: wait one more interval to see it settle
		return false
	}
	pending.have = false
	f.last = sum // do not report the same bad content again
	f.applied = false
	doc, err := rules.ParseDocument(data)
	if err != nil {
		f.fail(u, fmt.Errorf("flags: %s: %w (keeping the last good flags)", f.path, err))
		return false
	}
	if err := u.Apply(doc, "file"); err != nil {
		if errors.Is(err, ErrClosed) {
			return true
		}
		f.fail(u, err)
		return false
	}
	f.applied = true
	u.Healthy("file")
	return false
}
