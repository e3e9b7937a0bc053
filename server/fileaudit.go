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
	"path/filepath"
	"strconv"
	"strings"
)

// The audit log of a FileStore is a file of JSON lines, one AuditEntry a
// line, only ever appended to: each Commit's entries are written with one
// write(2) and synced (fsync) before the store's Write returns. Commits are
// serialized by the Server, so there are no concurrent writers in one
// process to group; a push of N keys is N lines, one write, one fsync.

// Bounds of one read of a FileStore's audit log (GET /v1/admin/audit): a
// page stops after scanning auditScanBytes of the log, or once the entries
// it holds reach auditPageBytes, and then names the cursor to continue
// from. So an answer costs a bounded time and memory however large the log
// has grown; a client pages through the rest.
const (
	auditScanBytes = 8 << 20
	auditPageBytes = 16 << 20
)

// auditPathFor is where the audit log of the store at path goes by default:
// beside a file, NAME.audit.jsonl for NAME.json; in a folder,
// flags.audit.jsonl (a name the folder's *.json documents never take).
func auditPathFor(path string, folder bool) string {
	if folder {
		return filepath.Join(path, "flags.audit.jsonl")
	}
	return strings.TrimSuffix(path, ".json") + ".audit.jsonl"
}

// logPerm is the mode the audit and events logs are created with: they
// hold flags' content before and after every change, and the context keys
// of users, which no other local user needs to read.
const logPerm = 0o600

// openAuditLog makes sure the audit log at path can be appended to,
// creating it, and ends a line a crash left half written, so the next entry
// starts a line of its own (the half line is skipped by readers).
func openAuditLog(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, logPerm)
	if err != nil {
		return fmt.Errorf("flags: audit log: %w (FileStoreOptions.AuditPath, `flags serve --audit-log FILE`, puts it elsewhere)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("flags: audit log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("flags: audit log %s: not a regular file", path)
	}
	ended, err := endCutLine(f, fi.Size())
	if err != nil {
		return fmt.Errorf("flags: audit log: %w", err)
	}
	if !ended {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flags: audit log: %w", err)
	}
	return nil
}

// endCutLine ends the last line of f, a JSON-lines file of size bytes open
// for appending, when a crash left it without its newline, so that the
// next line appended starts a line of its own (readers skip the cut one).
// It reports whether it wrote the newline.
func endCutLine(f *os.File, size int64) (bool, error) {
	if size == 0 {
		return false, nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return false, err
	}
	if last[0] == '\n' {
		return false, nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return false, err
	}
	return true, nil
}

