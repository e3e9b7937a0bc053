package server

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/flagstream/flags/rules"
)

// pushedDoc is baseDoc after a push: new-checkout changed, banner-text
// deleted, a flag and a segment added, beta-testers unchanged (with another
// version number, which the server ignores).
const pushedDoc = `{
  "version": 3,
  "flags": {
    "new-checkout": {"version": 99, "on": false, "variations": [false, true], "fallthrough": {"variation": 1}},
    "added": {"on": true, "variations": ["x"], "fallthrough": {"variation": 0}}
  },
  "segments": {
    "beta-testers": {"version": 7, "included": ["u1"]},
    "staff": {"included": ["u9"]}
  }
}`

// TestPushDocument: PUT /v1/admin/document replaces everything as one patch
// at the next version holding only what changed; a push of the same content
// publishes nothing.
func TestPushDocument(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{Epoch: "e1", AdminToken: adminToken})
	c := openStream(t, ts.URL, "", "")
	c.next(t)
	url := ts.URL + "/v1/admin/document"
	resp, body := do(t, "PUT", url, adminToken, pushedDoc)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"e1:18"` {
		t.Fatalf("push = %d %s (ETag %s), want 200 with ETag \"e1:18\"", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	checkPushPublished(t, srv, c, body)

	resp, body = do(t, "PUT", url, adminToken, pushedDoc)
	if resp.StatusCode != http.StatusOK || srv.Version() != 18 || !strings.Contains(body, `"version":18,"flags":{},"segments":{}`) {
		t.Errorf("the same push again = %d %s at version %d, want 200, nothing published", resp.StatusCode, body, srv.Version())
	}
	resp, body = do(t, "PUT", url, adminToken, baseDoc, "If-Match", `"e1:17"`)
	if resp.StatusCode != http.StatusPreconditionFailed || resp.Header.Get("ETag") != `"e1:18"` {
		t.Errorf("push with a stale If-Match = %d %s, want 412 with the ETag served", resp.StatusCode, body)
	}
	resp, body = do(t, "PUT", url, adminToken, baseDoc, "If-Match", `"e1:18"`)
	if resp.StatusCode != http.StatusOK || srv.Version() != 19 {
		t.Errorf("push with the current If-Match = %d %s, want 200 at version 19", resp.StatusCode, body)
	}
}

// checkPushPublished checks that the push of pushedDoc, answered body,
// published that same patch at 18, holding only what changed.
func checkPushPublished(t *testing.T, srv *Server, c *sseClient, body string) {
	t.Helper()
	ev, p := c.nextPatch(t)
	if strings.TrimSpace(body) != ev.Data || p.Version != 18 {
		t.Fatalf("push answered %s, published %s; want the same patch at 18", body, ev.Data)
	}
	if got := slices.Sorted(mapsKeys(p.Flags)); !slices.Equal(got, []string{"added", "banner-text", "new-checkout"}) {
		t.Errorf("patch flags %v, want added, banner-text, new-checkout", got)
	}
	if got := slices.Sorted(mapsKeys(p.Segments)); !slices.Equal(got, []string{"staff"}) {
		t.Errorf("patch segments %v, want staff alone (beta-testers did not change)", got)
	}
	if string(p.Flags["banner-text"]) != "null" || member(t, p.Flags["new-checkout"], "version") != 4.0 ||
		member(t, p.Flags["added"], "version") != 1.0 {
		t.Errorf("patch %s: want banner-text deleted, new-checkout at 4, added at 1", ev.Data)
	}
	if v := member(t, srv.Document().Segments["beta-testers"], "version"); v != 2.0 {
		t.Errorf("beta-testers at version %v, want 2 (unchanged)", v)
	}
}

// TestPushInvalidListsEveryProblem: a document with several malformed flags
// and segments is refused with 400 naming every problem; nothing changes.
func TestPushInvalidListsEveryProblem(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	url := ts.URL + "/v1/admin/document"
	bad := `{"flags": {
	  "ok": {"variations": [true], "fallthrough": {"variation": 0}},
	  "no-fallthrough": {"variations": [true]},
	  "bad-index": {"variations": [true], "fallthrough": {"variation": 5}, "offVariation": 9},
	  "bad-regex": {"variations": [true], "fallthrough": {"variation": 0},
	    "rules": [{"clauses": [{"attribute": "email", "op": "matches", "values": ["("]}], "serve": {"variation": 0}}]},
	  "bad key!": {"variations": [true], "fallthrough": {"variation": 0}},
	  "gone": null
	}, "segments": {"s": {"included": "u1"}}}`
	resp, body := do(t, "PUT", url, adminToken, bad)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("push of a malformed document = %d %s, want 400", resp.StatusCode, body)
	}
	var got struct {
		Error    string
		Problems []problemJSON
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range got.Problems {
		paths = append(paths, p.Path)
	}
	for _, want := range []string{"flags.no-fallthrough.fallthrough", "flags.bad-index.fallthrough.variation",
		"flags.bad-index.offVariation", "flags.bad-regex.rules[0].clauses[0].values[0]", "flags.bad key!", "flags.gone", "segments.s.included"} {
		if !slices.Contains(paths, want) {
			t.Errorf("problems %q lack %s", paths, want)
		}
	}
	if slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(p, "flags.ok") }) {
		t.Errorf("problems %q name flags.ok, which is fine", paths)
	}
	if !strings.Contains(got.Error, fmt.Sprintf("%d problems", len(got.Problems))) {
		t.Errorf("error %q does not count the %d problems", got.Error, len(got.Problems))
	}
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{"flags": `, "invalid"},
		{"flags not an object", `{"flags": []}`, "flags"},
		{"version not an integer", `{"version": "x", "flags": {}}`, "version"},
	} {
		resp, body := do(t, "PUT", url, adminToken, tc.body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s: push = %d %s, want 400 naming %q", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	// Every top-level problem, not only the first.
	resp, body = do(t, "PUT", url, adminToken, `{"flags": [], "segments": 1, "version": "v"}`)
	got.Problems = nil
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusBadRequest || len(got.Problems) != 3 {
		t.Errorf("push with a wrong version, flags and segments = %d %s, want 400 with 3 problems", resp.StatusCode, body)
	}
	if srv.Version() != 17 {
		t.Errorf("refused pushes changed the version to %d", srv.Version())
	}
	resp, _ = do(t, "PUT", url, "", pushedDoc)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("push without a token = %d, want 401", resp.StatusCode)
	}
}

