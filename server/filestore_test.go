package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/rules"
)

const testPoll = 5 * time.Millisecond

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile is the content of the file at path.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// docFile writes doc as flags.json in a new temporary directory, the file
// most FileStore tests serve, and returns its path.
func docFile(t testing.TB, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flags.json")
	writeFile(t, path, doc)
	return path
}

// openFileServer opens the file store at path and a Server over it, failing
// the test when either fails. The caller serves it (serve), once it has set
// what it needs to before the first request.
func openFileServer(t testing.TB, path string, fo FileStoreOptions, o Options) (*FileStore, *Server) {
	t.Helper()
	store, err := OpenFileStore(path, fo)
	if err != nil {
		t.Fatalf("OpenFileStore: %v", err)
	}
	srv, err := New(store, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return store, srv
}

// readDoc reads a document file and its top-level members.
func readDoc(t *testing.T, path string) (*rules.Document, map[string]json.RawMessage) {
	t.Helper()
	data := readFile(t, path)
	doc, err := rules.ParseDocument(data)
	if err != nil {
		t.Fatalf("%s does not parse: %v\n%s", path, err, data)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	return doc, top
}

// fileServer serves path through a FileStore polling every testPoll.
func fileServer(t *testing.T, path string) (*Server, string, <-chan string) {
	t.Helper()
	logger, logs := newLogSink()
	_, srv := openFileServer(t, path, FileStoreOptions{Logger: logger, PollInterval: testPoll}, Options{Epoch: "e1", AdminToken: adminToken, Logger: logger})
	return srv, serve(t, srv).URL, logs
}

// unpolledFileServer serves baseDoc from a file store that never polls, so
// that only an admin write finds a hand edit, and opens a stream past its
// snapshot.
func unpolledFileServer(t *testing.T) (path string, store *FileStore, srv *Server, url string, c *sseClient) {
	t.Helper()
	path = docFile(t, baseDoc)
	store, srv = openFileServer(t, path, FileStoreOptions{PollInterval: time.Hour}, Options{AdminToken: adminToken, Epoch: "e1"})
	url = serve(t, srv).URL
	c = openStream(t, url, "", "")
	c.next(t)
	return path, store, srv, url, c
}

func TestFileStoreAdminDurable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	writeFile(t, path, strings.Replace(baseDoc, `"version": 17,`, `"version": 17, "$schema": "https://example.com/s.json",`, 1))
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	_, url, _ := fileServer(t, path)
	c := openStream(t, url, "", "")
	c.next(t)

	for _, st := range []struct{ method, path, body string }{
		{"PUT", "flags/x", `{"variations": [true], "fallthrough": {"variation": 0}, "note": "<&>"}`},
		{"PUT", "flags/new-checkout", `{"on": false, "variations": [false, true], "fallthrough": {"variation": 0}}`},
		{"DELETE", "flags/banner-text", ""},
		{"PUT", "segments/beta-testers", `{"included": ["u7"]}`},
	} {
		resp, body := do(t, st.method, url+"/v1/admin/"+st.path, adminToken, st.body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s = %d %s", st.method, st.path, resp.StatusCode, body)
		}
		c.nextPatch(t)
	}
	// Durable before the answer: the file holds every write now.
	checkFileHoldsWrites(t, dir, path)

	// The server's own writes are not reloaded as changes: the next patch is
	// an edit of the file, at the next version, holding only that edit.
	data, _ := os.ReadFile(path)
	writeFile(t, path, strings.Replace(string(data), `"u7"`, `"u8"`, 1))
	_, p := c.nextPatch(t)
	if p.Version != 22 || len(p.Flags) != 0 || len(p.Segments) != 1 {
		t.Errorf("edit published %+v, want version 22 with beta-testers only", p)
	}
}

// TestFileStoreBackAfterMissing: a served file that went missing, or could
// not be read, and came back with the very bytes it had is in use again:
// admin writes, refused while it was gone (SPEC §5), are accepted as soon
// as the store has looked at it again, although its content never changed
// (git stash and checkout, editors and deploy scripts that remove the file
// and write it anew). Nothing is published for it: nothing changed.
func TestFileStoreBackAfterMissing(t *testing.T) {
	const maxBytes = len(baseDoc) + 1000
	for name, tc := range map[string]struct {
		away, back func(t *testing.T, path string)
	}{
		"renamed away and back": { // the same size and modification time
			away: func(t *testing.T, path string) { renameFile(t, path, path+".moved") },
			back: func(t *testing.T, path string) { renameFile(t, path+".moved", path) },
		},
		"removed and written again": {
			away: func(t *testing.T, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			},
			back: func(t *testing.T, path string) { writeFile(t, path, baseDoc) },
		},
		"too large to read, then as before": {
			away: func(t *testing.T, path string) { writeFile(t, path, baseDoc+strings.Repeat(" ", 2*maxBytes)) },
			back: func(t *testing.T, path string) { writeFile(t, path, baseDoc) },
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := docFile(t, baseDoc)
			_, srv := openFileServer(t, path, FileStoreOptions{PollInterval: time.Hour, MaxFileBytes: int64(maxBytes)},
				Options{AdminToken: adminToken, Epoch: "e1"})
			url := serve(t, srv).URL
			put := func(key string) (*http.Response, string) {
				return do(t, "PUT", url+"/v1/admin/flags/"+key, adminToken, `{"variations": [1], "fallthrough": {"variation": 0}}`)
			}
			ctx := context.Background()

			tc.away(t, path)
			srv.reload(ctx) // what the watcher does once it sees the change
			if resp, body := put("x1"); resp.StatusCode != http.StatusConflict {
				t.Fatalf("PUT while the file is away = %d %s, want 409", resp.StatusCode, body)
			}
			tc.back(t, path)
			srv.reload(ctx)
			if resp, body := put("x2"); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT once the file is back = %d %s, want 200", resp.StatusCode, body)
			}
			if v := srv.Version(); v != 18 {
				t.Errorf("version %d, want 18: the file's return published nothing, the PUT one patch", v)
			}
			if doc, _ := readDoc(t, path); doc.Flags["x2"] == nil || doc.Flags["x1"] != nil {
				t.Errorf("the file holds %v, want x2 (written) and not x1 (refused)", slices.Sorted(maps.Keys(doc.Flags)))
			}
		})
	}
}

