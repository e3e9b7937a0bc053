//go:build unix

package propagation_test

import (
	"syscall"
	"testing"

	"github.com/flagstream/flags/benchmarks/propagation"
)

func TestRaiseFileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	got, err := propagation.RaiseFileLimit(uint64(lim.Cur))
	if err != nil || got != uint64(lim.Cur) {
		t.Errorf("RaiseFileLimit(%d) = %d, %v; want %d, nil (already enough)", lim.Cur, got, err, lim.Cur)
	}
	if uint64(lim.Max) < 1<<40 { // not unlimited
		if _, err := propagation.RaiseFileLimit(uint64(lim.Max) + 1); err == nil {
			t.Errorf("RaiseFileLimit(hard limit %d + 1) succeeded, want an error", lim.Max)
		}
	}
}
