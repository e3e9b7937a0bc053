package shop_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/flagstream/flags"
	shop "github.com/flagstream/flags/examples/testing"
)

// fakeFlags is a hand-written flags.Evaluator: a fixed value per flag key,
// the same for every context. It is all a test needs when the rules do not
// matter; flagstest.New gives real rules when they do. Flags it does not
// hold serve the caller's default with FLAG_NOT_FOUND, as a client does.
type fakeFlags map[string]any

var _ flags.Evaluator = fakeFlags(nil)

func lookup[T any](f fakeFlags, key string, def T) flags.Result[T] {
	if v, ok := f[key].(T); ok {
		return flags.Result[T]{Flag: key, Value: v, Variation: 0, Reason: flags.Reason{Kind: flags.ReasonFallthrough}}
	}
	kind := flags.ErrorFlagNotFound
	if _, ok := f[key]; ok {
		kind = flags.ErrorWrongType
	}
	return flags.Result[T]{Flag: key, Value: def, Variation: -1, Reason: flags.Reason{Kind: flags.ReasonError, ErrorKind: kind}}
}

func (f fakeFlags) Bool(_ context.Context, key string, _ flags.Context, def bool) bool {
	return lookup(f, key, def).Value
}

func (f fakeFlags) BoolDetail(_ context.Context, key string, _ flags.Context, def bool) flags.Result[bool] {
	return lookup(f, key, def)
}

func (f fakeFlags) String(_ context.Context, key string, _ flags.Context, def string) string {
	return lookup(f, key, def).Value
}

func (f fakeFlags) StringDetail(_ context.Context, key string, _ flags.Context, def string) flags.Result[string] {
	return lookup(f, key, def)
}

func (f fakeFlags) Int(_ context.Context, key string, _ flags.Context, def int) int {
	return lookup(f, key, def).Value
}

func (f fakeFlags) IntDetail(_ context.Context, key string, _ flags.Context, def int) flags.Result[int] {
	return lookup(f, key, def)
}

func (f fakeFlags) Float(_ context.Context, key string, _ flags.Context, def float64) float64 {
	return lookup(f, key, def).Value
}

func (f fakeFlags) FloatDetail(_ context.Context, key string, _ flags.Context, def float64) flags.Result[float64] {
	return lookup(f, key, def)
}

func (f fakeFlags) JSON(_ context.Context, key string, _ flags.Context, def json.RawMessage) json.RawMessage {
	return lookup(f, key, def).Value
}

func (f fakeFlags) JSONDetail(_ context.Context, key string, _ flags.Context, def json.RawMessage) flags.Result[json.RawMessage] {
	return lookup(f, key, def)
}

func (f fakeFlags) Value(_ context.Context, key string, _ flags.Context, def any) flags.Result[any] {
	return lookup(f, key, def)
}

func (f fakeFlags) AllFlags(_ context.Context, _ flags.Context) *flags.Evaluations {
	var out []flags.Result[any]
	for k := range f {
		out = append(out, lookup[any](f, k, nil))
	}
	return flags.EvaluationsOf(out...)
}

func TestCheckoutWithFake(t *testing.T) {
	h := shop.Checkout{Flags: fakeFlags{shop.FlagNewCheckout: true, shop.FlagMaxItems: 3}}
	got := get(t, h, "user=ann")
	want := shop.Page{User: "ann", Checkout: "new", Banner: shop.DefaultBanner, MaxItems: 3}
	if got != want {
		t.Errorf("page = %+v, want %+v", got, want)
	}
	// The fake follows the client's contract for what it does not hold.
	if r := (fakeFlags{"n": "text"}).IntDetail(context.Background(), "n", flags.Context{}, 7); r.Value != 7 || r.Reason.ErrorKind != flags.ErrorWrongType {
		t.Errorf("IntDetail of a string = %+v, want the default with WRONG_TYPE", r)
	}
}
