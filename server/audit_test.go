package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/rules"
)

// auditPage reads one page of GET /v1/admin/audit.
func auditPage(t *testing.T, base, token, query string) AuditPage {
	t.Helper()
	resp, body := do(t, "GET", base+"/v1/admin/audit?"+query, token, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/admin/audit?%s = %d %s", query, resp.StatusCode, body)
	}
	var p AuditPage
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("audit page %s: %v", body, err)
	}
	if p.Entries == nil {
		t.Fatalf("audit page %s: entries missing, want [] at least", body)
	}
	return p
}

// auditFile reads the entries of an audit log file as they are on disk.
func auditFile(t *testing.T, path string) []AuditEntry {
	t.Helper()
	data := readFile(t, path)
	var out []AuditEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var e AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %s: %v", sc.Bytes(), err)
		}
		out = append(out, e)
	}
	return out
}

// entryString sums an entry up for comparisons.
func entryString(e AuditEntry) string {
	present := func(v json.RawMessage) bool { return v != nil && string(v) != "null" }
	return fmt.Sprintf("%d %s %s %s %s before=%v after=%v %q", e.Version, e.Actor, e.Action, e.Kind, e.Key,
		present(e.Before), present(e.After), e.Comment)
}

// TestAuditEveryChange: every accepted change — put, patch, delete, push, a
// reload of a hand edit — appends its entries to the file store's audit log
// before the answer; the audit API reads them back.
func TestAuditEveryChange(t *testing.T) {
	path := docFile(t, baseDoc)
	srv, base, _ := fileServer(t, path)
	logPath := filepath.Join(filepath.Dir(path), "flags.audit.jsonl")
	c := openStream(t, base, "", "")
	c.next(t)

	w := &auditedWrites{base: base, logPath: logPath, c: c}
	w.step(t, "PUT", "/v1/admin/flags/x", `{"variations": [true], "fallthrough": {"variation": 0}}`,
		[]string{"X-Flags-Comment", "ticket 42: new flag ✓"}, `18 admin put flag x before=false after=true "ticket 42: new flag ✓"`)
	w.step(t, "PATCH", "/v1/admin/flags/new-checkout", `{"on": false}`, []string{"Content-Type", mergePatchType},
		`19 admin patch flag new-checkout before=true after=true ""`)
	w.step(t, "DELETE", "/v1/admin/flags/banner-text", "", nil, `20 admin delete flag banner-text before=true after=false ""`)
	w.step(t, "PUT", "/v1/admin/document", pushedDoc, []string{"X-Flags-Comment", "release 7"},
		`21 admin push flag added before=false after=true "release 7"`,
		`21 admin push flag new-checkout before=true after=true "release 7"`,
		`21 admin push flag x before=true after=false "release 7"`,
		`21 admin push segment staff before=false after=true "release 7"`)

	// A hand edit is published as a reload by "file", audited first.
	doc, _ := readDoc(t, path)
	doc.Flags["added"] = json.RawMessage(`{"on": false, "variations": ["x"], "fallthrough": {"variation": 0}}`)
	edited, err := doc.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(edited))
	if _, p := c.nextPatch(t); p.Version != 22 {
		t.Fatalf("the hand edit was published as %d, want 22", p.Version)
	}
	want := append(w.want, `22 file reload flag added before=true after=true ""`)

	entries := auditFile(t, logPath)
	if got := entryString(entries[len(entries)-1]); got != want[len(want)-1] {
		t.Errorf("the reload's entry: %s, want %s", got, want[len(want)-1])
	}
	checkPatchEntry(t, entries[1])
	checkAuditAPI(t, base, want)
	if srv.Version() != 22 {
		t.Errorf("version %d, want 22", srv.Version())
	}
}

