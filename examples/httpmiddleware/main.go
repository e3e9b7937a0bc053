// HTTP middleware: the evaluation context built once per request.
//
//	go run ./examples/httpmiddleware   # then: curl -H 'X-User-ID: ann' -b beta=1 localhost:8081/
//
// Middleware reads who is asking (the X-User-ID header, else an anonymous
// key from a cookie), where from (X-Country), with what (User-Agent), and
// whether they opted into beta (the "beta" cookie), builds a
// flags.Context, and puts it in the request's context. Handlers take it
// back with ContextFrom and branch on flags: no handler parses headers, and
// every flag sees the same attributes.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"

	"github.com/flagstream/flags"
)

// document: a beta-only new home page and a country-targeted banner.
const document = `{"flags": {
  "new-home": {"on": true, "variations": [false, true],
    "rules": [{"id": "beta", "clauses": [{"attribute": "betaOptIn", "op": "in", "values": [true]}], "serve": {"variation": 1}}],
    "fallthrough": {"variation": 0}},
  "banner": {"on": true, "variations": ["", "Bienvenue !", "Willkommen!"],
    "rules": [{"id": "fr", "clauses": [{"attribute": "country", "op": "in", "values": ["fr"]}], "serve": {"variation": 1}},
              {"id": "de", "clauses": [{"attribute": "country", "op": "in", "values": ["de"]}], "serve": {"variation": 2}}],
    "fallthrough": {"variation": 0}}}}`

type ctxKey struct{}

// Middleware builds each request's evaluation context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-User-ID")
		anonymous := key == ""
		if anonymous {
			if c, err := r.Cookie("anon-id"); err == nil && c.Value != "" {
				key = c.Value
			} else {
				key = newAnonymousID()
				http.SetCookie(w, &http.Cookie{Name: "anon-id", Value: key, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			}
		}
		b := flags.NewContext(key).
			Set("anonymous", anonymous).
			Set("userAgent", r.UserAgent())
		if country := r.Header.Get("X-Country"); country != "" {
			b.Set("country", country)
		}
		beta, err := r.Cookie("beta")
		b.Set("betaOptIn", err == nil && beta.Value == "1")
		ctx := context.WithValue(r.Context(), ctxKey{}, b.Build())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// ContextFrom returns the evaluation context Middleware built for the
// request (an invalid one, which serves defaults, without Middleware).
func ContextFrom(ctx context.Context) flags.Context {
	ec, _ := ctx.Value(ctxKey{}).(flags.Context)
	return ec
}

// Home is a handler branching on flags.
type Home struct{ Flags flags.Evaluator }

func (h Home) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ec := ContextFrom(r.Context())
	page := "classic home"
	if h.Flags.Bool(r.Context(), "new-home", ec, false) {
		page = "new home (beta)"
	}
	fmt.Fprintf(w, "%s for %s", page, ec.Key())
	if banner := h.Flags.String(r.Context(), "banner", ec, ""); banner != "" {
		fmt.Fprintf(w, " | %s", banner)
	}
	fmt.Fprintln(w)
}

func newAnonymousID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "anon-" + hex.EncodeToString(b)
}

func main() {
	client, err := flags.New(flags.WithDocument([]byte(document)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	log.Println("listening on 127.0.0.1:8081")
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", Middleware(Home{Flags: client})))
}
