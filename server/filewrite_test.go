package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
)

// indentedDoc is a document file as people write them: two-space
// indentation, members in a chosen order, n flags named f-0...
func indentedDoc(n int) string {
	var b strings.Builder
	b.WriteString("{\n  \"version\": 40,\n  \"$schema\": \"https://example.com/flags.json\",\n  \"flags\": {\n")
	for i := range n {
		fmt.Fprintf(&b, `    "f-%d": {
      "version": %d,
      "on": true,
      "description": "flag %d",
      "variations": [
        false,
        true
      ],
      "fallthrough": {
        "variation": 1
      }
    }`, i, i+1, i)
		if i < n-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  },\n  \"segments\": {}\n}\n")
	return b.String()
}

// changedLines reads the file at path and returns the lines that differ
// from before, each as "-OLD\n+NEW". An edit in place keeps the number of
// lines of a file whose values keep their shape: what names the edit when
// it does not.
func changedLines(t *testing.T, path, before, what string) []string {
	t.Helper()
	data := readFile(t, path)
	old, now := strings.Split(before, "\n"), strings.Split(string(data), "\n")
	if len(old) != len(now) {
		t.Fatalf("the %s changed the file from %d to %d lines:\n%s", what, len(old), len(now), data)
	}
	var diff []string
	for i := range old {
		if old[i] != now[i] {
			diff = append(diff, fmt.Sprintf("-%s\n+%s", old[i], now[i]))
		}
	}
	return diff
}

