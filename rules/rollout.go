package rules

import "github.com/flagstream/flags/bucketing"

// maxStackVariations is how many rollout variations Choose handles without
// allocating; larger rollouts are legal but pay one allocation.
const maxStackVariations = 16

// Choose returns the variation index the rollout serves to bucket at time t
// (Unix milliseconds), following SPEC §1 and §2.
func (r *Rollout) Choose(bucket int, t int64) int {
	if len(r.Variations) == 0 {
		return -1
	}
	weights := r.Weights
	if len(r.Schedule) > 0 {
		if r.at == nil { // not compiled through compileFlag: derive on the fly
			r2 := *r
			r2.prepare()
			r = &r2
		}
		var buf [maxStackVariations]int64
		var dst []int64
		if len(r.Variations) <= maxStackVariations {
			dst = buf[:len(r.Variations)]
		} else {
			dst = make([]int64, len(r.Variations))
		}
		bucketing.ScheduleWeights(dst, r.at, r.steps, t)
		weights = dst
	}
	return r.Variations[bucketing.Choose(weights, bucket)]
}

// Bucket is bucketing.Bucket(r.Salt, value), with the salt's share of the
// hash computed when the rollout was compiled.
func (r *Rollout) Bucket(value string) int {
	if !r.salted.Ready() {
		return bucketing.Bucket(r.Salt, value)
	}
	return r.salted.Bucket(value)
}

// BucketInt is bucketing.BucketInt(r.Salt, v), prepared as Bucket is.
func (r *Rollout) BucketInt(v int64) int {
	if !r.salted.Ready() {
		return bucketing.BucketInt(r.Salt, v)
	}
	return r.salted.BucketInt(v)
}

// prepare lays the schedule out as bucketing.ScheduleWeights wants it.
func (r *Rollout) prepare() {
	r.salted = bucketing.NewSalted(r.Salt)
	r.at = make([]int64, len(r.Schedule))
	r.steps = make([][]int64, len(r.Schedule))
	for i, s := range r.Schedule {
		r.at[i] = s.At
		w := s.Weights
		if len(w) != len(r.Variations) { // malformed; keep the slices aligned
			w = make([]int64, len(r.Variations))
			copy(w, s.Weights)
		}
		r.steps[i] = w
	}
}
