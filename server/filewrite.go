package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flagstream/flags/internal/limited"
	"github.com/flagstream/flags/rules"
)

// lockWait is how long a write waits for another holder of the folder's
// lock before it gives up (ErrConflict).
const lockWait = 5 * time.Second

// Write makes c durable; see FileStore for the rules.
func (fs *FileStore) Write(ctx context.Context, c *Commit) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flags: file store: %w", err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(c.Changes) == 0 {
		return fs.appendAudit(c.Audit)
	}
	byFile, err := fs.placeChanges(c)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(byFile))
	if err := fs.refuseBroken(names, c.InPlace); err != nil {
		return err
	}
	dir := filepath.Dir(fs.full(AdminFile))
	unlock, err := lockDir(ctx, dir, lockWait)
	if err != nil {
		return conflictError("%v", err)
	}
	defer unlock()

	if fs.changed() {
		return fmt.Errorf("%w: %s changed on disk", ErrStale, fs.path)
	}
	// Every file is edited and written beside itself before any is
	// replaced: a failure leaves them all as they were.
	edits, err := fs.editFiles(names, byFile)
	defer discardTemps(edits)
	if err != nil {
		return err
	}
	if len(edits) == 0 {
		return fs.appendAudit(c.Audit)
	}
	if fs.beforeRename != nil {
		fs.beforeRename()
	}
	if err := fs.lastLook(edits); err != nil {
		return err
	}
	// The entries are durable before the change is: the log never misses a
	// change. (A rename that then fails, which a file already written and
	// synced beside its target hardly does, leaves an entry for a write
	// answered 500.)
	if err := fs.appendAudit(c.Audit); err != nil {
		return err
	}
	if err := fs.replaceFiles(edits); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// refuseBroken refuses to write to a file of names that did not parse or
// validate when it was loaded: an edit in place needs its members. In a
// folder, any file not in use refuses the write (SPEC §5: never overwrite an
// edit in progress): what a broken or ignored file defines is unknown, and a
// key of it written to admin.json would make that file conflict, so its
// hand edit be ignored, once fixed. A guard's rollback (inPlace) writes the
// file that defines its flag, which is in use: only that file counts.
func (fs *FileStore) refuseBroken(names []string, inPlace bool) error {
	if fs.folder && !inPlace {
		names = slices.Sorted(maps.Keys(fs.files))
	}
	for _, name := range names {
		if f := fs.files[name]; f != nil && f.err != nil {
			return conflictError("%s does not parse or validate (%v): fix it first", fs.full(name), f.err)
		}
	}
	return nil
}

// editFiles edits each file of names with its changes in byFile and writes
// it beside itself. It returns the edits made, also when it fails on a
// later file, so that their temporary files can be removed.
func (fs *FileStore) editFiles(names []string, byFile map[string][]Change) ([]*fileEdit, error) {
	var edits []*fileEdit
	for _, name := range names {
		e, err := fs.editFile(name, byFile[name])
		if err != nil {
			return edits, err
		}
		if e != nil {
			edits = append(edits, e)
		}
	}
	return edits, nil
}

// discardTemps removes the temporary files of the edits not renamed.
func discardTemps(edits []*fileEdit) {
	for _, e := range edits {
		if e.tmp != "" {
			_ = os.Remove(e.tmp)
		}
	}
}

// lastLook checks that every file still holds what its edit started from:
// an edit that landed while the temporary files were written and synced is
// loaded first, not replaced.
func (fs *FileStore) lastLook(edits []*fileEdit) error {
	for _, e := range edits {
		now, err := fs.current(e.full)
		if err != nil {
			return err
		}
		if !bytes.Equal(now, e.data) {
			return fmt.Errorf("%w: %s was edited during the write", ErrStale, e.full)
		}
	}
	return nil
}

