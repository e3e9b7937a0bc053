package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const adminToken = "adm"

func TestAdminFlag(t *testing.T) {
	store := NewMemoryStore(mustParse(t, baseDoc))
	srv, err := New(store, Options{Epoch: "e1", AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, srv)
	c := openStream(t, ts.URL, "", "")
	c.next(t) // snapshot

	for _, st := range []flagWrite{
		{"PUT", "x", `{"variations": [true, false], "fallthrough": {"variation": 0}, "owner": "z"}`, 18, 1}, // new: 1
		{"PUT", "new-checkout", `{"version": 1, "on": false, "variations": [false, true], "fallthrough": {"variation": 1}}`, 19, 4},
		// The same content again still publishes (each successful call does).
		{"PUT", "new-checkout", `{"on": false, "variations": [false, true], "fallthrough": {"variation": 1}}`, 20, 5},
		{"DELETE", "new-checkout", "", 21, -1},
		// Back after a delete: its version continues.
		{"PUT", "new-checkout", `{"variations": [1], "fallthrough": {"variation": 0}}`, 22, 6},
	} {
		st.check(t, ts.URL, c)
	}
	if got := member(t, srv.Document().Flags["x"], "owner"); got != "z" {
		t.Errorf("unknown field owner = %v, want kept", got)
	}
	doc, _ := store.Load(context.Background())
	if string(doc.Flags["new-checkout"]) != string(srv.Document().Flags["new-checkout"]) || doc.Version != 22 {
		t.Errorf("store holds %s at version %d, want what is served at 22", doc.Flags["new-checkout"], doc.Version)
	}
	resp, body := do(t, "DELETE", ts.URL+"/v1/admin/flags/nope", adminToken, "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE of an unknown flag = %d %s, want 404", resp.StatusCode, body)
	}
}

// flagWrite is an admin write of one flag and what it must publish.
type flagWrite struct {
	method, key, body string
	wantVersion       int64
	wantFlagVersion   float64 // -1: deleted
}

// check sends the write and checks that it answers the patch it publishes
// on c: the flag alone, at the wanted snapshot and flag versions.
func (st flagWrite) check(t *testing.T, url string, c *sseClient) {
	t.Helper()
	resp, body := do(t, st.method, url+"/v1/admin/flags/"+st.key, adminToken, st.body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d %s", st.method, st.key, resp.StatusCode, body)
	}
	ev, p := c.nextPatch(t)
	if strings.TrimSpace(body) != ev.Data {
		t.Errorf("%s %s answered %s, want the patch published: %s", st.method, st.key, body, ev.Data)
	}
	if p.Version != st.wantVersion || ev.ID != fmt.Sprintf("e1:%d", st.wantVersion) || len(p.Flags) != 1 || len(p.Segments) != 0 {
		t.Fatalf("%s %s published %s (id %s), want version %d with one flag", st.method, st.key, ev.Data, ev.ID, st.wantVersion)
	}
	raw := p.Flags[st.key]
	if st.wantFlagVersion < 0 {
		if string(raw) != "null" {
			t.Errorf("DELETE %s published %s, want null", st.key, raw)
		}
		return
	}
	if got := member(t, raw, "version"); got != st.wantFlagVersion {
		t.Errorf("%s %s: flag version %v, want %v", st.method, st.key, got, st.wantFlagVersion)
	}
}

