package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagstream/flags/experiment"
	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
	"github.com/google/go-cmp/cmp"
)

// guardedDoc has a flag rolled out 50/50 under a guard on "errors", and a
// rule serving a rollout as well as a target, which the rollback keeps.
const guardedDoc = `{"version": 1, "flags": {
  "checkout": {"on": true, "variations": ["old", "new"],
    "targets": [{"values": ["vip"], "variation": 1}],
    "rules": [{"id": "beta", "clauses": [{"attribute": "beta", "op": "in", "values": [true]}],
               "serve": {"rollout": {"variations": [{"variation": 0, "weight": 20000}, {"variation": 1, "weight": 80000}]}}}],
    "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
    "guard": {"metric": "errors", "better": "lower", "control": 0, "treatment": 1, "minUnits": 50}},
  "plain": {"on": true, "variations": [true, false], "fallthrough": {"variation": 0}}}}`

const batchID = "batch-0123456789abcdef"

// postEvents posts a batch and returns the answer.
func postEvents(t *testing.T, url, token, body string, header ...string) (*http.Response, string) {
	t.Helper()
	return do(t, "POST", url+"/v1/events", token, body, header...)
}

// exposure and track format SPEC §7 events.
func exposure(unit string, variation int, inRollout bool, at int64) string {
	return fmt.Sprintf(`{"kind":"exposure","at":%d,"flag":"checkout","version":1,"variation":%d,"contextKey":%q,"inRollout":%v}`,
		at, variation, unit, inRollout)
}

func track(unit, name string, at int64) string {
	return fmt.Sprintf(`{"kind":"track","at":%d,"name":%q,"contextKey":%q}`, at, name, unit)
}

func batch(id string, events ...string) string {
	return fmt.Sprintf(`{"batch":%q,"events":[%s]}`, id, strings.Join(events, ","))
}

