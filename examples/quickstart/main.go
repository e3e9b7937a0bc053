// Quickstart: the whole flagstream story in one process.
//
//	go run ./examples/quickstart
//
// It starts the reference flag server on a random loopback port, serving
// testdata/quickstart.json; connects a streaming client to it; evaluates a
// few flags for a few users, with reasons; then turns a kill switch on
// through the server's admin API and measures how long the client took to
// see it. It exits by itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/rules"
	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/stream"
)

const adminToken = "quickstart-admin"

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()

	// 1. A flag server on 127.0.0.1, serving the quickstart document.
	data, err := os.ReadFile(documentPath())
	if err != nil {
		return err
	}
	doc, err := rules.ParseDocument(data)
	if err != nil {
		return err
	}
	srv, err := server.New(server.NewMemoryStore(doc), server.Options{AdminToken: adminToken})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: srv, ConnContext: server.ConnContext}
	go httpSrv.Serve(ln)
	defer httpSrv.Close()
	defer srv.Close()
	baseURL := "http://" + ln.Addr().String()
	fmt.Printf("flag server listening on %s (document version %d)\n\n", baseURL, doc.Version)

	// 2. A client that streams from it.
	client, err := flags.New(flags.WithSource(stream.New(stream.Config{BaseURL: baseURL, Token: adminToken})))
	if err != nil {
		return err
	}
	defer client.Close()
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.WaitReady(waitCtx); err != nil {
		return err
	}
	st := client.Status()
	fmt.Printf("client %s from %s, snapshot version %d\n\n", st.State, st.Source, st.Version)

	// 3. Evaluations, with reasons.
	users := []flags.Context{
		flags.NewContext("ann").Set("email", "ann@corp.com").Set("country", "us").Build(),
		flags.NewContext("user-7").Set("country", "fr").Set("org", map[string]any{"id": "uni-7", "plan": "enterprise"}).Build(),
		flags.NewContext("user-12").Set("country", "de").Set("org", map[string]any{"id": "shop-3", "plan": "free"}).Build(),
	}
	for _, u := range users {
		checkout := client.BoolDetail(ctx, "new-checkout", u, false)
		banner := client.StringDetail(ctx, "banner-text", u, "Hello")
		limit := client.IntDetail(ctx, "max-cart-items", u, 10)
		fmt.Printf("%-8s new-checkout=%-5v (%s)  banner-text=%q (%s)  max-cart-items=%d (%s)\n",
			u.Key(), checkout.Value, why(checkout.Reason), banner.Value, why(banner.Reason), limit.Value, why(limit.Reason))
	}
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := flags.Evaluate(client.Snapshot(), "search-v2", users[1], func() time.Time { return at })
	fmt.Printf("\nsearch-v2 ramps from 0 %% to 100 %% over Dec 1-8; for %s on %s: %v (%s)\n",
		users[1].Key(), at.Format(time.DateOnly), r.Value, why(r.Reason))

	// 4. A live change: turn the payments kill switch on through the admin API.
	changed := make(chan time.Time, 1)
	client.OnChange(func(c flags.Change) {
		for _, k := range c.Flags {
			if k == "kill-switch-payments" {
				select {
				case changed <- time.Now():
				default:
				}
			}
		}
	})
	before := client.Bool(ctx, "kill-switch-payments", users[0], false)
	start := time.Now()
	body := `{"on": true, "variations": [false, true], "offVariation": 0, "fallthrough": {"variation": 1}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, baseURL+"/v1/admin/flags/kill-switch-payments", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin PUT: %s", resp.Status)
	}
	select {
	case seen := <-changed:
		after := client.Bool(ctx, "kill-switch-payments", users[0], false)
		fmt.Printf("\nkill-switch-payments turned on through the server: client saw %v → %v after %v\n",
			before, after, seen.Sub(start).Round(time.Microsecond))
		fmt.Printf("client now at snapshot version %d\n", client.Status().Version)
	case <-time.After(10 * time.Second):
		return errors.New("the client did not see the change within 10s")
	}
	return nil
}

// why formats a reason briefly.
func why(r flags.Reason) string {
	s := string(r.Kind)
	switch {
	case r.Kind == flags.ReasonRuleMatch:
		s += " " + r.RuleID
	case r.Kind == flags.ReasonError:
		s += " " + string(r.ErrorKind)
	}
	if r.InRollout {
		s += ", rollout"
	}
	return s
}

// documentPath finds testdata/quickstart.json from the repository root (the
// usual `go run ./examples/quickstart`) or next to this source file.
func documentPath() string {
	const rel = "testdata/quickstart.json"
	if _, err := os.Stat(rel); err == nil {
		return rel
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}
