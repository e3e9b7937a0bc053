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

	steps := []struct {
		method, key, body string
		wantVersion       int64
		wantFlagVersion   float64 // -1: deleted
	}{
		{"PUT", "x", `{"variations": [true, false], "fallthrough": {"variation": 0}, "owner": "z"}`, 18, 1}, // new: 1
		{"PUT", "new-checkout", `{"version": 1, "on": false, "variations": [false, true], "fallthrough": {"variation": 1}}`, 19, 4},
		// The same content again still publishes (each successful call does).
		{"PUT", "new-checkout", `{"on": false, "variations": [false, true], "fallthrough": {"variation": 1}}`, 20, 5},
		{"DELETE", "new-checkout", "", 21, -1},
		// Back after a delete: its version continues.
		{"PUT", "new-checkout", `{"variations": [1], "fallthrough": {"variation": 0}}`, 22, 6},
	}
	for _, st := range steps {
		resp, body := do(t, st.method, ts.URL+"/v1/admin/flags/"+st.key, adminToken, st.body)
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
			continue
		}
		if got := member(t, raw, "version"); got != st.wantFlagVersion {
			t.Errorf("%s %s: flag version %v, want %v", st.method, st.key, got, st.wantFlagVersion)
		}
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

func (refusingStore) Write(context.Context, Change) error {
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
