// Package experiment turns exposure and metric events into experiment
// results and guard decisions (SPEC §8 and §9).
//
// An Aggregator keeps unit-level state as events arrive (the first
// randomized exposure of each unit to each flag, and each unit's metric
// events in time order), so that a Report reads units rather than events
// and is exact whatever the order of arrival. Report computes per-variation
// units, conversion rates and means, the comparison with the control
// (difference, 95 % interval, p-value, relative lift) and an always-valid
// sequential p-value (a mixture SPRT) that may be read at any time, however
// often, without inflating false positives; and a sample-ratio check.
// CheckGuard applies a flag's guard to a report.
//
// The package is pure: it does no I/O, keeps no clock, and imports only the
// standard library and package rules.
package experiment