func TestPostEventsAnswers(t *testing.T) {
	srv, err := New(NewMemoryStore(mustParse(t, guardedDoc)), Options{Token: "sdk", AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, srv).URL
	good := batch(batchID, exposure("u1", 1, true, 1000), track("u1", "errors", 2000),
		`{"kind":"summary","start":0,"end":1000,"counters":[{"flag":"checkout","version":1,"variation":1,"count":3},{"flag":"checkout","version":1,"count":1}],"dropped":2}`,
		`{"kind":"nonsense","at":1}`, `{"kind":"exposure","at":1,"flag":"checkout"}`, `{"kind":"track","at":1,"contextKey":"u1"}`, `7`)
	for _, tc := range []struct {
		name, token, body string
		header            []string
		status            int
		want              string
	}{
		{"no token", "", good, nil, 401, ""},
		{"unknown token", "nope", good, nil, 401, ""},
		{"accepted", "sdk", good, nil, 202, `{"accepted":3,"rejected":4}`},
		{"the same batch again", "sdk", good, nil, 202, `{"accepted":0,"rejected":0,"duplicate":true}`},
		{"admin token too", adminToken, batch("another-batch-id-000", track("u2", "errors", 1)), nil, 202, `{"accepted":1,"rejected":0}`},
		{"not JSON", "sdk", `{"batch":`, nil, 400, ""},
		{"no events", "sdk", `{"batch":"` + batchID + `x"}`, nil, 400, ""},
		{"events not an array", "sdk", `{"batch":"` + batchID + `x","events":{}}`, nil, 400, ""},
		{"short batch id", "sdk", batch("short", track("u", "m", 1)), nil, 400, ""},
		{"an array", "sdk", `[]`, nil, 400, ""},
		{"unknown encoding", "sdk", good, []string{"Content-Encoding", "br"}, 415, ""},
		{"bad gzip", "sdk", good, []string{"Content-Encoding", "gzip"}, 400, ""},
		{"too large", "sdk", `{"batch":"` + batchID + `y","events":["` + strings.Repeat("x", MaxEventsBodyBytes) + `"]}`, nil, 413, ""},
	} {
		resp, body := postEvents(t, url, tc.token, tc.body, tc.header...)
		if resp.StatusCode != tc.status || tc.want != "" && strings.TrimSpace(body) != tc.want {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.status, tc.want)
		}
	}
	// A gzip body that inflates past the limit is refused without
	// inflating it all.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	fmt.Fprintf(zw, `{"batch":"%sz","events":["%s"]}`, batchID, strings.Repeat("a", 50<<20))
	zw.Close()
	if resp, body := postEvents(t, url, "sdk", zb.String(), "Content-Encoding", "gzip"); resp.StatusCode != 413 {
		t.Errorf("a gzip bomb: %d %s, want 413", resp.StatusCode, body)
	}
	if zb.Len() > 100<<10 {
		t.Errorf("the bomb is %d bytes compressed: the test sends too much", zb.Len())
	}
	zb.Reset()
	zw = gzip.NewWriter(&zb)
	fmt.Fprint(zw, batch("gzipped-batch-00000", track("u3", "errors", 5)))
	zw.Close()
	if resp, body := postEvents(t, url, "sdk", zb.String(), "Content-Encoding", "gzip"); resp.StatusCode != 202 || !strings.Contains(body, `"accepted":1`) {
		t.Errorf("gzip: %d %s", resp.StatusCode, body)
	}

	// The summaries: per minute, by variation and default.
	resp, body := do(t, "GET", url+"/v1/admin/summaries/checkout", adminToken, "")
	var sums struct {
		Minutes []SummaryMinute `json:"minutes"`
	}
	if json.Unmarshal([]byte(body), &sums); resp.StatusCode != 200 {
		t.Fatalf("summaries: %d %s", resp.StatusCode, body)
	}
	// The summary's end (1000 ms after the epoch) is more than an hour ago.
	if len(sums.Minutes) != 0 {
		t.Errorf("summaries of 1970 reported as the last hour: %s", body)
	}
	now := time.Now().UnixMilli()
	postEvents(t, url, "sdk", batch("summary-batch-00001", fmt.Sprintf(
		`{"kind":"summary","start":%d,"end":%d,"counters":[{"flag":"checkout","version":1,"variation":1,"count":3},{"flag":"checkout","version":1,"count":1}]}`, now-1000, now)))
	_, body = do(t, "GET", url+"/v1/admin/summaries/checkout", adminToken, "")
	if !strings.Contains(body, `"variations":{"1":3},"default":1`) {
		t.Errorf("summaries: %s", body)
	}
}

