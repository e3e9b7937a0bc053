package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flagstream/flags/internal/limited"
	"github.com/flagstream/flags/rules"
)

// AdminFile is the file of a folder store that admin writes of new keys go to.
const AdminFile = "admin.json"

// Defaults of FileStoreOptions.
const (
	DefaultPollInterval = 100 * time.Millisecond // a change published within 200 ms of being written: SPEC §5 allows 500 from accepting it
	DefaultMaxFileBytes = 64 << 20
)

// FileStoreOptions configures a FileStore. The zero value is usable.
type FileStoreOptions struct {
	// Logger receives reports of files ignored and reloaded; nil discards.
	Logger *slog.Logger
	// PollInterval is how often the files are checked for changes (size and
	// modification time, then content hash). A change is loaded once it has
	// been seen unchanged for one interval (a debounce against half-written
	// files), so it is published within two intervals.
	PollInterval time.Duration
	// MaxFileBytes is the largest file read; a larger one is ignored.
	MaxFileBytes int64
	// AuditPath is the file of the audit log (JSON lines, appended to).
	// Empty: beside the document file, NAME.audit.jsonl for NAME.json, or
	// flags.audit.jsonl in a folder. It is created at open; a store whose
	// audit log cannot be written does not open (give a writable path when
	// the documents are on a read-only volume).
	AuditPath string
	// EventsPath is the file of the SDK events the server acknowledged
	// (JSON lines, appended to, SPEC §7); default beside the audit log:
	// NAME.events.jsonl for NAME.audit.jsonl, else flags.events.jsonl in
	// the audit log's directory.
	EventsPath string
}

// FileStore is a Store backed by one document file, or by a folder whose
// *.json files (not those whose name starts with a dot) are merged. It
// reloads on change. A file that does not parse or validate, or that defines
// a key another file defines, is logged and ignored: the store keeps its last
// good content (SPEC §6).
//
// Admin writes are durable and change only the written key (SPEC §13). With
// one file, that file is written; with a folder, admin.json in it, and a key
// defined by another file is refused (ErrConflict). A document push
// (Commit.Replace) maps onto a folder key by key: a key another file
// defines is written in that file, a new key goes to admin.json, and a key
// the document lacks is deleted from the file that defines it; every file
// it changes is written beside itself and synced before any is renamed
// into place, so a refused or failed push changes none (a crash among the
// renames can leave some renamed: the next load serves what is on disk).
// Many keys of one file are edited in one pass over it. The new file is the old
// one with the key's value replaced in place (a new key follows the last
// member of its object, a deleted one is cut out with its separator): every
// other byte stays, in its order, including unknown members and the file's
// own "version". The value is laid out like the one it replaces (or its
// neighbour), indented when that takes at most twice the request body, else
// on one line. The file is replaced atomically: a temporary file beside it
// (".NAME.tmp-N", removed at open if a crash left one), fsync, rename,
// fsync of the folder.
//
// A write never overwrites an edit it has not loaded. While the file to be
// written does not parse or validate, writes are refused (ErrConflict). A
// write first checks that the files are what was last loaded (the written
// file by its content hash); if not, it returns ErrStale and the Server loads
// the edit, publishes it, and writes again on top of it. The check and the
// replacement hold the store's lock, which its watcher's loads take too, and
// an exclusive flock(2) on the folder: a program that edits the file while
// the server runs and holds that lock while it reads and replaces the file
// (flock(1): flock DIR -c '...') can never interleave with a write. An
// editor that does not take the lock is still checked for once more just
// before the rename, which leaves it a window of microseconds.
type FileStore struct {
	path    string
	folder  bool
	log     *slog.Logger
	poll    time.Duration
	maxSize int64

	auditPath string
	events    *FileEventLog

	mu      sync.Mutex
	files   map[string]*sourceFile // by name inside the folder (or the file's base name)
	listErr string                 // why the folder could not be listed at the last scan
	opened  bool                   // OpenFileStore returned: a file ignored is logged (before, it is OpenFileStore's error)

	// beforeRename, when set (tests), runs in Write between the temporary
	// file's sync and the last check before the rename.
	beforeRename func()
}

// sourceFile is what is known of one file.
type sourceFile struct {
	size int64
	mod  time.Time
	sum  [32]byte        // of the content last read or written; zero: unreadable
	good *rules.Document // last good content, merged into the store; nil: none
	cand *rules.Document // newer content refused for a duplicate key; retried
	err  error           // why the current content is not used
}

