package flagstest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
	"github.com/flagstream/flags/stream"
)

// These examples run their body as a test function would: test(func(t
// testing.TB) {...}) stands for func TestX(t *testing.T) {...}.

func Example() {
	test(func(t testing.TB) {
		td := flagstest.New(t,
			flagstest.Bool("new-checkout", true),
			flagstest.String("banner", "Hello").ForKey("user-1", "Hi Ann"),
		)
		ctx := context.Background()
		ann := flags.NewContext("user-1").Build()
		bob := flags.NewContext("user-2").Build()

		// td.Client is a real *flags.Client: pass it to the code under test.
		fmt.Println(td.Client.Bool(ctx, "new-checkout", ann, false))
		fmt.Println(td.Client.String(ctx, "banner", ann, ""), "/", td.Client.String(ctx, "banner", bob, ""))

		// Set is synchronous: the very next evaluation sees the change.
		td.Set(flagstest.Bool("new-checkout", false))
		fmt.Println(td.Client.Bool(ctx, "new-checkout", ann, true))

		td.Delete("banner")
		fmt.Println(td.Client.StringDetail(ctx, "banner", ann, "default").Reason.ErrorKind)
	})
	// Output:
	// true
	// Hi Ann / Hello
	// false
	// FLAG_NOT_FOUND
}

func ExampleTestData_Set() {
	test(func(t testing.TB) {
		td := flagstest.New(t, flagstest.Int("max-items", 10))
		td.Client.OnChange(func(c flags.Change) {
			fmt.Println("changed:", c.Flags, "version", c.Version)
		})
		td.Set(flagstest.Int("max-items", 20)) // the listener has run when Set returns
		fmt.Println("set done")
	})
	// Output:
	// changed: [max-items] version 2
	// set done
}

func ExampleTestData_SetDocument() {
	test(func(t testing.TB) {
		td := flagstest.New(t, flagstest.FromJSON(t, []byte(`{"flags": {
			"new-checkout": {"on": true, "variations": [false, true], "fallthrough": {"variation": 1}}}}`)))
		user := flags.NewContext("user-1").Build()
		fmt.Println(td.Client.Bool(context.Background(), "new-checkout", user, false))

		// Replace everything; flagstest.FromFile(t, "testdata/flags.json") reads a file.
		td.SetDocument([]byte(`{"flags": {}}`))
		fmt.Println(td.Client.Bool(context.Background(), "new-checkout", user, false))
	})
	// Output:
	// true
	// false
}

func ExampleTestData_NewClient() {
	test(func(t testing.TB) {
		dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		td := flagstest.New(t, flagstest.Bool("search-v2", false).Fallthrough(
			flagstest.Rollout().Step(dec1, 100000, 0).Step(dec1.AddDate(0, 0, 7), 0, 100000)))

		// One more client on the same flags, with a fixed clock.
		later := td.NewClient(flags.WithClock(func() time.Time { return dec1.AddDate(0, 0, 8) }))
		user := flags.NewContext("user-1").Build()
		fmt.Println(later.Bool(context.Background(), "search-v2", user, false))
	})
	// Output:
	// true
}

func ExampleTestData_Fail() {
	test(func(t testing.TB) {
		td := flagstest.New(t, flagstest.Bool("new-checkout", true))
		td.Fail(fmt.Errorf("flag server unreachable"), false)
		st := td.Client.Status()
		fmt.Println(st.State, st.Err)
		// The last flags keep being served.
		fmt.Println(td.Client.Bool(context.Background(), "new-checkout", flags.NewContext("u").Build(), false))
		td.Recover()
		fmt.Println(td.Client.Status().State)
	})
	// Output:
	// STALE flag server unreachable
	// true
	// READY
}

// A QA override on the client beats whatever the flags say, with reason
// OVERRIDE, until cleared.
func ExampleTestData_override() {
	test(func(t testing.TB) {
		td := flagstest.New(t, flagstest.Bool("new-checkout", false))
		ctx := context.Background()
		ann := flags.NewContext("user-1").Build()

		td.Client.OverrideFor("new-checkout", "user-1", true)
		r := td.Client.BoolDetail(ctx, "new-checkout", ann, false)
		fmt.Println(r.Value, r.Reason.Kind)

		td.Client.ClearOverrides()
		r = td.Client.BoolDetail(ctx, "new-checkout", ann, false)
		fmt.Println(r.Value, r.Reason.Kind)
	})
	// Output:
	// true OVERRIDE
	// false FALLTHROUGH
}