// TestPostEventsHostile: what an SDK token can send and must not get
// through (SPEC §7, §13): a variation beyond int32 (it wrapped to -1 and
// crashed the guard's check, or to 0 and 1), a value whose sum overflows
// JSON, a batch id short in characters though long in bytes, nesting past
// 64 levels; and a stored gzip body whose decoded size is within the cap
// though its own is not.
func TestPostEventsHostile(t *testing.T) {
	srv, err := New(NewMemoryStore(mustParse(t, guardedDoc)), Options{Token: "sdk", AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, srv).URL
	// levels nests a track event's extra member so that the batch reaches
	// n levels: the batch object, its events array, the event, then arrays.
	levels := func(n int) string {
		return `{"kind":"track","at":1,"name":"m","contextKey":"u","x":` + strings.Repeat("[", n-3) + strings.Repeat("]", n-3) + `}`
	}
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"variation 2^32-1", batch("hostile-batch-000001", exposure("evil", 4294967295, true, 1000)), 202, `{"accepted":0,"rejected":1}`},
		{"variation 2^32", batch("hostile-batch-000002", exposure("evil", 1<<32, true, 1000)), 202, `{"accepted":0,"rejected":1}`},
		{"variation in a summary", batch("hostile-batch-000003", `{"kind":"summary","start":0,"end":1,"counters":[{"flag":"checkout","version":1,"variation":4294967296,"count":1}]}`), 202, `{"accepted":0,"rejected":1}`},
		{"value 1e308", batch("hostile-batch-000004", `{"kind":"track","at":1,"name":"errors","contextKey":"u1","value":1e308}`), 202, `{"accepted":0,"rejected":1}`},
		{"value at the bound", batch("hostile-batch-000005", `{"kind":"track","at":1,"name":"errors","contextKey":"u1","value":-1e15}`), 202, `{"accepted":1,"rejected":0}`},
		{"batch id of 9 characters in 18 bytes", batch("ééééééééé", track("u", "m", 1)), 400, ""},
		{"batch id of 16 characters in 32 bytes", batch("éééééééééééééééé", track("u", "m", 1)), 202, `{"accepted":1,"rejected":0}`},
		{"64 levels", batch("hostile-batch-000006", levels(64)), 202, `{"accepted":1,"rejected":0}`},
		{"65 levels", batch("hostile-batch-000007", levels(65)), 400, ""},
	} {
		resp, body := postEvents(t, url, "sdk", tc.body)
		if resp.StatusCode != tc.status || tc.want != "" && strings.TrimSpace(body) != tc.want {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.status, tc.want)
		}
	}
	rep, _ := srv.Experiment("checkout")
	if _, err := json.Marshal(rep); err != nil || rep.Units(0)+rep.Units(1) != 0 {
		t.Errorf("after hostile events: units %d+%d, encoding error %v", rep.Units(0), rep.Units(1), err)
	}

	// 1 MiB exactly, gzipped without compression: a little over 1 MiB on
	// the wire, within the cap decoded.
	body := `{"batch":"stored-gzip-batch-01","events":[],"pad":"`
	body += strings.Repeat("x", MaxEventsBodyBytes-len(body)-2) + `"}`
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.NoCompression)
	fmt.Fprint(zw, body)
	zw.Close()
	if zb.Len() <= MaxEventsBodyBytes {
		t.Fatalf("the stored body is %d bytes: not over the cap", zb.Len())
	}
	if resp, got := postEvents(t, url, "sdk", zb.String(), "Content-Encoding", "gzip"); resp.StatusCode != 202 {
		t.Errorf("1 MiB decoded, %d bytes stored: %d %s, want 202", zb.Len(), resp.StatusCode, got)
	}
}

// TestExperimentEndpoint: the report of SPEC §8 over HTTP, with roles, an
// unknown flag, and exact counts under repeated events and batches.
func TestExperimentEndpoint(t *testing.T) {
	tokens := testkit.TokensFile(t,
		testkit.Token{Name: "ops", Role: "operator", Secret: "op-secret"},
		testkit.Token{Name: "ci", Role: "reader", Secret: "reader-secret"})
	srv, err := New(NewMemoryStore(mustParse(t, guardedDoc)), Options{AdminToken: adminToken, TokensFile: tokens})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, srv).URL
	evs := experimentEvents()
	postEvents(t, url, "reader-secret", batch("exp-batch-000000001", evs...))
	postEvents(t, url, "reader-secret", batch("exp-batch-000000001", evs...)) // repeated: no change

	t.Run("operators and admins only", func(t *testing.T) {
		for _, tc := range []struct {
			token  string
			status int
		}{{"reader-secret", 403}, {"", 401}, {"op-secret", 200}, {adminToken, 200}} {
			if resp, body := do(t, "GET", url+"/v1/admin/experiments/checkout", tc.token, ""); resp.StatusCode != tc.status {
				t.Errorf("token %q: %d %s, want %d", tc.token, resp.StatusCode, body, tc.status)
			}
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		if resp, _ := do(t, "GET", url+"/v1/admin/experiments/nope", adminToken, ""); resp.StatusCode != 404 {
			t.Errorf("unknown flag: %d, want 404", resp.StatusCode)
		}
	})
	t.Run("exact counts", func(t *testing.T) {
		_, body := do(t, "GET", url+"/v1/admin/experiments/checkout", "op-secret", "")
		var r experiment.Report
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		want := experimentCounts{Switched: 1, Units: [2]int64{5, 6}, Conversions: [2]int64{2, 2}, Sums: [2]float64{2, 2}}
		if diff := cmp.Diff(want, countsOf(&r)); diff != "" {
			t.Errorf("report %s\ncounts (-want +got):\n%s", body, diff)
		}
		if r.SRM != nil {
			t.Errorf("srm with two rollouts: %s", body)
		}
	})
}