// TestAuditVersionsContinueAfterRestart: a file store's audit log outlives
// the server, and admin writes leave the file's own "version" alone, so a
// server started again over it continues from the log's last version (or
// from the file's, when greater), in a new epoch: the log stays in version
// order, and since finds the changes made after the restart (SPEC §10).
func TestAuditVersionsContinueAfterRestart(t *testing.T) {
	for name, layout := range map[string]func(t *testing.T) (served, doc string){
		"file": func(t *testing.T) (string, string) {
			path := docFile(t, baseDoc)
			return path, path
		},
		"folder": func(t *testing.T) (string, string) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "a.json"), baseDoc)
			return dir, filepath.Join(dir, "a.json")
		},
	} {
		t.Run(name, func(t *testing.T) {
			served, doc := layout(t)
			start := func(want int64) (*Server, string) {
				t.Helper()
				_, srv := openFileServer(t, served, FileStoreOptions{PollInterval: time.Hour}, Options{AdminToken: adminToken})
				if v := srv.Version(); v != want {
					t.Fatalf("started at version %d, want %d", v, want)
				}
				return srv, serve(t, srv).URL
			}
			put := func(base, key string) {
				t.Helper()
				resp, body := do(t, "PUT", base+"/v1/admin/flags/"+key, adminToken, `{"variations": [1], "fallthrough": {"variation": 0}}`)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("PUT %s = %d %s", key, resp.StatusCode, body)
				}
			}
			versions := func(p AuditPage) string {
				var out []string
				for _, e := range p.Entries {
					out = append(out, fmt.Sprintf("%d %s", e.Version, e.Key))
				}
				return strings.Join(out, ", ")
			}

			first, base := start(17)
			put(base, "x")
			put(base, "y")
			put(base, "x")
			_ = first.Close()

			second, base := start(20) // the file still says 17
			if second.Epoch() == first.Epoch() {
				t.Errorf("epoch %s again after a restart, want a new one", second.Epoch())
			}
			put(base, "z")
			if got, want := versions(auditPage(t, base, adminToken, "")), "18 x, 19 y, 20 x, 21 z"; got != want {
				t.Errorf("audit after the restart: %s, want %s", got, want)
			}
			if got, want := versions(auditPage(t, base, adminToken, "since=20")), "21 z"; got != want {
				t.Errorf("audit since 20, the last version before the restart: %s, want %s", got, want)
			}
			if got, want := versions(auditPage(t, base, adminToken, "since=18&limit=2")), "19 y, 20 x"; got != want {
				t.Errorf("audit since 18, 2 of them: %s, want %s", got, want)
			}
			_ = second.Close()

			editFile(t, doc, `"version": 17`, `"version": 40`)
			_, base = start(40) // the file's version is the greater now
			put(base, "y")
			if got, want := versions(auditPage(t, base, adminToken, "since=20")), "21 z, 41 y"; got != want {
				t.Errorf("audit since 20 after a restart from version 40: %s, want %s", got, want)
			}
		})
	}
}

// TestStartVersionFromAuditLog: the version a server over a file store
// starts from is the greatest in its audit log, wherever it is (a log
// written before versions continued across restarts repeats them), and not
// that of a line a crash cut short, which readers skip.
func TestStartVersionFromAuditLog(t *testing.T) {
	path := docFile(t, baseDoc)
	writeFile(t, filepath.Join(filepath.Dir(path), "flags.audit.jsonl"), `{"version":18,"kind":"flag","key":"a"}`+"\n"+
		`{"version":31,"kind":"flag","key":"a"}`+"\n"+`{"version":18,"kind":"flag","key":"b"}`+"\n"+`{"version":99,"kind":"fl`)
	_, srv := openFileServer(t, path, FileStoreOptions{PollInterval: time.Hour}, Options{})
	defer srv.Close()
	if v := srv.Version(); v != 31 {
		t.Errorf("started at version %d, want 31", v)
	}
}

// auditedWrites sends admin writes and checks, after each, that the audit
// log on disk holds exactly the entries of every write so far.
type auditedWrites struct {
	base, logPath string
	c             *sseClient
	want          []string // entryString of every entry so far
}

