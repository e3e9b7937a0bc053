package browser

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/flagstream/flags/server"
	"github.com/flagstream/flags/server/console"
	"github.com/flagstream/flags/server/console/internal/consoletest"
)

const doc = `{"flags": {
  "new-checkout": {"on": true, "variations": [false, true], "description": "the new checkout flow", "tags": ["payments"],
    "rules": [{"id": "beta", "clauses": [{"attribute": "betaOptIn", "op": "in", "values": [true]}], "serve": {"variation": 1}}],
    "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
    "guard": {"metric": "checkout-error", "better": "lower", "control": 0, "treatment": 1}},
  "dark-mode": {"on": true, "variations": [false, true], "tags": ["ui"],
    "fallthrough": {"rollout": {"variations": [{"variation": 0}, {"variation": 1}], "schedule": [
      {"at": "2026-11-01T00:00:00Z", "weights": [100000, 0]}, {"at": "2027-02-01T00:00:00Z", "weights": [0, 100000]}]}}},
  "banner": {"on": false, "variations": ["", "Welcome!"], "offVariation": 0, "fallthrough": {"variation": 1},
    "prerequisites": [{"flag": "new-checkout", "variation": 1}]}},
  "segments": {"staff": {"included": ["ann"], "rules": [{"clauses": [{"attribute": "email", "op": "endsWith", "values": ["@corp.com"]}]}]}}}`

// browserPath finds Chromium, or skips loudly (fails under
// FLAGS_REQUIRE_BROWSER).
func browserPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found: SKIPPING the console's browser tests (apt-get install chromium; see README, Testing)"
	if os.Getenv("FLAGS_REQUIRE_BROWSER") != "" {
		t.Fatal(msg)
	}
	t.Skip("!!! " + msg)
	return ""
}

type env struct {
	srv     *server.Server
	url     string
	ctx     context.Context // a deadline for the test's steps
	errs    []string
	errsMu  sync.Mutex
	shotDir string
}

func start(t *testing.T) *env {
	chrome := browserPath(t)
	srv, base := consoletest.Serve(t, doc, console.New(console.Options{}),
		consoletest.Token{Name: "alice", Role: "admin", Secret: "alice-secret"},
		consoletest.Token{Name: "olga", Role: "operator", Secret: "olga-secret"},
		consoletest.Token{Name: "sdk", Role: "reader", Secret: "sdk-secret"})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chrome")), chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // start the browser, with no deadline of its own
		t.Fatalf("starting Chromium: %v", err)
	}
	e := &env{srv: srv, url: base, shotDir: os.Getenv("FLAGS_SCREENSHOTS")}
	var cancelT context.CancelFunc
	e.ctx, cancelT = context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	dialogs := make(chan struct{}, 4)
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				e.errsMu.Lock()
				e.errs = append(e.errs, fmt.Sprintf("console.error: %v", ev.Args))
				e.errsMu.Unlock()
			}
		case *runtime.EventExceptionThrown:
			e.errsMu.Lock()
			e.errs = append(e.errs, "exception: "+ev.ExceptionDetails.Text)
			e.errsMu.Unlock()
		case *page.EventJavascriptDialogOpening:
			select {
			case dialogs <- struct{}{}:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	go func() { // confirm every dialog (the switch's "Switch … off for everyone?")
		for {
			select {
			case <-dialogs:
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			case <-ctx.Done():
				return
			}
		}
	}()
	return e
}

