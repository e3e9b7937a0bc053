package flags_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
)

const exampleDoc = `{
  "version": 7,
  "flags": {
    "new-checkout": {
      "version": 3, "on": true, "variations": [false, true],
      "rules": [{ "id": "staff", "clauses": [{ "attribute": "email", "op": "endsWith", "values": ["@corp.com"] }],
                  "serve": { "variation": 1 } }],
      "fallthrough": { "variation": 0 }
    },
    "banner-text": { "on": true, "variations": ["Welcome!", "Bienvenue !"],
      "rules": [{ "id": "fr", "clauses": [{ "attribute": "country", "op": "in", "values": ["fr"] }], "serve": { "variation": 1 } }],
      "fallthrough": { "variation": 0 } }
  }
}`

func ExampleNew() {
	client, err := flags.New(flags.WithDocument([]byte(exampleDoc)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	ctx := context.Background()
	ann := flags.NewContext("user-123").Set("email", "ann@corp.com").Build()
	bob := flags.NewContext("user-456").Set("email", "bob@example.com").Build()
	fmt.Println(client.Bool(ctx, "new-checkout", ann, false))
	fmt.Println(client.Bool(ctx, "new-checkout", bob, false))
	// Output:
	// true
	// false
}

func ExampleClient_BoolDetail() {
	client, _ := flags.New(flags.WithDocument([]byte(exampleDoc)))
	defer client.Close()

	ann := flags.NewContext("user-123").Set("email", "ann@corp.com").Build()
	r := client.BoolDetail(context.Background(), "new-checkout", ann, false)
	fmt.Println(r.Value, r.Variation, r.Version, r.Reason.Kind, r.Reason.RuleID)

	r = client.BoolDetail(context.Background(), "no-such-flag", ann, false)
	fmt.Println(r.Value, r.Reason.Kind, r.Reason.ErrorKind)
	// Output:
	// true 1 3 RULE_MATCH staff
	// false ERROR FLAG_NOT_FOUND
}

func ExampleClient_String() {
	client, _ := flags.New(flags.WithDocument([]byte(exampleDoc)))
	defer client.Close()

	// A context is built once and reused for every evaluation.
	marie := flags.NewContext("user-9").Set("country", "fr").Build()
	fmt.Println(client.String(context.Background(), "banner-text", marie, "Hello"))

	// Asking for the wrong type serves the default.
	r := client.IntDetail(context.Background(), "banner-text", marie, 42)
	fmt.Println(r.Value, r.Reason.ErrorKind)
	// Output:
	// Bienvenue !
	// 42 WRONG_TYPE
}

func ExampleContextFromJSON() {
	ec, err := flags.ContextFromJSON([]byte(`{"key":"user-123","org":{"id":"uni-7","plan":"enterprise"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, _ := ec.Get("org.plan")
	fmt.Println(ec.Key(), plan)

	noKey, _ := flags.ContextFromJSON([]byte(`{"email":"x@y.z"}`))
	fmt.Println(noKey.Err())
	// Output:
	// user-123 enterprise
	// flags: invalid context: no "key" attribute
}

func ExampleClient_AllFlags() {
	client, _ := flags.New(flags.WithDocument([]byte(exampleDoc)))
	defer client.Close()

	all := client.AllFlags(context.Background(), flags.NewContext("user-1").Build())
	out, _ := json.Marshal(all)
	fmt.Println(string(out))
	// Output:
	// [{"flag":"banner-text","value":"Welcome!","variation":0,"version":0,"reason":{"kind":"FALLTHROUGH"}},{"flag":"new-checkout","value":false,"variation":0,"version":3,"reason":{"kind":"FALLTHROUGH"}}]
}

func ExampleEvaluate() {
	doc, _ := rules.ParseDocument([]byte(`{"flags":{"search-v2":{"on":true,"variations":[false,true],
	  "fallthrough":{"rollout":{"variations":[{"variation":0},{"variation":1}],
	    "schedule":[{"at":"2026-12-01T00:00:00Z","weights":[100000,0]},{"at":"2026-12-08T00:00:00Z","weights":[0,100000]}]}}}}}`))
	snap := flags.Compile(doc)
	user := flags.NewContext("user-1").Build()
	for _, day := range []string{"2026-11-30", "2026-12-09"} {
		at, _ := time.Parse(time.DateOnly, day)
		r := flags.Evaluate(snap, "search-v2", user, func() time.Time { return at })
		fmt.Println(day, r.Value)
	}
	// Output:
	// 2026-11-30 false
	// 2026-12-09 true
}

func ExampleWithFile() {
	dir, _ := os.MkdirTemp("", "flags")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "flags.json")
	os.WriteFile(path, []byte(exampleDoc), 0o644)

	// The file is loaded before New returns and reloaded when it changes.
	client, err := flags.New(flags.WithFile(path))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	fmt.Println(client.Status().State, client.Status().Version)
	// Output:
	// READY 7
}

// tableSource loads flags from somewhere flagstream does not know (a
// database table, say: load stands for the query), every interval. Every
// source, the file, the stream and the test fake included, is this one
// method.
type tableSource struct {
	load     func(ctx context.Context) ([]byte, error)
	interval time.Duration
}

func (s tableSource) Run(ctx context.Context, u flags.Updates) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		data, err := s.load(ctx)
		if err == nil {
			var doc *rules.Document
			if doc, err = rules.ParseDocument(data); err == nil {
				err = u.Apply(doc, "table")
			}
		}
		if err != nil {
			u.Failed("table", err, false) // the client keeps its last good flags
		} else {
			u.Healthy("table")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func ExampleWithSource() {
	src := tableSource{
		load:     func(context.Context) ([]byte, error) { return []byte(exampleDoc), nil },
		interval: time.Minute,
	}
	client, err := flags.New(flags.WithSource(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.WaitReady(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st := client.Status()
	fmt.Println(st.State, st.Source, st.Version)
	// Output:
	// READY table 7
}
