package server_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
)

// A server over an in-memory document, mounted in an httptest.Server, and a
// change published to it.
func Example() {
	doc, err := rules.ParseDocument([]byte(`{"version": 3, "flags": {"beta": {"on": true, "variations": [false, true], "fallthrough": {"variation": 1}}}}`))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.NewMemoryStore(doc), server.Options{Epoch: "demo"})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()

	get := func() {
		resp, err := http.Get(ts.URL + "/v1/flags")
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("ETag"), string(body))
	}
	get()

	next, _ := rules.ParseDocument([]byte(`{"flags": {"beta": {"on": false, "variations": [false, true], "fallthrough": {"variation": 1}}}}`))
	if err := srv.Publish(next); err != nil {
		log.Fatal(err)
	}
	get()
	// Output:
	// 200 "demo:3" {"version":3,"flags":{"beta":{"version":0,"on":true,"variations":[false,true],"fallthrough":{"variation":1}}},"segments":{}}
	// 200 "demo:4" {"version":4,"flags":{"beta":{"version":1,"on":false,"variations":[false,true],"fallthrough":{"variation":1}}},"segments":{}}
}