// experimentEvents exposes u0…u9 alternately to both variations with two
// "errors" each for u0…u3 (the second a repeat that must count once), plus
// the events the report must leave out or clamp.
func experimentEvents() []string {
	var evs []string
	for i := range 10 {
		evs = append(evs, exposure(fmt.Sprintf("u%d", i), i%2, true, 100))
		if i < 4 {
			evs = append(evs, track(fmt.Sprintf("u%d", i), "errors", 200), track(fmt.Sprintf("u%d", i), "errors", 200)) // a repeat
		}
	}
	evs = append(evs, exposure("u0", 1, true, 300))    // u0 switched
	evs = append(evs, exposure("vip", 1, false, 100))  // a target: not randomized
	evs = append(evs, track("u9", "errors", 50))       // before u9's exposure
	evs = append(evs, exposure("late", 1, true, 9e15)) // far in the future: clamped
	return evs
}

// experimentCounts is what TestExperimentEndpoint knows exactly of a report:
// per variation (control 0, treatment 1) the units and the "errors" metric.
type experimentCounts struct {
	Switched    int64
	Units       [2]int64
	Conversions [2]int64
	Sums        [2]float64
}

func countsOf(r *experiment.Report) experimentCounts {
	c := experimentCounts{Switched: r.Switched}
	for v := range 2 {
		row, _ := r.Row("errors", v)
		c.Units[v], c.Conversions[v], c.Sums[v] = r.Units(v), row.Conversions, row.Sum
	}
	return c
}