// TestPushFolder: a push to a folder writes each key in the file that
// defines it, new keys to admin.json, and deletes removed keys from their
// file; every other byte stays. Loaded again, the folder holds the pushed
// document.
func TestPushFolder(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.json": "{\n  \"flags\": {\n    \"a1\": {\"on\": true, \"variations\": [1], \"fallthrough\": {\"variation\": 0}},\n" +
			"    \"a2\": {\"variations\": [2], \"fallthrough\": {\"variation\": 0}}\n  }\n}\n",
		"b.json":     `{"flags": {"b1": {"variations": [3], "fallthrough": {"variation": 0}}}, "segments": {"s1": {"included": ["u"]}}}`,
		"admin.json": `{"flags": {"x": {"variations": [4], "fallthrough": {"variation": 0}}}}`,
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	srv, url, _ := fileServer(t, dir)
	push := `{"flags": {
	  "a1": {"on": false, "variations": [1], "fallthrough": {"variation": 0}},
	  "b1": {"variations": [3], "fallthrough": {"variation": 0}},
	  "x": {"variations": [5], "fallthrough": {"variation": 0}},
	  "n1": {"variations": [6], "fallthrough": {"variation": 0}}
	}, "segments": {"s2": {"included": ["v"]}}}`
	resp, body := do(t, "PUT", url+"/v1/admin/document", adminToken, push)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("push = %d %s", resp.StatusCode, body)
	}
	read := func(name string) string { return string(readFile(t, filepath.Join(dir, name))) }
	if got, want := read("a.json"), "{\n  \"flags\": {\n    \"a1\": {\"version\": 1, \"on\": false, \"variations\": [1], \"fallthrough\": {\"variation\": 0}}\n  }\n}\n"; got != want {
		t.Errorf("a.json =\n%s\nwant\n%s", got, want)
	}
	if got, want := read("b.json"), `{"flags": {"b1": {"variations": [3], "fallthrough": {"variation": 0}}}, "segments": {}}`; got != want {
		t.Errorf("b.json = %s, want %s", got, want)
	}
	admin := read("admin.json")
	for _, want := range []string{`"x": {"version": 1, "variations": [5]`, `"n1": {"version": 1, "variations": [6]`, `"s2":{"version":1,"included":["v"]}`} {
		if !strings.Contains(admin, want) {
			t.Errorf("admin.json = %s, want it to hold %s", admin, want)
		}
	}
	_, reloaded := openFileServer(t, dir, FileStoreOptions{}, Options{})
	defer reloaded.Close()
	sameContent(t, reloaded.Document(), srv.Document())
}

