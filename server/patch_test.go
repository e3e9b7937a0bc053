package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestMergePatchRFC7396 runs the examples of RFC 7396, appendix A, and
// checks that members keep their order and bytes.
func TestMergePatchRFC7396(t *testing.T) {
	for _, tc := range []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"a":"foo"}`, `null`, `null`},
		{`{"a":"foo"}`, `"bar"`, `"bar"`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		// Beyond the RFC: order and bytes are kept, the target's duplicates count once.
		{`{"z":1,"on":true,"a":{"x":1.50}}`, `{"on":false}`, `{"z":1,"on":false,"a":{"x":1.50}}`},
		{`{"on":true,"x":1,"on":false}`, `{"y":2}`, `{"on":false,"x":1,"y":2}`},
		{`{"a\u0062":1}`, `{"ab":2}`, `{"a\u0062":2}`},
	} {
		got, err := mergePatch([]byte(tc.target), []byte(tc.patch))
		if err != nil || string(got) != tc.want {
			t.Errorf("mergePatch(%s, %s) = %s, %v; want %s", tc.target, tc.patch, got, err, tc.want)
		}
	}
	// A patch that names a member twice means what each reader guesses:
	// refused, at any depth, escaped names too.
	for _, patch := range []string{`{"on":false,"on":true}`, `{"b":null,"b":2}`, `{"a":{"x":1,"\u0078":2}}`} {
		if got, err := mergePatch([]byte(`{"a":{}}`), []byte(patch)); err == nil || !strings.Contains(err.Error(), "named twice") {
			t.Errorf("mergePatch of %s = %s, %v; want it refused", patch, got, err)
		}
	}
}

// TestAdminPatch: PATCH takes a merge patch, validates the result like PUT,
// honours If-Match, and {"on": false} is the kill switch.
func TestAdminPatch(t *testing.T) {
	srv, ts := newTestServer(t, baseDoc, Options{Epoch: "e1", AdminToken: adminToken})
	c := openStream(t, ts.URL, "", "")
	c.next(t) // snapshot
	url := ts.URL + "/v1/admin/flags/new-checkout"
	mp := []string{"Content-Type", mergePatchType}

	resp, body := do(t, "PATCH", url, adminToken, `{"on": false}`, append(mp, "If-Match", `"3"`)...)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"4"` {
		t.Fatalf("kill switch = %d %s (ETag %s), want 200 with ETag \"4\"", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	ev, p := c.nextPatch(t)
	if strings.TrimSpace(body) != ev.Data || p.Version != 18 {
		t.Fatalf("PATCH answered %s, published %s; want the same patch at version 18", body, ev.Data)
	}
	want := `{"version":4,"on":false,"variations":[false,true],"fallthrough":{"variation":1},"owner":"team-a"}`
	if got := string(srv.Document().Flags["new-checkout"]); got != want {
		t.Errorf("after the kill switch the flag is %s, want %s", got, want)
	}

	for _, tc := range []struct {
		name, body string
		header     []string
		status     int
		inError    string
	}{
		{"stale If-Match", `{"on": true}`, append(mp, "If-Match", `"3"`), 412, "precondition failed"},
		{"JSON, not a merge patch", `{"on": true}`, []string{"Content-Type", "application/json"}, 415, mergePatchType},
		{"no Content-Type", `{"on": true}`, nil, 415, mergePatchType},
		{"result malformed", `{"fallthrough": null}`, mp, 400, "flags.new-checkout.fallthrough"},
		{"on of the wrong type", `{"on": "yes"}`, mp, 400, "flags.new-checkout.on"},
		{"body null", `null`, mp, 400, "body is null"},
		{"body an array", `[{"on": true}]`, mp, 400, "an array"},
		{"not JSON", `{"on": `, mp, 400, "not JSON"},
	} {
		resp, body := do(t, "PATCH", url, adminToken, tc.body, tc.header...)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.inError) {
			t.Errorf("%s: PATCH = %d %s, want %d naming %q", tc.name, resp.StatusCode, body, tc.status, tc.inError)
		}
	}
	resp, body = do(t, "PATCH", ts.URL+"/v1/admin/flags/nope", adminToken, `{"on": true}`, mp...)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("PATCH of a missing flag = %d %s, want 404", resp.StatusCode, body)
	}
	resp, body = do(t, "PATCH", ts.URL+"/v1/admin/segments/beta-testers", adminToken, `{"included": ["u1", "u3"]}`, mp...)
	if resp.StatusCode != http.StatusOK || member(t, srv.Document().Segments["beta-testers"], "version") != 3.0 {
		t.Errorf("PATCH of a segment = %d %s, want 200 and version 3", resp.StatusCode, body)
	}
	if _, p := c.nextPatch(t); p.Version != 19 || len(p.Segments) != 1 {
		t.Errorf("PATCH of a segment published %+v, want version 19", p)
	}
	if v := srv.Version(); v != 19 {
		t.Errorf("version %d after the refused PATCHes, want 19", v)
	}
}

// TestAdminPatchKeepsFileLayout: a kill switch by PATCH on an indented file
// changes the flag's "on" and "version" lines only.
func TestAdminPatchKeepsFileLayout(t *testing.T) {
	before := indentedDoc(10)
	path := docFile(t, before)
	_, url, _ := fileServer(t, path)
	resp, body := do(t, "PATCH", url+"/v1/admin/flags/f-3", adminToken, `{"on":false}`, "Content-Type", mergePatchType)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH = %d %s", resp.StatusCode, body)
	}
	diff := changedLines(t, path, before, "PATCH")
	if want := []string{"-      \"version\": 4,\n+      \"version\": 5,", "-      \"on\": true,\n+      \"on\": false,"}; !slices.Equal(diff, want) {
		t.Errorf("changed lines %q, want %q", diff, want)
	}
}

