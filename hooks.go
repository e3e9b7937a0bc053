package flags

import (
	"context"
	"fmt"
	"log/slog"
)

// Hook observes evaluations: Before runs before the flag is evaluated,
// After with its result. Hooks run on the evaluating goroutine, in the
// order given to WithHooks (After in reverse, like deferred calls), so they
// should be quick; a hook that panics is recovered and logged, and the
// evaluation goes on. With no hook registered, evaluations pay nothing
// (one nil check) and stay allocation-free.
//
// After receives the evaluation's result before the getter's type check:
// a Bool of a string flag shows the string variation here, while the
// caller gets its default with WRONG_TYPE.
type Hook interface {
	Before(ctx context.Context, e HookEvaluation)
	After(ctx context.Context, e HookEvaluation, r Result[any])
}

// HookEvaluation is what a Hook is told about an evaluation.
type HookEvaluation struct {
	Flag    string  // the flag key asked for
	Context Context // the evaluation context
}

// WithHooks registers hooks on every evaluation of the client: typed
// getters, details and Value (not AllFlags, which evaluates everything at
// once for a front end).
func WithHooks(hooks ...Hook) Option {
	return optionFunc(func(c *config) error {
		for i, h := range hooks {
			if h == nil {
				return fmt.Errorf("flags: WithHooks: hook %d is nil", i)
			}
		}
		c.hooks = append(c.hooks, hooks...)
		return nil
	})
}

// hooked evaluates with the hooks around it.
func (c *Client) hooked(ctx context.Context, ev *evaluation, key string, ec *Context, want accept) {
	he := HookEvaluation{Flag: key, Context: *ec}
	for _, h := range c.hooks {
		c.safely(key, func() { h.Before(ctx, he) })
	}
	c.evaluateSnapshot(ev, key, ec, want)
	r := anyResult(key, *ev, nil)
	for i := len(c.hooks) - 1; i >= 0; i-- {
		h := c.hooks[i]
		c.safely(key, func() { h.After(ctx, he, r) })
	}
}

// safely runs a hook, recovering and logging a panic.
func (c *Client) safely(key string, call func()) {
	defer func() {
		if p := recover(); p != nil {
			c.logger.Error("flags: a hook panicked; evaluation goes on", "flag", key, "panic", fmt.Sprint(p))
		}
	}()
	call()
}

// SlogHook returns a Hook that logs every evaluation to logger at level:
// the flag, the context's key, the value, the variation, the reason and
// the error if any.
func SlogHook(logger *slog.Logger, level slog.Level) Hook {
	if logger == nil {
		logger = slog.Default()
	}
	return slogHook{logger, level}
}

type slogHook struct {
	logger *slog.Logger
	level  slog.Level
}

func (slogHook) Before(context.Context, HookEvaluation) {}

func (h slogHook) After(ctx context.Context, e HookEvaluation, r Result[any]) {
	if !h.logger.Enabled(ctx, h.level) {
		return
	}
	attrs := []slog.Attr{slog.String("flag", e.Flag), slog.String("contextKey", e.Context.Key()),
		slog.Any("value", r.Value), slog.Int("variation", r.Variation), slog.String("reason", string(r.Reason.Kind))}
	if r.Reason.RuleID != "" {
		attrs = append(attrs, slog.String("rule", r.Reason.RuleID))
	}
	if r.Err != nil {
		attrs = append(attrs, slog.String("err", r.Err.Error()))
	}
	h.logger.LogAttrs(ctx, h.level, "flags: evaluation", attrs...)
}