// TestEventsSurviveRestart: over a file store, acknowledged events are in
// the events file; a new server over the same files reports the same
// counts and still refuses a repeated batch.
func TestEventsSurviveRestart(t *testing.T) {
	path := docFile(t, guardedDoc)
	open := func() (*Server, string) {
		_, srv := openFileServer(t, path, FileStoreOptions{}, Options{AdminToken: adminToken})
		return srv, serve(t, srv).URL
	}
	a, urlA := open()
	var wg sync.WaitGroup
	for b := range 8 { // concurrent batches share fsyncs
		wg.Go(func() {
			var evs []string
			for i := range 50 {
				unit := fmt.Sprintf("b%d-u%d", b, i)
				evs = append(evs, exposure(unit, i%2, true, 100), track(unit, "errors", 200))
			}
			if resp, body := postEvents(t, urlA, "", batch(fmt.Sprintf("restart-batch-%06d", b), evs...)); resp.StatusCode != 202 {
				t.Errorf("post: %d %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	before, _ := a.Experiment("checkout")
	a.Close()
	if _, err := os.Stat(strings.TrimSuffix(path, ".json") + ".events.jsonl"); err != nil {
		t.Fatalf("no events file beside the flags: %v", err)
	}
	b, urlB := open()
	after, _ := b.Experiment("checkout")
	ja, _ := json.Marshal(before)
	jb, _ := json.Marshal(after)
	if string(ja) != string(jb) || before.Units(0)+before.Units(1) != 400 {
		t.Errorf("before the restart %s\nafter %s", ja, jb)
	}
	if _, body := postEvents(t, urlB, "", batch("restart-batch-000003", track("x", "errors", 1))); !strings.Contains(body, `"duplicate":true`) {
		t.Errorf("a batch acknowledged before the restart is accepted again: %s", body)
	}
}

// TestGuardRollsBack: a treatment that fails far more often trips the
// guard: the flag is rewritten by actor guard (every rollout serves the
// control, the target stays), audited, published, and never checked again
// until re-armed.
func TestGuardRollsBack(t *testing.T) {
	path := docFile(t, guardedDoc)
	trips := make(chan string, 4)
	store, srv := openFileServer(t, path, FileStoreOptions{}, Options{AdminToken: adminToken, GuardInterval: 20 * time.Millisecond,
		GuardHook: func(flag string) { trips <- flag }})
	url := serve(t, srv).URL
	stream := openStream(t, url, "", "")
	stream.next(t) // the snapshot
	postEvents(t, url, "", batch("guard-batch-0000001", treatmentFailsMoreEvents()...))
	select {
	case f := <-trips:
		if f != "checkout" {
			t.Fatalf("tripped %s", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the guard did not trip")
	}
	_, p := stream.nextPatch(t)
	checkRolledBack(t, p.Flags["checkout"])
	page, err := store.Audit(t.Context(), AuditQuery{Key: "checkout", Limit: 10})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("audit: %+v %v", page, err)
	}
	if e := page.Entries[0]; e.Actor != ActorGuard || e.Action != ActionGuard || !strings.Contains(e.Comment, "worse") {
		t.Errorf("audit entry %+v", e)
	}
	time.Sleep(100 * time.Millisecond) // several checks: a tripped guard does not check again
	select {
	case f := <-trips:
		t.Errorf("tripped again: %s", f)
	default:
	}
	if v := srv.Version(); v != 2 {
		t.Errorf("version %d after one rollback, want 2", v)
	}
}

// TestGuardRollsBackInFolder: in a folder, the guard rewrites its flag in
// the file that defines it. An admin write of such a key is refused (409:
// edit that file), but the rollback is the server's own, and refusing it
// left the failing treatment served, retried every check.
func TestGuardRollsBackInFolder(t *testing.T) {
	dir := t.TempDir()
	team := filepath.Join(dir, "team.json")
	writeFile(t, team, guardedDoc)
	trips := make(chan string, 4)
	_, srv := openFileServer(t, dir, FileStoreOptions{}, Options{AdminToken: adminToken, GuardInterval: 20 * time.Millisecond,
		GuardHook: func(flag string) { trips <- flag }})
	url := serve(t, srv).URL
	postEvents(t, url, "", batch("guard-folder-batch-01", treatmentFailsMoreEvents()...))
	select {
	case <-trips:
	case <-time.After(5 * time.Second):
		t.Fatal("the guard did not roll back")
	}
	doc, err := rules.ParseDocument(readFile(t, team))
	if err != nil {
		t.Fatal(err)
	}
	checkRolledBack(t, doc.Flags["checkout"])
	if _, err := os.Stat(filepath.Join(dir, AdminFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the rollback went to %s (%v), not to team.json", AdminFile, err)
	}
}

// treatmentFailsMoreEvents exposes 400 units half to each variation; the
// treatment fails 50 % of the time, the control 10 %: far past the guard's
// threshold with its minimum of units met.
func treatmentFailsMoreEvents() []string {
	var evs []string
	for i := range 400 {
		unit := fmt.Sprintf("u%d", i)
		v := i % 2
		evs = append(evs, exposure(unit, v, true, 100))
		if v == 1 && i%4 == 1 || v == 0 && i%20 == 0 {
			evs = append(evs, track(unit, "errors", 200))
		}
	}
	return evs
}

// rollback is what a guard's rollback of guardedDoc's "checkout" must look
// like: every rollout replaced by the control, the target kept, and the
// trip recorded with the evidence that the treatment is worse.
type rollback struct {
	Fallthrough    string
	RuleServes     []string
	Targets        int
	TrippedAt      bool
	Significant    bool // p-value under 0.05
	Units          [2]int64
	TreatmentWorse bool // rates[1] > rates[0]
}

func checkRolledBack(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var flag struct {
		Targets     []any                            `json:"targets"`
		Rules       []struct{ Serve map[string]any } `json:"rules"`
		Fallthrough map[string]any                   `json:"fallthrough"`
		Guard       struct {
			Tripped struct {
				At     string     `json:"at"`
				PValue float64    `json:"pValue"`
				Units  [2]int64   `json:"units"`
				Rates  [2]float64 `json:"rates"`
			} `json:"tripped"`
		} `json:"guard"`
	}
	if err := json.Unmarshal(raw, &flag); err != nil {
		t.Fatalf("patch %s: %v", raw, err)
	}
	tr := flag.Guard.Tripped
	got := rollback{Fallthrough: fmt.Sprint(flag.Fallthrough), Targets: len(flag.Targets),
		TrippedAt: tr.At != "", Significant: tr.PValue < 0.05, Units: tr.Units, TreatmentWorse: tr.Rates[1] > tr.Rates[0]}
	for _, r := range flag.Rules {
		got.RuleServes = append(got.RuleServes, fmt.Sprint(r.Serve))
	}
	want := rollback{Fallthrough: "map[variation:0]", RuleServes: []string{"map[variation:0]"}, Targets: 1,
		TrippedAt: true, Significant: true, Units: [2]int64{200, 200}, TreatmentWorse: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rolled back to %s\n(-want +got):\n%s", raw, diff)
	}
}

// BenchmarkPostEvents: POST /v1/events with the file store (group fsync),
// batches of 1,000 events from concurrent posters; reports events/s.
func BenchmarkPostEvents(b *testing.B) {
	path := docFile(b, guardedDoc)
	_, srv := openFileServer(b, path, FileStoreOptions{}, Options{})
	url := serve(b, srv).URL
	bodies := make([]string, 64)
	var n sync.Mutex
	seq := 0
	for i := range bodies {
		var evs []string
		for j := range 1000 {
			unit := fmt.Sprintf("p%d-u%d", i, j)
			if j%2 == 0 {
				evs = append(evs, exposure(unit, j%4/2, true, int64(j)))
			} else {
				evs = append(evs, track(unit, "errors", int64(j)))
			}
		}
		bodies[i] = strings.Join(evs, ",")
	}
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Lock()
			seq++
			id := seq
			n.Unlock()
			body := fmt.Sprintf(`{"batch":"bench-batch-%012d","events":[%s]}`, id, bodies[id%len(bodies)])
			resp, err := http.Post(url+"/v1/events", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 202 {
				b.Errorf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "events/s")
}

// TestSummariesOfUnknownFlagsAreNotKept: a summary counter names any key;
// the server keeps minutes only for flags it serves, so a batch of made-up
// keys costs nothing beyond the batch (SPEC §13).
func TestSummariesOfUnknownFlagsAreNotKept(t *testing.T) {
	srv, err := New(NewMemoryStore(mustParse(t, guardedDoc)), Options{AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, srv).URL
	now := time.Now().UnixMilli()
	var counters []string
	for i := range 2000 {
		counters = append(counters, fmt.Sprintf(`{"flag":"made-up-%d","version":1,"count":1}`, i))
	}
	counters = append(counters, `{"flag":"checkout","version":1,"variation":0,"count":5}`)
	postEvents(t, url, "", batch("unknown-flags-batch-1", fmt.Sprintf(`{"kind":"summary","start":%d,"end":%d,"counters":[%s]}`, now-1000, now, strings.Join(counters, ","))))
	srv.events.mu.Lock()
	n := len(srv.events.summaries)
	srv.events.mu.Unlock()
	if n != 1 || len(srv.Summaries("checkout")) != 1 || len(srv.Summaries("made-up-7")) != 0 {
		t.Errorf("summaries kept for %d flags, want only the served one", n)
	}
}

// TestSlowBodiesCutOff: a client that sends a body a byte at a time is cut
// off after WriteTimeout, for events as for admin writes, rather than
// holding its connection for ever (SPEC §13).
func TestSlowBodiesCutOff(t *testing.T) {
	_, ts := newTestServer(t, baseDoc, Options{AdminToken: adminToken, WriteTimeout: 300 * time.Millisecond})
	for _, path := range []string{"/v1/events", "/v1/admin/flags/x"} {
		method := "POST"
		if strings.HasPrefix(path, "/v1/admin") {
			method = "PUT"
		}
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", method, path, adminToken)
		stop := make(chan struct{})
		go func() { // a byte every 50 ms: 50 s for the whole body
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
		answer, err := io.ReadAll(conn)
		close(stop)
		conn.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s %s: the connection of a body sent a byte at a time is still open after %v", method, path, waitLimit)
		} else if !bytes.HasPrefix(answer, []byte("HTTP/1.1 400")) {
			t.Errorf("%s %s: answered %q, want 400 once the body timed out", method, path, answer)
		}
	}
}
