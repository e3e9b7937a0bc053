package flags

import (
	"context"
	"errors"
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