// renameFile renames the file at from to to.
func renameFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// checkFileHoldsWrites checks the file TestFileStoreAdminDurable's writes
// left: every write in it, its own version, unknown members and mode kept,
// and no temporary file beside it.
func checkFileHoldsWrites(t *testing.T, dir, path string) {
	t.Helper()
	doc, top := readDoc(t, path)
	if doc.Version != 17 {
		t.Errorf("file version %d, want 17: the file's own version is left as it is", doc.Version)
	}
	if string(top["$schema"]) != `"https://example.com/s.json"` {
		t.Errorf("unknown top-level member $schema = %s, want kept", top["$schema"])
	}
	if got := member(t, doc.Flags["x"], "note"); got != "<&>" {
		t.Errorf("x.note = %v in the file", got)
	}
	if got := member(t, doc.Flags["new-checkout"], "version"); got != 4.0 {
		t.Errorf("new-checkout version in the file = %v, want 4", got)
	}
	if _, ok := doc.Flags["banner-text"]; ok {
		t.Error("banner-text still in the file after DELETE")
	}
	if got := included(t, doc); len(got) != 1 {
		t.Errorf("beta-testers.included in the file = %v", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v after rewrite, want 0600 kept", fi.Mode().Perm())
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"flags.audit.jsonl", "flags.events.jsonl", "flags.json"}) {
		t.Errorf("the folder holds %q, want the file, its audit and events logs alone (no temporary files left)", names)
	}
}