// OpenFileStore opens the document file or folder at path and loads it. A
// file that cannot be read, does not parse or validate, or defines a key
// another file defines makes it fail, naming the file.
func OpenFileStore(path string, opts FileStoreOptions) (*FileStore, error) {
	if err := opts.resolve(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	fs := &FileStore{path: path, folder: fi.IsDir(), log: opts.Logger, poll: opts.PollInterval,
		maxSize: opts.MaxFileBytes, files: map[string]*sourceFile{}, auditPath: opts.AuditPath}
	if err := fs.openLogs(opts.EventsPath); err != nil {
		return nil, err
	}
	defer func() {
		if !fs.opened { // after fs.mu's unlock, deferred below: fs is not shared yet
			fs.events.Close()
		}
	}()
	fs.removeTemps()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.scan(); err != nil {
		return nil, err
	}
	if err := fs.fileErrors(); err != nil {
		return nil, err
	}
	fs.opened = true
	return fs, nil
}

// resolve checks the options and fills in their defaults.
func (o *FileStoreOptions) resolve() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !orDefault(&o.PollInterval, DefaultPollInterval) || !orDefault(&o.MaxFileBytes, DefaultMaxFileBytes) {
		return fmt.Errorf("flags: file store: negative PollInterval or MaxFileBytes")
	}
	return nil
}

// openLogs opens the audit log (fs.auditPath, by default beside the
// documents) and the events file (eventsPath, by default beside the audit
// log, so that AuditPath alone moves every file the store writes off a
// read-only volume).
func (fs *FileStore) openLogs(eventsPath string) error {
	if fs.auditPath == "" {
		fs.auditPath = auditPathFor(fs.path, fs.folder)
	}
	if err := openAuditLog(fs.auditPath); err != nil {
		return err
	}
	if eventsPath == "" {
		eventsPath = filepath.Join(filepath.Dir(fs.auditPath), "flags.events.jsonl")
		if base, ok := strings.CutSuffix(fs.auditPath, ".audit.jsonl"); ok {
			eventsPath = base + ".events.jsonl"
		}
	}
	ev, err := OpenFileEventLog(eventsPath)
	if err != nil {
		return err
	}
	fs.events = ev
	return nil
}

// fileErrors joins why each file that failed to load failed, naming it, in
// the order of their names; nil when all loaded. fs.mu must be held.
func (fs *FileStore) fileErrors() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(fs.files)) {
		if f := fs.files[name]; f.err != nil {
			errs = append(errs, fmt.Errorf("flags: %s: %w", fs.full(name), f.err))
		}
	}
	return errors.Join(errs...)
}

// Load rescans the files and returns the merged content.
func (fs *FileStore) Load(context.Context) (*rules.Document, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.scan(); err != nil {
		fs.log.Error("flags: file store: scan failed; keeping the last good content", "path", fs.path, "err", err)
	}
	return fs.merged(), nil
}

// Watch polls the files every PollInterval and calls notify once a change
// has stayed put for one interval.
func (fs *FileStore) Watch(ctx context.Context, notify func()) {
	prev := ""
	everyTick(ctx, fs.poll, func() {
		sig := fs.signature()
		if sig == prev {
			fs.mu.Lock()
			changed := fs.changed()
			fs.mu.Unlock()
			if changed {
				notify()
			}
		}
		prev = sig
	})
}

func (fs *FileStore) full(name string) string {
	if fs.folder {
		return filepath.Join(fs.path, name)
	}
	return fs.path
}

// names lists the files of the store.
func (fs *FileStore) names() ([]string, error) {
	if !fs.folder {
		return []string{filepath.Base(fs.path)}, nil
	}
	names, err := FolderDocuments(fs.path)
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	return names, nil
}

