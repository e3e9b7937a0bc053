// Guarded rollout: a bad release rolls itself back.
//
//	go run ./examples/guarded-rollout
//
// It starts the reference flag server on a random loopback port with one
// flag, "new-checkout", rolled out 50/50 under a guard on the metric
// "checkout-error" (SPEC §9). A streaming client, as a service would, sends
// its exposures and track events to the server (SPEC §7). A load generator
// plays users checking out: the new checkout (the treatment) fails 30 % of
// the time, the old one 5 %. Within seconds the guard sees the treatment is
// worse with an always-valid p-value below alpha, and the server, as actor
// "guard", rewrites the flag to serve the control to everyone; the client
// gets the change through its stream and every user is back on the old
// checkout. The program prints what happened and the audit entry, then
// exits.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
)

const adminToken = "guarded-rollout-admin"

// document: the new checkout, 50/50, guarded. minUnits is low so that the
// demonstration takes seconds; production guards keep the default (100) or
// more.
const document = `{"flags": {"new-checkout": {
  "on": true, "variations": [false, true],
  "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
  "guard": {"metric": "checkout-error", "better": "lower", "control": 0, "treatment": 1, "alpha": 0.05, "minUnits": 100}}}}`

// Error rates of the simulated checkouts.
const (
	oldCheckoutErrors = 0.05
	newCheckoutErrors = 0.30
)

func main() {
	res, err := run(os.Stdout, 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	if !res.RolledBack {
		log.Fatal("the guard did not roll the flag back")
	}
}

// result is what run observed.
type result struct {
	RolledBack bool
	After      time.Duration     // from the first request to the client serving control to everyone
	Users      int               // users served before the rollback reached the client
	Audit      server.AuditEntry // the guard's audit entry
	Report     json.RawMessage   // the experiment when it tripped
}

func run(out io.Writer, limit time.Duration) (*result, error) {
	ctx := context.Background()
	doc, err := rules.ParseDocument([]byte(document))
	if err != nil {
		return nil, err
	}
	store := server.NewMemoryStore(doc)
	srv, err := server.New(store, server.Options{AdminToken: adminToken, GuardInterval: 250 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	httpSrv := &http.Server{Handler: srv, ConnContext: server.ConnContext}
	go httpSrv.Serve(ln)
	defer httpSrv.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "flag server on %s: new-checkout rolled out 50/50 under a guard on checkout-error\n", base)

	// The service: a streaming client that reports exposures and track
	// events to the server (flushed every 200 ms here; 5 s by default).
	client, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: base})),
		flags.WithEventOptions(flags.EventOptions{FlushInterval: 200 * time.Millisecond}))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.WaitReady(wctx); err != nil {
		return nil, err
	}

	// The load: users check out; the new checkout fails more often.
	rng := rand.New(rand.NewPCG(7, 7))
	start := time.Now()
	res := &result{}
	for user := 0; time.Since(start) < limit; user++ {
		ec := flags.NewContext(fmt.Sprintf("user-%d", user)).Build()
		rate := oldCheckoutErrors
		if client.Bool(ctx, "new-checkout", ec, false) {
			rate = newCheckoutErrors
		}
		if rng.Float64() < rate {
			client.Track(ctx, "checkout-error", ec)
		}
		res.Users++
		if user%50 == 49 {
			time.Sleep(20 * time.Millisecond) // about 2,500 checkouts a second
			if rolledBack(client) {
				res.RolledBack, res.After = true, time.Since(start)
				break
			}
		}
	}
	if !res.RolledBack {
		fmt.Fprintf(out, "no rollback within %v\n", limit)
		return res, nil
	}
	fmt.Fprintf(out, "rolled back after %v and %d users: every user now gets the old checkout\n", res.After.Round(time.Millisecond), res.Users)

	page, err := store.Audit(ctx, server.AuditQuery{Key: "new-checkout", Limit: 10})
	if err != nil {
		return nil, err
	}
	for _, e := range page.Entries {
		if e.Action == server.ActionGuard {
			res.Audit = e
		}
	}
	fmt.Fprintf(out, "audit: version %d by %s (%s): %s\n", res.Audit.Version, res.Audit.Actor, res.Audit.Action, res.Audit.Comment)
	var tripped struct {
		Guard struct {
			Tripped json.RawMessage `json:"tripped"`
		} `json:"guard"`
		Fallthrough json.RawMessage `json:"fallthrough"`
	}
	_ = json.Unmarshal(res.Audit.After, &tripped)
	fmt.Fprintf(out, "the flag now: fallthrough %s, guard.tripped %s\n", tripped.Fallthrough, tripped.Guard.Tripped)
	return res, nil
}

// rolledBack reports whether the client's snapshot serves the control to
// everyone: the guard rewrote the rollout and the stream delivered it.
func rolledBack(c *flags.Client) bool {
	snap := c.Snapshot()
	if snap == nil {
		return false
	}
	var f struct {
		Guard       struct{ Tripped *rules.GuardTrip }
		Fallthrough struct {
			Variation *int
			Rollout   json.RawMessage
		}
	}
	if json.Unmarshal(snap.Document().Flags["new-checkout"], &f) != nil {
		return false
	}
	ft := f.Fallthrough
	return f.Guard.Tripped != nil && ft.Rollout == nil && ft.Variation != nil && *ft.Variation == 0
}
