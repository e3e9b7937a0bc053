package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flagstream/flags/server"
)

// TestGuardedRollout runs the example: the guard rolls the flag back within
// seconds, the client serves control to everyone, and the audit holds the
// rollback by actor guard with its reason.
func TestGuardedRollout(t *testing.T) {
	var out bytes.Buffer
	res, err := run(&out, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if !res.RolledBack {
		t.Fatalf("no rollback:\n%s", out.String())
	}
	if res.After > 15*time.Second {
		t.Errorf("the rollback took %v", res.After)
	}
	a := res.Audit
	if a.Actor != server.ActorGuard || a.Action != server.ActionGuard || !strings.Contains(a.Comment, "worse") ||
		!strings.Contains(string(a.After), `"tripped"`) {
		t.Errorf("audit entry %+v", a)
	}
}
