// Package shop is the example of examples/testing: a small net/http
// handler whose behaviour depends on feature flags, and the tests that
// show how to test such code with package flagstest.
//
// The handler depends on flags.Evaluator, the evaluation methods of
// *flags.Client, so a test can hand it a real client from flagstest (the
// usual way: real rules, real evaluation) or, where that is simpler, a
// hand-written fake (see fake_test.go).
//
//	go test ./examples/testing            # the tests
//	go test ./examples/testing -update    # regenerate testdata/details.golden
package shop

import (
	"encoding/json"
	"net/http"

	"github.com/flagstream/flags"
)

// The flags the handler reads, with the defaults served when a flag cannot
// be evaluated (no snapshot yet, flag deleted, wrong type...).
const (
	FlagNewCheckout = "new-checkout" // bool: the new checkout page
	FlagBanner      = "banner-text"  // string: the banner above the cart
	FlagMaxItems    = "max-cart-items"

	DefaultBanner   = "Welcome!"
	DefaultMaxItems = 10
)

// Page is what the checkout handler answers, as JSON.
type Page struct {
	User     string `json:"user"`
	Checkout string `json:"checkout"` // "new" or "classic"
	Banner   string `json:"banner"`
	MaxItems int    `json:"maxItems"`
}

// Checkout serves GET /checkout?user=KEY&country=CC with the page the
// flags choose for that user.
type Checkout struct {
	Flags flags.Evaluator
}

// ServeHTTP implements http.Handler.
func (h Checkout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("user")
	if key == "" {
		http.Error(w, "missing user", http.StatusBadRequest)
		return
	}
	b := flags.NewContext(key)
	if c := q.Get("country"); c != "" {
		b.Set("country", c)
	}
	user := b.Build()
	ctx := r.Context()

	page := Page{
		User:     key,
		Checkout: "classic",
		Banner:   h.Flags.String(ctx, FlagBanner, user, DefaultBanner),
		MaxItems: h.Flags.Int(ctx, FlagMaxItems, user, DefaultMaxItems),
	}
	if h.Flags.Bool(ctx, FlagNewCheckout, user, false) {
		page.Checkout = "new"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(page)
}
