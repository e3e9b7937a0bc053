package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

// TestHelpAndUsageErrors: every command answers -h and --help with exit 0
// and its options, and an unknown option with exit 2; so do "flags help
// CMD" and the top level.
func TestHelpAndUsageErrors(t *testing.T) {
	for _, cmd := range []string{"eval", "lint", "serve", "watch", "push", "history", "switch", "experiment"} {
		for _, h := range []string{"-h", "--help"} {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), []string{cmd, h}, &out, &errOut); code != 0 || !strings.Contains(out.String()+errOut.String(), "-") {
				t.Errorf("flags %s %s = %d, output %q", cmd, h, code, out.String()+errOut.String())
			}
		}
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{cmd, "--no-such-option"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "no-such-option") {
			t.Errorf("flags %s --no-such-option = %d, stderr %q; want 2 naming the option", cmd, code, errOut.String())
		}
		out.Reset()
		if code := run(context.Background(), []string{"help", cmd}, &out, &out); code != 0 || !strings.Contains(out.String(), "flags "+cmd) {
			t.Errorf("flags help %s = %d, %q", cmd, code, out.String())
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		var out bytes.Buffer
		if code := run(context.Background(), args, &out, &out); code != 0 || !strings.Contains(out.String(), "usage:") {
			t.Errorf("flags %v = %d", args, code)
		}
	}
	for _, args := range [][]string{{}, {"nonsense"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage:") {
			t.Errorf("flags %v = %d, want 2 with the usage on stderr", args, code)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &out); code != 0 {
		t.Fatalf("flags version = %d", code)
	}
	if line := out.String(); !strings.HasPrefix(line, "flags ") || !strings.Contains(line, runtime.Version()) {
		t.Errorf("flags version = %q", line)
	}
}