func TestFileStoreReload(t *testing.T) {
	path := docFile(t, baseDoc)
	srv, url, logs := fileServer(t, path)
	c := openStream(t, url, "", "")
	c.next(t)

	// One flag changed, another only renumbered, the document's version
	// rewound: one patch, the next version, the changed flag only.
	edit := strings.Replace(baseDoc, `"version": 17`, `"version": 1`, 1)
	edit = strings.Replace(edit, `"version": 3, "on": true`, `"version": 3, "on": false`, 1)
	edit = strings.Replace(edit, `"version": 2, "included"`, `"version": 9, "included"`, 1)
	writeFile(t, path, edit)
	ev, p := c.nextPatch(t)
	if ev.ID != "e1:18" || len(p.Flags) != 1 || len(p.Segments) != 0 {
		t.Fatalf("reload published %s (id %s), want new-checkout only at e1:18", ev.Data, ev.ID)
	}
	if got := member(t, p.Flags["new-checkout"], "version"); got != 4.0 {
		t.Errorf("new-checkout version %v, want 4", got)
	}

	// A file that does not parse is ignored, the last good content stays,
	// and admin writes are refused so the edit in progress is not lost.
	writeFile(t, path, `{"flags": {`)
	awaitLog(t, logs, "file ignored", path)
	if srv.Version() != 18 || srv.Document().Flags["banner-text"] == nil {
		t.Errorf("a bad file changed what is served")
	}
	resp, body := do(t, "PUT", url+"/v1/admin/flags/x", adminToken, `{"variations": [true], "fallthrough": {"variation": 0}}`)
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT while the file does not parse = %d %s, want 409", resp.StatusCode, body)
	}
	data, _ := os.ReadFile(path)
	if string(data) != `{"flags": {` {
		t.Errorf("the bad file was overwritten: %s", data)
	}
	// A document of the wrong shape is ignored too, and so is one naming
	// a flag twice: which of the two was meant is anybody's guess.
	writeFile(t, path, `{"flags": []}`)
	awaitLog(t, logs, "file ignored", "flags: want an object")
	writeFile(t, path, strings.Replace(edit, `"banner-text": {`, `"new-checkout": {"on": true}, "banner-text": {`, 1))
	awaitLog(t, logs, "file ignored", "flags.new-checkout: named twice")

	// Fixed: the difference from what is served is published.
	writeFile(t, path, strings.Replace(edit, `"banner-text": {`, `"banner-text": {"description": "d", `, 1))
	_, p = c.nextPatch(t)
	if p.Version != 19 || len(p.Flags) != 1 || p.Flags["banner-text"] == nil {
		t.Errorf("fixed file published %+v, want banner-text at 19", p)
	}

	// A file removed is reported; the last good content stays.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	awaitLog(t, logs, "file ignored", path)
	if srv.Document().Flags["banner-text"] == nil {
		t.Error("a removed file emptied the server")
	}
}

func TestFolderStore(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	flag := describedFlag
	writeFile(t, a, `{"version": 5, "flags": {"a1": `+flag("a")+`}, "segments": {"s1": {"included": ["u"]}}}`)
	writeFile(t, b, `{"version": 9, "flags": {"b1": `+flag("b")+`}}`)
	writeFile(t, filepath.Join(dir, "notes.txt"), `not a document`)
	writeFile(t, filepath.Join(dir, ".editing.json"), `{broken`)
	srv, url, logs := fileServer(t, dir)
	if srv.Version() != 9 {
		t.Errorf("Version = %d, want 9 (the largest of the files)", srv.Version())
	}
	doc := srv.Document()
	if len(doc.Flags) != 2 || len(doc.Segments) != 1 {
		t.Fatalf("merged %d flags, %d segments; want 2 and 1", len(doc.Flags), len(doc.Segments))
	}
	c := openStream(t, url, "", "")
	c.next(t)

	admin := filepath.Join(dir, AdminFile)
	for _, st := range []folderWrite{
		{"PUT", "n", flag("n"), 200, true},
		{"PUT", "b1", flag("b2"), 409, true},
		{"DELETE", "a1", "", 409, true},
		{"PUT", "n", flag("n2"), 200, true},
		{"DELETE", "n", "", 200, false},
	} {
		st.check(t, url, admin, c)
	}
	v := srv.Version()

	// b.json now also defines a1: ignored whole, its last good content kept.
	writeFile(t, b, `{"flags": {"b1": `+flag("b-changed")+`, "a1": `+flag("dup")+`}}`)
	awaitLog(t, logs, "file ignored", "b.json", `flag "a1" is also defined`)
	doc = srv.Document()
	if member(t, doc.Flags["a1"], "description") != "a" || member(t, doc.Flags["b1"], "description") != "b" {
		t.Errorf("duplicate changed what is served: a1 %s, b1 %s", doc.Flags["a1"], doc.Flags["b1"])
	}
	// Fixed: b.json's change is published, nothing before it.
	writeFile(t, b, `{"flags": {"b1": `+flag("b-changed")+`}}`)
	_, p := c.nextPatch(t)
	if p.Version != v+1 || len(p.Flags) != 1 || member(t, p.Flags["b1"], "description") != "b-changed" {
		t.Errorf("fixed b.json published %+v, want b1 only at %d", p, v+1)
	}
	// A file removed from the folder takes its keys with it.
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	_, p = c.nextPatch(t)
	if string(p.Flags["a1"]) != "null" || string(p.Segments["s1"]) != "null" {
		t.Errorf("removing a.json published %+v, want a1 and s1 deleted", p)
	}
	// A bad admin.json blocks admin writes (409), not the other files.
	writeFile(t, admin, `{"flags": `)
	awaitLog(t, logs, "file ignored", AdminFile)
	resp, body := do(t, "PUT", url+"/v1/admin/flags/z", adminToken, flag("z"))
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT with a bad admin.json = %d %s, want 409", resp.StatusCode, body)
	}
}

