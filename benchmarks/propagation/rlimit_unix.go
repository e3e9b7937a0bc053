//go:build unix

package propagation

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit makes sure this process may open want file descriptors:
// it raises the soft RLIMIT_NOFILE up to want (never above the hard limit)
// and returns the soft limit in force. It fails when the hard limit is
// below want. (Go already raises the soft limit to the hard one at start on
// Linux; this also covers systems and runtimes where it does not.)
func RaiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("flags: propagation: getrlimit: %w", err)
	}
	if uint64(lim.Cur) >= want {
		return uint64(lim.Cur), nil
	}
	if uint64(lim.Max) < want {
		return uint64(lim.Cur), fmt.Errorf("flags: propagation: %d file descriptors wanted, hard limit %d (raise it with ulimit -Hn)", want, lim.Max)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("flags: propagation: setrlimit: %w", err)
	}
	return uint64(lim.Cur), nil
}
