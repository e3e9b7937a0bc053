//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package server

import (
	"context"
	"time"
)

// dirLocks reports whether lockDir takes a lock on this system.
const dirLocks = false

// lockDir does nothing here: this system has no flock(2). Writes still
// check the file's content just before they replace it.
func lockDir(context.Context, string, time.Duration) (func(), error) { return func() {}, nil }
