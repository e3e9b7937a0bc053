package flagstest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
	"github.com/flagstream/flags/stream"
	"github.com/google/go-cmp/cmp"
)

// streaming is the source of a client that streams from srv.
func streaming(srv *flagstest.Server) flags.Source {
	return stream.New(stream.Config{BaseURL: srv.URL})
}

// TestServerEndToEnd follows one TestData through a Set, a Delete and a
// SetDocument, as streaming clients, the in-process client, OnChange
// listeners and a plain HTTP GET see it.
func TestServerEndToEnd(t *testing.T) {
	td := flagstest.New(t,
		flagstest.Bool("new-checkout", false),
		flagstest.String("banner", "Hello").ForKey("user-1", "Hi Ann"),
	)
	srv := flagstest.NewServer(td)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want a 127.0.0.1 address", srv.URL)
	}
	client := srv.Client(streaming(srv))
	checkStreamingClientReady(t, client)
	var changes []flags.Change
	client.OnChange(func(c flags.Change) { changes = append(changes, c) })
	other := srv.Client(streaming(srv))

	td.Set(flagstest.Bool("new-checkout", true))
	checkSetReachedEveryClient(t, client, other, td.Client)
	td.Delete("banner")
	if r := client.StringDetail(bg, "banner", ann, "default"); r.Reason.ErrorKind != flags.ErrorFlagNotFound {
		t.Errorf("after Delete: %+v, want FLAG_NOT_FOUND", r)
	}
	td.SetDocument(flagstest.Document(flagstest.Int("limit", 7)).Bytes(t))
	if got := client.Int(bg, "limit", ann, 0); got != 7 {
		t.Errorf("after SetDocument: Int(limit) = %d, want 7", got)
	}
	if r := client.BoolDetail(bg, "new-checkout", ann, false); r.Reason.ErrorKind != flags.ErrorFlagNotFound {
		t.Errorf("after SetDocument: new-checkout %+v, want FLAG_NOT_FOUND (replaced whole)", r)
	}
	if v := td.Version(); v != 4 || client.Status().Version != 4 || td.Client.Status().Version != 4 {
		t.Errorf("versions: TestData %d, over HTTP %d, in-process %d; want 4 (one patch per change)",
			v, client.Status().Version, td.Client.Status().Version)
	}
	// Set waited for the listeners: no lock needed to read what they wrote.
	var versions []int64
	for _, c := range changes {
		versions = append(versions, c.Version)
	}
	if want := []int64{2, 3, 4}; !slices.Equal(versions, want) {
		t.Errorf("OnChange saw versions %v, want %v", versions, want)
	}
	checkServedDocument(t, srv, 4, 1)
}

// checkStreamingClientReady checks that a client streaming from
// TestServerEndToEnd's server is ready and serves its first flags.
func checkStreamingClientReady(t *testing.T, client *flags.Client) {
	t.Helper()
	if st := client.Status(); st.State != flags.StateReady || st.Source != "stream" {
		t.Fatalf("Status() = %+v, want READY from stream", st)
	}
	if client.Bool(bg, "new-checkout", ann, true) || client.String(bg, "banner", ann, "") != "Hi Ann" {
		t.Fatal("the streaming client does not serve the server's flags")
	}
}

// checkSetReachedEveryClient checks that TestServerEndToEnd's Set of
// new-checkout to true reached each client, at the version the server
// gave it.
func checkSetReachedEveryClient(t *testing.T, clients ...*flags.Client) {
	t.Helper()
	for i, c := range clients {
		if r := c.BoolDetail(bg, "new-checkout", ann, false); !r.Value || r.Version != 2 || c.Status().Version != 2 {
			t.Errorf("client %d after Set: %+v, want true at flag version 2 (the server numbers versions)", i, r)
		}
	}
}

// checkServedDocument checks that the server speaks the real protocol:
// GET /v1/flags answers the document at version with nflags flags.
func checkServedDocument(t *testing.T, srv *flagstest.Server, version int64, nflags int) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/v1/flags")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		Version int64
		Flags   map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Version != version || len(doc.Flags) != nflags {
		t.Errorf("GET /v1/flags = %s (%v), want version %d with %d flags", body, err, version, nflags)
	}
}

// TestServerClientClosedEarly: a client closed before the test ends is
// dropped: later changes do not wait for it. A client built the long way
// (stream.New with the URL, polling here) sees the same flags.
func TestServerClientClosedEarly(t *testing.T) {
	td := flagstest.New(t, flagstest.Int("n", 0))
	srv := flagstest.NewServer(td)
	for i := 1; i <= 3; i++ {
		c := srv.Client(streaming(srv), flags.WithLogger(nil2discard()))
		td.Set(flagstest.Int("n", i))
		if got := c.Int(bg, "n", ann, -1); got != i {
			t.Errorf("Int(n) = %d, want %d", got, i)
		}
		c.Close()
	}
	c, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: srv.URL, Poll: true})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := contextWithTimeout()
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if r := c.IntDetail(bg, "n", ann, -1); r.Value != 3 || r.Version != td.Client.IntDetail(bg, "n", ann, -1).Version {
		t.Errorf("polled IntDetail(n) = %+v, want 3 at the in-process client's flag version", r)
	}
}

