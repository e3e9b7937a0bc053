package flagsexpvar_test

import (
	"context"
	"encoding/json"
	"expvar"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagsexpvar"
)

func TestPublish(t *testing.T) {
	c, err := flags.New(flags.WithDocument([]byte(`{"version": 2, "flags": {"f": {"version": 4, "on": true, "variations": [false, true], "fallthrough": {"variation": 1}}}}`)),
		flags.WithMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		c.Bool(context.Background(), "f", flags.NewContext("u").Build(), false)
	}
	c.Bool(context.Background(), "f", flags.Context{}, false) // invalid: the default
	flagsexpvar.Publish("flagstream-test", c)
	rec := httptest.NewRecorder()
	expvar.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/vars", nil))
	var vars map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &vars); err != nil {
		t.Fatal(err)
	}
	got := string(vars["flagstream-test"])
	for _, want := range []string{`"state":"READY"`, `"updatesApplied":1`, `"version":2`,
		`{"flag":"f","version":4,"variation":-1,"count":1}`, `{"flag":"f","version":4,"variation":1,"count":3}`} {
		if !strings.Contains(got, want) {
			t.Errorf("expvar %s lacks %s", got, want)
		}
	}
}
