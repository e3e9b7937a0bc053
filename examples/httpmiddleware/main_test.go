package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flagstream/flags/flagstest"
)

func TestMiddleware(t *testing.T) {
	td := flagstest.New(t, flagstest.FromJSON(t, []byte(document)))
	srv := httptest.NewServer(Middleware(Home{Flags: td.NewClient()}))
	defer srv.Close()
	get := func(header map[string]string, cookies ...*http.Cookie) (string, *http.Response) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), resp
	}
	if body, _ := get(map[string]string{"X-User-ID": "ann"}); body != "classic home for ann" {
		t.Errorf("no opt-in: %q", body)
	}
	if body, _ := get(map[string]string{"X-User-ID": "ann", "X-Country": "fr"}, &http.Cookie{Name: "beta", Value: "1"}); body != "new home (beta) for ann | Bienvenue !" {
		t.Errorf("beta cookie, France: %q", body)
	}
	body, resp := get(map[string]string{"X-Country": "de"})
	if !strings.HasPrefix(body, "classic home for anon-") || !strings.HasSuffix(body, "| Willkommen!") {
		t.Errorf("anonymous from Germany: %q", body)
	}
	var anon *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "anon-id" {
			anon = c
		}
	}
	if anon == nil || !anon.HttpOnly {
		t.Fatalf("no HttpOnly anon-id cookie set: %v", resp.Cookies())
	}
	if again, _ := get(nil, anon); !strings.Contains(again, anon.Value) {
		t.Errorf("the anonymous key is not kept across requests: %q", again)
	}
}