func TestAdminSegment(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	c := openStream(t, ts.URL, "", "")
	c.next(t)
	resp, body := do(t, "PUT", ts.URL+"/v1/admin/segments/beta-testers", adminToken, `{"included": ["u1", "u2"]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT segment = %d %s", resp.StatusCode, body)
	}
	_, p := c.nextPatch(t)
	if p.Version != 18 || len(p.Flags) != 0 || member(t, p.Segments["beta-testers"], "version") != 3.0 {
		t.Fatalf("PUT segment published %+v, want version 18, segment at version 3", p)
	}
	resp, body = do(t, "DELETE", ts.URL+"/v1/admin/segments/beta-testers", adminToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE segment = %d %s", resp.StatusCode, body)
	}
	if _, p = c.nextPatch(t); p.Version != 19 || string(p.Segments["beta-testers"]) != "null" {
		t.Fatalf("DELETE segment published %+v", p)
	}
	if _, ok := srv.Document().Segments["beta-testers"]; ok {
		t.Error("segment still served after DELETE")
	}
	resp, _ = do(t, "DELETE", ts.URL+"/v1/admin/segments/beta-testers", adminToken, "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", resp.StatusCode)
	}
}

func TestAdminRejects(t *testing.T) {
	// A prerequisite chain c0 → c1 → ... → c16 is 16 deep: the most allowed.
	// c16 names c17, which does not exist (yet).
	var chain []string
	for i := 0; i <= 16; i++ {
		f := fmt.Sprintf(`{"on": true, "variations": [true], "fallthrough": {"variation": 0}, "prerequisites": [{"flag": "c%d", "variation": 0}]}`, i+1)
		chain = append(chain, fmt.Sprintf(`"c%d": %s`, i, f))
	}
	doc := strings.Replace(baseDoc, `"flags": {`, `"flags": {`+strings.Join(chain, ",")+",", 1)
	srv, ts := newTestServer(t, doc, Options{AdminToken: adminToken, MaxBodyBytes: 1024})
	c := openStream(t, ts.URL, "", "")
	c.next(t)
	before := string(srv.cur.Load().body)

	for _, tc := range []struct {
		name, path, body string
		status           int
		wantPath         string // a problem with this path must be named
	}{
		{"missing fallthrough", "flags/x", `{"variations": [true]}`, 400, "flags.x.fallthrough"},
		{"unknown operator", "flags/x", `{"variations": [true], "fallthrough": {"variation": 0},
			"rules": [{"clauses": [{"attribute": "k", "op": "eq", "values": [1]}], "serve": {"variation": 0}}]}`, 400, "flags.x.rules[0].clauses[0].op"},
		{"weights", "flags/new-checkout", `{"variations": [true, false], "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 1}]}}}`,
			400, "flags.new-checkout.fallthrough.rollout.variations"},
		{"bad version", "flags/x", `{"version": "abc", "variations": [true], "fallthrough": {"variation": 0}}`, 400, "flags.x.version"},
		{"not JSON", "flags/x", `{"on": `, 400, "flags.x"},
		{"trailing garbage", "flags/x", `{} {}`, 400, "flags.x"},
		{"not an object", "flags/x", `[1]`, 400, "flags.x"},
		{"invalid key", "flags/bad%20key", `{"variations": [true], "fallthrough": {"variation": 0}}`, 400, "flags.bad key"},
		{"self prerequisite", "flags/x", `{"variations": [true], "fallthrough": {"variation": 0}, "prerequisites": [{"flag": "x", "variation": 0}]}`,
			400, "flags.x.prerequisites"},
		{"makes another flag's chain too deep", "flags/c17", `{"variations": [true], "fallthrough": {"variation": 0}}`, 400, "flags.c0.prerequisites"},
		{"segment weight", "segments/s", `{"rules": [{"clauses": [], "weight": 200000}]}`, 400, "segments.s.rules[0].weight"},
		{"segment cycle", "segments/s", `{"rules": [{"clauses": [{"op": "inSegment", "values": ["s"]}]}]}`, 400, "segments.s.rules"},
		{"segment not an object", "segments/s", `"s"`, 400, "segments.s"},
		{"a member named twice", "flags/x", `{"on": false, "variations": [true], "fallthrough": {"variation": 0}, "on": true}`, 400, "flags.x.on"},
		{"body too large", "flags/x", `{"description": "` + strings.Repeat("x", 2048) + `"}`, 413, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, "PUT", ts.URL+"/v1/admin/"+tc.path, adminToken, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("PUT %s = %d %s, want %d", tc.path, resp.StatusCode, body, tc.status)
			}
			var e struct {
				Error    string
				Problems []problemJSON
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Fatalf("error body %q: %v", body, err)
			}
			if tc.wantPath == "" {
				return
			}
			var paths []string
			for _, p := range e.Problems {
				paths = append(paths, p.Path)
				if p.Path == tc.wantPath {
					return
				}
			}
			t.Errorf("problems %q, want one at %s (body %s)", paths, tc.wantPath, body)
		})
	}
	if got := string(srv.cur.Load().body); got != before {
		t.Errorf("refused writes changed the document")
	}
	// Nothing was published: the next patch is the first one.
	resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/x", adminToken, `{"variations": [true], "fallthrough": {"variation": 0}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("valid PUT = %d %s", resp.StatusCode, body)
	}
	if _, p := c.nextPatch(t); p.Version != 18 {
		t.Errorf("first patch after refused writes has version %d, want 18", p.Version)
	}
}

