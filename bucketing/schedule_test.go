package bucketing

import (
	"math"
	"math/big"
	"slices"
	"testing"
)

func TestInterpolate(t *testing.T) {
	const (
		dec1 = int64(1796083200000) // 2026-12-01T00:00:00Z
		dec8 = int64(1796688000000) // 2026-12-08T00:00:00Z
	)
	tests := []struct {
		name               string
		wA, wB, tA, tB, at int64
		want               int64
	}{
		{"before", 0, Scale, 1000, 2000, 999, 0},
		{"long before", 0, Scale, 1000, 2000, math.MinInt64, 0},
		{"at tA", 0, Scale, 1000, 2000, 1000, 0},
		{"halfway", 0, Scale, 1000, 2000, 1500, 50000},
		{"at tB", 0, Scale, 1000, 2000, 2000, Scale},
		{"after", 0, Scale, 1000, 2000, 2001, Scale},
		{"long after", 0, Scale, 1000, 2000, math.MaxInt64, Scale},
		{"growing, 1/3 truncates down", 0, Scale, 0, 3, 1, 33333},
		{"growing, 2/3 truncates down", 0, Scale, 0, 3, 2, 66666},
		// (0-100000)*1/3 = -33333.3 truncates toward zero to -33333, not -33334.
		{"shrinking, 1/3 truncates toward zero", Scale, 0, 0, 3, 1, 66667},
		{"shrinking, 2/3 truncates toward zero", Scale, 0, 0, 3, 2, 33334},
		{"shrinking by 1 ms of a week stays put", Scale, 0, dec1, dec8, dec1 + 1, Scale},
		{"growing by 1 ms of a week stays put", 0, Scale, dec1, dec8, dec1 + 1, 0},
		{"a week, one hour in", 0, Scale, dec1, dec8, dec1 + 3600000, 595},
		{"a week, one hour in, shrinking", Scale, 0, dec1, dec8, dec1 + 3600000, 99405},
		{"a week, halfway", 90000, 10000, dec1, dec8, (dec1 + dec8) / 2, 50000},
		{"negative times", 10, 20, -2000, -1000, -1500, 15},
		{"equal weights", 40000, 40000, 0, 10, 7, 40000},
		{"same instant, before", 1, 2, 100, 100, 99, 1},
		{"same instant, at", 1, 2, 100, 100, 100, 2},
		{"same instant, after", 1, 2, 100, 100, 101, 2},
		{"reversed instants, before both", 1, 2, 200, 100, 50, 1},
		{"reversed instants, between", 1, 2, 200, 100, 150, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Interpolate(tt.wA, tt.wB, tt.tA, tt.tB, tt.at); got != tt.want {
				t.Errorf("Interpolate(%d, %d, %d, %d, %d) = %d, want %d", tt.wA, tt.wB, tt.tA, tt.tB, tt.at, got, tt.want)
			}
		})
	}
}

// FuzzInterpolate compares Interpolate with exact arithmetic wherever the
// 64-bit product cannot overflow, and checks it never panics elsewhere.
func FuzzInterpolate(f *testing.F) {
	f.Add(int64(Scale), int64(0), int64(0), int64(3), int64(1))
	f.Fuzz(func(t *testing.T, wA, wB, tA, tB, at int64) {
		_ = Interpolate(wA, wB, tA, tB, at) // must not panic, whatever the input
		wA, wB = wA%(Scale+1), wB%(Scale+1)
		if wA < 0 {
			wA = -wA
		}
		if wB < 0 {
			wB = -wB
		}
		const maxSpan = math.MaxInt64 / (2 * Scale)
		tA %= maxSpan
		tB %= maxSpan
		at %= maxSpan
		got := Interpolate(wA, wB, tA, tB, at)
		var want int64
		switch {
		case at >= tB:
			want = wB
		case at <= tA:
			want = wA
		default:
			// wA + trunc((wB-wA)*(at-tA) / (tB-tA)), exactly.
			q := new(big.Int).Mul(big.NewInt(wB-wA), big.NewInt(at-tA))
			q.Quo(q, big.NewInt(tB-tA)) // Quo truncates toward zero
			want = wA + q.Int64()
		}
		if got != want {
			t.Fatalf("Interpolate(%d, %d, %d, %d, %d) = %d, want %d", wA, wB, tA, tB, at, got, want)
		}
		if lo, hi := min(wA, wB), max(wA, wB); got < lo || got > hi {
			t.Fatalf("Interpolate(%d, %d, %d, %d, %d) = %d, outside [%d, %d]", wA, wB, tA, tB, at, got, lo, hi)
		}
	})
}

