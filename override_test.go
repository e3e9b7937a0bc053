package flags

import (
	"context"
	"errors"
	"testing"
)

var (
	overrideAnn = NewContext("ann").Build()
	overrideBob = NewContext("bob").Build()
)

// overriddenClient is a client of typesDoc with flag b overridden to false
// for everyone and to true for ann, and a flag the snapshot lacks,
// not-yet, overridden to "soon".
func overriddenClient(t *testing.T) *Client {
	t.Helper()
	c := newTestClient(t, typesDoc)
	if err := c.Override("b", false); err != nil {
		t.Fatal(err)
	}
	if err := c.OverrideFor("b", "ann", true); err != nil {
		t.Fatal(err)
	}
	if err := c.Override("not-yet", "soon"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOverrides(t *testing.T) {
	t.Run("per-context and global overrides", testOverridePerContextAndGlobal)
	t.Run("flag the snapshot lacks", testOverrideOfMissingFlag)
	t.Run("JSON value", testOverrideJSON)
	t.Run("struct value is refused", testOverrideRefusesStruct)
	t.Run("AllFlags serves overrides", testOverrideInAllFlags)
	t.Run("ClearOverride", testClearOverride)
	t.Run("ClearOverrides", testClearOverrides)
}

func testOverridePerContextAndGlobal(t *testing.T) {
	c := overriddenClient(t)
	ctx := context.Background()
	if got := c.Bool(ctx, "b", overrideAnn, false); got != true {
		t.Errorf("Bool(b, ann) = %v, want the per-context override true", got)
	}
	r := c.BoolDetail(ctx, "b", overrideBob, true)
	if r.Value != false || r.Reason.Kind != ReasonOverride || r.Variation != -1 || r.Version != 1 {
		t.Errorf("BoolDetail(b, bob) = %+v, want false by OVERRIDE, variation -1, version 1", r)
	}
}

// testOverrideOfMissingFlag: an override of a flag the snapshot lacks still
// serves, and its type is checked as a variation's is.
func testOverrideOfMissingFlag(t *testing.T) {
	c := overriddenClient(t)
	ctx := context.Background()
	if got := c.String(ctx, "not-yet", overrideBob, "d"); got != "soon" {
		t.Errorf("String(not-yet) = %q, want soon", got)
	}
	if r := c.IntDetail(ctx, "not-yet", overrideBob, 7); r.Value != 7 || !errors.Is(r.Err, ErrWrongType) {
		t.Errorf("IntDetail of a string override = %+v, want WRONG_TYPE", r)
	}
}

func testOverrideJSON(t *testing.T) {
	c := overriddenClient(t)
	if err := c.Override("j", map[string]any{"a": []int{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if got := string(c.JSON(context.Background(), "j", overrideBob, nil)); got != `{"a":[1,2]}` {
		t.Errorf("JSON(j) = %s", got)
	}
}

func testOverrideRefusesStruct(t *testing.T) {
	c := overriddenClient(t)
	if err := c.Override("x", struct{}{}); err == nil {
		t.Error("Override with a struct succeeded, want an error")
	}
}

func testOverrideInAllFlags(t *testing.T) {
	c := overriddenClient(t)
	seen := false
	for r := range c.AllFlags(context.Background(), overrideAnn).All() {
		if r.Flag != "b" {
			continue
		}
		seen = true
		if r.Value != true || r.Reason.Kind != ReasonOverride {
			t.Errorf("AllFlags b = %+v, want the override", r)
		}
	}
	if !seen {
		t.Error("AllFlags has no result for b")
	}
}

// testClearOverride: clearing a flag's override clears its per-context
// overrides too.
func testClearOverride(t *testing.T) {
	c := overriddenClient(t)
	c.ClearOverride("b")
	if r := c.BoolDetail(context.Background(), "b", overrideAnn, false); r.Reason.Kind != ReasonFallthrough {
		t.Errorf("after ClearOverride: %+v, want FALLTHROUGH", r.Reason)
	}
}

func testClearOverrides(t *testing.T) {
	c := overriddenClient(t)
	c.ClearOverrides()
	if r := c.StringDetail(context.Background(), "not-yet", overrideBob, "d"); r.Reason.ErrorKind != ErrorFlagNotFound {
		t.Errorf("after ClearOverrides: %+v, want FLAG_NOT_FOUND", r.Reason)
	}
}
