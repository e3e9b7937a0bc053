package bucketing

// Interpolate returns the weight in force at t (Unix milliseconds) on the way
// from weight wA at tA to weight wB at tB (SPEC §1, Rollout):
//
//	wA + ((wB - wA) * (t - tA)) / (tB - tA)
//
// computed in int64, the division truncating toward zero (Go's /). At or after
// tB it returns wB, otherwise at or before tA it returns wA, so steps at the
// same instant (tB == tA) give wB from that instant on, and the division never
// sees a zero or negative divisor.
//
// As the contract fixes the arithmetic to 64 bits, the product wraps around
// like it would in any other SDK when |wB-wA| * (tB-tA) exceeds 2^63-1. With
// weights within [0, Scale] that takes steps more than 2^63/Scale ms (about
// 2900 years) apart; validation should refuse such schedules.
func Interpolate(wA, wB, tA, tB, t int64) int64 {
	if t >= tB {
		return wB
	}
	if t <= tA {
		return wA
	}
	return wA + ((wB-wA)*(t-tA))/(tB-tA)
}

// ScheduleWeights fills dst with the weights in force at t (Unix milliseconds)
// under a progressive rollout whose step i starts at at[i] with the weights
// steps[i] (SPEC §1, Rollout). dst[j] is the weight of variation j.
//
//   - Before the first step (t < at[0]) dst gets the first step's weights.
//   - At or after the last step it gets the last step's weights.
//   - Otherwise, between step A and the next step B (at[A] <= t < at[B]),
//     every variation but the last gets Interpolate(steps[A][j], steps[B][j],
//     at[A], at[B], t) and the last gets Scale minus the sum of the others.
//
// The steps are expected in order of at, each with len(dst) weights summing to
// Scale, as a validated flag has them. Other input never makes it panic: step
// A is the last index whose at is <= t; a weight missing from a short step
// counts as 0; only the first min(len(at), len(steps)) steps are used, and with
// none dst is zeroed. It does not allocate.
func ScheduleWeights(dst []int64, at []int64, steps [][]int64, t int64) {
	n := min(len(at), len(steps))
	if n == 0 {
		clear(dst)
		return
	}
	a := -1 // the step in force: the last one that started at or before t
	for i := n - 1; i >= 0; i-- {
		if at[i] <= t {
			a = i
			break
		}
	}
	switch {
	case a < 0:
		copyWeights(dst, steps[0])
	case a == n-1:
		copyWeights(dst, steps[n-1])
	default:
		wa, wb := steps[a], steps[a+1]
		last := len(dst) - 1
		var rest int64
		for j := 0; j < last; j++ {
			dst[j] = Interpolate(weightAt(wa, j), weightAt(wb, j), at[a], at[a+1], t)
			rest += dst[j]
		}
		if last >= 0 {
			dst[last] = Scale - rest
		}
	}
}

// copyWeights sets dst to w, padding with zeros when w is shorter.
func copyWeights(dst, w []int64) {
	clear(dst[copy(dst, w):])
}

// weightAt returns w[j], or 0 when w has no index j.
func weightAt(w []int64, j int) int64 {
	if j < len(w) {
		return w[j]
	}
	return 0
}
