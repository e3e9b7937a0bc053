package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flagstream/flags/rules"
)

// BenchmarkPublishFanout measures one Publish of a one-flag change until
// every one of 100 stream subscribers has received it.
func BenchmarkPublishFanout(b *testing.B) {
	srv, ts := newTestServer(b, baseDoc, Options{})
	clients := make([]*sseClient, 100)
	for i := range clients {
		clients[i] = openStream(b, ts.URL, "", "")
		clients[i].next(b)
	}
	docs := make([]string, 2)
	for i := range docs {
		docs[i] = strings.Replace(baseDoc, `"owner": "team-a"`, fmt.Sprintf(`"owner": "team-%d"`, i), 1)
	}
	parsed := []*rules.Document{mustParse(b, docs[0]), mustParse(b, docs[1])}
	for i := 0; b.Loop(); i++ {
		if err := srv.Publish(parsed[i%2]); err != nil {
			b.Fatal(err)
		}
		for _, c := range clients {
			c.nextPatch(b)
		}
	}
}

// BenchmarkPublishLargeDocument measures Publish of a one-flag change in a
// document of 10,000 flags (no subscribers): the diff, the encoding and the
// incremental compilation.
func BenchmarkPublishLargeDocument(b *testing.B) {
	var flags []string
	for i := 0; i < 10000; i++ {
		flags = append(flags, fmt.Sprintf(`"f%d": {"on": true, "variations": [true, false], "fallthrough": {"variation": 0},
			"rules": [{"id": "r", "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@corp.com"]}], "serve": {"variation": 1}}]}`, i))
	}
	base := `{"flags": {` + strings.Join(flags, ",") + `}}`
	srv, _ := newTestServer(b, base, Options{})
	parsed := []*rules.Document{
		mustParse(b, strings.Replace(base, `"f0": {"on": true`, `"f0": {"on": false`, 1)),
		mustParse(b, base),
	}
	for i := 0; b.Loop(); i++ {
		if err := srv.Publish(parsed[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(srv.cur.Load().body)), "doc-bytes")
}

// BenchmarkNewLargeDocument measures New over a document of 10,000 flags:
// the parser's check of every value, the encoding and the compilation.
func BenchmarkNewLargeDocument(b *testing.B) {
	var flags []string
	for i := 0; i < 10000; i++ {
		flags = append(flags, fmt.Sprintf(`"f%d": {"on": true, "variations": [true, false], "fallthrough": {"variation": 0}, "description": "flag %d"}`, i, i))
	}
	doc := mustParse(b, `{"flags": {`+strings.Join(flags, ",")+`}}`)
	for b.Loop() {
		srv, err := New(NewMemoryStore(doc), Options{})
		if err != nil {
			b.Fatal(err)
		}
		_ = srv.Close()
	}
}
