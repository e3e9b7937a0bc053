package flagstest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
	"github.com/flagstream/flags/rules"
)

// funcSource adapts a function to flags.Source.
type funcSource func(ctx context.Context, u flags.Updates) error

func (f funcSource) Run(ctx context.Context, u flags.Updates) error { return f(ctx, u) }

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
