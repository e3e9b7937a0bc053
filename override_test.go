package flags

import (
	"context"
	"errors"
	"testing"
)

func TestOverrides(t *testing.T) {
	c := newTestClient(t, typesDoc)
	ctx := context.Background()
	ann, bob := NewContext("ann").Build(), NewContext("bob").Build()

	if err := c.Override("b", false); err != nil {
		t.Fatal(err)
	}
	if err := c.OverrideFor("b", "ann", true); err != nil {
		t.Fatal(err)
	}
	if got := c.Bool(ctx, "b", ann, false); got != true {
		t.Errorf("Bool(b, ann) = %v, want the per-context override true", got)
	}
	r := c.BoolDetail(ctx, "b", bob, true)
	if r.Value != false || r.Reason.Kind != ReasonOverride || r.Variation != -1 || r.Version != 1 {
		t.Errorf("BoolDetail(b, bob) = %+v, want false by OVERRIDE, variation -1, version 1", r)
	}
	// An override of a flag the snapshot lacks still serves.
	if err := c.Override("not-yet", "soon"); err != nil {
		t.Fatal(err)
	}
	if got := c.String(ctx, "not-yet", bob, "d"); got != "soon" {
		t.Errorf("String(not-yet) = %q, want soon", got)
	}
	// Types are checked as for variations.
	if r := c.IntDetail(ctx, "not-yet", bob, 7); r.Value != 7 || !errors.Is(r.Err, ErrWrongType) {
		t.Errorf("IntDetail of a string override = %+v, want WRONG_TYPE", r)
	}
	if err := c.Override("j", map[string]any{"a": []int{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if got := string(c.JSON(ctx, "j", bob, nil)); got != `{"a":[1,2]}` {
		t.Errorf("JSON(j) = %s", got)
	}
	if err := c.Override("x", struct{}{}); err == nil {
		t.Error("Override with a struct succeeded, want an error")
	}
	all := c.AllFlags(ctx, ann)
	for r := range all.All() {
		if r.Flag == "b" && (r.Value != true || r.Reason.Kind != ReasonOverride) {
			t.Errorf("AllFlags b = %+v, want the override", r)
		}
	}

	c.ClearOverride("b")
	if r := c.BoolDetail(ctx, "b", ann, false); r.Reason.Kind != ReasonFallthrough {
		t.Errorf("after ClearOverride: %+v, want FALLTHROUGH", r.Reason)
	}
	c.ClearOverrides()
	if r := c.StringDetail(ctx, "not-yet", bob, "d"); r.Reason.ErrorKind != ErrorFlagNotFound {
		t.Errorf("after ClearOverrides: %+v, want FLAG_NOT_FOUND", r.Reason)
	}
}
