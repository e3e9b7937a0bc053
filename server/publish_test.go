package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/rules"
)

// withVersion keeps every member but "version", which it sets; contentSum
// does not see the difference.
func FuzzWithVersion(f *testing.F) {
	for _, seed := range []string{
		`{"version": 3, "on": true, "x": {"y": [1, 2.50, "<&>"]}}`,
		`{"on": true}`,
		`{"version": "abc"}`,
		`[1, 2]`,
		`null`,
		`"s"`,
		`{"a": 1, "a": 2}`,
	} {
		f.Add([]byte(seed), int64(7))
	}
	f.Fuzz(func(t *testing.T, raw []byte, v int64) {
		if !json.Valid(raw) {
			return
		}
		out := withVersion(raw, v)
		if !json.Valid(out) {
			t.Fatalf("withVersion(%s) = %s: not JSON", raw, out)
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return // not an object: returned compacted, unchanged
		}
		if got := objectVersion(out); v >= 0 && got != v {
			t.Errorf("objectVersion(withVersion(%s, %d)) = %d", raw, v, got)
		}
		if contentSum(raw) != contentSum(out) {
			t.Errorf("withVersion(%s) = %s changed the content", raw, out)
		}
	})
}

func TestEncodePatchShape(t *testing.T) {
	p := decodePatch(t, string(encodePatch(&rules.Patch{Version: 5, Flags: map[string]json.RawMessage{"b": nil, "a": json.RawMessage(`{"on":true}`)}})))
	if p.Version != 5 || string(p.Flags["b"]) != "null" || string(p.Flags["a"]) != `{"on":true}` || p.Segments == nil {
		t.Errorf("encodePatch = %+v", p)
	}
}

// TestHistoryBounded ("tombstones are never pruned"): after many changes the
// server keeps the replay window and no more — the ring, and the tombstones
// of keys deleted by the patches in it — so its memory does not grow with
// the number of changes. A key deleted inside the window continues its
// version when added again.
func TestHistoryBounded(t *testing.T) {
	flag := `{"variations": [true], "fallthrough": {"variation": 0}}`
	t.Run("patch count", func(t *testing.T) {
		const window = 16
		srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken, ReplayPatches: window})
		for i := range 300 { // 600 changes, 300 distinct keys deleted
			putThenDelete(t, ts.URL, fmt.Sprintf("k-%d", i), flag)
		}
		srv.writeMu.Lock()
		tombs, order, orderCap := len(srv.tombs), len(srv.tombOrder), cap(srv.tombOrder)
		srv.writeMu.Unlock()
		srv.mu.Lock()
		ring, ringCap := len(srv.ring), cap(srv.ring)
		srv.mu.Unlock()
		if ring != window || ringCap > 4*window+1 {
			t.Errorf("replay ring holds %d patches (capacity %d), want %d", ring, ringCap, window)
		}
		// The window holds 16 patches, 8 of them deletes.
		if tombs > window/2 || order > window/2 || orderCap > 64+window {
			t.Errorf("%d tombstones (%d in order, capacity %d) after 300 deletes, want at most %d", tombs, order, orderCap, window/2)
		}
		if resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/k-299", adminToken, flag); resp.Header.Get("ETag") != `"2"` {
			t.Errorf("k-299, deleted inside the window, back at ETag %s (%s), want \"2\"", resp.Header.Get("ETag"), body)
		}
		if resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/k-0", adminToken, flag); resp.Header.Get("ETag") != `"1"` {
			t.Errorf("k-0, deleted long ago, back at ETag %s (%s), want \"1\"", resp.Header.Get("ETag"), body)
		}
	})

	t.Run("byte budget", func(t *testing.T) {
		small, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken, ReplayBytes: 4096})
		for i := range 200 {
			body := fmt.Sprintf(`{"variations": [true], "fallthrough": {"variation": 0}, "description": "%d"}`, i)
			if resp, msg := do(t, "PUT", ts.URL+"/v1/admin/flags/x", adminToken, body); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT = %d %s", resp.StatusCode, msg)
			}
		}
		small.mu.Lock()
		defer small.mu.Unlock()
		if small.ringBytes > 4096 || len(small.ring) == 0 || len(small.ring) >= 200 {
			t.Errorf("replay ring of %d patches, %d bytes, want at most 4096 bytes", len(small.ring), small.ringBytes)
		}
	})
}

// putThenDelete creates flag key with body flag, then deletes it.
func putThenDelete(t *testing.T, base, key, flag string) {
	t.Helper()
	url := base + "/v1/admin/flags/" + key
	if resp, msg := do(t, "PUT", url, adminToken, flag); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s = %d %s", key, resp.StatusCode, msg)
	}
	if resp, msg := do(t, "DELETE", url, adminToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s = %d %s", key, resp.StatusCode, msg)
	}
}