// FolderDocuments lists the documents a FileStore over the folder dir
// merges: the *.json files whose name does not start with a dot (the
// store's own temporary files do), in name order. Tools that read a folder
// as the server does (`flags lint`, `flags eval`) list it with this, so
// they cannot disagree with it about which files count.
func FolderDocuments(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") || e.IsDir() {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// signature sums up the names, sizes and modification times of the files.
func (fs *FileStore) signature() string {
	names, err := fs.names()
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, n := range names {
		fi, err := os.Stat(fs.full(n))
		if err != nil {
			fmt.Fprintf(&b, "%s:missing\n", n)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d", n, fi.Size(), fi.ModTime().UnixNano())
		if racy(fi.ModTime()) {
			// Timestamps are coarse: a second write in the same tick with the
			// same size would look unchanged. Recently modified files are told
			// apart by their content.
			if data, err := limited.ReadFile(fs.full(n), fs.maxSize); err == nil {
				fmt.Fprintf(&b, ":%x", sha256.Sum256(data))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// changed reports whether the files differ from what was last scanned (or
// written): a file added or removed, another size or modification time, or,
// for a file modified within racyWindow, another content. fs.mu must be held.
func (fs *FileStore) changed() bool {
	names, err := fs.names()
	if err != nil {
		return err.Error() != fs.listErr
	}
	if fs.listErr != "" || len(names) != len(fs.files) {
		return true
	}
	for _, n := range names {
		f := fs.files[n]
		if f == nil {
			return true
		}
		fi, err := os.Stat(fs.full(n))
		if err != nil {
			if f.size != -1 {
				return true
			}
			continue
		}
		if fi.Size() != f.size || !fi.ModTime().Equal(f.mod) {
			return true
		}
		if racy(fi.ModTime()) {
			data, err := limited.ReadFile(fs.full(n), fs.maxSize)
			if err == nil && sha256.Sum256(data) != f.sum {
				return true
			}
		}
	}
	return false
}

// racyWindow is how long after its modification time a file is checked by
// content rather than by size and time alone.
const racyWindow = 2 * time.Second

func racy(mod time.Time) bool {
	d := time.Since(mod)
	return d < racyWindow && d > -racyWindow
}

// scan reads the files that changed and decides which content of each is
// used. fs.mu must be held.
func (fs *FileStore) scan() error {
	names, err := fs.names()
	if err != nil {
		// Looked at: the watcher does not notify again until it changes.
		fs.listErr = err.Error()
		return err
	}
	fs.listErr = ""
	present := map[string]bool{}
	for _, n := range names {
		present[n] = true
		fs.read(n)
	}
	if fs.folder {
		for n := range fs.files {
			if !present[n] {
				fs.log.Info("flags: file removed", "file", fs.full(n))
				delete(fs.files, n)
			}
		}
	}
	fs.accept()
	return nil
}

// read refreshes what is known of one file; a new content that parses
// becomes its candidate.
func (fs *FileStore) read(name string) {
	full := fs.full(name)
	f := fs.files[name]
	if f == nil {
		f = &sourceFile{}
		fs.files[name] = f
	}
	fail := func(err error) {
		if f.err == nil || f.err.Error() != err.Error() {
			fs.ignored(full, err)
		}
		f.err, f.cand = err, nil
	}
	fi, err := os.Stat(full)
	if err != nil {
		f.size, f.mod, f.sum = -1, time.Time{}, [32]byte{}
		fail(err)
		return
	}
	if fi.Size() == f.size && fi.ModTime().Equal(f.mod) && !racy(f.mod) {
		return
	}
	data, err := limited.ReadFile(full, fs.maxSize)
	if err != nil {
		f.sum = [32]byte{}
		fail(err)
		return
	}
	f.size, f.mod = fi.Size(), fi.ModTime()
	sum := sha256.Sum256(data)
	// The same bytes as last read: f.good, f.cand and f.err already say
	// what they are worth. (A file that could not be read has no sum, so
	// that the same bytes coming back, once it can be, are parsed again
	// and clear the error.)
	if sum == f.sum && (f.good != nil || f.cand != nil) {
		return
	}
	f.sum = sum
	doc, err := rules.ParseDocument(data)
	if err != nil {
		fail(err)
		return
	}
	f.cand, f.err = doc, nil
}

// ignored logs that the file at path was ignored for err, once the store
// is open: before, err is what OpenFileStore returns, and there is no good
// content to serve instead.
func (fs *FileStore) ignored(path string, err error) {
	if fs.opened {
		fs.log.Warn("flags: file ignored; serving its last good content", "file", path, "err", err)
	}
}

// accept makes each candidate the file's good content unless it defines a
// key another file's good content defines. fs.mu must be held.
func (fs *FileStore) accept() {
	for _, name := range slices.Sorted(maps.Keys(fs.files)) {
		f := fs.files[name]
		if f.cand == nil {
			continue
		}
		if dup := fs.duplicate(name, f.cand); dup != "" {
			err := errors.New(dup)
			if f.err == nil || f.err.Error() != err.Error() {
				fs.ignored(fs.full(name), err)
			}
			f.err = err
			continue
		}
		if f.good != nil {
			fs.log.Info("flags: file reloaded", "file", fs.full(name))
		}
		f.good, f.cand, f.err = f.cand, nil, nil
	}
}

// duplicate describes the first key of doc that a file other than name
// defines, or returns "".
func (fs *FileStore) duplicate(name string, doc *rules.Document) string {
	for _, kind := range []Kind{KindFlag, KindSegment} {
		m := doc.Flags
		if kind == KindSegment {
			m = doc.Segments
		}
		for _, key := range slices.Sorted(maps.Keys(m)) {
			if owner := fs.ownerExcept(kind, key, name); owner != "" {
				return fmt.Sprintf("%s %q is also defined in %s", kind, key, fs.full(owner))
			}
		}
	}
	return ""
}

// owner names the file whose good content defines key, or "".
func (fs *FileStore) owner(kind Kind, key string) string { return fs.ownerExcept(kind, key, "") }

func (fs *FileStore) ownerExcept(kind Kind, key, except string) string {
	for name, f := range fs.files {
		if name == except || f.good == nil {
			continue
		}
		m := f.good.Flags
		if kind == KindSegment {
			m = f.good.Segments
		}
		if _, ok := m[key]; ok {
			return name
		}
	}
	return ""
}

// merged is the union of every file's good content; its version is the
// largest of theirs. fs.mu must be held.
func (fs *FileStore) merged() *rules.Document {
	out := &rules.Document{Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	for _, f := range fs.files {
		if f.good == nil {
			continue
		}
		out.Version = max(out.Version, f.good.Version)
		maps.Copy(out.Flags, f.good.Flags)
		maps.Copy(out.Segments, f.good.Segments)
	}
	return out
}