// A store that refuses a write leaves everything as it was.
func TestAdminStoreConflict(t *testing.T) {
	srv, err := New(refusingStore{NewMemoryStore(mustParse(t, baseDoc))}, Options{AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, srv)
	resp, body := do(t, "DELETE", ts.URL+"/v1/admin/flags/new-checkout", adminToken, "")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "edit that file") {
		t.Fatalf("DELETE = %d %s, want 409 with the store's reason", resp.StatusCode, body)
	}
	if srv.Version() != 17 || srv.Document().Flags["new-checkout"] == nil {
		t.Errorf("a refused write changed the server: version %d", srv.Version())
	}
}

type refusingStore struct{ *MemoryStore }

func (refusingStore) Write(context.Context, *Commit) error {
	return conflictError("defined elsewhere: edit that file")
}

func TestAdminDocumentTooLarge(t *testing.T) {
	srv, _ := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	limit := int64(len(srv.cur.Load().body)) + 100
	srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken, MaxDocumentBytes: limit})
	flag := `{"variations": [true], "fallthrough": {"variation": 0}, "description": "` + strings.Repeat("d", 200) + `"}`
	resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/big", adminToken, flag)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT over MaxDocumentBytes = %d %s, want 413", resp.StatusCode, body)
	}
	if srv.Version() != 17 {
		t.Errorf("Version = %d after a refused write, want 17", srv.Version())
	}
}

// TestAdminPutNullIs400: a body that is not a JSON object — null above all,
// which a patch reads as a delete — is refused with 400 naming the problem;
// nothing changes.
func TestAdminPutNullIs400(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	before := string(srv.cur.Load().body)
	for _, tc := range []struct{ body, want string }{
		{`null`, "body is null, want a JSON object"},
		{` null `, "body is null"},
		{`[{"on": true}]`, "body is an array"},
		{`"x"`, "body is a string"},
		{`5`, "body is a number"},
		{`true`, "body is a boolean"},
		{``, "body is not JSON"},
	} {
		for _, path := range []string{"flags/new-checkout", "segments/beta-testers"} {
			resp, body := do(t, "PUT", ts.URL+"/v1/admin/"+path, adminToken, tc.body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.want) {
				t.Errorf("PUT %s %q = %d %s, want 400 with %q", path, tc.body, resp.StatusCode, body, tc.want)
			}
			var e struct {
				Error    string
				Problems []problemJSON
			}
			want := strings.Replace(path, "/", ".", 1)
			if err := json.Unmarshal([]byte(body), &e); err != nil || len(e.Problems) != 1 || e.Problems[0].Path != want {
				t.Errorf("PUT %s %q: error %s, want JSON with one problem at %s", path, tc.body, body, want)
			}
		}
	}
	if got := string(srv.cur.Load().body); got != before || srv.Version() != 17 {
		t.Errorf("refused bodies changed the document (version %d)", srv.Version())
	}
}

