//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// dirLocks reports whether lockDir takes a lock on this system.
const dirLocks = true

// lockDir takes an exclusive flock(2) on the folder dir, waiting at most
// wait (or until ctx is done) for another holder to let go, and returns
// its release. A filesystem without locks gives a release that does
// nothing: the lock only orders writers that take it.
func lockDir(ctx context.Context, dir string, wait time.Duration) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("flags: lock %s: %w", dir, err)
	}
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			_ = f.Close()
			return func() {}, nil // no locks here (ENOLCK, ENOTSUP...)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = f.Close()
			return nil, fmt.Errorf("flags: %s is locked by another writer (flock) for more than %v", dir, wait)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		pause = min(2*pause, 50*time.Millisecond)
	}
}