// replaceFiles renames each edit's temporary file over its file and
// records the file as loaded.
func (fs *FileStore) replaceFiles(edits []*fileEdit) error {
	for _, e := range edits {
		if err := os.Rename(e.tmp, e.full); err != nil {
			return fmt.Errorf("flags: write %s: %w", e.full, err)
		}
		e.tmp = ""
		fs.files[e.name] = &sourceFile{size: e.fi.Size(), mod: e.fi.ModTime(), sum: sha256.Sum256(e.out), good: e.doc}
	}
	return nil
}

// placeChanges sorts the changes of c by the file they are written to. With
// one file, that file. With a folder, a key goes to admin.json unless
// another file defines it: then a single admin write is refused
// (ErrConflict), and a document push (c.Replace) or a guard's rollback
// (c.InPlace) writes it there. Deleting
// a key no file defines is nothing to write.
func (fs *FileStore) placeChanges(c *Commit) (map[string][]Change, error) {
	out := map[string][]Change{}
	for _, ch := range c.Changes {
		name := filepath.Base(fs.path)
		if fs.folder {
			name = AdminFile
			owner := fs.owner(ch.Kind, ch.Key)
			switch {
			case owner != "" && owner != AdminFile && !c.Replace && !c.InPlace:
				return nil, conflictError("%s %q is defined in %s: edit that file", ch.Kind, ch.Key, fs.full(owner))
			case owner != "":
				name = owner
			case ch.Value == nil:
				continue
			}
		}
		out[name] = append(out[name], ch)
	}
	return out, nil
}

// fileEdit is one file of a write, edited and written beside itself.
type fileEdit struct {
	name, full string
	data, out  []byte // before, after
	doc        *rules.Document
	tmp        string // the temporary file, until renamed
	fi         os.FileInfo
}

// editFile applies changes to the file name and writes the result to a
// temporary file beside it; nil when nothing changes. fs.mu and the
// folder's lock must be held.
func (fs *FileStore) editFile(name string, changes []Change) (*fileEdit, error) {
	full := fs.full(name)
	f := fs.files[name]
	data, err := fs.current(full)
	if err != nil {
		return nil, err
	}
	if !loaded(f, data) {
		return nil, fmt.Errorf("%w: %s was edited since it was loaded", ErrStale, full)
	}
	out, changed, err := spliceChanges(data, changes)
	if err != nil {
		return nil, conflictError("%s: cannot edit it in place: %v", full, err)
	}
	if !changed {
		return nil, nil
	}
	if int64(len(out)) > fs.maxSize {
		return nil, fmt.Errorf("%w: %s would be %d bytes, more than MaxFileBytes %d", ErrTooLarge, full, len(out), fs.maxSize)
	}
	doc, err := checkEdit(f, out, changes)
	if err != nil {
		return nil, fmt.Errorf("flags: %s: %w", full, err)
	}
	perm := os.FileMode(0o644)
	if fi, err := os.Stat(full); err == nil {
		perm = fi.Mode().Perm()
	}
	tmp, fi, err := writeTemp(full, out, perm)
	if err != nil {
		return nil, err
	}
	return &fileEdit{name: name, full: full, data: data, out: out, doc: doc, tmp: tmp, fi: fi}, nil
}

// current reads the file to be written: nil when a folder has no admin.json
// yet.
func (fs *FileStore) current(full string) ([]byte, error) {
	data, err := limited.ReadFile(full, fs.maxSize)
	if err != nil && fs.folder && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	return data, nil
}

// loaded reports whether data is the content last loaded from f (nil: a file
// never seen, which must still be absent).
func loaded(f *sourceFile, data []byte) bool {
	if f == nil || f.good == nil {
		return data == nil
	}
	return data != nil && sha256.Sum256(data) == f.sum
}

// checkEdit parses the edited file out and checks that it holds what the
// loaded file f held with changes applied, and nothing else changed: a
// guard against an edit in place that went wrong, before anything is
// replaced.
func checkEdit(f *sourceFile, out []byte, changes []Change) (*rules.Document, error) {
	doc, err := rules.ParseDocument(out)
	if err != nil {
		return nil, fmt.Errorf("the edited file does not parse: %w", err)
	}
	before := &rules.Document{}
	if f != nil && f.good != nil {
		before = f.good
	}
	if doc.Version != before.Version {
		return nil, fmt.Errorf("the edit changed the file's version from %d to %d", before.Version, doc.Version)
	}
	if err := checkSection(KindFlag, before.Flags, doc.Flags, changes); err != nil {
		return nil, err
	}
	if err := checkSection(KindSegment, before.Segments, doc.Segments, changes); err != nil {
		return nil, err
	}
	return doc, nil
}

