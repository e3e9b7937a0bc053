package shop_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	shop "github.com/flagstream/flags/examples/testing"
	"github.com/flagstream/flags/flagstest"
	"github.com/flagstream/flags/stream"
)

// get runs one request through h and decodes the page.
func get(t *testing.T, h http.Handler, query string) shop.Page {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/checkout?"+query, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /checkout?%s: status %d: %s", query, rec.Code, rec.Body)
	}
	var p shop.Page
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("GET /checkout?%s: %v", query, err)
	}
	return p
}

// TestCheckout: the flag on and off, each test with its own flags, in
// parallel.
func TestCheckout(t *testing.T) {
	tests := []struct {
		name  string
		flags []flagstest.Item
		query string
		want  shop.Page
	}{
		{
			name:  "new checkout on",
			flags: []flagstest.Item{flagstest.Bool(shop.FlagNewCheckout, true)},
			query: "user=ann",
			want:  shop.Page{User: "ann", Checkout: "new", Banner: shop.DefaultBanner, MaxItems: shop.DefaultMaxItems},
		},
		{
			name:  "new checkout off",
			flags: []flagstest.Item{flagstest.Bool(shop.FlagNewCheckout, false)},
			query: "user=ann",
			want:  shop.Page{User: "ann", Checkout: "classic", Banner: shop.DefaultBanner, MaxItems: shop.DefaultMaxItems},
		},
		{
			name: "banner and limit for one user",
			flags: []flagstest.Item{
				flagstest.String(shop.FlagBanner, "Hello").ForKey("ann", "Hi Ann"),
				flagstest.Int(shop.FlagMaxItems, 25),
			},
			query: "user=ann",
			want:  shop.Page{User: "ann", Checkout: "classic", Banner: "Hi Ann", MaxItems: 25},
		},
		{
			name: "rule on country",
			flags: []flagstest.Item{
				flagstest.Bool(shop.FlagNewCheckout, false).Rule("fr", flagstest.Variation(1), flagstest.In("country", "fr")),
			},
			query: "user=marie&country=fr",
			want:  shop.Page{User: "marie", Checkout: "new", Banner: shop.DefaultBanner, MaxItems: shop.DefaultMaxItems},
		},
		{
			name:  "wrong type serves the default",
			flags: []flagstest.Item{flagstest.String(shop.FlagMaxItems, "lots")},
			query: "user=ann",
			want:  shop.Page{User: "ann", Checkout: "classic", Banner: shop.DefaultBanner, MaxItems: shop.DefaultMaxItems},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			td := flagstest.New(t, tt.flags...)
			got := get(t, shop.Checkout{Flags: td.Client}, tt.query)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("page mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckoutFlipsLive: one handler, the flag changed under it; each
// request after Set sees the change with no waiting.
func TestCheckoutFlipsLive(t *testing.T) {
	td := flagstest.New(t, flagstest.Bool(shop.FlagNewCheckout, false))
	h := shop.Checkout{Flags: td.Client}
	for _, on := range []bool{true, false, true} {
		td.Set(flagstest.Bool(shop.FlagNewCheckout, on))
		want := map[bool]string{true: "new", false: "classic"}[on]
		if got := get(t, h, "user=ann").Checkout; got != want {
			t.Errorf("after Set(%v): checkout %q, want %q", on, got, want)
		}
	}
	td.Delete(shop.FlagNewCheckout)
	if got := get(t, h, "user=ann").Checkout; got != "classic" {
		t.Errorf("flag deleted: checkout %q, want the default, classic", got)
	}
}

// TestCheckoutEndToEnd: the handler behind a real HTTP server, reading a
// streaming client connected to a real flag server; a flag change travels
// the wire before the next request.
func TestCheckoutEndToEnd(t *testing.T) {
	td := flagstest.New(t, flagstest.FromFile(t, "testdata/flags.json"))
	flagSrv := flagstest.NewServer(td)
	app := httptest.NewServer(shop.Checkout{Flags: flagSrv.Client(stream.New(stream.Config{BaseURL: flagSrv.URL}))})
	defer app.Close()

	fetch := func() shop.Page {
		t.Helper()
		resp, err := http.Get(app.URL + "/checkout?user=user-1&country=fr")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p shop.Page
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := fetch(); p.Checkout != "new" || p.Banner != "Bienvenue !" {
		t.Fatalf("page %+v, want the new checkout with the French banner", p)
	}
	td.Set(flagstest.Bool(shop.FlagNewCheckout, false)) // a kill switch, published as a patch
	if p := fetch(); p.Checkout != "classic" {
		t.Errorf("after the kill switch: page %+v, want the classic checkout", p)
	}
}

// TestMissingUser needs no flags at all: a client that holds none serves
// defaults.
func TestMissingUser(t *testing.T) {
	td := flagstest.New(t)
	rec := httptest.NewRecorder()
	shop.Checkout{Flags: td.Client}.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/checkout", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", rec.Code)
	}
}
