//go:build !race

package flags

// raceSlowdown scales the time bounds of the adversarial corpus (see
// race_on_test.go): 1 without the race detector.
const raceSlowdown = 1

// raceEnabled reports whether the race detector is on (see race_on_test.go).
const raceEnabled = false