// checkSection checks the section of kind, was before the edit and now
// after it: the changes of that kind are made, and the other members are
// there byte for byte, none more.
func checkSection(kind Kind, was, now map[string]json.RawMessage, changes []Change) error {
	touched := map[string]bool{}
	want := len(was)
	for _, c := range changes {
		if c.Kind != kind {
			continue
		}
		touched[c.Key] = true
		if err := checkChange(c, now); err != nil {
			return err
		}
		_, had := was[c.Key]
		if had && c.Value == nil {
			want--
		} else if !had && c.Value != nil {
			want++
		}
	}
	if len(now) != want {
		return fmt.Errorf("the edit left %d %ss, want %d", len(now), kind, want)
	}
	for key, raw := range was {
		if !touched[key] && !bytes.Equal(now[key], raw) {
			return fmt.Errorf("the edit changed %ss.%s", kind, key)
		}
	}
	return nil
}

// checkChange checks that the section now holds what c wrote: no member
// for a delete, else the value written.
func checkChange(c Change, now map[string]json.RawMessage) error {
	raw, has := now[c.Key]
	switch {
	case c.Value == nil && has:
		return fmt.Errorf("%ss.%s is still there after its delete", c.Kind, c.Key)
	case c.Value != nil && (!has || !bytes.Equal(compact(raw), c.Value)):
		return fmt.Errorf("%ss.%s is not what was written", c.Kind, c.Key)
	}
	return nil
}

// tempPrefix is how the temporary files of the atomic writes of file
// begin; a run of digits follows (os.CreateTemp).
func tempPrefix(file string) string { return "." + filepath.Base(file) + ".tmp-" }

// writeTemp writes data to a new temporary file beside path and syncs it;
// it returns its name and what it is (for the store's record, since rename
// keeps both). The caller renames or removes it.
func writeTemp(path string, data []byte, perm os.FileMode) (name string, fi os.FileInfo, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPrefix(path)+"*")
	if err != nil {
		return "", nil, fmt.Errorf("flags: write %s: %w", path, err)
	}
	defer func() {
		if cerr := tmp.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flags: write %s: %w", path, cerr)
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return "", nil, fmt.Errorf("flags: write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return "", nil, fmt.Errorf("flags: write %s: %w", path, err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return "", nil, fmt.Errorf("flags: write %s: %w", path, err)
	}
	if fi, err = tmp.Stat(); err != nil {
		return "", nil, fmt.Errorf("flags: write %s: %w", path, err)
	}
	return tmp.Name(), fi, nil
}

// syncDir makes a rename in dir durable (not supported everywhere; the
// rename is done either way).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// removeTemps removes what a crash (kill -9) between a write and its rename
// left: the store's own temporary files (".NAME.tmp-DIGITS" of the file it
// writes), nothing else. It holds the folder's lock, so it never takes the
// file of a write in progress by another process serving the same file.
func (fs *FileStore) removeTemps() {
	target := fs.path
	if fs.folder {
		target = filepath.Join(fs.path, AdminFile)
	}
	dir := filepath.Dir(target)
	unlock, err := lockDir(context.Background(), dir, lockWait)
	if err != nil {
		fs.log.Warn("flags: file store: leftover temporary files not removed", "dir", dir, "err", err)
		return
	}
	defer unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // OpenFileStore reports an unreadable folder
	}
	prefix := tempPrefix(target)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			fs.log.Warn("flags: file store: leftover temporary file not removed", "file", p, "err", err)
			continue
		}
		fs.log.Info("flags: file store: removed a temporary file left by an interrupted write", "file", p)
	}
}
