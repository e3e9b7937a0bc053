//go:build race

package flags

// raceSlowdown scales the time bounds of the adversarial corpus: the race
// detector makes code 5 to 20 times slower, and a bound is about the shape
// of a cost (linear, not exponential), not the speed of an instrumented build.
const raceSlowdown = 20

// raceEnabled turns off the corpus's allocation bounds: under the race
// detector sync.Pool drops items at random, so pooled memos allocate.
const raceEnabled = true