// describedFlag is a valid flag with description desc.
func describedFlag(desc string) string {
	return `{"variations": [true], "fallthrough": {"variation": 0}, "description": "` + desc + `"}`
}

// folderWrite is an admin write of flag n into a folder store: a key that
// another file defines is refused with 409, the others land in admin.json.
type folderWrite struct {
	method, key, body string
	want              int
	inAdmin           bool // afterwards, admin.json holds the key
}

// check sends the write, checks its answer and, once it published, whether
// the admin file holds n.
func (st folderWrite) check(t *testing.T, url, admin string, c *sseClient) {
	t.Helper()
	resp, body := do(t, st.method, url+"/v1/admin/flags/"+st.key, adminToken, st.body)
	if resp.StatusCode != st.want {
		t.Fatalf("%s %s = %d %s, want %d", st.method, st.key, resp.StatusCode, body, st.want)
	}
	if st.want == 409 && !strings.Contains(body, ".json") {
		t.Errorf("409 %s does not name the file that defines the key", body)
	}
	if st.want == 200 {
		c.nextPatch(t)
	}
	ad, _ := readDoc(t, admin)
	if _, ok := ad.Flags["n"]; ok != st.inAdmin {
		t.Errorf("after %s %s: n in admin.json = %v, want %v", st.method, st.key, ok, st.inAdmin)
	}
}

func TestOpenFileStoreErrors(t *testing.T) {
	good := `{"flags": {"a": {"variations": [true], "fallthrough": {"variation": 0}}}}`
	for _, tc := range []struct {
		name  string
		files map[string]string
		path  string // inside the temporary folder; "" for the folder
		want  string // in the error
	}{
		{"missing", nil, "nope.json", "nope.json"},
		{"not JSON", map[string]string{"f.json": `{`}, "f.json", "f.json"},
		{"wrong shape", map[string]string{"f.json": `{"version": "x"}`}, "f.json", "version"},
		{"bad file in folder", map[string]string{"a.json": good, "b.json": `[]`}, "", "b.json"},
		{"duplicate key in folder", map[string]string{"a.json": good, "b.json": good}, "", `"a" is also defined`},
		{"duplicate key in a file", map[string]string{"f.json": `{"flags": {"a": {}, "a": {"on": false}}}`}, "f.json", "flags.a: named twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			var logs bytes.Buffer
			_, err := OpenFileStore(filepath.Join(dir, tc.path), FileStoreOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "flags: ") {
				t.Fatalf("OpenFileStore = %v, want an error naming %q", err, tc.want)
			}
			// The error is the news; a warning that the last good content
			// is served would say what is not so.
			if strings.Contains(logs.String(), "last good content") {
				t.Errorf("OpenFileStore logged %s", logs.String())
			}
		})
	}
	// A malformed flag is no reason to refuse a file (it is served as malformed).
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.json"), `{"flags": {"m": {"variations": []}}}`)
	if _, err := OpenFileStore(filepath.Join(dir, "f.json"), FileStoreOptions{}); err != nil {
		t.Errorf("OpenFileStore with a malformed flag = %v, want nil", err)
	}
}

