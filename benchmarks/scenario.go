package benchmarks

import (
	"errors"
	"fmt"
)

// Scenario names one of the benchmark scenarios.
type Scenario string

// The scenarios: S1–S8 of the Core issue, each one flag shape for one
// context (see UserKey and the attribute constants), and R1, the realistic
// mix of mix.go. Every library evaluates the same flags for the same
// contexts.
const (
	S1BoolOn        Scenario = "S1_BoolOn"               // a bool flag, on, no rules, serving true
	S2Target1000Hit Scenario = "S2_Target1000Hit"        // a target list of 1,000 keys, the user is in it
	S3Rules10x2     Scenario = "S3_10Rules2Clauses"      // 10 rules × (email endsWith, country in 3 values), only the last matches
	S4Rollout5050   Scenario = "S4_Rollout5050"          // a 50/50 rollout by key over 1,024 distinct contexts
	S5Segment10000  Scenario = "S5_Segment10000PlusRule" // a segment of 10,000 included keys plus a rule, matched by the rule
	S6SemVer        Scenario = "S6_SemVerGreaterThan"    // appVersion semVerGreaterThan 2.9.0
	S7Prerequisites Scenario = "S7_PrerequisiteDepth3"   // f0 → f1 → f2 → f3
	S8AllFlags1000  Scenario = "S8_AllFlags1000"         // all 1,000 flags of a document for one context
	R1RealisticMix  Scenario = "R1_RealisticMix"         // 300 flags of every rule kind × 1,000 users, pairs in shuffled order (mix.go)
	RolloutContexts          = 1024                      // distinct contexts of S4
	TargetKeys               = 1000                      // keys in the S2 target list
	SegmentKeys              = 10000                     // keys included in the S5 segment
	AllFlagsCount            = 1000                      // flags in the S8 document
	UserKey                  = "user-500"                // the key of the one context of S1–S3, S5–S8
	UserEmail                = "ann@corp.com"
	UserCountry              = "fr"
	UserAppVersion           = "2.10.1"
	EmailSuffix              = "@corp.com"
	SemVerFloor              = "2.9.0"
	FlagKey                  = "f"  // the flag evaluated in S1–S6
	S7Flag                   = "f0" // the head of the S7 chain: prereqKey(0)
)

// Scenarios lists every scenario in order.
func Scenarios() []Scenario {
	return []Scenario{S1BoolOn, S2Target1000Hit, S3Rules10x2, S4Rollout5050, S5Segment10000, S6SemVer, S7Prerequisites, S8AllFlags1000, R1RealisticMix}
}

// Want is the value every evaluation of a single-flag scenario must return.
// S4 has no single answer (about half of its contexts get true), S8
// expects all AllFlagsCount flags true, and R1's answers are flagstream's
// for each (flag, user) pair (see Check).
func (s Scenario) Want() bool { return s != S4Rollout5050 && s != R1RealisticMix }

// Case is a scenario set up in one library, ready to be timed.
type Case struct {
	// Eval evaluates the scenario's flag for context i (taken modulo the
	// scenario's number of contexts) and returns its value; in R1, the
	// (flag, user) pair i of the mix's shuffled order (modulo the number of
	// pairs). Nil for S8.
	Eval func(i int) bool
	// All evaluates every flag of the S8 document for the user; with count
	// it returns how many evaluated to true (without, it returns 0 and does
	// no more work than the library's own call). Nil except for S8.
	All func(count bool) int
	// Close releases the library's client.
	Close func()
}

// Library is one flag SDK driven in-process.
type Library struct {
	Name    string // column header, e.g. "flagstream"
	Module  string // module path and version measured
	Driving string // how it is driven without network
	// Setup builds a scenario natively. A scenario the library cannot
	// express returns an error wrapping ErrNotApplicable.
	Setup func(Scenario) (*Case, error)
	// LoadDoc renders a document of n flags in the library's own format:
	// flag-%05d, even flags on with no rules serving false, odd flags with
	// one rule (email endsWith "@corp.com") serving true.
	LoadDoc func(n int) ([]byte, error)
	// Load builds a ready client from a LoadDoc document.
	Load func(doc []byte) (Loaded, error)
}

// Loaded is a client built from a load document.
type Loaded interface {
	// Bool evaluates a flag of the load document for the user context.
	Bool(key string) bool
	// Close releases the client.
	Close()
}

// ErrNotApplicable marks a scenario a library cannot express natively.
var ErrNotApplicable = errors.New("n/a")

func notApplicable(reason string) error { return fmt.Errorf("%w: %s", ErrNotApplicable, reason) }

// Libraries lists the libraries measured, flagstream first.
func Libraries() []Library {
	return []Library{flagstreamLib(), ldEvalLib(), ldSDKLib(), unleashLib(), goffLib(), configcatLib(), growthbookLib()}
}

// rolloutKey is the key of S4 context i.
func rolloutKey(i int) string { return fmt.Sprintf("user-%d", i) }

// targetKey is the i-th key of the S2 target list; UserKey is among them.
func targetKey(i int) string { return fmt.Sprintf("user-%d", i) }

// memberKey is the i-th key included in the S5 segment; UserKey is not.
func memberKey(i int) string { return fmt.Sprintf("member-%d", i) }

// allFlagKey is the key of the i-th flag of the S8 document.
func allFlagKey(i int) string { return fmt.Sprintf("flag-%04d", i) }

// loadFlags is the n flags of a load document (see Library.LoadDoc) by key,
// each made by flag: with the one rule (email endsWith EmailSuffix) for the
// odd ones, with no rule for the even ones.
func loadFlags[F any](n int, flag func(key string, emailRule bool) F) map[string]F {
	fl := make(map[string]F, n)
	for i := 0; i < n; i++ {
		key := loadFlagKey(i)
		fl[key] = flag(key, i%2 == 1)
	}
	return fl
}

// keyList is key(0), key(1) … key(n-1): the S2 target list is
// keyList(TargetKeys, targetKey).
func keyList(n int, key func(i int) string) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = key(i)
	}
	return keys
}

// rolloutContexts is the RolloutContexts contexts of S4, each made from
// its key by the library's constructor.
func rolloutContexts[C any](newContext func(key string) C) []C {
	ctxs := make([]C, RolloutContexts)
	for i := range ctxs {
		ctxs[i] = newContext(rolloutKey(i))
	}
	return ctxs
}

// loadFlagKey is the key of the i-th flag of a load document.
func loadFlagKey(i int) string { return fmt.Sprintf("flag-%05d", i) }

// s3Countries is the country list of S3 rule i: only the last rule lists
// the user's country.
func s3Countries(i int) []string {
	if i == 9 {
		return []string{"de", "fr", "es"}
	}
	return []string{"de", "it", "es"}
}

// prereqKey is the key of the flag at depth d of the S7 chain.
func prereqKey(d int) string { return fmt.Sprintf("f%d", d) }

// openRendered renders a document from a (a scenario, the mix, a load
// document's bytes) and opens the library's client on it: the first two
// steps of most Setups and Loads.
func openRendered[A, D, C any](a A, render func(A) (D, error), open func(D) (C, error)) (C, error) {
	d, err := render(a)
	if err != nil {
		var none C
		return none, err
	}
	return open(d)
}

// evalCase is a Case for a single-flag scenario with n contexts.
func evalCase(eval func(i int) bool, closer func()) *Case {
	if closer == nil {
		closer = func() {}
	}
	return &Case{Eval: eval, Close: closer}
}
