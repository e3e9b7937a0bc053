package eval

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGuardParsed(t *testing.T) {
	snap := mustCompile(t, `{"flags":{
	  "guarded":{"on":true,"variations":[false,true],"fallthrough":{"variation":0},
	    "guard":{"metric":"http-error","better":"lower","control":0,"treatment":1}},
	  "tuned":{"on":true,"variations":["a","b","c"],"fallthrough":{"variation":0},
	    "guard":{"metric":"checkout","better":"higher","control":2,"treatment":0,"alpha":0.01,"minUnits":500,
	      "tripped":{"at":"2026-12-03T10:00:00Z","pValue":0.004,"units":[510,498],"rates":[0.1,0.15]}}},
	  "tracked":{"on":true,"variations":[false,true],"fallthrough":{"variation":0},"trackEvents":true},
	  "plain":{"on":true,"variations":[false,true],"fallthrough":{"variation":0}}}}`)
	g := snap.Flag("guarded")
	if g.Err != nil {
		t.Fatal(g.Err)
	}
	want := &Guard{Metric: "http-error", Better: GuardLower, Control: 0, Treatment: 1,
		Alpha: DefaultGuardAlpha, MinUnits: DefaultGuardMinUnits}
	if diff := cmp.Diff(want, g.Guard); diff != "" {
		t.Errorf("guard (-want +got):\n%s", diff)
	}
	if !g.Tracked || g.TrackEvents {
		t.Errorf("armed guard: Tracked %v TrackEvents %v, want true false", g.Tracked, g.TrackEvents)
	}

	tuned := snap.Flag("tuned")
	if tuned.Err != nil {
		t.Fatal(tuned.Err)
	}
	want = &Guard{Metric: "checkout", Better: GuardHigher, Control: 2, Treatment: 0, Alpha: 0.01, MinUnits: 500,
		Tripped: &GuardTrip{At: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), PValue: 0.004,
			Units: [2]int64{510, 498}, Rates: [2]float64{0.1, 0.15}}}
	if diff := cmp.Diff(want, tuned.Guard); diff != "" {
		t.Errorf("guard (-want +got):\n%s", diff)
	}
	if tuned.Tracked || tuned.Guard.Armed() {
		t.Error("a tripped guard is not armed and records no exposure")
	}
	if tr := snap.Flag("tracked"); !tr.Tracked || !tr.TrackEvents || tr.Guard != nil {
		t.Errorf("trackEvents: Tracked %v TrackEvents %v Guard %v", tr.Tracked, tr.TrackEvents, tr.Guard)
	}
	if p := snap.Flag("plain"); p.Tracked || p.Metadata != noMetadata {
		t.Error("a flag without events fields records nothing and shares the empty metadata")
	}
}

func TestGuardProblems(t *testing.T) {
	const base = `"metric":"m","better":"lower","control":0,"treatment":1`
	tests := []struct {
		name  string
		guard string
		want  []string
	}{
		{"not an object", `[]`, []string{`flags.x.guard: got an array, want an object`}},
		{"empty", `{}`, []string{
			`flags.x.guard.metric: missing (required): the name of a tracked metric`,
			`flags.x.guard.better: missing (required): "lower" or "higher"`,
			`flags.x.guard.control: missing`,
			`flags.x.guard.treatment: missing`}},
		{"bad better", `{"metric":"m","better":"smaller","control":0,"treatment":1}`,
			[]string{`flags.x.guard.better: "smaller": want "lower" or "higher"`}},
		{"same variation", `{"metric":"m","better":"lower","control":1,"treatment":1}`,
			[]string{`flags.x.guard.treatment: is the control (1): want another variation`}},
		{"index out of range", `{"metric":"m","better":"lower","control":0,"treatment":2}`,
			[]string{`flags.x.guard.treatment: index 2 out of range: the flag has 2 variations`}},
		{"alpha", `{` + base + `,"alpha":1}`,
			[]string{`flags.x.guard.alpha: 1: want a number between 0 and 1 (exclusive)`}},
		{"alpha type", `{` + base + `,"alpha":"0.05"}`,
			[]string{`flags.x.guard.alpha: got a string, want a number`, `flags.x.guard.alpha: 0: want a number between 0 and 1 (exclusive)`}},
		{"minUnits", `{` + base + `,"minUnits":0}`, []string{`flags.x.guard.minUnits: 0: want at least 1`}},
		{"metric type", `{"metric":3,"better":"lower","control":0,"treatment":1}`, []string{
			`flags.x.guard.metric: got a number, want a string`}},
		{"metric empty", `{"metric":"","better":"lower","control":0,"treatment":1}`, []string{
			`flags.x.guard.metric: is empty: want the name of a tracked metric`}},
		{"tripped at", `{` + base + `,"tripped":{"at":"yesterday"}}`,
			[]string{`flags.x.guard.tripped.at: "yesterday" is not an RFC 3339 time`}},
		{"tripped units", `{` + base + `,"tripped":{"at":"2026-12-03T10:00:00Z","units":[1,2,3],"rates":[0.1,"x"]}}`,
			[]string{`flags.x.guard.tripped.units: has 3 items, want 2 (control, treatment)`,
				`flags.x.guard.tripped.rates[1]: got a string, want a number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := mustCompile(t, `{"flags":{"x":`+withGood(`"guard":`+tt.guard)+`}}`)
			if diff := cmp.Diff(tt.want, problemStrings(snap.Flag("x").Problems)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
	snap := mustCompile(t, `{"flags":{"x":`+withGood(`"trackEvents":"yes"`)+`}}`)
	if diff := cmp.Diff([]string{`flags.x.trackEvents: got a string, want a bool`}, problemStrings(snap.Flag("x").Problems)); diff != "" {
		t.Errorf("trackEvents problems (-want +got):\n%s", diff)
	}
}