// TestAdminIfMatch: GET returns an object with its version as ETag; PUT and
// DELETE honour If-Match and If-None-Match (SPEC §10), so a stale editor
// cannot overwrite a newer version.
func TestAdminIfMatch(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	url := ts.URL + "/v1/admin/flags/"
	checkAdminGetETags(t, srv, ts.URL)

	flag := `{"on": true, "variations": [false, true], "fallthrough": {"variation": 1}}`
	for _, st := range []conditionalWrite{
		{"PUT", "new-checkout", "If-Match", `"2"`, 412, `"3"`},
		{"PUT", "new-checkout", "If-Match", `"3"`, 200, `"4"`},
		{"PUT", "new-checkout", "If-Match", `W/"4"`, 412, `"4"`}, // If-Match compares strongly
		{"PUT", "new-checkout", "If-Match", `"1", "4"`, 200, `"5"`},
		{"PUT", "new-checkout", "If-Match", `*`, 200, `"6"`},
		{"PUT", "new-checkout", "If-Match", `6`, 400, ""},
		{"PUT", "new-checkout", "If-None-Match", `*`, 412, `"6"`},
		{"DELETE", "new-checkout", "If-Match", `"5"`, 412, `"6"`},
		{"DELETE", "new-checkout", "If-Match", `"6"`, 200, ""},
		{"PUT", "new-checkout", "If-Match", `"6"`, 412, ""}, // absent
		{"PUT", "new-checkout", "If-Match", `*`, 412, ""},
		{"DELETE", "new-checkout", "If-Match", `*`, 412, ""},
		{"PUT", "new-checkout", "If-None-Match", `*`, 200, `"7"`}, // created, continuing its version
		{"PUT", "y", "If-None-Match", `*`, 200, `"1"`},
		{"PUT", "y", "If-None-Match", `*`, 412, `"1"`},
		{"PUT", "y", "If-None-Match", `"1"`, 412, `"1"`},
	} {
		st.check(t, srv, url, flag)
	}

	// Editors racing with the same ETag: exactly one wins.
	resp, _ := do(t, "GET", url+"y", adminToken, "")
	tag := resp.Header.Get("ETag")
	if won := racePuts(t, url+"y", flag, tag, 8); won != 1 {
		t.Errorf("%d racing PUTs with If-Match %s won, want exactly 1", won, tag)
	}
}