// step sends one write, which must log entries, and awaits its patch.
func (w *auditedWrites) step(t *testing.T, method, target, body string, header []string, entries ...string) {
	t.Helper()
	resp, answer := do(t, method, w.base+target, adminToken, body, header...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d %s", method, target, resp.StatusCode, answer)
	}
	w.want = append(w.want, entries...)
	w.c.nextPatch(t)
	// Durable before the answer: on disk as soon as it comes.
	var got []string
	for _, e := range auditFile(t, w.logPath) {
		got = append(got, entryString(e))
	}
	if strings.Join(got, "\n") != strings.Join(w.want, "\n") {
		t.Fatalf("after %s %s the audit log holds\n%s\nwant\n%s", method, target, strings.Join(got, "\n"), strings.Join(w.want, "\n"))
	}
}

// checkPatchEntry checks the entry of TestAuditEveryChange's PATCH (the kill
// switch of new-checkout): both sides of the change, stamped now in UTC.
func checkPatchEntry(t *testing.T, e AuditEntry) {
	t.Helper()
	if member(t, e.Before, "on") != true || member(t, e.After, "on") != false ||
		member(t, e.After, "version") != 4.0 {
		t.Errorf("the PATCH's entry: before %s after %s; want on true then false, at version 4", e.Before, e.After)
	}
	if d := time.Since(e.At); d < 0 || d > time.Minute || e.At.Location() != time.UTC {
		t.Errorf("the PATCH's entry is at %v, want now, in UTC", e.At)
	}
}

// checkAuditAPI checks that GET /v1/admin/audit answers exactly the entries
// want, in one page.
func checkAuditAPI(t *testing.T, base string, want []string) {
	t.Helper()
	page := auditPage(t, base, adminToken, "")
	if len(page.Entries) != len(want) || page.Next != "" {
		t.Fatalf("GET /v1/admin/audit: %d entries (next %q), want %d and no next", len(page.Entries), page.Next, len(want))
	}
	for i, e := range page.Entries {
		if got := entryString(e); got != want[i] {
			t.Errorf("entry %d: %s, want %s", i, got, want[i])
		}
	}
}

// auditServers start a server over baseDoc with an admin token, over each
// store that keeps its own audit log, and return it and its URL.
var auditServers = map[string]func(t *testing.T) (*Server, string){
	"memory": func(t *testing.T) (*Server, string) {
		srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
		return srv, ts.URL
	},
	"file": func(t *testing.T) (*Server, string) {
		srv, base, _ := fileServer(t, docFile(t, baseDoc))
		return srv, base
	},
}

