package flags

import (
	"bytes"
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

// Source delivers flag documents to a client. Implement it to load flags
// from somewhere flagstream does not know (a database, an object store) and
// pass it to WithSource.
type Source interface {
	// Run delivers documents to u until ctx is done, then returns. It is
	// called once, on a goroutine of its own, when the client starts; an
	// error it returns is logged.
	Run(ctx context.Context, u Updates) error
}

// Updates is what a Source reports to its client. Its methods are safe to
// call from any goroutine.
type Updates interface {
	// Apply compiles doc and swaps it in. When Apply returns, every later
	// evaluation sees the new flags and OnChange listeners have run — on
	// this goroutine, after the client's lock was released — unless
	// another goroutine was calling listeners at the time: that one calls
	// them with this change too, in order. origin names the source in
	// Status ("file", "stream"...).
	Apply(doc *rules.Document, origin string) error
	// Healthy reports that the source works (after a failure, say).
	Healthy(origin string)
	// Failed reports that the source cannot currently deliver; the client
	// keeps serving its last good snapshot (state STALE). fatal means it
	// will never recover (state FATAL), such as a refused token.
	Failed(origin string, err error, fatal bool)
}

// sink is the client's side of Updates.
type sink struct{ c *Client }

func (s sink) Apply(doc *rules.Document, origin string) error { return s.c.install(doc, origin) }

func (s sink) Healthy(origin string) {
	s.c.updateHealth(func(h *health) {
		h.failing, h.err = false, nil
		h.source = origin
		// A live source that is healthy vouches for the snapshot in force
		// (a stream resumed after a fallback poll continues from it); a
		// cached snapshot stays STALE until a live source delivers.
		if h.origin != "" && h.origin != originCache {
			h.origin = origin
		}
	})
}

func (s sink) Failed(origin string, err error, fatal bool) {
	s.c.updateHealth(func(h *health) {
		h.failing, h.err = true, err
		// The source reported stays the one last heard working (or the one
		// configured): a stream whose fallback poll also fails must not
		// flap between "stream" and "poll" on every retry.
		if h.source == "" {
			h.source = origin
		}
		if fatal {
			h.fatal = true
		}
	})
}

// fileSource watches a JSON document on disk. A change is picked up on the
// next poll once the file has stayed the same for one more interval (a
// debounce against half-written files); a file that cannot be read or
// parsed is logged and the last good snapshot stays in force.
type fileSource struct {
	path     string
	interval time.Duration
	last     [sha256.Size]byte
	logger   *slog.Logger
}

// fail logs a problem with the file and reports it to the client.
func (f *fileSource) fail(u Updates, err error) {
	f.logger.Warn("flags: flag file problem", "path", f.path, "err", err)
	u.Failed("file", err, false)
}

// fileSourceInterval is how often a watched file is checked.
const fileSourceInterval = 500 * time.Millisecond

func (f *fileSource) load() (*rules.Document, [sha256.Size]byte, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("flags: reading %s: %w", f.path, err)
	}
	sum := sha256.Sum256(data)
	doc, err := rules.ParseDocument(data)
	if err != nil {
		return nil, sum, fmt.Errorf("flags: %s: %w", f.path, err)
	}
	return doc, sum, nil
}

func (f *fileSource) Run(ctx context.Context, u Updates) error {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	var pending [sha256.Size]byte
	havePending := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) || !havePending {
				f.fail(u, fmt.Errorf("flags: reading %s: %w", f.path, err))
			}
			havePending = false
			continue
		}
		sum := sha256.Sum256(data)
		if bytes.Equal(sum[:], f.last[:]) {
			havePending = false
			continue
		}
		if !havePending || sum != pending {
			pending, havePending = sum, true // changed: wait one more interval to see it settle
			continue
		}
		havePending = false
		doc, err := rules.ParseDocument(data)
		if err != nil {
			f.last = sum // do not report the same bad content again
			f.fail(u, fmt.Errorf("flags: %s: %w (keeping the last good flags)", f.path, err))
			continue
		}
		f.last = sum
		if err := u.Apply(doc, "file"); err != nil {
			f.fail(u, err)
			continue
		}
		u.Healthy("file")
	}
}
