package flags

import (
	"time"

	"github.com/flagstream/flags/internal/eval"
	"github.com/flagstream/flags/rules"
)

// evaluateCounting is Evaluate also returning how many segments and
// prerequisite flags the evaluation evaluated (those found in its memo are
// not counted again): tests bound the cost of one evaluation with it
// (SPEC §13).
func evaluateCounting(snap *Snapshot, key string, ec Context, clock func() time.Time) (Result[any], int) {
	if clock == nil {
		clock = time.Now
	}
	e := evaluator{snap: snap.compiled(), ctx: &ec, clock: clock}
	var ev evaluation
	e.evaluate(&ev, key)
	return anyResult(key, ev, nil), e.visits
}

// compileFrom is eval.CompileFrom on the root's Snapshot: tests of a
// snapshot built from the previous one.
func compileFrom(prev *Snapshot, doc *rules.Document) *Snapshot {
	return (*Snapshot)(eval.CompileFrom(prev.compiled(), doc))
}
