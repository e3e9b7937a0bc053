package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// EventBatch is one batch of SDK events the server accepted (SPEC §7), as
// an EventLog keeps it: its id, when it was received, and its valid events,
// their times already clamped to Received.
type EventBatch struct {
	ID       string  `json:"batch"`
	Received int64   `json:"received"` // Unix ms
	Events   []Event `json:"events"`
}

// EventLog is where a Server keeps the events it acknowledged. A Store that
// implements it keeps them (the file store in a file beside the flags, the
// PostgreSQL store in a table); over another Store they are kept in memory
// and lost when the process ends.
type EventLog interface {
	// AppendEvents makes b durable before it returns, unless a batch of
	// the same ID is already kept: then it reports duplicate and changes
	// nothing. IDs are remembered for at least BatchIDRetention.
	AppendEvents(ctx context.Context, b *EventBatch) (duplicate bool, err error)
	// EventsSince returns the batches appended after cursor ("" for the
	// first), oldest first, at most limit of them, and the cursor after
	// the last one returned. With replicas, it returns every replica's
	// batches.
	EventsSince(ctx context.Context, cursor string, limit int) ([]*EventBatch, string, error)
}

// BatchIDRetention is how long an EventLog remembers batch ids at least
// (SPEC §7: a retried batch is accepted once).
const BatchIDRetention = 24 * time.Hour

// memoryEvents is the EventLog of stores that keep no events: in memory.
type memoryEvents struct {
	mu      sync.Mutex
	batches []*EventBatch
	ids     batchIDs
}

func (m *memoryEvents) AppendEvents(_ context.Context, b *EventBatch) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ids.add(b.ID, b.Received) {
		return true, nil
	}
	m.batches = append(m.batches, b)
	return false, nil
}

func (m *memoryEvents) EventsSince(_ context.Context, cursor string, limit int) ([]*EventBatch, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := offsetCursor(cursor)
	if !ok || n > int64(len(m.batches)) {
		return nil, cursor, fmt.Errorf("flags: events: bad cursor %q", cursor)
	}
	from := int(n)
	to := min(len(m.batches), from+limit)
	return m.batches[from:to:to], strconv.Itoa(to), nil
}

// batchIDs remembers batch ids, forgetting those older than
// BatchIDRetention now and then (amortized).
type batchIDs struct {
	seen   map[string]int64 // id → received, Unix ms
	pruned int64
}

// add records id and reports whether it is new.
func (b *batchIDs) add(id string, received int64) bool {
	if b.seen == nil {
		b.seen = map[string]int64{}
	}
	if _, ok := b.seen[id]; ok {
		return false
	}
	b.seen[id] = received
	if received-b.pruned > time.Hour.Milliseconds() {
		cut := received - BatchIDRetention.Milliseconds()
		for k, at := range b.seen {
			if at < cut {
				delete(b.seen, k)
			}
		}
		b.pruned = received
	}
	return true
}

// FileEventLog is an EventLog in an append-only JSON-lines file, one batch a
// line. Appends are made durable in groups: requests that append at the
// same time share one fsync, so a burst of batches costs a few syncs, not
// one each. The ids of its batches are read back when it is opened.
type FileEventLog struct {
	path string

	mu      sync.Mutex // guards f, written, ids
	f       *os.File
	written int64 // bytes appended
	ids     batchIDs

	syncMu sync.Mutex // one fsync at a time
	synced int64      // bytes known durable; guarded by syncMu (read under mu too)
}

// OpenFileEventLog opens (or creates) the events file at path. A last line
// cut short by a crash is ended, and skipped when read.
func OpenFileEventLog(path string) (*FileEventLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, logPerm)
	if err != nil {
		return nil, fmt.Errorf("flags: events log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flags: events log: %w", err)
	}
	l := &FileEventLog{path: path, f: f, written: fi.Size()}
	ended, err := endCutLine(f, l.written)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flags: events log: %w", err)
	}
	if ended {
		l.written++
	}
	l.synced = l.written
	err = l.scan(0, l.written, func(b *EventBatch) bool {
		l.ids.add(b.ID, b.Received)
		return true
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// Path is the file's path.
func (l *FileEventLog) Path() string { return l.path }

// Close closes the file.
func (l *FileEventLog) Close() error { return l.f.Close() }

// AppendEvents appends b as one line and returns once it is synced.
func (l *FileEventLog) AppendEvents(_ context.Context, b *EventBatch) (bool, error) {
	line, err := json.Marshal(b)
	if err != nil {
		return false, fmt.Errorf("flags: events log: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	if _, ok := l.ids.seen[b.ID]; ok {
		l.mu.Unlock()
		return true, nil
	}
	if _, err := l.f.Write(line); err != nil {
		l.mu.Unlock()
		return false, fmt.Errorf("flags: events log: %w", err)
	}
	l.written += int64(len(line))
	end := l.written
	l.ids.add(b.ID, b.Received)
	l.mu.Unlock()
	return false, l.syncTo(end)
}

// syncTo returns once the first end bytes are durable: the first caller
// syncs for everyone who wrote before it started.
func (l *FileEventLog) syncTo(end int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= end {
		return nil
	}
	l.mu.Lock()
	target := l.written
	l.mu.Unlock()
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("flags: events log: sync: %w", err)
	}
	l.synced = target
	return nil
}

// EventsSince reads the batches after byte offset cursor, up to what is
// synced.
func (l *FileEventLog) EventsSince(_ context.Context, cursor string, limit int) ([]*EventBatch, string, error) {
	from, ok := offsetCursor(cursor)
	if !ok {
		return nil, cursor, fmt.Errorf("flags: events log: bad cursor %q", cursor)
	}
	l.syncMu.Lock()
	end := l.synced
	l.syncMu.Unlock()
	var out []*EventBatch
	next := from
	err := l.scanLines(from, end, func(b *EventBatch, after int64) bool {
		if b != nil {
			out = append(out, b)
		}
		next = after
		return len(out) < limit
	})
	return out, strconv.FormatInt(next, 10), err
}

// scan calls fn for each batch between the offsets from and end.
func (l *FileEventLog) scan(from, end int64, fn func(*EventBatch) bool) error {
	return l.scanLines(from, end, func(b *EventBatch, _ int64) bool { return b == nil || fn(b) })
}

// scanLines calls fn for every complete line between from and end, with
// its batch (nil for a line that does not decode: cut by a crash) and the
// offset after it, until fn returns false.
func (l *FileEventLog) scanLines(from, end int64, fn func(b *EventBatch, after int64) bool) error {
	r := bufio.NewReaderSize(io.NewSectionReader(l.f, from, end-from), 64<<10)
	off := from
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // an unfinished line is not read yet
		}
		if err != nil {
			return fmt.Errorf("flags: events log %s: %w", l.path, err)
		}
		off += int64(len(line))
		var b EventBatch
		if json.Unmarshal(bytes.TrimSpace(line), &b) != nil || b.ID == "" {
			if !fn(nil, off) {
				return nil
			}
			continue
		}
		if !fn(&b, off) {
			return nil
		}
	}
}
