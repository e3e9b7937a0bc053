package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flagstream/flags/rules"
)

// TestPreviousTokens: during a rotation the old SDK token still reads, the
// admin API still wants the admin token, and a previous token is never an
// admin token.
func TestPreviousTokens(t *testing.T) {
	srv, err := New(NewMemoryStore(&rules.Document{}), Options{Token: "new", PreviousTokens: []string{"old", "older"}, AdminToken: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/v1/flags", "new", 200},
		{"GET", "/v1/flags", "old", 200},
		{"GET", "/v1/flags", "older", 200},
		{"GET", "/v1/flags", "adm", 200},
		{"GET", "/v1/flags", "oldest", 401},
		{"GET", "/v1/flags", "", 401},
		{"DELETE", "/v1/admin/flags/x", "old", 403},
		{"DELETE", "/v1/admin/flags/x", "new", 403},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with %q = %d, want %d", tc.method, tc.path, tc.token, resp.StatusCode, tc.want)
		}
	}
	if _, err := New(NewMemoryStore(nil), Options{PreviousTokens: []string{"old"}}); err == nil {
		t.Error("PreviousTokens without Token accepted")
	}
	if _, err := New(NewMemoryStore(nil), Options{Token: "t", PreviousTokens: []string{""}}); err == nil {
		t.Error("an empty previous token accepted")
	}
}