// appendAudit appends entries to the audit log and syncs it.
func (fs *FileStore) appendAudit(entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var b bytes.Buffer
	for i := range entries {
		line, err := marshalNoEscape(&entries[i])
		if err != nil {
			return fmt.Errorf("flags: audit log: %w", err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	f, err := os.OpenFile(fs.auditPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, logPerm)
	if err != nil {
		return fmt.Errorf("flags: audit log: %w", err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		_ = f.Close()
		return fmt.Errorf("flags: audit log %s: %w", fs.auditPath, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("flags: audit log %s: %w", fs.auditPath, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("flags: audit log %s: %w", fs.auditPath, err)
	}
	return nil
}

// Audit reads the audit log from its start (or q.After, a byte offset),
// in the order written, which is version order: a Server over the store
// starts from the log's greatest version at least (maxAuditVersion), so its
// versions never repeat or go back across restarts, and q.Since and q.Limit
// select by version. (A log written before versions continued across
// restarts keeps the repeated versions it holds: it is only appended to.)
func (fs *FileStore) Audit(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	from, ok := offsetCursor(q.After)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBadCursor, q.After)
	}
	f, err := os.Open(fs.auditPath)
	if errors.Is(err, os.ErrNotExist) && from == 0 {
		return &AuditPage{}, nil // rotated away: the next entry makes it again
	}
	if err != nil {
		return nil, fmt.Errorf("flags: audit log: %w", err)
	}
	defer f.Close()
	if err := seekAuditCursor(f, from, q.After); err != nil {
		return nil, err
	}
	return readAuditPage(ctx, bufio.NewReaderSize(f, 64<<10), q, from)
}

// seekAuditCursor moves f to the byte offset from, the cursor after, which
// must be the start of a line within the log.
func seekAuditCursor(f *os.File, from int64, after string) error {
	if fi, err := f.Stat(); err != nil {
		return fmt.Errorf("flags: audit log: %w", err)
	} else if from > fi.Size() {
		return fmt.Errorf("%w: %q is past the end of the log", ErrBadCursor, after)
	}
	if from > 0 { // a cursor is the start of a line: the one before ends there
		prev := make([]byte, 1)
		if _, err := f.ReadAt(prev, from-1); err != nil || prev[0] != '\n' {
			return fmt.Errorf("%w: %q", ErrBadCursor, after)
		}
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return fmt.Errorf("flags: audit log: %w", err)
	}
	return nil
}

// readAuditPage reads the entries q selects from r, the log from the byte
// offset from, until the end of the log or of the page (q's limit, or the
// bounds auditScanBytes and auditPageBytes): then Next is the offset of
// the first line not read.
func readAuditPage(ctx context.Context, r *bufio.Reader, q AuditQuery, from int64) (*AuditPage, error) {
	p := NewAuditPager(q)
	pos, scanned, held := from, int64(0), 0
	err := eachAuditLine(ctx, r, func(line []byte) bool {
		if scanned >= auditScanBytes || held >= auditPageBytes {
			p.Stop(strconv.FormatInt(pos, 10))
			return false
		}
		at := pos
		pos += int64(len(line))
		scanned += int64(len(line))
		if e, ok := decodeAuditLine(line, q); ok {
			held += len(line)
			return p.Add(e, strconv.FormatInt(at, 10))
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return p.Page(), nil
}

// eachAuditLine calls fn with each complete line of r until fn returns
// false or the log ends; a last line without its newline is being written,
// and is left out.
func eachAuditLine(ctx context.Context, r *bufio.Reader, fn func(line []byte) bool) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("flags: audit log: %w", err)
		}
		if !fn(line) {
			return nil
		}
	}
}

// decodeAuditLine decodes the entry on line when q selects it. Only the
// head is decoded for the entries q leaves out; a line a crash cut short
// is none.
func decodeAuditLine(line []byte, q AuditQuery) (AuditEntry, bool) {
	var head struct {
		Version int64  `json:"version"`
		Kind    Kind   `json:"kind"`
		Key     string `json:"key"`
	}
	if json.Unmarshal(line, &head) != nil || !q.matches(head.Kind, head.Key, head.Version) {
		return AuditEntry{}, false // not selected, or a line a crash cut short
	}
	var e AuditEntry
	if json.Unmarshal(line, &e) != nil {
		return AuditEntry{}, false
	}
	return e, true
}

// maxAuditVersion returns the greatest version of the entries in the
// audit log, 0 when it holds none (or was rotated away). A Server over the
// store starts from it at least (auditFloor): admin writes never change the
// file's own "version", so a restart that started from it would publish
// versions the log already holds. It reads the whole log, once per start;
// lines that do not decode (cut short by a crash) are skipped, as readers
// skip them.
func (fs *FileStore) maxAuditVersion(ctx context.Context) (int64, error) {
	f, err := os.Open(fs.auditPath)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("flags: audit log: %w", err)
	}
	defer f.Close()
	var top int64
	err = eachAuditLine(ctx, bufio.NewReaderSize(f, 64<<10), func(line []byte) bool {
		var head struct {
			Version int64 `json:"version"`
		}
		if json.Unmarshal(line, &head) == nil {
			top = max(top, head.Version)
		}
		return true
	})
	return top, err
}

// AuditPath is the file of the store's audit log.
func (fs *FileStore) AuditPath() string { return fs.auditPath }

// EventsPath is the file of the events the server acknowledged.
func (fs *FileStore) EventsPath() string { return fs.events.Path() }

// AppendEvents appends a batch of events to the store's events file
// (EventLog).
func (fs *FileStore) AppendEvents(ctx context.Context, b *EventBatch) (bool, error) {
	return fs.events.AppendEvents(ctx, b)
}

// EventsSince reads the store's events file (EventLog).
func (fs *FileStore) EventsSince(ctx context.Context, cursor string, limit int) ([]*EventBatch, string, error) {
	return fs.events.EventsSince(ctx, cursor, limit)
}
