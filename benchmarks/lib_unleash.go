package benchmarks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	unleash "github.com/Unleash/unleash-client-go/v4"
	unleashctx "github.com/Unleash/unleash-client-go/v4/context"
)

// unleashTransport answers the Unleash client's requests in-process: GET
// /api/client/features with the scenario's payload, anything else with an
// empty 200. Nothing is dialled; other counts requests that were not the
// features fetch.
type unleashTransport struct {
	payload []byte
	fetches atomic.Int64
	other   atomic.Int64
}

// RoundTrip implements http.RoundTripper.
func (t *unleashTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	body := []byte("{}")
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/client/features") {
		t.fetches.Add(1)
		body = t.payload
	} else {
		t.other.Add(1)
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Status:        "200 OK",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": []string{"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

type unleashLoaded struct {
	c    *unleash.Client
	tr   *unleashTransport
	dir  string
	user unleashctx.Context
}

// harnessBytes is the payload the in-process "server" keeps, not Unleash.
func (l *unleashLoaded) harnessBytes() int { return len(l.tr.payload) }

func (l *unleashLoaded) Bool(key string) bool {
	return l.c.IsEnabled(key, unleash.WithContext(l.user))
}

func (l *unleashLoaded) Close() {
	l.c.Close()
	os.RemoveAll(l.dir)
}

// unleashClient starts a real Unleash client fed by payload (the body of
// /api/client/features) and waits until it has fetched it.
func unleashClient(payload []byte) (*unleashLoaded, error) {
	dir, err := os.MkdirTemp("", "unleash-bench-")
	if err != nil {
		return nil, err
	}
	tr := &unleashTransport{payload: payload}
	c, err := unleash.NewClient(
		unleash.WithAppName("flagstream-benchmarks"),
		unleash.WithUrl("http://127.0.0.1:4242/api/"),
		unleash.WithHttpClient(&http.Client{Transport: tr}),
		unleash.WithRefreshInterval(time.Hour),
		unleash.WithDisableMetrics(true),
		unleash.WithBackupPath(dir),
		unleash.WithListener(&unleash.NoopListener{}),
	)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("unleash: %w", err)
	}
	ready := make(chan struct{})
	go func() { c.WaitForReady(); close(ready) }()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		c.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("unleash: not ready after 10s (%d fetches)", tr.fetches.Load())
	}
	return &unleashLoaded{c: c, tr: tr, dir: dir, user: unleashUser()}, nil
}

func unleashUser() unleashctx.Context {
	return unleashctx.Context{UserId: UserKey, Properties: map[string]string{
		"email": UserEmail, "country": UserCountry, "appVersion": UserAppVersion}}
}

func unConstraint(field, op string, values ...string) map[string]any {
	return map[string]any{"contextName": field, "operator": op, "values": values, "caseInsensitive": false, "inverted": false}
}

func unStrategy(constraints ...any) map[string]any {
	if constraints == nil {
		constraints = []any{}
	}
	return map[string]any{"name": "default", "parameters": map[string]any{}, "constraints": constraints}
}

func unFeature(name string, strategies ...any) map[string]any {
	return map[string]any{"name": name, "type": "release", "enabled": true, "strategies": strategies}
}

func unPayload(features []any, segments []any) ([]byte, error) {
	if segments == nil {
		segments = []any{}
	}
	return json.Marshal(map[string]any{"version": 2, "features": features, "segments": segments})
}