// TestVersionExhausted ("the version overflows at MaxInt64"): a document at
// version MaxInt64-1 is served and takes one more change; then writes and
// reloads are refused with ErrVersionExhausted (409 for the admin API),
// never wrapped. A flag at per-flag version MaxInt64 cannot change either.
func TestVersionExhausted(t *testing.T) {
	const top = math.MaxInt64
	doc := strings.Replace(baseDoc, `"version": 17`, fmt.Sprintf(`"version": %d`, int64(top-1)), 1)
	doc = strings.Replace(doc, `"version": 3, "on": true`, fmt.Sprintf(`"version": %d, "on": true`, int64(top)), 1)
	srv, ts := newTestServer(t, doc, Options{AdminToken: adminToken, Epoch: "e1"})
	resp, _ := do(t, "GET", ts.URL+"/v1/flags", "", "")
	if want := fmt.Sprintf(`"e1:%d"`, int64(top-1)); resp.Header.Get("ETag") != want {
		t.Errorf("ETag %s, want %s", resp.Header.Get("ETag"), want)
	}
	flag := `{"variations": [true], "fallthrough": {"variation": 0}}`
	resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/new-checkout", adminToken, flag)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "flags.new-checkout is at version 9223372036854775807") {
		t.Errorf("PUT of a flag at MaxInt64 = %d %s, want 409", resp.StatusCode, body)
	}
	if resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/a", adminToken, flag); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT at version MaxInt64-1 = %d %s", resp.StatusCode, body)
	}
	if srv.Version() != top {
		t.Fatalf("Version = %d, want MaxInt64", srv.Version())
	}
	resp, body = do(t, "PUT", ts.URL+"/v1/admin/flags/b", adminToken, flag)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "version exhausted") || !strings.Contains(body, "restart") {
		t.Errorf("PUT at MaxInt64 = %d %s, want 409 saying to restart", resp.StatusCode, body)
	}
	errorIs(t, srv.Publish(mustParse(t, baseDoc)), ErrVersionExhausted)
	if srv.Version() != top || srv.Document().Flags["b"] != nil {
		t.Errorf("refused changes were applied: version %d", srv.Version())
	}
	// A stream resumes at the last version.
	c := openStream(t, ts.URL, "", fmt.Sprintf("e1:%d", int64(top)))
	select {
	case ev := <-c.events:
		if ev.Name == "snapshot" {
			t.Errorf("resuming at MaxInt64 sent a snapshot")
		}
	case <-time.After(50 * time.Millisecond):
	}
}

// TestServedValuesParsed: values that do not come from a parsed file (a
// program's Publish, a MemoryStore, any Store) go through the document
// parser before they are served; one it refuses is refused whole, named.
func TestServedValuesParsed(t *testing.T) {
	bad := &rules.Document{Flags: map[string]json.RawMessage{"x": json.RawMessage(`{"on": tru`)}}
	if _, err := New(NewMemoryStore(bad), Options{}); !errors.Is(err, rules.ErrInvalidDocument) {
		t.Errorf("New over a value that does not parse = %v, want ErrInvalidDocument", err)
	}
	srv, _ := newTestServer(t, baseDoc, Options{})
	err := srv.Publish(bad)
	errorIs(t, err, rules.ErrInvalidDocument)
	if !strings.Contains(err.Error(), "flags.x") {
		t.Errorf("Publish error %q does not name flags.x", err)
	}
	if srv.Version() != 17 {
		t.Errorf("a refused document was published")
	}
}

// TestServedStringsValidUTF8: invalid UTF-8 (a raw byte, a lone surrogate)
// in a published value or an admin body is refused, never served (SPEC
// §13). The check is the document parser's (rules).
func TestServedStringsValidUTF8(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken})
	for _, s := range []string{"\xff", `\ud800`} {
		raw := `{"variations": [true], "fallthrough": {"variation": 0}, "description": "a` + s + `"}`
		doc := &rules.Document{Flags: map[string]json.RawMessage{"x": json.RawMessage(raw)}}
		if err := srv.Publish(doc); !errors.Is(err, rules.ErrInvalidDocument) {
			t.Errorf("Publish of %q = %v, want ErrInvalidDocument", raw, err)
		}
		if resp, body := do(t, "PUT", ts.URL+"/v1/admin/flags/x", adminToken, raw); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT %q = %d %s, want 400", raw, resp.StatusCode, body)
		}
	}
	if srv.Document().Flags["x"] != nil {
		t.Errorf("invalid UTF-8 is served: %q", srv.Document().Flags["x"])
	}
}

// TestDanglingReferencesLogged: a prerequisite flag or a segment that a
// flag or segment names and the document lacks is served as SPEC says (the
// prerequisite fails, the segment holds no context) and logged, at load for
// the whole document and then for what each change touches: it is most
// often a misspelt key.
func TestDanglingReferencesLogged(t *testing.T) {
	logger, logs := newLogSink()
	doc, err := rules.ParseDocument([]byte(`{"flags": {"a": {"on": true, "variations": [false, true],
	  "prerequisites": [{"flag": "paymnets", "variation": 1}], "fallthrough": {"variation": 0}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(NewMemoryStore(doc), Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	awaitLog(t, logs, "flags: flag names a flag the document lacks", "key=a", "field=prerequisites[0].flag", "missing=paymnets")

	next, err := rules.ParseDocument([]byte(`{"flags": {"a": {"on": true, "variations": [false, true],
	  "prerequisites": [{"flag": "paymnets", "variation": 1}], "fallthrough": {"variation": 0}},
	  "b": {"on": true, "variations": [false, true], "rules": [{"clauses": [{"op": "inSegment", "values": ["btea"]}], "serve": {"variation": 1}}],
	    "fallthrough": {"variation": 0}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(next); err != nil {
		t.Fatal(err)
	}
	line := awaitLog(t, logs, "flags: flag names a segment the document lacks")
	if want := "key=b field=rules[0].clauses[0].values[0] missing=btea"; !strings.Contains(line, want) {
		t.Errorf("log %q, want %q", line, want)
	}
	next.Segments["gamma"] = json.RawMessage(`{"rules": [{"clauses": [{"op": "inSegment", "values": ["delta"]}]}]}`)
	if err := s.Publish(next); err != nil {
		t.Fatal(err)
	}
	awaitLog(t, logs, "flags: segment names a segment the document lacks", "key=gamma", "field=rules[0].clauses[0].values[0]", "missing=delta")
	for { // a and b, unchanged, are not reported again
		select {
		case line := <-logs:
			if strings.Contains(line, "the document lacks") {
				t.Errorf("reported again after a change that did not touch it: %q", line)
			}
		default:
			return
		}
	}
}