func TestScheduleWeights(t *testing.T) {
	twoSteps := struct {
		at    []int64
		steps [][]int64
	}{[]int64{1000, 2000}, [][]int64{{Scale, 0}, {0, Scale}}}
	threeSteps := struct {
		at    []int64
		steps [][]int64
	}{[]int64{0, 1000, 3000}, [][]int64{{Scale, 0, 0}, {50000, 50000, 0}, {0, 20000, 80000}}}

	tests := []struct {
		name  string
		at    []int64
		steps [][]int64
		t     int64
		want  []int64
	}{
		{"before first", twoSteps.at, twoSteps.steps, 999, []int64{Scale, 0}},
		{"long before first", twoSteps.at, twoSteps.steps, math.MinInt64, []int64{Scale, 0}},
		{"at first step", twoSteps.at, twoSteps.steps, 1000, []int64{Scale, 0}},
		{"1 ms after first step", twoSteps.at, twoSteps.steps, 1001, []int64{99900, 100}},
		{"between", twoSteps.at, twoSteps.steps, 1500, []int64{50000, 50000}},
		{"at last step", twoSteps.at, twoSteps.steps, 2000, []int64{0, Scale}},
		{"after last", twoSteps.at, twoSteps.steps, 2001, []int64{0, Scale}},
		{"long after last", twoSteps.at, twoSteps.steps, math.MaxInt64, []int64{0, Scale}},
		{"single step, before", []int64{500}, [][]int64{{30000, 70000}}, 0, []int64{30000, 70000}},
		{"single step, after", []int64{500}, [][]int64{{30000, 70000}}, 501, []int64{30000, 70000}},
		{"three steps, first half", threeSteps.at, threeSteps.steps, 500, []int64{75000, 25000, 0}},
		{"three steps, at middle", threeSteps.at, threeSteps.steps, 1000, []int64{50000, 50000, 0}},
		{"three steps, just after middle", threeSteps.at, threeSteps.steps, 1001, []int64{49975, 49985, 40}},
		{"three steps, second half", threeSteps.at, threeSteps.steps, 2000, []int64{25000, 35000, 40000}},
		{"three steps, after", threeSteps.at, threeSteps.steps, 3000, []int64{0, 20000, 80000}},
		// Interpolated, the last would be 50000/3 = 16666; it takes the rest instead.
		{"last variation takes the remainder", []int64{0, 3}, [][]int64{{Scale, 0, 0}, {0, 50000, 50000}}, 1,
			[]int64{66667, 16666, 16667}},
		{"one variation between steps", []int64{0, 10}, [][]int64{{Scale}, {Scale}}, 5, []int64{Scale}},
		{"steps at the same instant: the later one applies", []int64{0, 10, 10}, [][]int64{{Scale, 0}, {50000, 50000}, {0, Scale}}, 10,
			[]int64{0, Scale}},
		{"steps at the same instant: interpolating before them", []int64{0, 10, 10}, [][]int64{{Scale, 0}, {50000, 50000}, {0, Scale}}, 5,
			[]int64{75000, 25000}},
		{"no steps: zeros", nil, nil, 5, []int64{0, 0}},
		{"short step: missing weights are 0", []int64{0, 10}, [][]int64{{Scale}, {0, Scale}}, 0, []int64{Scale, 0}},
		{"short step between steps", []int64{0, 10}, [][]int64{{Scale, 0, 0}, {0}}, 5, []int64{50000, 0, 50000}},
		{"more at than steps: extra at ignored", []int64{0, 10, 20}, [][]int64{{Scale, 0}, {0, Scale}}, 15, []int64{0, Scale}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]int64, len(tt.want))
			for i := range dst {
				dst[i] = -7 // whatever was there must be overwritten
			}
			ScheduleWeights(dst, tt.at, tt.steps, tt.t)
			if !slices.Equal(dst, tt.want) {
				t.Errorf("ScheduleWeights(at %v, steps %v, t %d) = %v, want %v", tt.at, tt.steps, tt.t, dst, tt.want)
			}
		})
	}
}

func TestScheduleWeightsEmptyDst(t *testing.T) {
	// Nothing to fill; it must simply not panic.
	ScheduleWeights(nil, []int64{0, 10}, [][]int64{{Scale}, {Scale}}, 5)
	ScheduleWeights([]int64{}, nil, nil, 5)
}

// TestScheduleWeightsSumToScale walks a week-long three-step schedule every
// minute: valid steps always give weights summing to Scale, each in range, and
// a variation whose share only grows never loses weight.
func TestScheduleWeightsSumToScale(t *testing.T) {
	const day = int64(24 * 3600 * 1000)
	start := int64(1796083200000)
	at := []int64{start, start + 2*day, start + 7*day}
	steps := [][]int64{{Scale, 0, 0}, {66667, 33333, 0}, {12345, 54321, 33334}}
	dst := make([]int64, 3)
	prev := int64(-1)
	for tm := start - day; tm <= start+8*day; tm += 60000 {
		ScheduleWeights(dst, at, steps, tm)
		var sum int64
		for j, w := range dst {
			if w < 0 || w > Scale {
				t.Fatalf("t=%d: weight %d = %d, out of [0, %d]", tm, j, w, Scale)
			}
			sum += w
		}
		if sum != Scale {
			t.Fatalf("t=%d: weights %v sum to %d, want %d", tm, dst, sum, Scale)
		}
		if dst[2] < prev {
			t.Fatalf("t=%d: growing variation fell from %d to %d", tm, prev, dst[2])
		}
		prev = dst[2]
	}
}

func BenchmarkScheduleWeights(b *testing.B) {
	at := []int64{0, 1000, 3000}
	steps := [][]int64{{Scale, 0, 0}, {50000, 50000, 0}, {0, 20000, 80000}}
	dst := make([]int64, 3)
	b.ReportAllocs()
	for b.Loop() {
		ScheduleWeights(dst, at, steps, 2000)
	}
}