func unleashPayload(s Scenario) ([]byte, error) {
	switch s {
	case S1BoolOn:
		return unPayload([]any{unFeature(FlagKey, unStrategy())}, nil)
	case S2Target1000Hit:
		keys := keyList(TargetKeys, targetKey)
		return unPayload([]any{unFeature(FlagKey, unStrategy(unConstraint("userId", "IN", keys...)))}, nil)
	case S3Rules10x2:
		var st []any
		for i := 0; i < 10; i++ {
			st = append(st, unStrategy(unConstraint("email", "STR_ENDS_WITH", EmailSuffix),
				unConstraint("country", "IN", s3Countries(i)...)))
		}
		return unPayload([]any{unFeature(FlagKey, st...)}, nil)
	case S4Rollout5050:
		return unPayload([]any{unFeature(FlagKey, map[string]any{"name": "flexibleRollout", "constraints": []any{},
			"parameters": map[string]any{"rollout": "50", "stickiness": "userId", "groupId": FlagKey}})}, nil)
	case S5Segment10000:
		// Unleash segments AND their constraints: "included keys OR rule" is
		// two segments used by two strategies (strategies are OR'ed).
		members := keyList(SegmentKeys, memberKey)
		members1 := unStrategy()
		members1["segments"] = []int{1}
		rule2 := unStrategy()
		rule2["segments"] = []int{2}
		return unPayload([]any{unFeature(FlagKey, members1, rule2)}, []any{
			map[string]any{"id": 1, "constraints": []any{unConstraint("userId", "IN", members...)}},
			map[string]any{"id": 2, "constraints": []any{unConstraint("country", "IN", UserCountry)}},
		})
	case S6SemVer:
		c := unConstraint("appVersion", "SEMVER_GT")
		c["value"] = SemVerFloor
		return unPayload([]any{unFeature(FlagKey, unStrategy(c))}, nil)
	case S7Prerequisites:
		return nil, notApplicable("Unleash dependent flags allow one level only (a parent may not have dependencies)")
	case S8AllFlags1000:
		fs := make([]any, AllFlagsCount)
		for i := range fs {
			fs[i] = unFeature(allFlagKey(i), unStrategy(unConstraint("country", "IN", UserCountry)))
		}
		return unPayload(fs, nil)
	case R1RealisticMix:
		return nil, notApplicable("the mix's matches clauses (Unleash has no regular-expression constraint), its prerequisite chains 2–3 deep (Unleash dependencies are one level) and its rules serving false ahead of rules serving true (Unleash strategies only enable)")
	}
	return nil, fmt.Errorf("unknown scenario %q", s)
}

func unleashLib() Library {
	return Library{
		Name:    "Unleash",
		Module:  "github.com/Unleash/unleash-client-go/v4 v4.5.0",
		Driving: "unleash.NewClient with an http.Client whose RoundTripper answers /api/client/features in-process, metrics off; IsEnabled(name, WithContext(ctx)); S8 loops IsEnabled over the 1,000 names (no all-flags call)",
		Setup:   unleashSetup,
		LoadDoc: func(n int) ([]byte, error) {
			fs := make([]any, n)
			for i := range fs {
				if i%2 == 1 {
					fs[i] = unFeature(loadFlagKey(i), unStrategy(unConstraint("email", "STR_ENDS_WITH", EmailSuffix)))
				} else {
					// an Unleash toggle is on or off: the plain flag serving false is a disabled toggle
					f := unFeature(loadFlagKey(i), unStrategy())
					f["enabled"] = false
					fs[i] = f
				}
			}
			return unPayload(fs, nil)
		},
		Load: func(doc []byte) (Loaded, error) { return unleashClient(doc) },
	}
}

func unleashSetup(s Scenario) (*Case, error) {
	l, err := openRendered(s, unleashPayload, unleashClient)
	if err != nil {
		return nil, err
	}
	c, user := l.c, l.user
	switch s {
	case S4Rollout5050:
		ctxs := rolloutContexts(func(key string) unleashctx.Context { return unleashctx.Context{UserId: key} })
		return evalCase(func(i int) bool { return c.IsEnabled(FlagKey, unleash.WithContext(ctxs[i%RolloutContexts])) }, l.Close), nil
	case S8AllFlags1000:
		keys := keyList(AllFlagsCount, allFlagKey)
		return &Case{Close: l.Close, All: func(count bool) int {
			n := 0
			for _, k := range keys {
				if c.IsEnabled(k, unleash.WithContext(user)) && count {
					n++
				}
			}
			return n
		}}, nil
	}
	return evalCase(func(int) bool { return c.IsEnabled(FlagKey, unleash.WithContext(user)) }, l.Close), nil
}