func TestServerBuilderMistake(t *testing.T) {
	ftb := &fakeTB{}
	defer ftb.finish()
	td := flagstest.New(ftb, flagstest.Bool("ok", true))
	srv := flagstest.NewServer(td)
	c := srv.Client(streaming(srv))
	td.Set(flagstest.Bool("ok", false).Fallthrough(flagstest.Variation(7)))
	want := `flagstest: flag "ok": fallthrough.variation: index 7 out of range: the flag has 2 variations`
	if got := ftb.failures(); got != want {
		t.Errorf("failed with\n%s\nwant\n%s", got, want)
	}
	if !c.Bool(bg, "ok", ann, false) || td.Version() != 1 {
		t.Error("a Set with a mistake was published")
	}
}

// TestServerSegmentChanges: Set waits for OnChange listeners exactly when
// the client calls them: a segment used by a flag (through another
// segment) calls them, an unused one does not, and a Set that changes
// nothing publishes nothing. None of these may hang.
func TestServerSegmentChanges(t *testing.T) {
	td := flagstest.New(t,
		flagstest.Segment("staff").Included("user-9"),
		flagstest.Segment("beta").Rule("staff", flagstest.InSegment("staff")),
		flagstest.Segment("unused").Included("user-1"),
		flagstest.Bool("f", false).Rule("beta", flagstest.Variation(1), flagstest.InSegment("beta")),
	)
	srv := flagstest.NewServer(td)
	c := srv.Client(streaming(srv))
	var changes []flags.Change
	c.OnChange(func(ch flags.Change) { changes = append(changes, ch) })

	td.Set(flagstest.Segment("staff").Included("user-1"))
	if !c.Bool(bg, "f", ann, false) {
		t.Error("after adding user-1 to staff, Bool(f) = false, want true")
	}
	if len(changes) != 1 || !slices.Equal(changes[0].Flags, []string{"f"}) {
		t.Errorf("OnChange got %+v, want one change of [f]", changes)
	}
	td.Set(flagstest.Segment("unused").Included("user-2"))
	if v := c.Status().Version; v != 3 {
		t.Errorf("client version %d, want 3", v)
	}
	if len(changes) != 1 {
		t.Errorf("OnChange got %+v after a change of an unused segment, want nothing new", changes)
	}
	td.Set(flagstest.Segment("unused").Included("user-2"))
	if v := td.Version(); v != 3 {
		t.Errorf("a Set that changes nothing published version %d, want none (3)", v)
	}
}

// TestServerVersions: the versions are the server's, the same in-process
// and over HTTP.
func TestServerVersions(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool("a", true))
	srv := flagstest.NewServer(td)
	c := srv.Client(streaming(srv))
	td.Set(flagstest.Bool("b", true))              // new: version 1
	td.Set(flagstest.Bool("a", false).Version(40)) // the server numbers changes: 2
	for key, want := range map[string]int64{"a": 2, "b": 1} {
		for name, client := range map[string]*flags.Client{"over HTTP": c, "in-process": td.Client} {
			if got := client.BoolDetail(bg, key, ann, false).Version; got != want {
				t.Errorf("%s: flag %s at version %d, want %d", name, key, got, want)
			}
		}
	}
	td.Delete("b")
	td.Set(flagstest.Bool("b", false)) // back after a delete: the version goes on
	if got, in := c.BoolDetail(bg, "b", ann, true).Version, td.Client.BoolDetail(bg, "b", ann, true).Version; got <= 1 || got != in {
		t.Errorf("flag b re-created at version %d over HTTP, %d in-process; want the same, more than 1", got, in)
	}
}

// TestInProcessAndHTTPSeeTheSameChanges: a test's OnChange listeners see
// the same changes whichever transport feeds the client, including none
// for a change no flag depends on (Set waits for the HTTP client's
// listeners only when they run).
func TestInProcessAndHTTPSeeTheSameChanges(t *testing.T) {
	td := flagstest.New(t,
		flagstest.Segment("staff").Included("user-9"),
		flagstest.Segment("unused"),
		flagstest.Bool("f", false).Rule("staff", flagstest.Variation(1), flagstest.InSegment("staff")),
		flagstest.Int("n", 1),
	)
	srv := flagstest.NewServer(td)
	remote := srv.Client(streaming(srv))
	polled := srv.Client(stream.New(stream.Config{BaseURL: srv.URL, Poll: true, PollInterval: 5 * time.Millisecond}))
	var in, over, poll []flags.Change
	td.Client.OnChange(func(c flags.Change) { in = append(in, c) })
	remote.OnChange(func(c flags.Change) { over = append(over, c) })
	polled.OnChange(func(c flags.Change) { poll = append(poll, c) })
	td.Set(flagstest.Int("n", 2))
	td.Set(flagstest.Segment("unused").Included("user-3"))
	td.Set(flagstest.Segment("staff").Included("user-1"))
	td.Delete("n")
	td.Set(flagstest.Int("n", 2).Version(1)) // content equal to the last n, version aside: still a change (it was deleted)
	td.Set(flagstest.Int("n", 2))            // nothing changes: nothing published
	want := []flags.Change{
		{Version: 2, Flags: []string{"n"}},
		{Version: 4, Flags: []string{"f"}},
		{Version: 5, Flags: []string{"n"}},
		{Version: 6, Flags: []string{"n"}},
	}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("in-process changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, over); diff != "" {
		t.Errorf("changes over HTTP (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, poll); diff != "" {
		t.Errorf("changes polled (-want +got):\n%s", diff)
	}
}