// TestConcurrentPatchesIfMatch: 1,000 PATCHes sent at once with the same
// If-Match: exactly one wins. Then 1,000 read-modify-write increments by
// concurrent writers, each retrying on 412: every version is won by exactly
// one writer and no increment is lost. Over the real file store.
func TestConcurrentPatchesIfMatch(t *testing.T) {
	path := docFile(t, `{"flags": {"hot": {"version": 1, "on": true, "n": 0, "variations": [true], "fallthrough": {"variation": 0}}}}`)
	srv, url, _ := fileServer(t, path)
	hot := newFlagClient(t, url+"/v1/admin/flags/hot")

	t.Run("one If-Match, one winner", func(t *testing.T) {
		var wins, refused, other atomic.Int64
		hot.runConcurrently(1000, func(i int) {
			code, _, body := hot.send("PATCH", fmt.Sprintf(`{"description": "writer %d"}`, i), "Content-Type", mergePatchType, "If-Match", `"1"`)
			switch code {
			case http.StatusOK:
				wins.Add(1)
			case http.StatusPreconditionFailed:
				refused.Add(1)
			default:
				other.Add(1)
				t.Errorf("PATCH = %d %s", code, body)
			}
		})
		if wins.Load() != 1 || refused.Load() != 999 {
			t.Fatalf("1,000 PATCHes with If-Match \"1\": %d won, %d refused with 412, %d other; want 1 and 999", wins.Load(), refused.Load(), other.Load())
		}
	})

	t.Run("read-modify-write loses no increment", func(t *testing.T) {
		const increments = 1000
		start := srv.Version()
		var mu sync.Mutex
		winners := map[string]int{} // new ETag → increments that won it
		hot.runConcurrently(increments, func(int) {
			if tag, ok := hot.increment(t); ok {
				mu.Lock()
				winners[tag]++
				mu.Unlock()
			}
		})
		if t.Failed() {
			return
		}
		checkIncrements(t, srv, path, start, increments, winners)
	})
}

// flagClient sends admin requests for one flag from concurrent workers over
// a shared pool of connections, so the server sees truly parallel writes.
type flagClient struct {
	url    string
	client *http.Client
}

const flagClientWorkers = 16

func newFlagClient(t *testing.T, url string) *flagClient {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: flagClientWorkers}}
	t.Cleanup(client.CloseIdleConnections)
	return &flagClient{url: url, client: client}
}

// send returns the status, the ETag and the body; a transport error comes
// back as status 0 with the error as the body, so workers can report it.
func (c *flagClient) send(method, body string, header ...string) (int, string, string) {
	req, err := http.NewRequest(method, c.url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err.Error()
	}
	return resp.StatusCode, resp.Header.Get("ETag"), string(b)
}

// runConcurrently calls job(0) … job(n-1) from flagClientWorkers goroutines.
func (c *flagClient) runConcurrently(n int, job func(i int)) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range flagClientWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				job(i)
			}
		}()
	}
	wg.Wait()
}

// increment reads the flag's n, writes back n+1 with If-Match and retries on
// 412. It returns the ETag its write won, or false after reporting an error.
func (c *flagClient) increment(t *testing.T) (string, bool) {
	for {
		code, tag, body := c.send("GET", "")
		if code != http.StatusOK {
			t.Errorf("GET = %d %s", code, body)
			return "", false
		}
		var f struct{ N int }
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			t.Errorf("GET body %s: %v", body, err)
			return "", false
		}
		code, newTag, body := c.send("PATCH", `{"n": `+strconv.Itoa(f.N+1)+`}`, "Content-Type", mergePatchType, "If-Match", tag)
		switch code {
		case http.StatusOK:
			return newTag, true
		case http.StatusPreconditionFailed:
			continue
		default:
			t.Errorf("PATCH = %d %s", code, body)
			return "", false
		}
	}
}

// checkIncrements checks that the flag "hot" counted every increment, in
// memory and in the file, each published as its own version won by one writer.
func checkIncrements(t *testing.T, srv *Server, path string, start int64, increments int, winners map[string]int) {
	t.Helper()
	var f struct{ N, Version int }
	if err := json.Unmarshal(srv.Document().Flags["hot"], &f); err != nil {
		t.Fatal(err)
	}
	if f.N != increments {
		t.Errorf("n = %d after %d increments: %d lost", f.N, increments, increments-f.N)
	}
	if len(winners) != increments {
		t.Errorf("%d distinct versions won for %d increments", len(winners), increments)
	}
	for tag, n := range winners {
		if n != 1 {
			t.Errorf("version %s won by %d writers", tag, n)
		}
	}
	if got := srv.Version() - start; got != int64(increments) {
		t.Errorf("%d patches published for %d increments", got, increments)
	}
	doc, _ := readDoc(t, path)
	if string(doc.Flags["hot"]) == "" || !strings.Contains(string(compact(doc.Flags["hot"])), fmt.Sprintf(`"n":%d`, increments)) {
		t.Errorf("the file holds %s, want n %d", doc.Flags["hot"], increments)
	}
}
