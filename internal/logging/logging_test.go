package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestDefaultFollowsSlogDefault: records at WARN and above reach the
// slog.Default() in force when they are logged, with the attributes and
// groups of the logger; lower levels are dropped.
func TestDefaultFollowsSlogDefault(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	var early, late bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	slog.SetDefault(slog.New(slog.NewTextHandler(&early, opts)))

	l := Default().With("client", "a").WithGroup("stream").With("event", "patch")
	l.Info("not shown")
	l.Debug("not shown either")
	l.Warn("shown", "n", 1)
	slog.SetDefault(slog.New(slog.NewTextHandler(&late, opts))) // after the logger was built
	l.Error("after SetDefault")

	if got := early.String(); strings.Contains(got, "not shown") ||
		!strings.Contains(got, "level=WARN msg=shown client=a stream.event=patch stream.n=1") {
		t.Errorf("first default got:\n%s", got)
	}
	if got := late.String(); !strings.Contains(got, "level=ERROR msg=\"after SetDefault\" client=a stream.event=patch") {
		t.Errorf("default set later got:\n%s", got)
	}
	if Default().Enabled(t.Context(), slog.LevelInfo) || !Default().Enabled(t.Context(), slog.LevelWarn) {
		t.Error("Enabled: want WARN and above only")
	}
}
