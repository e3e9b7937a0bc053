package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	ffclient "github.com/thomaspoignant/go-feature-flag"
	"github.com/thomaspoignant/go-feature-flag/ffcontext"
)

// memRetriever hands go-feature-flag a flag file held in memory.
type memRetriever struct{ data []byte }

// Retrieve implements retriever.Retriever.
func (r *memRetriever) Retrieve(context.Context) ([]byte, error) { return r.data, nil }

func goffClient(data []byte) (*ffclient.GoFeatureFlag, error) {
	return goffClientFrom(&memRetriever{data: data})
}

func goffClientFrom(r *memRetriever) (*ffclient.GoFeatureFlag, error) {
	c, err := ffclient.New(ffclient.Config{
		PollingInterval: time.Hour,
		Retriever:       r,
		FileFormat:      "json",
		Context:         context.Background(),
		LeveledLogger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("go-feature-flag: %w", err)
	}
	return c, nil
}

func goffUser() ffcontext.Context {
	return ffcontext.NewEvaluationContextBuilder(UserKey).AddCustom("email", UserEmail).
		AddCustom("country", UserCountry).AddCustom("appVersion", UserAppVersion).Build()
}

// goffFlag is a bool flag whose default rule serves def ("on" or "off") and
// whose targeting rules serve "on" when their query matches.
func goffFlag(def string, queries ...string) map[string]any {
	f := map[string]any{
		"variations":  map[string]any{"on": true, "off": false},
		"defaultRule": map[string]any{"variation": def},
	}
	if len(queries) > 0 {
		rules := make([]any, len(queries))
		for i, q := range queries {
			rules[i] = map[string]any{"name": fmt.Sprintf("r%d", i), "query": q, "variation": "on"}
		}
		f["targeting"] = rules
	}
	return f
}

// goffList renders a string list in the query language: ["a","b"].
func goffList(vs ...string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ",") + "]"
}

func goffDoc(s Scenario) ([]byte, error) {
	var fl map[string]any
	switch s {
	case S1BoolOn:
		fl = map[string]any{FlagKey: goffFlag("on")}
	case S2Target1000Hit:
		keys := keyList(TargetKeys, targetKey)
		fl = map[string]any{FlagKey: goffFlag("off", "key in "+goffList(keys...))}
	case S3Rules10x2:
		qs := make([]string, 10)
		for i := range qs {
			qs[i] = fmt.Sprintf("email ew %q and country in %s", EmailSuffix, goffList(s3Countries(i)...))
		}
		fl = map[string]any{FlagKey: goffFlag("off", qs...)}
	case S4Rollout5050:
		f := goffFlag("off")
		f["defaultRule"] = map[string]any{"percentage": map[string]any{"on": 50, "off": 50}}
		fl = map[string]any{FlagKey: f}
	case S5Segment10000:
		return nil, notApplicable("go-feature-flag has no segments")
	case S6SemVer:
		// the query language compares an unquoted x.y.z literal as a semantic version
		fl = map[string]any{FlagKey: goffFlag("off", "appVersion gt "+SemVerFloor)}
	case S7Prerequisites:
		return nil, notApplicable("go-feature-flag has no prerequisites")
	case S8AllFlags1000:
		fl = map[string]any{}
		for i := 0; i < AllFlagsCount; i++ {
			fl[allFlagKey(i)] = goffFlag("off", "country in "+goffList(UserCountry))
		}
	case R1RealisticMix:
		return nil, notApplicable("the mix's segments and prerequisites (go-feature-flag has neither), and its matches clauses (no regular-expression operator)")
	default:
		return nil, fmt.Errorf("unknown scenario %q", s)
	}
	return json.Marshal(fl)
}

func goffLib() Library {
	return Library{
		Name:    "go-feature-flag",
		Module:  "github.com/thomaspoignant/go-feature-flag v1.40.0",
		Driving: "ffclient.New with an in-memory Retriever, PollingInterval 1h, no exporter; BoolVariation; AllFlagsState for S8",
		Setup:   goffSetup,
		LoadDoc: func(n int) ([]byte, error) {
			return json.Marshal(loadFlags(n, func(_ string, emailRule bool) map[string]any {
				if emailRule {
					return goffFlag("off", fmt.Sprintf("email ew %q", EmailSuffix))
				}
				return goffFlag("off")
			}))
		},
		Load: func(doc []byte) (Loaded, error) {
			r := &memRetriever{data: doc}
			c, err := goffClientFrom(r)
			if err != nil {
				return nil, err
			}
			return &goffLoaded{c: c, r: r, user: goffUser()}, nil
		},
	}
}

type goffLoaded struct {
	c    *ffclient.GoFeatureFlag
	r    *memRetriever
	user ffcontext.Context
}

// harnessBytes is the file the in-memory retriever keeps, not go-feature-flag.
func (l *goffLoaded) harnessBytes() int { return len(l.r.data) }

func (l *goffLoaded) Bool(key string) bool {
	v, _ := l.c.BoolVariation(key, l.user, false)
	return v
}
func (l *goffLoaded) Close() { l.c.Close() }

func goffSetup(s Scenario) (*Case, error) {
	c, err := openRendered(s, goffDoc, goffClient)
	if err != nil {
		return nil, err
	}
	user := goffUser()
	switch s {
	case S4Rollout5050:
		// ffcontext.Context, the type BoolVariation takes: a slice of the
		// constructor's struct type would convert (and allocate) per call.
		ctxs := rolloutContexts(func(key string) ffcontext.Context { return ffcontext.NewEvaluationContext(key) })
		return evalCase(func(i int) bool {
			v, _ := c.BoolVariation(FlagKey, ctxs[i%RolloutContexts], false)
			return v
		}, c.Close), nil
	case S8AllFlags1000:
		return &Case{Close: c.Close, All: func(count bool) int {
			st := c.AllFlagsState(user)
			if !count {
				return 0
			}
			// not countTrue: the flags' type is internal to go-feature-flag
			n := 0
			for _, f := range st.GetFlags() {
				if f.Value == true {
					n++
				}
			}
			return n
		}}, nil
	}
	return evalCase(func(int) bool {
		v, _ := c.BoolVariation(FlagKey, user, false)
		return v
	}, c.Close), nil
}
