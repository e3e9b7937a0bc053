package flags

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flagstream/flags/rules"
)

// scriptedSource applies a document, fails twice and recovers once.
type scriptedSource struct{ doc *rules.Document }

func (s scriptedSource) Run(ctx context.Context, u Updates) error {
	_ = u.Apply(s.doc, "test")
	u.Failed("test", errors.New("connection reset"), false)
	u.Failed("test", errors.New("connection refused"), false)
	u.Healthy("test")
	_ = u.Apply(s.doc, "test")
	<-ctx.Done()
	return nil
}

func TestMetrics(t *testing.T) {
	doc, err := rules.ParseDocument([]byte(typesDoc))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(WithSource(scriptedSource{doc}), WithMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for c.Metrics().UpdatesApplied < 2 {
	}
	ann := NewContext("ann").Build()
	c.Bool(ctx, "b", ann, false)
	c.BoolDetail(ctx, "b", ann, false)
	c.Bool(ctx, "nope", ann, false) // no such flag: not in Evaluations (callers choose keys), counted in FlagsNotFound
	c.StringDetail(ctx, "nope-either", ann, "")
	m := c.Metrics()
	if m.FlagsNotFound != 2 {
		t.Errorf("FlagsNotFound = %d, want 2", m.FlagsNotFound)
	}
	if m.UpdatesApplied != 2 || m.SourceFailures != 2 || m.Recoveries != 1 || m.Status.State != StateReady {
		t.Errorf("metrics %+v", m)
	}
	if len(m.Evaluations) != 1 || m.Evaluations[0] != (EvaluationCount{Flag: "b", Version: 1, Variation: 1, Count: 2}) {
		t.Errorf("evaluations %+v", m.Evaluations)
	}
	c.Bool(ctx, "b", ann, false)
	if m := c.Metrics(); m.Evaluations[0].Count != 3 {
		t.Errorf("counts are cumulative: %+v", m.Evaluations)
	}
	plain := newTestClient(t, typesDoc)
	plain.Bool(ctx, "b", ann, false)
	if m := plain.Metrics(); m.Evaluations != nil || m.UpdatesApplied != 1 {
		t.Errorf("without WithMetrics: %+v", m)
	}
}

// TestMetricsCountEveryEvaluation: evaluations racing snapshot swaps are
// all counted. An evaluation that loaded the counters just before a swap
// used to add to them after they had been drained, and its count was lost.
func TestMetricsCountEveryEvaluation(t *testing.T) {
	c, src, _ := fedClient(t, WithMetrics())
	docs := make([]*rules.Document, 2)
	for i := range docs {
		docs[i], _ = rules.ParseDocument(fmt.Appendf(nil, `{"flags": {"f": {"version": %d, "on": true, "variations": [false, true], "fallthrough": {"variation": 1}}}}`, i+1))
	}
	src.apply <- docs[0]
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	var made atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := NewContext("u").Build()
			n := int64(0)
			for {
				select {
				case <-stop:
					made.Add(n)
					return
				default:
				}
				for range 100 {
					c.Bool(context.Background(), "f", u, false)
				}
				n += 100
			}
		}()
	}
	for i := range 2000 {
		src.apply <- docs[i%2]
	}
	close(stop)
	wg.Wait()
	c.Close() // the last swap is done
	var counted int64
	for _, e := range c.Metrics().Evaluations {
		counted += e.Count
	}
	if counted != made.Load() {
		t.Errorf("Metrics counted %d evaluations, %d were made", counted, made.Load())
	}
}

// TestRecoveryByDocument: a stream that reconnects delivers a snapshot
// before (or instead of) saying it is healthy: that is a recovery too.
func TestRecoveryByDocument(t *testing.T) {
	c, u := manualClient(t)
	doc, _ := rules.ParseDocument([]byte(`{"flags": {}}`))
	for range 3 {
		_ = u.Apply(doc, "stream")
		u.Failed("stream", errors.New("connection reset"), false)
	}
	_ = u.Apply(doc, "stream")
	if m := c.Metrics(); m.SourceFailures != 3 || m.Recoveries != 3 {
		t.Errorf("failures %d, recoveries %d; want 3 and 3", m.SourceFailures, m.Recoveries)
	}
	u.Failed("stream", errors.New("connection reset"), false)
	_ = u.Apply(doc, OriginCache) // a cache is no recovery
	if m := c.Metrics(); m.Recoveries != 3 {
		t.Errorf("recoveries %d after a cached document, want 3", m.Recoveries)
	}
}

// TestMetricsFoldEarlierVersions: a flag edited more times than
// MaxEvaluationCounts has its versions but the newest folded into one count
// per variation, and its evaluations per variation still add up.
func TestMetricsFoldEarlierVersions(t *testing.T) {
	c, _, u := fedClient(t, WithMetrics())
	ctx := context.Background()
	ann := NewContext("ann").Build()
	n := MaxEvaluationCounts + 1
	for v := 1; v <= n; v++ {
		doc, err := rules.ParseDocument(fmt.Appendf(nil, `{"version":%d,"flags":{
			"a":{"version":%d,"on":true,"variations":[false,true],"fallthrough":{"variation":%d}},
			"b":{"version":7,"on":true,"variations":[false,true],"fallthrough":{"variation":1}}}}`, v, v, v%2))
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Apply(doc, "test"); err != nil {
			t.Fatal(err)
		}
		c.Bool(ctx, "a", ann, false)
		if v == 1 {
			c.Bool(ctx, "b", ann, false)
		}
	}
	want := []EvaluationCount{
		{Flag: "a", Version: EarlierVersions, Variation: 0, Count: int64(n-1) / 2},
		{Flag: "a", Version: EarlierVersions, Variation: 1, Count: int64(n-1) / 2},
		{Flag: "a", Version: int64(n), Variation: n % 2, Count: 1},
		{Flag: "b", Version: 7, Variation: 1, Count: 1},
	}
	got := c.Metrics().Evaluations
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("evaluations %+v, want %+v", got, want)
	}
	// Folded counts go on adding up.
	c.Bool(ctx, "a", ann, false)
	if got := c.Metrics().Evaluations; len(got) != 4 || got[2].Count != 2 {
		t.Errorf("after one more evaluation: %+v", got)
	}
}
