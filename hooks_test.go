package flags

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// orderHook records its calls.
type orderHook struct {
	name  string
	calls *[]string
	panic bool
}

func (h orderHook) Before(_ context.Context, e HookEvaluation) {
	*h.calls = append(*h.calls, fmt.Sprintf("%s.before(%s,%s)", h.name, e.Flag, e.Context.Key()))
	if h.panic {
		panic("boom")
	}
}

func (h orderHook) After(_ context.Context, e HookEvaluation, r Result[any]) {
	*h.calls = append(*h.calls, fmt.Sprintf("%s.after(%s=%v,%s)", h.name, e.Flag, r.Value, r.Reason.Kind))
}

func TestHooks(t *testing.T) {
	var calls []string
	var logs bytes.Buffer
	c := newTestClient(t, typesDoc, WithHooks(orderHook{"a", &calls, false}, orderHook{"b", &calls, true}),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ann := NewContext("ann").Build()
	if got := c.Bool(context.Background(), "b", ann, false); got != true {
		t.Errorf("Bool = %v: a panicking hook broke the evaluation", got)
	}
	want := "a.before(b,ann) b.before(b,ann) b.after(b=true,FALLTHROUGH) a.after(b=true,FALLTHROUGH)"
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("calls\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(logs.String(), "a hook panicked") {
		t.Errorf("the panic was not logged: %s", logs.String())
	}
	calls = nil
	c.StringDetail(context.Background(), "nope", ann, "d")
	if len(calls) != 4 || !strings.Contains(calls[2], "ERROR") {
		t.Errorf("a missing flag: %q", calls)
	}
	if _, err := New(WithDocument([]byte(typesDoc)), WithHooks(nil)); err == nil {
		t.Error("WithHooks(nil) accepted")
	}
}

func TestSlogHook(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestClient(t, typesDoc, WithHooks(SlogHook(logger, slog.LevelDebug)))
	c.Bool(context.Background(), "b", NewContext("ann").Build(), false)
	c.Bool(context.Background(), "nope", NewContext("ann").Build(), false)
	out := logs.String()
	for _, want := range []string{"flag=b contextKey=ann value=true variation=1 reason=FALLTHROUGH", "flag=nope", "reason=ERROR", "err="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// BenchmarkNoHooks is S1 on a client without hooks, to compare with one
// with a do-nothing hook: without hooks nothing is paid.
func BenchmarkHooks(b *testing.B) {
	ctx := context.Background()
	ann := NewContext("ann").Build()
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"none", nil}, {"one", []Option{WithHooks(nopHook{})}}} {
		c, err := New(append([]Option{WithDocument([]byte(typesDoc))}, tc.opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = c.Bool(ctx, "b", ann, false)
			}
		})
		c.Close()
	}
}

type nopHook struct{}

func (nopHook) Before(context.Context, HookEvaluation)             {}
func (nopHook) After(context.Context, HookEvaluation, Result[any]) {}