// checkAdminGetETags checks baseDoc's admin GETs: the flag as served with
// its version as ETag, 304 for a matching If-None-Match, a segment's ETag
// and 404 for an unknown flag.
func checkAdminGetETags(t *testing.T, srv *Server, base string) {
	t.Helper()
	url := base + "/v1/admin/flags/"
	resp, body := do(t, "GET", url+"new-checkout", adminToken, "")
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"3"` || strings.TrimSpace(body) != string(srv.Document().Flags["new-checkout"]) {
		t.Fatalf("GET = %d ETag %s %s, want 200 \"3\" and the flag as served", resp.StatusCode, resp.Header.Get("ETag"), body)
	}
	if resp, _ := do(t, "GET", url+"new-checkout", adminToken, "", "If-None-Match", `"3"`); resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET If-None-Match \"3\" = %d, want 304", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", base+"/v1/admin/segments/beta-testers", adminToken, ""); resp.Header.Get("ETag") != `"2"` {
		t.Errorf("GET segment ETag %s, want \"2\"", resp.Header.Get("ETag"))
	}
	if resp, _ := do(t, "GET", url+"nope", adminToken, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of an unknown flag = %d, want 404", resp.StatusCode)
	}
}

// conditionalWrite is a PUT or DELETE with one precondition header and the
// status and ETag it must be answered.
type conditionalWrite struct {
	method, key, header, value string
	want                       int
	etag                       string // the ETag answered
}

// check sends the write (a PUT carries flag) and checks its answer; a
// refused write must not publish and a 412 must say why.
func (st conditionalWrite) check(t *testing.T, srv *Server, url, flag string) {
	t.Helper()
	body := ""
	if st.method == "PUT" {
		body = flag
	}
	v := srv.Version()
	resp, got := do(t, st.method, url+st.key, adminToken, body, st.header, st.value)
	if resp.StatusCode != st.want || resp.Header.Get("ETag") != st.etag {
		t.Fatalf("%s %s %s: %s = %d ETag %q %s, want %d ETag %q", st.method, st.key, st.header, st.value,
			resp.StatusCode, resp.Header.Get("ETag"), got, st.want, st.etag)
	}
	if st.want != 200 && srv.Version() != v {
		t.Fatalf("%s %s %s: %s refused but published", st.method, st.key, st.header, st.value)
	}
	if st.want == 412 && !strings.Contains(got, "precondition failed") {
		t.Errorf("412 body %s does not say why", got)
	}
}

// racePuts sends n PUTs of body with If-Match tag at once and returns how
// many won; an answer other than 200 or 412 is an error.
func racePuts(t *testing.T, url, body, tag string, n int) int {
	t.Helper()
	results := make(chan int, n)
	for range n {
		go func() {
			req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+adminToken)
			req.Header.Set("If-Match", tag)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	won := 0
	for range n {
		switch code := <-results; code {
		case 200:
			won++
		case 412:
		default:
			t.Errorf("racing PUT = %d", code)
		}
	}
	return won
}

// nested returns a flag whose first variation nests depth levels counted
// from the flag's own top (the flag object is level 1).
func nested(depth int) string {
	v := strings.Repeat("[", depth-2) + strings.Repeat("]", depth-2)
	return `{"variations": [` + v + `], "fallthrough": {"variation": 0}}`
}

// TestAdminBodyNestedTooDeep: a body nested deeper than 64 levels is refused
// with 400 (SPEC §13), so it can never inflate the file or the server's
// memory. The limit is the document parser's (rules): the body is read as
// it stands in a document, where a flag starts at the third level.
func TestAdminBodyNestedTooDeep(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	if resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/ok", adminToken, nested(20)); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT of a flag nested 20 deep = %d %s, want 200", resp.StatusCode, body)
	}
	for _, depth := range []int{65, 200, 9990} {
		resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/deep", adminToken, nested(depth))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "flags.deep") {
			t.Errorf("PUT of a flag nested %d deep = %d %.200s, want 400 naming flags.deep", depth, resp.StatusCode, body)
		}
	}
	if srv.Document().Flags["deep"] != nil {
		t.Error("a flag nested too deep is served")
	}
}

// TestAdminBodyRefusedNamesTheField: a body the document parser refuses
// (a string that is not UTF-8, a lone surrogate, nesting too deep) is a 400
// whose problem names the field, as every other malformed body's does
// (SPEC §5), not only a line and column.
func TestAdminBodyRefusedNamesTheField(t *testing.T) {
	_, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	for _, tc := range []struct{ body, field string }{
		{`{"on": true, "variations": ["` + "\xff" + `"], "fallthrough": {"variation": 0}}`, "variations[0]"},
		{`{"variations": [1], "fallthrough": {"variation": 0}, "tags": ["ok", "\ud800"]}`, "tags[1]"},
		{`{"variations": [1], "fallthrough": {"variation": 0}, "x": {"y": ` + strings.Repeat("[", 61) + strings.Repeat("]", 61) + `}}`, "x.y" + strings.Repeat("[0]", 60)},
	} {
		resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/m", adminToken, tc.body)
		var got struct{ Problems []problemJSON }
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusBadRequest || len(got.Problems) != 1 {
			t.Fatalf("PUT = %d %s, want 400 with one problem", resp.StatusCode, body)
		}
		if p := got.Problems[0]; p.Field != tc.field || p.Path != "flags.m."+tc.field {
			t.Errorf("problem %+v, want field %s", p, tc.field)
		}
	}
}
