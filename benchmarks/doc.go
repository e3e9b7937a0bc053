// Package benchmarks measures flagstream side by side with other Go
// feature-flag SDKs on the same scenarios (S1–S8 of the Core issue; R1, a
// realistic mix of 300 flags and 1,000 users, see mix.go) and on loading a
// 10,000-flag document.
//
// Every library is driven in-process, without network: LaunchDarkly's
// evaluator on a map of flags, LaunchDarkly's SDK with its test data source
// and events off, Unleash's client with an http.Client whose transport
// answers /client/features in memory, go-feature-flag with an in-memory
// retriever, ConfigCat offline with a local-only override file, GrowthBook
// from a features payload. Each scenario is written natively for each
// library; a scenario a library cannot express is reported as not
// applicable (NotApplicable) rather than emulated. R1's mix is one model
// (mix.go) that each library's lib_*_mix.go translates into its own format,
// the way that library's users would write each rule; Check compares every
// answer with flagstream's before anything is timed.
//
// `go test ./...` runs the correctness checks only (each scenario's answer
// for each library); run.sh runs the benchmarks and prints the table
// published in docs/PERFORMANCE.md.
//
// Package propagation (a directory of this module) measures something else:
// how fast a change on a reference server reaches 1,000 streaming clients
// (docs/DEPLOYMENT.md).
package benchmarks
