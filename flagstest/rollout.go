package flagstest

import (
	"time"
)

// Serve is what a rule or the fallthrough serves: a fixed variation
// (Variation) or a percentage rollout (Rollout). The set is closed.
type Serve interface {
	serve() any
}

// Variation serves the variation at index i.
func Variation(i int) Serve { return variationServe(i) }

type variationServe int

func (v variationServe) serve() any {
	return map[string]int{"variation": int(v)}
}

// RolloutBuilder builds a percentage rollout (SPEC §1): weights in units of
// 0.001 %, which must add up to 100000, and optionally a schedule of steps
// that ramps them over time. Start one with Rollout.
type RolloutBuilder struct {
	variations []int
	weights    []int64
	bucketBy   string
	salt       string
	experiment bool
	steps      []step
}

type step struct {
	at      time.Time
	weights []int64
}

// Rollout starts an empty rollout; add variations with Weight:
//
//	flagstest.Rollout().Weight(0, 75000).Weight(1, 25000) // 75 % / 25 %
func Rollout() *RolloutBuilder { return &RolloutBuilder{} }

// Weight gives variation index variation a share of w thousandths of a
// percent (100000 is everyone). Variations are listed in the order of the
// calls; a context's bucket walks them in that order (SPEC §2).
func (r *RolloutBuilder) Weight(variation int, w int64) *RolloutBuilder {
	r.variations = append(r.variations, variation)
	r.weights = append(r.weights, w)
	return r
}

// BucketBy buckets by the attribute at path attr instead of "key" (for
// example "org.id", to keep an organization together).
func (r *RolloutBuilder) BucketBy(attr string) *RolloutBuilder {
	r.bucketBy = attr
	return r
}

// Salt sets the rollout's bucketing salt (default: the flag's salt, else
// its key).
func (r *RolloutBuilder) Salt(s string) *RolloutBuilder {
	r.salt = s
	return r
}

// Experiment marks results served by this rollout inExperiment.
func (r *RolloutBuilder) Experiment(on bool) *RolloutBuilder {
	r.experiment = on
	return r
}

// Step adds a step to the rollout's schedule: at time at, the weights are
// weights, one per variation in the order of the Weight calls. Between two
// steps the weights move linearly; before the first and after the last they
// are those of the nearest step. Steps must be given in increasing time
// order. While a schedule is present the static weights are ignored: name
// the variations with Weight(v, 0), or make no Weight call at all, and then
// weights[i] belongs to variation i.
//
//	flagstest.Rollout().
//		Step(dec1, 100000, 0). // everyone on variation 0 until Dec 1
//		Step(dec8, 0, 100000)  // ... then moving to variation 1 by Dec 8
func (r *RolloutBuilder) Step(at time.Time, weights ...int64) *RolloutBuilder {
	r.steps = append(r.steps, step{at: at, weights: weights})
	return r
}

type weightedJSON struct {
	Variation int    `json:"variation"`
	Weight    *int64 `json:"weight,omitempty"`
}

type stepJSON struct {
	At      string  `json:"at"`
	Weights []int64 `json:"weights"`
}

type rolloutJSON struct {
	BucketBy   string         `json:"bucketBy,omitempty"`
	Salt       string         `json:"salt,omitempty"`
	Experiment bool           `json:"experiment,omitempty"`
	Variations []weightedJSON `json:"variations"`
	Schedule   []stepJSON     `json:"schedule,omitempty"`
}

func (r *RolloutBuilder) serve() any {
	out := rolloutJSON{BucketBy: r.bucketBy, Salt: r.salt, Experiment: r.experiment, Variations: []weightedJSON{}}
	for i, v := range r.variations {
		w := r.weights[i]
		out.Variations = append(out.Variations, weightedJSON{Variation: v, Weight: &w})
	}
	if len(r.variations) == 0 && len(r.steps) > 0 {
		// a pure schedule: weights[i] belongs to variation i
		for i := range r.steps[0].weights {
			out.Variations = append(out.Variations, weightedJSON{Variation: i})
		}
	}
	if len(r.variations) > 0 && len(r.steps) > 0 {
		// The static weights are ignored while a schedule is present; when
		// they were all left at zero, leave them out rather than have the
		// document say "0 + 0".
		var sum int64
		for _, w := range r.weights {
			sum += w
		}
		if sum == 0 {
			for i := range out.Variations {
				out.Variations[i].Weight = nil
			}
		}
	}
	for _, s := range r.steps {
		w := s.weights
		if w == nil {
			w = []int64{}
		}
		out.Schedule = append(out.Schedule, stepJSON{At: s.at.UTC().Format(time.RFC3339Nano), Weights: w})
	}
	return map[string]any{"rollout": out}
}
