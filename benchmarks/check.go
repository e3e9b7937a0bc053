package benchmarks

import (
	"fmt"
	"iter"
	"strings"
)

// Check evaluates a scenario's case the way the benchmark will and reports
// any wrong answer: the expected value for every single-flag scenario, about
// half true over the 1,024 contexts of S4, all 1,000 flags true in S8,
// flagstream's answers for the pairs of R1 (see checkMix).
func Check(s Scenario, c *Case) error {
	if s == R1RealisticMix {
		return checkMix(c)
	}
	if s == S8AllFlags1000 {
		if c.All == nil {
			return fmt.Errorf("%s: no All function", s)
		}
		if n := c.All(true); n != AllFlagsCount {
			return fmt.Errorf("%s: %d of %d flags true, want all", s, n, AllFlagsCount)
		}
		return nil
	}
	if c.Eval == nil {
		return fmt.Errorf("%s: no Eval function", s)
	}
	if s == S4Rollout5050 {
		trues := 0
		for i := 0; i < RolloutContexts; i++ {
			if c.Eval(i) {
				trues++
			}
		}
		// a fair 50/50 split of 1,024 keys lies in [400, 624] with
		// overwhelming probability; all-false or all-true means no rollout
		if trues < 400 || trues > 624 {
			return fmt.Errorf("%s: %d of %d contexts got true, want about half", s, trues, RolloutContexts)
		}
		return nil
	}
	for i := 0; i < 3; i++ {
		if got := c.Eval(i); got != s.Want() {
			return fmt.Errorf("%s: evaluation = %v, want %v", s, got, s.Want())
		}
	}
	return nil
}

// countTrue counts the values of vs that isTrue holds for: the flags of an
// S8 answer that evaluated to true.
func countTrue[V any](vs iter.Seq[V], isTrue func(V) bool) int {
	n := 0
	for v := range vs {
		if isTrue(v) {
			n++
		}
	}
	return n
}

// Slug is the library's name as a benchmark name element.
func (l Library) Slug() string { return strings.ReplaceAll(l.Name, " ", "_") }
