package flagstest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
	"github.com/flagstream/flags/stream"
)

func TestServerEndToEnd(t *testing.T) {
	srv := flagstest.NewServer(t,
		flagstest.Bool("new-checkout", false),
		flagstest.String("banner", "Hello").ForKey("user-1", "Hi Ann"),
	)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want a 127.0.0.1 address", srv.URL)
	}
	client := srv.Client(t)
	if st := client.Status(); st.State != flags.StateReady || st.Source != "stream" {
		t.Fatalf("Status() = %+v, want READY from stream", st)
	}
	if client.Bool(bg, "new-checkout", ann, true) || client.String(bg, "banner", ann, "") != "Hi Ann" {
		t.Fatal("the streaming client does not serve the server's flags")
	}
	var changes []flags.Change
	client.OnChange(func(c flags.Change) { changes = append(changes, c) })
	other := srv.Client(t)

	srv.Set(flagstest.Bool("new-checkout", true))
	for i, c := range []*flags.Client{client, other} {
		if r := c.BoolDetail(bg, "new-checkout", ann, false); !r.Value || r.Version != 2 || c.Status().Version != 2 {
			t.Errorf("client %d after Set: %+v, want true at flag version 2 (the server numbers versions)", i, r)
		}
	}
	srv.Delete("banner")
	if r := client.StringDetail(bg, "banner", ann, "default"); r.Reason.ErrorKind != flags.ErrorFlagNotFound {
		t.Errorf("after Delete: %+v, want FLAG_NOT_FOUND", r)
	}
	srv.SetDocument(flagstest.Document(flagstest.Int("limit", 7)).Bytes(t))
	if got := client.Int(bg, "limit", ann, 0); got != 7 {
		t.Errorf("after SetDocument: Int(limit) = %d, want 7", got)
	}
	if r := client.BoolDetail(bg, "new-checkout", ann, false); r.Reason.ErrorKind != flags.ErrorFlagNotFound {
		t.Errorf("after SetDocument: new-checkout %+v, want FLAG_NOT_FOUND (replaced whole)", r)
	}
	if v := srv.Flags.Version(); v != 4 || client.Status().Version != 4 {
		t.Errorf("server version %d, client version %d, want 4 (one patch per change)", v, client.Status().Version)
	}
	// Set waited for the listeners: no lock needed to read what they wrote.
	var versions []int64
	for _, c := range changes {
		versions = append(versions, c.Version)
	}
	if want := []int64{2, 3, 4}; !slices.Equal(versions, want) {
		t.Errorf("OnChange saw versions %v, want %v", versions, want)
	}

	// The server speaks the real protocol.
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
	if err := json.Unmarshal(body, &doc); err != nil || doc.Version != 4 || len(doc.Flags) != 1 {
		t.Errorf("GET /v1/flags = %s (%v), want version 4 with one flag", body, err)
	}
}

// TestServerClientPerSubtest: clients bound to subtests are closed when
// they end; later Sets do not wait for them.
func TestServerClientPerSubtest(t *testing.T) {
	srv := flagstest.NewServer(t, flagstest.Int("n", 0))
	for i := 1; i <= 3; i++ {
		t.Run("", func(t *testing.T) {
			c := srv.Client(t, flags.WithLogger(nil2discard()))
			srv.Set(flagstest.Int("n", i))
			if got := c.Int(bg, "n", ann, -1); got != i {
				t.Errorf("Int(n) = %d, want %d", got, i)
			}
		})
	}
	// A client of our own, built the long way, sees the same server.
	c, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: srv.URL})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := contextWithTimeout()
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.Int(bg, "n", ann, -1); got != 3 {
		t.Errorf("Int(n) = %d, want 3", got)
	}
}

func TestServerBuilderMistake(t *testing.T) {
	ftb := &fakeTB{}
	defer ftb.finish()
	srv := flagstest.NewServer(ftb, flagstest.Bool("ok", true))
	c := srv.Client(ftb)
	srv.Set(flagstest.Bool("ok", false).Fallthrough(flagstest.Variation(7)))
	want := `flagstest: flag "ok": fallthrough.variation: index 7 out of range: the flag has 2 variations`
	if got := ftb.failures(); got != want {
		t.Errorf("failed with\n%s\nwant\n%s", got, want)
	}
	if !c.Bool(bg, "ok", ann, false) || srv.Flags.Version() != 1 {
		t.Error("a Set with a mistake was published")
	}
}

// TestServerSegmentChanges: Set waits for OnChange listeners exactly when
// the client calls them: a segment used by a flag (through another
// segment) calls them, an unused one does not, and a Set that changes
// nothing publishes nothing. None of these may hang.
func TestServerSegmentChanges(t *testing.T) {
	srv := flagstest.NewServer(t,
		flagstest.Segment("staff").Included("user-9"),
		flagstest.Segment("beta").Rule("staff", flagstest.InSegment("staff")),
		flagstest.Segment("unused").Included("user-1"),
		flagstest.Bool("f", false).Rule("beta", flagstest.Variation(1), flagstest.InSegment("beta")),
	)
	c := srv.Client(t)
	var changes []flags.Change
	c.OnChange(func(ch flags.Change) { changes = append(changes, ch) })

	srv.Set(flagstest.Segment("staff").Included("user-1"))
	if !c.Bool(bg, "f", ann, false) {
		t.Error("after adding user-1 to staff, Bool(f) = false, want true")
	}
	if len(changes) != 1 || !slices.Equal(changes[0].Flags, []string{"f"}) {
		t.Errorf("OnChange got %+v, want one change of [f]", changes)
	}
	srv.Set(flagstest.Segment("unused").Included("user-2"))
	if v := c.Status().Version; v != 3 {
		t.Errorf("client version %d, want 3", v)
	}
	if len(changes) != 1 {
		t.Errorf("OnChange got %+v after a change of an unused segment, want nothing new", changes)
	}
	srv.Set(flagstest.Segment("unused").Included("user-2"))
	if v := srv.Flags.Version(); v != 3 {
		t.Errorf("a Set that changes nothing published version %d, want none (3)", v)
	}
}

func TestServerVersions(t *testing.T) {
	srv := flagstest.NewServer(t, flagstest.Bool("a", true))
	c := srv.Client(t)
	srv.Set(flagstest.Bool("b", true))              // new: version 1
	srv.Set(flagstest.Bool("a", false).Version(40)) // the server numbers changes: 2
	for key, want := range map[string]int64{"a": 2, "b": 1} {
		if got := c.BoolDetail(bg, key, ann, false).Version; got != want {
			t.Errorf("flag %s at version %d, want %d", key, got, want)
		}
	}
	srv.Delete("b")
	srv.Set(flagstest.Bool("b", false)) // back after a delete: the version goes on
	if got := c.BoolDetail(bg, "b", ann, true).Version; got <= 1 {
		t.Errorf("flag b re-created at version %d, want more than 1", got)
	}
}