// TestAdminToggleChangesOnlyThatFlag: a kill switch (GET the flag, flip
// "on", PUT it back) changes that flag's "on" and "version" lines and not
// one other byte of the file, so a file kept in git shows a two-line diff.
func TestAdminToggleChangesOnlyThatFlag(t *testing.T) {
	before := indentedDoc(40)
	path := docFile(t, before)
	_, url, _ := fileServer(t, path)

	resp, flag := do(t, "GET", url+"/v1/admin/flags/f-17", adminToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET = %d %s", resp.StatusCode, flag)
	}
	toggled := strings.Replace(flag, `"on":true`, `"on":false`, 1)
	if toggled == flag {
		t.Fatalf("GET answered %s: no \"on\":true to flip", flag)
	}
	resp, body := do(t, "PUT", url+"/v1/admin/flags/f-17", adminToken, toggled, "If-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	diff := changedLines(t, path, before, "toggle")
	want := []string{"-      \"version\": 18,\n+      \"version\": 19,", "-      \"on\": true,\n+      \"on\": false,"}
	if !slices.Equal(diff, want) {
		t.Errorf("diff of the toggle:\n%s\nwant\n%s", strings.Join(diff, "\n"), strings.Join(want, "\n"))
	}
}

// TestAdminWriteGrowthBounded ("JSON inflation"): the file grows by no more
// than twice the request body, however deep the value nests (indentation
// of deep values is given up for one line), for a new key and a replaced
// one; the result loads again.
func TestAdminWriteGrowthBounded(t *testing.T) {
	path := docFile(t, indentedDoc(3))
	_, url, _ := fileServer(t, path)
	deep := strings.Repeat(`{"a":[1,`, 28) + "2" + strings.Repeat("]}", 28) // 56 levels, in a 58-level flag
	for _, tc := range []struct{ name, key, body string }{
		{"new key, deep", "deep", `{"variations": [` + deep + `, ` + deep + `], "fallthrough": {"variation": 0}}`},
		{"replaced, deep", "f-1", `{"variations": [` + deep + `], "fallthrough": {"variation": 0}}`},
		{"new key, flat", "flat", `{"on":true,"variations":[false,true],"fallthrough":{"variation":1},"description":"a flag of the usual shape"}`},
		{"replaced, flat", "f-2", `{"on":false,"variations":[false,true],"fallthrough":{"variation":1}}`},
	} {
		before, _ := os.ReadFile(path)
		resp, body := do(t, "PUT", url+"/v1/admin/flags/"+tc.key, adminToken, tc.body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: PUT = %d %.300s", tc.name, resp.StatusCode, body)
		}
		after, _ := os.ReadFile(path)
		if grown := len(after) - len(before); grown > 2*len(tc.body) {
			t.Errorf("%s: the file grew by %d bytes for a body of %d", tc.name, grown, len(tc.body))
		}
	}
	if _, err := OpenFileStore(path, FileStoreOptions{}); err != nil {
		t.Errorf("the written file does not load: %v", err)
	}
}

// TestHandEditsAndAdminWritesNotLost ("Lost hand edits"): a program edits
// many flags of the file by hand (holding the folder's flock while it
// reads and replaces the file, as FileStore documents) while admin PUTs
// pour in. Every hand edit and every acknowledged admin write ends up in
// the file and is served: with the watcher polling (its loads race with
// the writes) and without (every edit is found by a write).
func TestHandEditsAndAdminWritesNotLost(t *testing.T) {
	if !dirLocks {
		t.Skip("no flock(2) here: an editor cannot order itself with the server's writes")
	}
	t.Run("watcher", func(t *testing.T) { handEditsAndAdminWrites(t, testPoll) })
	t.Run("no watcher", func(t *testing.T) { handEditsAndAdminWrites(t, time.Hour) })
}

func handEditsAndAdminWrites(t *testing.T, poll time.Duration) {
	const handEdits, handFlags, adminWrites = 120, 40, 100
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	writeFile(t, path, indentedDoc(5))
	_, srv := openFileServer(t, path, FileStoreOptions{PollInterval: poll}, Options{AdminToken: adminToken})
	url := serve(t, srv).URL

	wantHand, wantAdmin := map[string]string{}, map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { // the hand editor: hand-(i % handFlags) gets description edit-i
		for i := range handEdits {
			key, desc := fmt.Sprintf("hand-%d", i%handFlags), fmt.Sprintf("edit-%d", i)
			wantHand[key] = desc // the last edit of each flag is the one to keep
			if err := handEdit(dir, path, key, desc); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() { // the admin client: adm-j gets description admin-j
		for j := range adminWrites {
			key, desc := fmt.Sprintf("adm-%d", j), fmt.Sprintf("admin-%d", j)
			wantAdmin[key] = desc
			if err := putRetryingConflicts(url, key, desc); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	srv.reload(context.Background()) // what the watcher does next

	doc, _ := readDoc(t, path)
	checkDescriptions(t, doc, srv.Document(), wantHand, "a hand edit")
	checkDescriptions(t, doc, srv.Document(), wantAdmin, "an admin write")
}

// putRetryingConflicts PUTs flag key with description desc, retrying on 409
// (the file changed under the write) up to 50 times.
func putRetryingConflicts(url, key, desc string) error {
	body := fmt.Sprintf(`{"variations": [true], "fallthrough": {"variation": 0}, "description": %q}`, desc)
	for attempt := 0; ; attempt++ {
		resp, msg, err := put(url+"/v1/admin/flags/"+key, body)
		if err != nil {
			return err
		}
		if resp == http.StatusOK {
			return nil
		}
		if resp != http.StatusConflict || attempt == 50 {
			return fmt.Errorf("PUT %s = %d %s", key, resp, msg)
		}
	}
}

// checkDescriptions checks that each flag of want has its description both
// in the file (doc) and in what is served; lost names the writer a missing
// one came from.
func checkDescriptions(t *testing.T, doc, served *rules.Document, want map[string]string, lost string) {
	t.Helper()
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if got := doc.Flags[key]; got == nil || member(t, got, "description") != want[key] {
			t.Errorf("file: %s = %s, want description %s: %s was lost", key, got, want[key], lost)
		}
		if got := served.Flags[key]; got == nil || member(t, got, "description") != want[key] {
			t.Errorf("served: %s = %s, want description %s", key, got, want[key])
		}
	}
}

// handEdit sets the description of flag key in the file at path the way a
// careful program would: under the folder's lock, it reads the file, sets
// the flag with encoding/json (reformatting the whole file, as tools do) and
// replaces the file atomically.
func handEdit(dir, path, key, desc string) error {
	unlock, err := lockDir(context.Background(), dir, time.Minute)
	if err != nil {
		return err
	}
	defer unlock()
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var top map[string]json.RawMessage
	var flags map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	if err := json.Unmarshal(top["flags"], &flags); err != nil {
		return err
	}
	flags[key] = json.RawMessage(fmt.Sprintf(`{"variations": [true], "fallthrough": {"variation": 0}, "description": %q}`, desc))
	top["flags"], _ = json.Marshal(flags)
	out, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".hand"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// put sends an admin PUT and returns its status and body.
func put(url, body string) (int, string, error) {
	req, err := http.NewRequest("PUT", url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestAdminWriteEditDuringWrite: an editor that does not take the lock and
// replaces the file while a write is under way (after its checks, before
// its rename) is caught by the last look before the rename: its edit is
// loaded and published first, the write is made on top. A file that keeps
// changing makes the write give up with 409, overwriting nothing.
func TestAdminWriteEditDuringWrite(t *testing.T) {
	path, store, srv, url, c := unpolledFileServer(t)

	store.beforeRename = lockFreeEditor(t, path, 1)
	flag := `{"variations": [true], "fallthrough": {"variation": 0}}`
	if resp, body := do(t, "PUT", url+"/v1/admin/flags/x", adminToken, flag); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	if _, p := c.nextPatch(t); p.Version != 18 || len(p.Segments) != 1 || len(p.Flags) != 0 {
		t.Errorf("first patch %+v, want the edit alone at 18", p)
	}
	if _, p := c.nextPatch(t); p.Version != 19 || p.Flags["x"] == nil {
		t.Errorf("second patch %+v, want x at 19", p)
	}
	doc, _ := readDoc(t, path)
	if got := included(t, doc); len(got) != 2 || doc.Flags["x"] == nil {
		t.Errorf("file: beta-testers.included %v, x %s; want both the edit and the write", got, doc.Flags["x"])
	}

	store.beforeRename = lockFreeEditor(t, path, maxStaleWrites)
	resp, body := do(t, "PUT", url+"/v1/admin/flags/y", adminToken, flag)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "kept changing") {
		t.Fatalf("PUT while the file keeps changing = %d %s, want 409", resp.StatusCode, body)
	}
	// u1, the first edit, then one edit per attempt: the last one is left
	// to the watcher.
	doc, _ = readDoc(t, path)
	if got := included(t, doc); doc.Flags["y"] != nil || len(got) != 2+maxStaleWrites {
		t.Errorf("file: y %s, beta-testers.included %v; want no y and every edit", doc.Flags["y"], got)
	}
	if got := included(t, srv.Document()); len(got) != 1+maxStaleWrites {
		t.Errorf("served beta-testers.included = %v, want every edit but the last loaded", got)
	}
	if names := dirNames(t, filepath.Dir(path)); len(names) != 3 {
		t.Errorf("the folder holds %q, want the document, its audit and events logs alone (no temporary file left)", names)
	}
}

// lockFreeEditor returns a hook that, the first n times it is called, edits
// the file at path the way an editor ignoring the lock would: it adds
// "e1", "e2"… after "u1" in beta-testers and renames its own copy over the
// file.
func lockFreeEditor(t *testing.T, path string, n int) func() {
	edits := 0
	return func() {
		if edits >= n {
			return
		}
		edits++
		data, _ := os.ReadFile(path)
		tmp := path + ".editor"
		writeFile(t, tmp, strings.Replace(string(data), `"u1"`, fmt.Sprintf(`"u1", "e%d"`, edits), 1))
		if err := os.Rename(tmp, path); err != nil {
			t.Error(err)
		}
	}
}

// included returns the members of segment beta-testers' "included".
func included(t *testing.T, doc *rules.Document) []any {
	t.Helper()
	got, _ := member(t, doc.Segments["beta-testers"], "included").([]any)
	return got
}

// TestTempFilesRemovedAtOpen ("temp files stay after kill -9"): the store's
// own temporary files, left by a write interrupted before its rename, are
// removed when the store opens; nothing else is.
func TestTempFilesRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	writeFile(t, path, baseDoc)
	leftovers := []string{".flags.json.tmp-123456", ".flags.json.tmp-9"}
	others := []string{".flags.json.tmp-abc", ".flags.json.tmp-", "flags.json.tmp-1", ".other.json.tmp-5", "notes.txt"}
	for _, n := range append(slices.Clone(leftovers), others...) {
		writeFile(t, filepath.Join(dir, n), `{"flags": {`)
	}
	if _, err := OpenFileStore(path, FileStoreOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.CheckSwept(t, dir, leftovers, others)

	// A folder store writes admin.json: its temporary files go, others stay.
	folder := t.TempDir()
	writeFile(t, filepath.Join(folder, "a.json"), baseDoc)
	writeFile(t, filepath.Join(folder, ".admin.json.tmp-77"), `{`)
	writeFile(t, filepath.Join(folder, ".a.json.tmp-77"), `{`)
	if _, err := OpenFileStore(folder, FileStoreOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.CheckSwept(t, folder, []string{".admin.json.tmp-77"}, []string{".a.json.tmp-77"})
}

// TestFolderWriteRefusedWhileAFileIsBroken: serving a folder, an admin
// write is refused with 409 while another file of it does not parse (an
// edit in progress) or is ignored for defining a key another file defines;
// written to admin.json instead, the key would make that file conflict once
// fixed, and its hand edit would never be served (SPEC §5, §13).
func TestFolderWriteRefusedWhileAFileIsBroken(t *testing.T) {
	flag := `{"on": true, "variations": [1], "fallthrough": {"variation": 0}}`
	for _, tc := range []struct{ name, content string }{
		{"does not parse", `{"flags": {"k": {"on": true,`},
		{"defines a key another file defines", `{"flags": {"a": ` + flag + `, "k": ` + flag + `}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "a.json"), `{"flags": {"a": `+flag+`}}`)
			writeFile(t, filepath.Join(dir, "b.json"), `{"flags": {}}`)
			_, srv := openFileServer(t, dir, FileStoreOptions{PollInterval: time.Hour}, Options{AdminToken: adminToken})
			url := serve(t, srv).URL
			writeFile(t, filepath.Join(dir, "b.json"), tc.content) // found by the write itself
			resp, body := do(t, "PUT", url+"/v1/admin/flags/k", adminToken, flag)
			if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "b.json") {
				t.Errorf("PUT while b.json %s = %d %s, want 409 naming b.json", tc.name, resp.StatusCode, body)
			}
			if _, err := os.Stat(filepath.Join(dir, AdminFile)); !os.IsNotExist(err) {
				t.Errorf("%s written (%v)", AdminFile, err)
			}
		})
	}
}