func (e *env) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(e.ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func value[T any](t *testing.T, e *env, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(e.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) shot(t *testing.T, name string) {
	if e.shotDir == "" {
		return
	}
	png := value(t, e, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err := os.WriteFile(filepath.Join(e.shotDir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *env) signIn(t *testing.T, token string) {
	e.do(t, chromedp.Navigate(e.url+"/ui/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("table.flags")))
}

func get(t *testing.T, url, token string) string {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestConsoleInBrowser: sign in, the kill switch from the list (seen by
// /v1/flags, the stream and the audit with the token's name), the
// experiment chart, a stale edit's conflict, CSRF refused, an operator
// without editing rights, another site's sign-in form refused, and no
// error in the browser's console.
func TestConsoleInBrowser(t *testing.T) {
	e := start(t)
	// An SDK streaming, to see the switch arrive.
	streamed := openSDKStream(t, e.url, "sdk-secret")
	preq, _ := http.NewRequest("POST", e.url+"/v1/events", strings.NewReader(`{"batch":"browser-test-batch-01","events":[`+strings.Join(experimentEvents(), ",")+`]}`))
	preq.Header.Set("Authorization", "Bearer sdk-secret")
	if resp, err := http.DefaultClient.Do(preq); err != nil || resp.StatusCode != 202 {
		t.Fatalf("events: %v %v", resp, err)
	}

	e.signIn(t, "olga-secret")
	e.shot(t, "console-list.png")
	e.checkListRow(t)
	e.checkKillSwitch(t, streamed)
	// The operator: no editor; a POST without the CSRF token is refused.
	e.do(t, chromedp.Navigate(e.url+"/ui/flags/new-checkout"), chromedp.WaitVisible(chromedp.CSS("#experiment")))
	e.checkOperatorCannotEdit(t)
	e.checkExperimentChart(t)
	e.shot(t, "console-experiment.png")

	// An admin with a stale page.
	e.signIn(t, "alice-secret")
	e.do(t, chromedp.Navigate(e.url+"/ui/flags/banner"), chromedp.WaitVisible(chromedp.CSS("#edit")))
	e.shot(t, "console-flag.png")
	e.checkStaleSaveConflict(t)
	e.checkLoginCSRF(t)
	e.errsMu.Lock()
	defer e.errsMu.Unlock()
	if len(e.errs) > 0 {
		t.Errorf("errors in the browser console: %v", e.errs)
	}
}

// openSDKStream opens GET /v1/stream as an SDK would and hands what it
// reads, chunk by chunk, to the channel it returns (closed at the end).
func openSDKStream(t *testing.T, url, token string) <-chan string {
	t.Helper()
	sreq, _ := http.NewRequest("GET", url+"/v1/stream", nil)
	sreq.Header.Set("Authorization", "Bearer "+token)
	stream, err := http.DefaultClient.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Body.Close() })
	streamed := make(chan string, 16)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := stream.Body.Read(buf)
			if n > 0 {
				streamed <- string(buf[:n])
			}
			if err != nil {
				close(streamed)
				return
			}
		}
	}()
	return streamed
}

// experimentEvents is the experiment data: 1,000 units exposed to
// new-checkout, the treatment failing more (half its units, against a
// tenth of the control's), and a summary a minute for the last half hour,
// which the sparklines draw.
func experimentEvents() []string {
	var evs []string
	for i := range 1000 {
		evs = append(evs, fmt.Sprintf(`{"kind":"exposure","at":1,"flag":"new-checkout","version":0,"variation":%d,"contextKey":"u%d","inRollout":true}`, i%2, i))
		if i%4 == 1 || i%20 == 0 {
			evs = append(evs, fmt.Sprintf(`{"kind":"track","at":2,"name":"checkout-error","contextKey":"u%d"}`, i))
		}
	}
	now := time.Now().UnixMilli()
	for m := range 30 {
		at := now - int64(30-m)*60000
		evs = append(evs, fmt.Sprintf(`{"kind":"summary","start":%d,"end":%d,"counters":[{"flag":"new-checkout","version":0,"variation":0,"count":%d},{"flag":"new-checkout","version":0,"variation":1,"count":%d},{"flag":"dark-mode","version":0,"variation":1,"count":%d}]}`,
			at-60000, at, 100+10*m, 80+5*m, 20+3*m))
	}
	return evs
}

// checkListRow checks new-checkout's row in the list: its armed guard and
// a sparkline bar per variation and minute.
func (e *env) checkListRow(t *testing.T) {
	t.Helper()
	if rowText := value(t, e, chromedp.Text(chromedp.CSS("#row-new-checkout"))); !strings.Contains(rowText, "guard armed") {
		t.Errorf("list row: %q", rowText)
	}
	if bars := value(t, e, chromedp.Evaluate[int](`document.querySelectorAll("#row-new-checkout svg.spark rect").length`)); bars < 60 {
		t.Errorf("the sparkline has %d bars, want one per variation and minute (60)", bars)
	}
}

// checkKillSwitch switches new-checkout off from the list, confirmed in the
// dialog, and checks that /v1/flags, the SDK's stream and the audit (with
// the operator's name) all see it.
func (e *env) checkKillSwitch(t *testing.T, streamed <-chan string) {
	t.Helper()
	e.do(t, chromedp.Click(chromedp.CSS("#switch-new-checkout")), chromedp.WaitVisible(chromedp.CSS("p.flash")))
	flash := value(t, e, chromedp.Text(chromedp.CSS("p.flash")))
	if !strings.Contains(flash, "new-checkout is now off") {
		t.Errorf("flash: %q", flash)
	}
	if body := get(t, e.url+"/v1/flags", "sdk-secret"); !strings.Contains(body, `"new-checkout":{"version":1,"on":false`) {
		t.Errorf("/v1/flags after the switch: %s", body)
	}
	deadline := time.After(10 * time.Second)
	for seen := ""; !strings.Contains(seen, `"on":false`); {
		select {
		case s := <-streamed:
			seen += s
		case <-deadline:
			t.Fatalf("the stream did not carry the switch: %s", seen)
		}
	}
	if body := get(t, e.url+"/v1/admin/audit?key=new-checkout", "olga-secret"); !strings.Contains(body, `"actor":"olga"`) {
		t.Errorf("audit: %s", body)
	}
}

// checkOperatorCannotEdit checks, on a flag's page seen by an operator,
// that there is no editor and that a POST without the CSRF token is
// refused.
func (e *env) checkOperatorCannotEdit(t *testing.T) {
	t.Helper()
	editors := value(t, e, chromedp.Evaluate[int](`document.querySelectorAll("#edit").length`))
	status := value(t, e, chromedp.Evaluate[int](`fetch("/ui/flags/banner/switch", {method: "POST", body: new URLSearchParams({on: "true", version: "0"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if editors != 0 || status != 403 {
		t.Errorf("operator: %d editors, CSRF-less POST %v; want 0 and 403", editors, status)
	}
}

// checkExperimentChart checks new-checkout's page: a confidence chart and
// the verdict that the treatment fails more often.
func (e *env) checkExperimentChart(t *testing.T) {
	t.Helper()
	charts := value(t, e, chromedp.Evaluate[int](`document.querySelectorAll("#experiment svg.ci").length`))
	verdict := value(t, e, chromedp.Text(chromedp.CSS("p.verdict")))
	if charts == 0 || !strings.Contains(verdict, "higher than the control") {
		t.Errorf("experiment: %d charts, verdict %q", charts, verdict)
	}
}

// checkStaleSaveConflict changes banner behind the open editor's back,
// saves the stale page and checks that the conflict page shows the newer
// value.
func (e *env) checkStaleSaveConflict(t *testing.T) {
	t.Helper()
	req, _ := http.NewRequest("PATCH", e.url+"/v1/admin/flags/banner", strings.NewReader(`{"description": "changed meanwhile"}`))
	req.Header.Set("Authorization", "Bearer alice-secret")
	req.Header.Set("Content-Type", "application/merge-patch+json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PATCH: %v %v", resp, err)
	}
	e.do(t, chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#current")))
	current := value(t, e, chromedp.Text(chromedp.CSS("#current")))
	if !strings.Contains(current, "changed meanwhile") {
		t.Errorf("the conflict page shows %q, want the newer value", current)
	}
}

// checkLoginCSRF opens, signed in as alice, a page of another site (the
// same loopback server under the name localhost, another site than
// 127.0.0.1 to the browser) whose form signs in with olga's token as soon
// as it loads: the console refuses it, and alice is still signed in as
// herself.
func (e *env) checkLoginCSRF(t *testing.T) {
	t.Helper()
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/ui/login"><input name="token" value="olga-secret"></form><script>document.getElementById("f").submit()</script>`, e.url)
	}))
	defer attacker.Close()
	other := strings.Replace(attacker.URL, "127.0.0.1", "localhost", 1)
	// The console's page that answers, whichever it is, has a <main>; the
	// other site's has none.
	e.do(t, chromedp.Navigate(other), chromedp.WaitVisible(chromedp.CSS("main")))
	refused := value(t, e, chromedp.Evaluate[string](`(document.querySelector("p.error") || {}).textContent || "no error shown"`))
	e.do(t, chromedp.Navigate(e.url+"/ui/"), chromedp.WaitVisible(chromedp.CSS("table.flags")))
	who := value(t, e, chromedp.Text(chromedp.CSS("header .who span")))
	if who != "alice (admin)" || !strings.Contains(refused, "another site") {
		t.Errorf("after another site's sign-in form: signed in as %q (want alice (admin)); the console said %q", who, refused)
	}
}
