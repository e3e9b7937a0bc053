package flags

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/rules"
)

// loaderSource is a Loader whose Load applies doc (or fails with err) and
// whose Run records that it ran.
type loaderSource struct {
	doc     *rules.Document
	err     error
	kept    Updates // what Load was given
	loaded  atomic.Int32
	ran     atomic.Int32
	runWith chan Updates
}

func (l *loaderSource) Load(u Updates) error {
	l.loaded.Add(1)
	l.kept = u
	if l.err != nil {
		return l.err
	}
	return u.Apply(l.doc, "loader")
}

func (l *loaderSource) Run(ctx context.Context, u Updates) error {
	l.ran.Add(1)
	l.runWith <- u
	<-ctx.Done()
	return nil
}

// TestLoaderDeliversBeforeNewReturns: a Loader's document is in force when
// New returns, before its Run; Run receives the Updates Load had.
func TestLoaderDeliversBeforeNewReturns(t *testing.T) {
	src := &loaderSource{doc: testkit.GenDoc(t, 4, 7), runWith: make(chan Updates, 1)}
	c, err := New(WithSource(src))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st := c.Status(); st.State != StateReady || st.Source != "loader" || st.Version != 4 {
		t.Errorf("Status right after New = %+v, want READY/loader at version 4", st)
	}
	if g := c.Int(context.Background(), "gen", NewContext("u").Build(), -1); g != 7 {
		t.Errorf("Int(gen) right after New = %d, want 7", g)
	}
	if u := <-src.runWith; u != src.kept {
		t.Errorf("Run got %v, want the Updates Load got (%v)", u, src.kept)
	}
	if n := src.loaded.Load(); n != 1 {
		t.Errorf("Load called %d times, want 1", n)
	}
}

// TestLoadErrorStartsNothing: New returns the error of Load and starts
// nothing; the Updates the source kept answers ErrClosed.
func TestLoadErrorStartsNothing(t *testing.T) {
	boom := errors.New("store unreachable")
	src := &loaderSource{err: boom, runWith: make(chan Updates, 1)}
	c, err := New(WithSource(src))
	if !errors.Is(err, boom) || c != nil {
		t.Fatalf("New = %v, %v; want nil and the Load error", c, err)
	}
	if n := src.ran.Load(); n != 0 {
		t.Errorf("Run was called %d times after a failed Load", n)
	}
	if err := src.kept.Apply(testkit.GenDoc(t, 1, 1), "loader"); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply on the Updates of a failed New = %v, want ErrClosed", err)
	}
}

// TestNewTakesOneSource: two sources would overwrite each other's flags;
// New refuses them before loading either.
func TestNewTakesOneSource(t *testing.T) {
	src := &loaderSource{doc: testkit.GenDoc(t, 1, 1), runWith: make(chan Updates, 1)}
	for name, opts := range map[string][]Option{
		"document and file":   {WithDocument([]byte(`{}`)), WithFile("x.json")},
		"document and source": {WithDocument([]byte(`{}`)), WithSource(src)},
		"two sources":         {WithSource(src), WithSource(src)},
	} {
		if c, err := New(opts...); err == nil {
			c.Close()
			t.Errorf("New(%s) succeeded, want an error", name)
		}
	}
	if n := src.loaded.Load(); n != 0 {
		t.Errorf("Load called %d times, want 0", n)
	}
}

// TestFileOptionUsedTwice: one WithFile option gives each client a source
// of its own (the race detector watches the two file pollers).
func TestFileOptionUsedTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := os.WriteFile(path, []byte(`{"version":2,"flags":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := WithFile(path)
	fast := optionFunc(func(c *config) error { c.fileIvl = time.Millisecond; return nil })
	for range 2 {
		c, err := New(opt, fast)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if st := c.Status(); st.State != StateReady || st.Source != "file" || st.Version != 2 {
			t.Errorf("Status = %+v, want READY/file at version 2", st)
		}
	}
}

// recordingUpdates is an Updates that records what a source reports.
type recordingUpdates struct {
	applied, healthy int
	failed           []error
}

func (r *recordingUpdates) Apply(*rules.Document, string) error { r.applied++; return nil }
func (r *recordingUpdates) Healthy(string)                      { r.healthy++ }
func (r *recordingUpdates) Failed(_ string, err error, _ bool)  { r.failed = append(r.failed, err) }
func (r *recordingUpdates) Logger() *slog.Logger                { return slog.New(slog.DiscardHandler) }

// TestFileSourceReportsAnOutageOnce: status errors were compared by their
// text, so that a file missing for a minute did not notify status listeners
// every 500 ms. The file source reports an outage once, and reading the
// content in force again makes it healthy.
func TestFileSourceReportsAnOutageOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	content := []byte(`{"version":1,"flags":{}}`)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fileSource{path: path}
	u := &recordingUpdates{}
	if err := f.Load(u); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var pending pendingContent
	for range 3 {
		f.poll(u, &pending)
	}
	if len(u.failed) != 1 || !errors.Is(u.failed[0], fs.ErrNotExist) {
		t.Fatalf("three polls of a missing file reported %v, want one fs.ErrNotExist", u.failed)
	}
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f.poll(u, &pending)
	f.poll(u, &pending)
	if u.healthy != 1 || u.applied != 1 || len(u.failed) != 1 {
		t.Errorf("the same content back: %d healthy, %d applied, %d failed; want 1, 1 (the Load), 1", u.healthy, u.applied, len(u.failed))
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	f.poll(u, &pending)
	if len(u.failed) != 2 {
		t.Errorf("a second outage reported %d failures in all, want 2", len(u.failed))
	}
}

// A client built WithDocument keeps its snapshot's own copy of the
// document, not the caller's bytes as well.
func TestWithDocumentDropsCallersBytes(t *testing.T) {
	data := []byte(`{"flags":{"f":{"on":true,"variations":[false,true],"fallthrough":{"variation":1}}}}`)
	var src *documentSource
	c, err := New(WithDocument(data), optionFunc(func(cf *config) error {
		src = cf.sources[0].(*documentSource)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if src.data != nil {
		t.Error("the document source still holds the caller's bytes after New")
	}
	if !c.Bool(context.Background(), "f", NewContext("u").Build(), false) {
		t.Error("f = false, want true")
	}
}