func ExampleFlag() {
	test(func(t testing.TB) {
		td := flagstest.New(t,
			flagstest.Segment("beta-testers").Included("user-7"),
			flagstest.Flag("new-checkout").
				Variations(false, true).
				OffVariation(0).
				Target(1, "vip-42").
				Rule("staff", flagstest.Variation(1), flagstest.EndsWith("email", "@corp.com")).
				Rule("beta", flagstest.Variation(1), flagstest.InSegment("beta-testers")).
				Rule("old-app", flagstest.Variation(0), flagstest.SemVerLessThan("appVersion", "2.0.0")).
				Fallthrough(flagstest.Rollout().Weight(0, 75000).Weight(1, 25000).BucketBy("org.id")),
		)
		ctx := context.Background()
		for _, user := range []flags.Context{
			flags.NewContext("vip-42").Build(),
			flags.NewContext("ann").Set("email", "ann@corp.com").Build(),
			flags.NewContext("user-7").Build(),
		} {
			r := td.Client.BoolDetail(ctx, "new-checkout", user, false)
			reason, _ := json.Marshal(r.Reason)
			fmt.Println(user.Key(), r.Value, string(reason))
		}
	})
	// Output:
	// vip-42 true {"kind":"TARGET_MATCH"}
	// ann true {"kind":"RULE_MATCH","ruleIndex":0,"ruleId":"staff"}
	// user-7 true {"kind":"RULE_MATCH","ruleIndex":1,"ruleId":"beta"}
}

func ExampleFlagBuilder_ForKey() {
	test(func(t testing.TB) {
		td := flagstest.New(t, flagstest.String("banner", "Hello").ForKey("user-1", "Hi Ann").ForKey("user-2", "Hi Bob"))
		for _, key := range []string{"user-1", "user-2", "user-3"} {
			fmt.Println(td.Client.String(context.Background(), "banner", flags.NewContext(key).Build(), ""))
		}
	})
	// Output:
	// Hi Ann
	// Hi Bob
	// Hello
}

func ExampleDocument() {
	data, err := flagstest.Document(
		flagstest.Bool("new-checkout", true),
		flagstest.Segment("beta").Included("user-7"),
	).Version(3).JSON()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(data))

	// The bytes suit flags.WithDocument, a file, or a golden test.
	client, _ := flags.New(flags.WithDocument(data))
	defer client.Close()
	fmt.Println(client.Status().Version)
	// Output:
	// {"version":3,"flags":{"new-checkout":{"on":true,"variations":[false,true],"fallthrough":{"variation":1}}},"segments":{"beta":{"included":["user-7"]}}}
	// 3
}

func ExampleBuildError() {
	_, err := flagstest.Document(
		flagstest.Bool("new-checkout", true).Fallthrough(flagstest.Rollout().Weight(0, 50000).Weight(1, 40000)),
	).JSON()
	fmt.Println(err)
	// Output:
	// flagstest: flag "new-checkout": fallthrough.rollout.variations: weights sum to 90000, want 100000
}

func ExampleNewServer() {
	test(func(t testing.TB) {
		td := flagstest.New(t, flagstest.Bool("kill-switch", false))
		srv := flagstest.NewServer(td)
		client := srv.Client(stream.New(stream.Config{BaseURL: srv.URL})) // ready
		user := flags.NewContext("user-1").Build()
		fmt.Println(client.Bool(context.Background(), "kill-switch", user, true))

		td.Set(flagstest.Bool("kill-switch", true)) // one patch on the wire; returns once client has it
		fmt.Println(client.Bool(context.Background(), "kill-switch", user, false), client.Status().Version)
	})
	// Output:
	// false
	// true 2
}

// A TestData is a flags.Source: build a client of your own over it.
func ExampleTestData_Run() {
	test(func(t testing.TB) {
		td := flagstest.New(t, flagstest.String("banner", "Hello"))
		client, err := flags.New(flags.WithSource(td), flags.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatalf("%v", err)
		}
		defer client.Close()
		user := flags.NewContext("user-1").Build()
		fmt.Println(client.String(context.Background(), "banner", user, ""), client.Status().Source)
		td.Set(flagstest.String("banner", "Hi"))
		fmt.Println(client.String(context.Background(), "banner", user, ""))
	})
	// Output:
	// Hello flagstest
	// Hi
}

// ExampleEventRecorder asserts what a piece of code reported: the
// exposure of a tracked flag and a track event.
func ExampleEventRecorder() {
	t := &testing.T{} // your test's t
	td := flagstest.New(t, flagstest.Bool("new-checkout", true).TrackEvents())
	rec := new(flagstest.EventRecorder)
	client := td.NewClient(flags.WithEventExporter(rec))

	ctx := context.Background()
	ann := flags.NewContext("ann").Build()
	if client.Bool(ctx, "new-checkout", ann, false) {
		client.Track(ctx, "purchase", ann, 42.5)
	}
	_ = client.FlushEvents(ctx)

	for _, e := range rec.Exposures() {
		fmt.Println("exposure:", e.Flag, *e.Variation, e.ContextKey)
	}
	for _, e := range rec.Tracks() {
		fmt.Println("track:", e.Name, e.ContextKey, *e.Value)
	}
	// Output:
	// exposure: new-checkout 1 ann
	// track: purchase ann 42.5
}