// TestAuditQuery: key, kind, since and limit select entries; next pages
// through the rest; bad parameters are 400.
func TestAuditQuery(t *testing.T) {
	for name, open := range auditServers {
		t.Run(name, func(t *testing.T) {
			_, base := open(t)
			for i := range 5 {
				for _, target := range []string{"flags/a", "flags/b", "segments/a"} {
					body := fmt.Sprintf(`{"variations": [%d], "fallthrough": {"variation": 0}}`, i)
					if strings.HasPrefix(target, "segments") {
						body = fmt.Sprintf(`{"included": ["u%d"]}`, i)
					}
					if resp, answer := do(t, "PUT", base+"/v1/admin/"+target, adminToken, body); resp.StatusCode != http.StatusOK {
						t.Fatalf("PUT %s = %d %s", target, resp.StatusCode, answer)
					}
				}
			}
			// 15 entries, versions 18..32: flags/a at 18, 21, 24, 27, 30.
			versions := func(p AuditPage) string {
				var out []string
				for _, e := range p.Entries {
					out = append(out, fmt.Sprintf("%d%s", e.Version, e.Kind[:1]))
				}
				return strings.Join(out, " ")
			}
			for _, tc := range []struct{ query, want string }{
				{"key=a&kind=flag", "18f 21f 24f 27f 30f"},
				{"key=a", "18f 20s 21f 23s 24f 26s 27f 29s 30f 32s"},
				{"key=a&since=24", "26s 27f 29s 30f 32s"},
				{"kind=segment&since=29", "32s"},
				{"since=32", ""},
				{"key=nope", ""},
				{"since=29&limit=2", "30f 31f"},
			} {
				if got := versions(auditPage(t, base, adminToken, tc.query)); got != tc.want {
					t.Errorf("?%s: %s, want %s", tc.query, got, tc.want)
				}
			}
			// Paging: 2 at a time through flag a's 5 entries.
			var all []string
			q := url.Values{"key": {"a"}, "kind": {"flag"}, "limit": {"2"}}
			for pages := 0; ; pages++ {
				if pages > 5 {
					t.Fatal("paging does not end")
				}
				p := auditPage(t, base, adminToken, q.Encode())
				all = append(all, versions(p))
				if p.Next == "" {
					break
				}
				q.Set("after", p.Next)
			}
			if got := strings.Join(all, " | "); got != "18f 21f | 24f 27f | 30f" {
				t.Errorf("pages %s, want 18f 21f | 24f 27f | 30f", got)
			}
			for _, query := range []string{"limit=0", "limit=x", "since=-1", "since=x", "kind=flags", "key=a%20b", "after=x", "after=-5", "after=99999999"} {
				resp, body := do(t, "GET", base+"/v1/admin/audit?"+query, adminToken, "")
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("?%s = %d %s, want 400", query, resp.StatusCode, body)
				}
			}
		})
	}
}

