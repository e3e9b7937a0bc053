package flags

import (
	"time"

	"github.com/flagstream/flags/rules"
)

// evaluateCounting is Evaluate also returning how many segments and
// prerequisite flags the evaluation evaluated (those found in its memo are
// not counted again): tests bound the cost of one evaluation with it
// (SPEC §13).
func evaluateCounting(snap *rules.Snapshot, key string, ec Context, clock func() time.Time) (Result[any], int) {
	if clock == nil {
		clock = time.Now
	}
	e := evaluator{snap: snap, ctx: &ec, clock: clock}
	var ev evaluation
	e.evaluate(&ev, key)
	return anyResult(key, ev, nil), e.visits
}