// TestAdminWriteLoadsHandEditFirst: an edit on disk that is not loaded yet,
// however fast it follows the last load, is loaded and published first (its
// own patch), and the admin write is made on top of it; an edit of the same
// key refuses the write with 409 instead (SPEC §13: a hand edit is never
// lost).
func TestAdminWriteLoadsHandEditFirst(t *testing.T) {
	path, _, _, url, c := unpolledFileServer(t)
	flag := `{"variations": [true], "fallthrough": {"variation": 0}}`
	if resp, body := do(t, "PUT", url+"/v1/admin/flags/x", adminToken, flag); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	c.nextPatch(t) // 18

	// Same size, at once: only the content tells.
	editFile(t, path, `"u1"`, `"u2"`)
	resp, body := do(t, "PUT", url+"/v1/admin/flags/y", adminToken, flag)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT after an unloaded edit = %d %s, want 200", resp.StatusCode, body)
	}
	ev, p := c.nextPatch(t)
	if ev.ID != "e1:19" || len(p.Flags) != 0 || len(p.Segments) != 1 {
		t.Errorf("first patch %s (id %s), want the hand edit alone at 19", ev.Data, ev.ID)
	}
	ev, p = c.nextPatch(t)
	if ev.ID != "e1:20" || len(p.Flags) != 1 || p.Flags["y"] == nil {
		t.Errorf("second patch %s (id %s), want y at 20", ev.Data, ev.ID)
	}
	doc, _ := readDoc(t, path)
	if got := included(t, doc); len(got) == 0 || got[0] != "u2" || doc.Flags["y"] == nil {
		t.Errorf("file after the write: beta-testers.included %v, y %s; want the edit and the write", got, doc.Flags["y"])
	}

	checkHandEditOfKeyRefusesWrite(t, path, url, flag, c)
}

// checkHandEditOfKeyRefusesWrite: an unloaded hand edit of flag x, the key
// being written (flag is the body), refuses the write with 409; the edit is published and
// stays in the file.
func checkHandEditOfKeyRefusesWrite(t *testing.T, path, url, flag string, c *sseClient) {
	t.Helper()
	edited := editFile(t, path, `"x": {"version": 1, "variations": [true]`, `"x": {"version": 1, "variations": [false]`)
	resp, body := do(t, "PUT", url+"/v1/admin/flags/x", adminToken, flag)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "flags.x was changed") {
		t.Fatalf("PUT of a key edited by hand = %d %s, want 409", resp.StatusCode, body)
	}
	if resp.Header.Get("ETag") != `"2"` {
		t.Errorf("409 ETag %q, want the edited flag's version \"2\"", resp.Header.Get("ETag"))
	}
	if _, p := c.nextPatch(t); p.Version != 21 || p.Flags["x"] == nil {
		t.Errorf("the hand edit of x was published as %+v, want x at 21", p)
	}
	if got, _ := os.ReadFile(path); string(got) != edited {
		t.Errorf("the edit was overwritten:\n%s", got)
	}
}

// editFile edits the file at path by hand, replacing the first old with
// replacement, and returns its new content.
func editFile(t *testing.T, path, old, replacement string) string {
	t.Helper()
	data := readFile(t, path)
	edited := strings.Replace(string(data), old, replacement, 1)
	if edited == string(data) {
		t.Fatalf("test edit did not apply to\n%s", data)
	}
	writeFile(t, path, edited)
	return edited
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestLogsFollowAuditPath: an audit log put elsewhere (the documents on a
// read-only volume) takes the events file with it, so --audit-log alone
// moves every file the server writes.
func TestLogsFollowAuditPath(t *testing.T) {
	docs, logs := t.TempDir(), t.TempDir()
	path := filepath.Join(docs, "flags.json")
	if err := os.WriteFile(path, []byte(`{"flags":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for audit, events := range map[string]string{
		filepath.Join(logs, "prod.audit.jsonl"): filepath.Join(logs, "prod.events.jsonl"),
		filepath.Join(logs, "audit.log"):        filepath.Join(logs, "flags.events.jsonl"),
		"":                                      filepath.Join(docs, "flags.events.jsonl"),
	} {
		st, err := OpenFileStore(path, FileStoreOptions{AuditPath: audit})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.EventsPath(); got != events {
			t.Errorf("audit log %q: events in %s, want %s", audit, got, events)
		}
	}
}

// TestLogsCreatedPrivate: the audit and events logs hold flags' content
// and users' context keys: they are created readable by their owner only.
func TestLogsCreatedPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	writeFile(t, path, baseDoc)
	st, err := OpenFileStore(path, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, log := range []string{st.AuditPath(), st.EventsPath()} {
		fi, err := os.Stat(log)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s created with mode %v, want no access for group and others", log, perm)
		}
	}
}