// sameContent fails unless a and b hold the same flags and segments (their
// versions aside).
func sameContent(t *testing.T, a, b *rules.Document) {
	t.Helper()
	for _, pair := range [][2]map[string]json.RawMessage{{a.Flags, b.Flags}, {a.Segments, b.Segments}} {
		x, y := pair[0], pair[1]
		if !slices.Equal(slices.Sorted(mapsKeys(x)), slices.Sorted(mapsKeys(y))) {
			t.Errorf("keys %v, want %v", slices.Sorted(mapsKeys(x)), slices.Sorted(mapsKeys(y)))
			continue
		}
		for k := range x {
			if contentSum(x[k]) != contentSum(y[k]) {
				t.Errorf("%s: %s, want %s", k, x[k], y[k])
			}
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestSpliceChangesMatchesOneByOne: several changes made in one pass give
// the document that one change at a time gives, on files of every layout,
// and the file grows by at most twice the values written.
func TestSpliceChangesMatchesOneByOne(t *testing.T) {
	layouts := []string{
		indentedDoc(6),
		`{"flags":{"f-0":{"variations":[1],"fallthrough":{"variation":0}},"f-1":{"variations":[1],"fallthrough":{"variation":0}}},"segments":{"s":{}}}`,
		"{\r\n  \"flags\": {\r\n    \"f-0\": {\"variations\": [1], \"fallthrough\": {\"variation\": 0}},\r\n    \"f-1\": 5,\r\n    \"f-5\": {}\r\n  }\r\n}\r\n",
		`{"flags": {}, "segments": {}}`,
		`{"version": 3}`,
		``,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for li, data := range layouts {
		for round := range 40 {
			cs, budget := randomChanges(rng, round)
			if len(cs) == 0 {
				continue
			}
			checkSpliceMatchesOneByOne(t, fmt.Sprintf("layout %d round %d", li, round), data, cs, budget)
		}
	}
}

// randomChanges picks a random set of changes to flags f-0…f-7 and segments
// s0…s2, each a set (a value written at version round) or a delete, each key
// once. budget is how much they may grow a file: the sum of changeBudget.
func randomChanges(rng *rand.Rand, round int) (cs []Change, budget int) {
	for _, kind := range []Kind{KindFlag, KindSegment} {
		for i := range 8 {
			if rng.IntN(3) == 0 {
				continue
			}
			key := fmt.Sprintf("f-%d", i)
			if kind == KindSegment {
				key = fmt.Sprintf("s%d", i%3)
			}
			c := Change{Kind: kind, Key: key}
			if rng.IntN(3) > 0 {
				c.Value = json.RawMessage(fmt.Sprintf(`{"version":%d,"variations":[%d,{"a":[1,2]}],"fallthrough":{"variation":0}}`, round, i))
				budget += changeBudget(c)
			}
			if !slices.ContainsFunc(cs, func(o Change) bool { return o.Kind == c.Kind && o.Key == c.Key }) {
				cs = append(cs, c)
			}
		}
	}
	return cs, budget
}

// checkSpliceMatchesOneByOne checks that spliceChanges of cs on data gives
// the content spliceChange of each in turn gives, growing data by at most
// budget; what names the case in failures.
func checkSpliceMatchesOneByOne(t *testing.T, what, data string, cs []Change, budget int) {
	t.Helper()
	got, _, err := spliceChanges([]byte(data), cs)
	if err != nil {
		t.Fatalf("%s: spliceChanges: %v", what, err)
	}
	want := []byte(data)
	for _, c := range cs {
		if want, _, err = spliceChange(want, c, changeBudget(c)); err != nil {
			t.Fatalf("%s: spliceChange: %v", what, err)
		}
	}
	gd, err := rules.ParseDocument(got)
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, got)
	}
	wd, err := rules.ParseDocument(want)
	if err != nil {
		t.Fatal(err)
	}
	sameContent(t, gd, wd)
	if grown := len(got) - len(data); grown > budget {
		t.Errorf("%s: grew by %d, budget %d", what, grown, budget)
	}
	if t.Failed() {
		t.Fatalf("%s:\n%s\nwant\n%s", what, got, want)
	}
}

// TestPushSplicesInOnePass: a push rewriting every one of 2,000 flags of
// one file allocates a few times the file, not 2,000 times it (one change
// at a time would copy the file for each).
func TestPushSplicesInOnePass(t *testing.T) {
	data := []byte(indentedDoc(2000))
	cs := make([]Change, 2000)
	for i := range cs {
		cs[i] = Change{Kind: KindFlag, Key: fmt.Sprintf("f-%d", i),
			Value: json.RawMessage(fmt.Sprintf(`{"version":%d,"on":false,"variations":[false,true],"fallthrough":{"variation":0}}`, i+2))}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, changed, err := spliceChanges(data, cs)
	runtime.ReadMemStats(&after)
	if err != nil || !changed {
		t.Fatalf("spliceChanges = %v, %v", changed, err)
	}
	if _, err := rules.ParseDocument(out); err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(20*len(data)) {
		t.Errorf("spliceChanges of 2,000 changes allocated %d bytes for a %d-byte file, want under 20 times it", alloc, len(data))
	}
}

// TestPushKeepsHandEdit: a push that finds an unloaded hand edit loads it
// first, then refuses with 409 when it would change what the edit wrote
// (SPEC §13: a hand edit is never lost); a push that keeps the edit
// applies on top of it.
func TestPushKeepsHandEdit(t *testing.T) {
	path, _, _, url, c := unpolledFileServer(t)
	banner := func(doc, text string) string { return strings.Replace(doc, `["a", "b"]`, text, 1) }
	edited := editFile(t, path, `"u1"`, `"u2"`) // segment beta-testers, by hand
	resp, body := do(t, "PUT", url+"/v1/admin/document", adminToken, banner(baseDoc, `["a", "c"]`))
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("push undoing the edit = %d %s, want 409", resp.StatusCode, body)
	}
	if _, p := c.nextPatch(t); p.Segments["beta-testers"] == nil || len(p.Flags) != 0 {
		t.Errorf("the hand edit was not published alone first: %+v", p)
	}
	if got := string(readFile(t, path)); got != edited {
		t.Errorf("the push overwrote the hand edit:\n%s", got)
	}
	// The edit kept, another key changed: applied on top.
	keeping := banner(strings.Replace(baseDoc, `"u1"`, `"u2"`, 1), `["a", "c"]`)
	if resp, body := do(t, "PUT", url+"/v1/admin/document", adminToken, keeping); resp.StatusCode != http.StatusOK {
		t.Errorf("push that keeps the edit = %d %s, want 200", resp.StatusCode, body)
	}
	if got := string(readFile(t, path)); !strings.Contains(got, `"u2"`) || !strings.Contains(got, `"c"`) {
		t.Errorf("file after the push:\n%s", got)
	}
}