// TestAuditLimitBounded: a limit above MaxAuditLimit is cut to it.
func TestAuditLimitBounded(t *testing.T) {
	store := NewMemoryStore(nil)
	for v := range int64(MaxAuditLimit + 10) {
		if err := store.Write(context.Background(), &Commit{Version: v + 1, Audit: []AuditEntry{{Version: v + 1, Kind: KindFlag, Key: "k"}}}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(store, Options{AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, srv)
	p := auditPage(t, ts.URL, adminToken, "limit=5000")
	if len(p.Entries) != MaxAuditLimit || p.Next == "" {
		t.Errorf("limit=5000: %d entries, next %q; want %d and a next", len(p.Entries), p.Next, MaxAuditLimit)
	}
	if p := auditPage(t, ts.URL, adminToken, ""); len(p.Entries) != DefaultAuditLimit {
		t.Errorf("no limit: %d entries, want %d", len(p.Entries), DefaultAuditLimit)
	}
}

// TestMemoryStoreAuditBounded: a MemoryStore keeps at most twice
// MemoryAuditEntries, the newest, however many changes it records; a
// cursor into what it dropped continues from the oldest kept.
func TestMemoryStoreAuditBounded(t *testing.T) {
	store := NewMemoryStore(nil)
	ctx := context.Background()
	const n = 5*MemoryAuditEntries + 3
	for v := int64(1); v <= n; v++ {
		if err := store.Write(ctx, &Commit{Version: v, Audit: []AuditEntry{{Version: v, Kind: KindFlag, Key: "k"}}}); err != nil {
			t.Fatal(err)
		}
		if len(store.audit) > 2*MemoryAuditEntries {
			t.Fatalf("after %d changes the store holds %d entries", v, len(store.audit))
		}
	}
	p, err := store.Audit(ctx, AuditQuery{Limit: 1, After: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 1 || p.Entries[0].Version != int64(store.first+1) || n-store.first < MemoryAuditEntries {
		t.Errorf("first kept entry %+v (first %d), want the oldest kept, at least %d kept", p.Entries, store.first, MemoryAuditEntries)
	}
	if _, err := store.Audit(ctx, AuditQuery{After: fmt.Sprint(n + 1)}); !errors.Is(err, ErrBadCursor) {
		t.Errorf("a cursor past the end: %v, want ErrBadCursor", err)
	}
}

// TestAuditScanBounded: a page of the file store's audit log reads at most
// auditScanBytes of the log; a query that finds nothing within it says
// where to continue, and the next page finds the entry.
func TestAuditScanBounded(t *testing.T) {
	path := docFile(t, baseDoc)
	store, err := OpenFileStore(path, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	filler := AuditEntry{Version: 1, Actor: "admin", Action: ActionPut, Kind: KindFlag, Key: "other",
		After: json.RawMessage(`{"description":"` + strings.Repeat("x", 4000) + `"}`)}
	var batch []AuditEntry
	for range (auditScanBytes / 4000) + 10 {
		batch = append(batch, filler)
	}
	batch = append(batch, AuditEntry{Version: 2, Actor: "admin", Action: ActionPut, Kind: KindFlag, Key: "needle"})
	if err := store.Write(context.Background(), &Commit{Version: 2, Audit: batch}); err != nil {
		t.Fatal(err)
	}
	q := AuditQuery{Key: "needle"}
	p, err := store.Audit(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 0 || p.Next == "" {
		t.Fatalf("first page: %d entries, next %q; want none yet and a next", len(p.Entries), p.Next)
	}
	q.After = p.Next
	if p, err = store.Audit(context.Background(), q); err != nil || len(p.Entries) != 1 || p.Entries[0].Key != "needle" || p.Next != "" {
		t.Fatalf("second page: %+v, %v; want the needle and no next", p, err)
	}
}

// TestAuditLogTornLine: a line a crash cut short is ended at open and
// skipped by readers; the entries around it are read.
func TestAuditLogTornLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	writeFile(t, path, baseDoc)
	writeFile(t, filepath.Join(dir, "flags.audit.jsonl"), `{"version":1,"kind":"flag","key":"a","actor":"admin","action":"put"}`+"\n"+`{"version":2,"kind":"fl`)
	store, err := OpenFileStore(path, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Write(context.Background(), &Commit{Version: 3, Audit: []AuditEntry{{Version: 3, Kind: KindFlag, Key: "b"}}}); err != nil {
		t.Fatal(err)
	}
	p, err := store.Audit(context.Background(), AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 2 || p.Entries[0].Key != "a" || p.Entries[1].Key != "b" {
		t.Errorf("entries %+v, want a and b", p.Entries)
	}
}

// TestAuditFailureRefusesWrite: when the audit log cannot be written, an
// admin write is refused (500) and changes nothing; a hand edit is not
// published until its entry is written, then it is, without another edit.
func TestAuditFailureRefusesWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	writeFile(t, path, baseDoc)
	srv, base, _ := fileServer(t, path)
	logPath := filepath.Join(dir, "flags.audit.jsonl")
	blockAuditLog(t, logPath)
	before := readFile(t, path)
	resp, body := do(t, "PUT", base+"/v1/admin/flags/x", adminToken, `{"variations": [true], "fallthrough": {"variation": 0}}`)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "audit log") {
		t.Errorf("PUT without an audit log = %d %s, want 500 naming the audit log", resp.StatusCode, body)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) || srv.Version() != 17 {
		t.Errorf("a refused write changed the file or the version (%d)", srv.Version())
	}
	c := openStream(t, base, "", "")
	c.next(t)
	writeFile(t, path, strings.Replace(baseDoc, `"owner": "team-a"`, `"owner": "team-b"`, 1))
	deadline := time.Now().Add(3 * testPoll * 20)
	for time.Now().Before(deadline) {
		if srv.Version() != 17 {
			t.Fatalf("a hand edit was published at %d without its audit entry", srv.Version())
		}
		time.Sleep(testPoll)
	}
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if _, p := c.nextPatch(t); p.Version != 18 || p.Flags["new-checkout"] == nil {
		t.Fatalf("once the log is back the edit was published as %+v, want version 18 with new-checkout", p)
	}
	if entries := auditFile(t, logPath); len(entries) != 1 || entries[0].Actor != ActorFile || entries[0].Key != "new-checkout" {
		t.Errorf("audit log %+v, want the reload of new-checkout", entries)
	}
}

// blockAuditLog puts a folder where the log at logPath was: no one, root
// included, can append to it.
func blockAuditLog(t *testing.T, logPath string) {
	t.Helper()
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(logPath, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestAuditLogRotated: a log renamed away (rotated) reads as empty, and the
// next change starts a new one.
func TestAuditLogRotated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	writeFile(t, path, baseDoc)
	_, base, _ := fileServer(t, path)
	put := func() {
		t.Helper()
		if resp, body := do(t, "PUT", base+"/v1/admin/flags/x", adminToken, `{"variations": [1], "fallthrough": {"variation": 0}}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT = %d %s", resp.StatusCode, body)
		}
	}
	put()
	logPath := filepath.Join(dir, "flags.audit.jsonl")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if p := auditPage(t, base, adminToken, ""); len(p.Entries) != 0 {
		t.Errorf("after the rotation: %+v, want no entries", p.Entries)
	}
	put()
	if p := auditPage(t, base, adminToken, ""); len(p.Entries) != 1 || p.Entries[0].Version != 19 {
		t.Errorf("after the next change: %+v, want its entry alone", p.Entries)
	}
}

// TestAuditPagesKeepChangesWhole: a change of several keys is one version
// with an entry per key. A page never ends inside it unless it alone
// fills the page, so that a client paging by since (the last version it
// saw, SPEC §10) misses none of its entries; the limit always holds.
func TestAuditPagesKeepChangesWhole(t *testing.T) {
	for name, open := range auditServers {
		t.Run(name, func(t *testing.T) {
			srv, base := open(t)
			if resp, answer := do(t, "PUT", base+"/v1/admin/flags/one", adminToken, `{"variations": [1], "fallthrough": {"variation": 0}}`); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT = %d %s", resp.StatusCode, answer)
			}
			single := srv.Version()
			doc := srv.Document()
			next := &rules.Document{Flags: maps.Clone(doc.Flags), Segments: doc.Segments}
			for _, k := range []string{"p1", "p2", "p3"} {
				next.Flags[k] = json.RawMessage(`{"variations": [true], "fallthrough": {"variation": 0}}`)
			}
			if err := srv.Publish(next); err != nil {
				t.Fatal(err)
			}
			pushed := srv.Version()
			shape := func(p AuditPage) string {
				var out []string
				for _, e := range p.Entries {
					out = append(out, fmt.Sprintf("%d:%s", e.Version-single, e.Key))
				}
				return strings.Join(out, " ")
			}
			since := func(v int64, limit int) AuditPage {
				return auditPage(t, base, adminToken, fmt.Sprintf("since=%d&limit=%d", v, limit))
			}
			for _, tc := range []struct {
				since int64
				limit int
				want  string
			}{
				{single - 1, 4, "0:one 1:p1 1:p2 1:p3"},
				{single - 1, 3, "0:one"},      // 1:p3 would not fit: version 1 starts the next page
				{single - 1, 2, "0:one"},      // the same
				{single, 2, "1:p1 1:p2"},      // version 1 alone fills the page: cut at the limit
				{single, 3, "1:p1 1:p2 1:p3"}, //
				{pushed, 3, ""},               //
			} {
				if got := shape(since(tc.since, tc.limit)); got != tc.want {
					t.Errorf("since=%d limit=%d: %q, want %q", tc.since-single, tc.limit, got, tc.want)
				}
			}
			// A page cut before version 1 continues with all of it.
			p := since(single-1, 3)
			if p.Next == "" {
				t.Fatal("the page cut before version 1 has no next")
			}
			if got := shape(auditPage(t, base, adminToken, "limit=3&since="+strconv.FormatInt(single-1, 10)+"&after="+p.Next)); got != "1:p1 1:p2 1:p3" {
				t.Errorf("the page after it: %q, want all of version 1", got)
			}
		})
	}
}
