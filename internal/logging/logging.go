// Package logging holds the logger flagstream's packages use when their
// user gives none.
package logging

import (
	"context"
	"log/slog"
	"slices"
)

// MinLevel is the lowest level Default passes on: warnings and errors.
const MinLevel = slog.LevelWarn

// Default returns a logger that sends warnings and errors to slog.Default()
// and drops the rest. slog.Default() is looked up for each record, so a
// program that calls slog.SetDefault after building a client is followed.
// It never writes to stdout on its own: the records go wherever the
// program's default logger sends them (stderr, unless it was changed).
func Default() *slog.Logger { return slog.New(handler{}) }

// handler forwards to slog.Default().Handler(), replaying the attributes
// and groups it was given (With, WithGroup) on each record. Warnings are
// rare, so the replay costs nothing that matters.
type handler struct {
	ops []func(slog.Handler) slog.Handler
}

func (h handler) target() slog.Handler {
	t := slog.Default().Handler()
	for _, op := range h.ops {
		t = op(t)
	}
	return t
}

// Enabled implements slog.Handler.
func (h handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= MinLevel && slog.Default().Handler().Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < MinLevel {
		return nil
	}
	return h.target().Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	as = slices.Clone(as)
	return handler{ops: append(slices.Clip(h.ops), func(t slog.Handler) slog.Handler { return t.WithAttrs(as) })}
}

// WithGroup implements slog.Handler.
func (h handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return handler{ops: append(slices.Clip(h.ops), func(t slog.Handler) slog.Handler { return t.WithGroup(name) })}
}
