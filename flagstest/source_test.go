package flagstest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/stream"
)

// funcSource adapts a function to flags.Source.
type funcSource func(ctx context.Context, u flags.Updates) error

func (f funcSource) Run(ctx context.Context, u flags.Updates) error { return f(ctx, u) }

// funcLoader adds a Load to a funcSource.
type funcLoader struct {
	funcSource
	load func(u flags.Updates) error
}

func (f funcLoader) Load(u flags.Updates) error { return f.load(u) }

// TestSourcesPassTestSource: the sources flagstream ships pass its own
// checker: a TestData in-process, and package stream against a TestData
// served over HTTP, streaming and polling.
func TestSourcesPassTestSource(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool("a", true))
	if doc := flagstest.TestSource(t, td); doc == nil || doc.Version != 1 {
		t.Errorf("TestSource(td) = %v, want td's document at version 1", doc)
	}
	srv := flagstest.NewServer(td)
	for _, poll := range []bool{false, true} {
		src := stream.New(stream.Config{BaseURL: srv.URL, Poll: poll})
		if doc := flagstest.TestSource(t, src); doc == nil || doc.Version != 1 {
			t.Errorf("TestSource(stream, Poll %v) = %v, want the server's document at version 1", poll, doc)
		}
	}
}

func TestTestSource(t *testing.T) {
	doc, err := rules.ParseDocument(flagstest.Document(flagstest.Bool("a", true)).Bytes(t))
	if err != nil {
		t.Fatal(err)
	}
	good := funcSource(func(ctx context.Context, u flags.Updates) error {
		u.Apply(doc, "good")
		<-ctx.Done()
		return nil
	})
	if got := flagstest.TestSource(t, good); got != doc {
		t.Errorf("TestSource(good) = %v, want the delivered document", got)
	}

	for name, tc := range map[string]struct {
		src  flags.Source
		want string
	}{
		"returns at once": {funcSource(func(ctx context.Context, u flags.Updates) error { return nil }),
			"Run returned before delivering a document"},
		"nil document": {funcSource(func(ctx context.Context, u flags.Updates) error {
			u.Apply(nil, "bad")
			u.Apply(doc, "bad")
			<-ctx.Done()
			return nil
		}), "Apply called with a nil document"},
	} {
		t.Run(name, func(t *testing.T) {
			ftb := &fakeTB{}
			flagstest.TestSource(ftb, tc.src)
			if got := ftb.failures(); !strings.Contains(got, tc.want) {
				t.Errorf("failures %q, want them to mention %q", got, tc.want)
			}
		})
	}

	t.Run("Loader", func(t *testing.T) {
		delivers := funcLoader{funcSource(func(ctx context.Context, u flags.Updates) error { return nil }),
			func(u flags.Updates) error { return u.Apply(doc, "loaded") }}
		ftb := &fakeTB{}
		if got := flagstest.TestSource(ftb, delivers); got != doc || ftb.failures() != "" {
			t.Errorf("TestSource(a Loader that delivers, then returns) = %v, failures %q; want the document, none", got, ftb.failures())
		}
		fails := funcLoader{funcSource(func(ctx context.Context, u flags.Updates) error { return nil }),
			func(u flags.Updates) error { return errors.New("bad settings") }}
		ftb = &fakeTB{}
		flagstest.TestSource(ftb, fails)
		if got := ftb.failures(); !strings.Contains(got, "Load: bad settings") {
			t.Errorf("failures %q, want them to mention the Load error", got)
		}
	})

	t.Run("call after Run returned", func(t *testing.T) {
		var updates flags.Updates
		src := funcSource(func(ctx context.Context, u flags.Updates) error {
			updates = u
			u.Apply(doc, "late")
			<-ctx.Done()
			return nil
		})
		ftb := &fakeTB{}
		flagstest.TestSource(ftb, src)
		if err := updates.Apply(doc, "late"); err == nil {
			t.Error("Apply after Run returned succeeded, want an error")
		}
	})
}
