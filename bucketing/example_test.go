package bucketing_test

import (
	"fmt"

	"github.com/flagstream/flags/bucketing"
)

func ExampleBucket() {
	b := bucketing.Bucket("new-checkout", "user-123")
	fmt.Println(b, bucketing.Choose([]int64{90000, 10000}, b))
	// Output: 25887 0
}

func ExampleBucketInt() {
	fmt.Println(bucketing.BucketInt("int-flag", 42) == bucketing.Bucket("int-flag", "42"))
	// Output: true
}

func ExampleScheduleWeights() {
	// From all on variation 0 to all on variation 1 over one week.
	at := []int64{1796083200000, 1796688000000} // 2026-12-01 and 2026-12-08, 00:00 UTC
	steps := [][]int64{{100000, 0}, {0, 100000}}
	w := make([]int64, 2)
	for _, t := range []int64{at[0] - 1, at[0] + 3600000, (at[0] + at[1]) / 2, at[1]} {
		bucketing.ScheduleWeights(w, at, steps, t)
		fmt.Println(w)
	}
	// Output:
	// [100000 0]
	// [99405 595]
	// [50000 50000]
	// [0 100000]
}
