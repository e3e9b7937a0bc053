package eval

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// planAndCompile is planPattern and its compilation, outside any budget.
func planAndCompile(s string) (pattern, plan, error) {
	pl, err := planPattern(s)
	if err != nil || pl.kind != patRegexp {
		return pl.pattern, pl, err
	}
	re, err := regexp.Compile(pl.expr)
	return pattern{re: re}, pl, err
}

// heldPerPattern is the heap that n compiled copies of s hold, per copy.
func heldPerPattern(t *testing.T, s string, n int) float64 {
	t.Helper()
	held := make([]pattern, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range held {
		held[i], _, _ = planAndCompile(s)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(held)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
}

// regexCorpus holds patterns of every shape: literals, classes large and
// small, anchored ones (which Go could run onepass), repeats, captures.
var regexCorpus = []string{
	`a`, `corp`, `^beta-`, `@corp\.com$`, `^admin$`, `(?i)^ANN@`, `^[a-z]+@corp\.com$`, `^ops-\d+@`,
	`^[a-z0-9._%+-]+@(?:corp|example)\.com$`, `(?i)(?:iphone|ipad|android).*mobile`, `^v?2\.\d+\.\d+$`,
	`^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$`, `^(us|eu)-`, `\pL`, `^\pL+$`, `^(?:\pL|\pN)+$`,
	`^(?:\pL\d){50}$`, `\pL{1000}`, `^\pL{1000}$`, `(?:[\pL\pN\pP\pS]?){100}$`, `(?P<name>x)(?P<other>y)+`,
	`^(?:a|b)(?:c|d)(?:e|f)x{200}$`, strings.Repeat(`(\pL|\pN)`, 20), `[^\n]*x`, `(?m)^a$`, `\bword\b`,
	`(?:^[a-z0-9._%+-]+@(?:corp|example)\.com$)|(?:^ops-\d+@)|(?:(?i)chrome/\d+)`, `(?:^[a-z]+@corp\.com$)|(?:^ops-\d+@)`,
	`(?:a+1)|(?:a+2)|(?:a+3)|(?:a+4)|(?:a+5)|(?:a+6)|(?:a+7)|(?:a+8)`, `x+`, `(?i)x1`, `[^a]`,
	strings.Repeat("abcdefgh", 100), "^" + strings.Repeat("abcdefgh", 100) + "$",
}

// TestRegexMemoryEstimate: the memory charged for a pattern is not below
// what its compiled form holds on the heap, for every shape of pattern;
// the budget of SPEC §13 is only as good as this estimate. (It is above,
// by up to a few times for large classes reused by many instructions.)
func TestRegexMemoryEstimate(t *testing.T) {
	if testing.Short() {
		t.Skip("memory estimates are checked in full runs")
	}
	for _, s := range regexCorpus {
		_, pl, err := planAndCompile(s)
		if err != nil {
			t.Fatalf("pattern %q: %v", s, err)
		}
		held := heldPerPattern(t, s, 200)
		if float64(pl.memory) < held {
			t.Errorf("pattern %.40q: estimate %d bytes, holds %.0f", s, pl.memory, held)
		}
		t.Logf("pattern %-42.40q estimate %7d held %9.0f  cost %5d", s, pl.memory, held, pl.cost)
	}
}

// FuzzPatternMatch holds compiled patterns to what Go's regexp says of
// them as written: each alone (a string matched with the strings package,
// or a regexp perhaps behind an empty group), and two as the values of one
// clause (one alternation, or two regexps when that does not compile).
func FuzzPatternMatch(f *testing.F) {
	for _, s := range regexCorpus[:len(regexCorpus)-2] {
		f.Add(s, `^ops-\d+@`, "ann@corp.com")
	}
	for _, seed := range [][3]string{
		{`^abc`, `x`, "abcd"}, {`abc$`, `^y`, "xabc"}, {`^abc$`, `abd`, "abc"}, {`^$`, `a`, ""}, {``, `b`, "x"},
		{`^`, `$`, "x"}, {`é`, `\x{FFFD}`, "\xc3\xa9"}, {`\x{FFFD}`, `a`, "\xff"}, {`^\x{FFFD}$`, `b`, "\xff"},
		{`a$`, `^b`, "a\n"}, {`^a`, `b$`, "\na"}, {`(?i)abc`, `d`, "ABC"}, {`(?s)a.b`, `c`, "a\nb"},
		{`\Qa.b`, `c`, "a.b"}, {`\Qa.b`, `c`, "c"}, {`x`, `\Qa)|(b`, "b"}, {`|a`, `c`, "b"}, {`^a|b`, `c`, "xb"},
		{`(?U)^a+`, `b`, "aa"}, {`^(?:)`, `a`, ""}, {`\Aab\z`, `c`, "ab"}, {`a{2}`, `b{2}`, "abb"},
		{`(?P<n>a)`, `(?P<n>b)`, "b"}, {`(?i)a`, `B`, "b"}, {`a\E`, `b`, "a"}, {`(?m)^a$`, `^b`, "x\na"},
		{`^[a-z]+@corp\.com$`, `x`, "ann@corp.com"}, {`[a-z]+\.com$`, `z`, "x.com\n"}, {`\d+é$`, `y`, "12\xc3\xa9"},
		{`(?i)a+B$`, `c`, "aab"}, {`a+\x{FFFD}$`, `b`, "a\xff"}, {`(?m)[a-z]+c$`, `d`, "abc\nx"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, a, b, s string) {
		if len(a) > MaxPatternBytes || len(b) > MaxPatternBytes {
			return
		}
		var want [2]*regexp.Regexp
		for i, expr := range []string{a, b} {
			if want[i] = checkPatternAlone(t, expr, s); want[i] == nil {
				return
			}
		}
		checkPatternPair(t, [2]string{a, b}, s, want)
	})
}

// checkPatternAlone checks that expr compiles as a pattern exactly when
// Go's regexp compiles it, and then matches s as the regexp does, which
// it returns. It returns nil when there is nothing to check: expr is no
// regexp, or beyond SPEC's limits.
func checkPatternAlone(t *testing.T, expr, s string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(expr)
	p, _, gotErr := planAndCompile(expr)
	if err != nil {
		if gotErr == nil {
			t.Fatalf("pattern %q: no error, regexp says %v", expr, err)
		}
		return nil
	}
	if errors.Is(gotErr, ErrPatternLimit) {
		return nil // beyond SPEC's limits
	}
	if gotErr != nil {
		t.Fatalf("pattern %q: %v", expr, gotErr)
	}
	if got := p.match(s); got != re.MatchString(s) {
		t.Fatalf("pattern %q (kind %d) on %q: %v, regexp %v", expr, p.kind, s, got, !got)
	}
	return re
}

// checkPatternPair checks that a clause whose values are the two patterns
// exprs matches s when either regexp of want does.
func checkPatternPair(t *testing.T, exprs [2]string, s string, want [2]*regexp.Regexp) {
	t.Helper()
	ps := &problems{kind: "flag", key: "f"}
	clause := compileClauses(ps, 1<<30, exprs[:])
	if len(ps.list) > 0 {
		if errors.Is(ps.list[0], ErrPatternLimit) {
			return
		}
		t.Fatalf("clause %q: %v", exprs[:], ps.list[0])
	}
	got := false
	for i := range clause {
		got = got || clause[i].match(s)
	}
	if w := want[0].MatchString(s) || want[1].MatchString(s); got != w {
		t.Fatalf("clause %q on %q: %v, regexp %v", exprs[:], s, got, w)
	}
}

// worstRegexFlags are flags whose patterns use about all of maxRegexCost in
// the shapes that match slowest: nested optional classes keep every
// instruction live at every byte, and a final $ that never matches makes
// the engine try every start.
func worstRegexFlags() map[string][]string {
	repeat := func(p string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = p
		}
		return out
	}
	return map[string][]string{
		"letters":    repeat(`(?:\pL?){80}\d$`, 10),          // 6 steps a repetition
		"ascii":      repeat(`(?:a?){160}\d$`, 15),           // 2 steps a repetition
		"ascii-nfa":  repeat(`(?:a?){320}\d$`, 5),            // over 500 instructions: Go's NFA, not its backtracker
		"classes":    repeat(`(?:[a-zA-Z0-9_]?){245}\d$`, 5), // 4 steps a repetition
		"many-small": repeat(`(?:[ab]?){4}\d$`, 220),         // 22 steps each
		"unions":     repeat(`(?:[\pL\pN\pP]?){80}\d$`, 10),  // 6 steps a repetition
	}
}

// worstRegexInput is a 64-byte string that matches none of the worst
// patterns: letters, then a byte no pattern accepts before its $.
var worstRegexInput = strings.Repeat("ab", 31) + "a!"

// compileClauses compiles each list of values as one matches clause of a
// flag whose budget is that of size bytes of JSON, and returns the
// patterns of all of them.
func compileClauses(ps *problems, size int, clauses ...[]string) []pattern {
	ps.regex = &regexBudget{size: size}
	var out []pattern
	for _, values := range clauses {
		var plans []plan
		for i, s := range values {
			if pl, ok := ps.planValue(s, ps.item("values", i)); ok {
				plans = append(plans, pl)
			}
		}
		if len(plans) > 0 {
			out = append(out, ps.compilePatterns(plans, "values")...)
		}
	}
	return out
}

// worstShapes compiles the patterns of a worst flag two ways: all in one
// clause (one alternation), and each in a clause of its own.
var worstShapes = map[string]func([]string) [][]string{
	"one-clause": func(pats []string) [][]string { return [][]string{pats} },
	"clauses": func(pats []string) [][]string {
		var out [][]string
		for _, p := range pats {
			out = append(out, []string{p})
		}
		return out
	},
}

// TestWorstRegexFlagsWithinBudget: the flags BenchmarkRegexWorstCase
// measures are valid, and use most of maxRegexCost.
func TestWorstRegexFlagsWithinBudget(t *testing.T) {
	for name, pats := range worstRegexFlags() {
		for shape, clauses := range worstShapes {
			ps := &problems{kind: "flag", key: name}
			compileClauses(ps, 1<<30, clauses(pats)...)
			if len(ps.list) > 0 {
				t.Errorf("%s/%s: %v", name, shape, ps.list[0])
			}
			if ps.regex.cost < maxRegexCost*3/4 {
				t.Errorf("%s/%s: costs %d steps, want at least 3/4 of %d", name, shape, ps.regex.cost, maxRegexCost)
			}
		}
	}
}

// BenchmarkRegexWorstCase matches the 64-byte worstRegexInput against the
// patterns of each worst flag, as one evaluation that reaches all its
// clauses does, and reports ns/step-byte: what the constant maxRegexCost
// assumes (12 ns on the reference machine).
func BenchmarkRegexWorstCase(b *testing.B) {
	for name, pats := range worstRegexFlags() {
		for shape, clauses := range worstShapes {
			b.Run(name+"/"+shape, func(b *testing.B) {
				ps := &problems{kind: "flag", key: name}
				compiled := compileClauses(ps, 1<<30, clauses(pats)...)
				if len(ps.list) > 0 {
					b.Fatal(ps.list[0])
				}
				b.ResetTimer()
				for range b.N {
					for i := range compiled {
						if compiled[i].match(worstRegexInput) {
							b.Fatal("matched")
						}
					}
				}
				perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(perOp/float64(ps.regex.cost*len(worstRegexInput)), "ns/step-byte")
				b.ReportMetric(float64(ps.regex.cost), "steps")
			})
		}
	}
}

// TestRequiredSuffix: the literal a regular expression ends with before $,
// which match checks before running the regexp, and none where a literal
// could match other bytes (case folding, U+FFFD) or $ is not the end.
func TestRequiredSuffix(t *testing.T) {
	for expr, want := range map[string]string{
		`^[a-z]+\.[a-z]+@corp\.com$`: "@corp.com",
		`@(gmail|outlook)\.com$`:     ".com",
		`\d+é$`:                      "é",
		`\.(edu|io)$`:                "",
		`[0-9]{3,}@`:                 "",
		`(?i)a+B$`:                   "",
		`a+\x{FFFD}$`:                "",
		`(?m)[a-z]+c$`:               "",
		`[a-z]+c\z`:                  "c",
	} {
		pl, err := planPattern(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if pl.kind != patRegexp || pl.lit != want {
			t.Errorf("%s: kind %d, suffix %q; want a regexp with suffix %q", expr, pl.kind, pl.lit, want)
		}
		re := regexp.MustCompile(expr)
		p := pattern{re: regexp.MustCompile(pl.expr), lit: pl.lit}
		for _, s := range []string{"ann.lee@corp.com", "x@gmail.com", "12é", "a.io", "123@", "aAb", "a\xff", "abc\nx", "xyzc", "corp.comx"} {
			if got := p.match(s); got != re.MatchString(s) {
				t.Errorf("%s on %q: %v, regexp says %v", expr, s, got, !got)
			}
		}
	}
}

// TestMatchesLongStringsNeverMatch: a string longer than maxMatchSteps ÷
// the cost of its flag's patterns never matches them (negated, the clause
// matches), so the matching work of one flag in one evaluation stays
// within maxMatchSteps however long the context's strings are (SPEC §13:
// a context costs a small multiple of its size). Ordinary patterns match
// strings of kilobytes.
func TestMatchesLongStringsNeverMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		atLeast int // the longest string matched is at least this long
	}{
		{`a+b`, 2000},
		{`^[a-z]+\.[a-z]+@corp\.com$`, 1000},
		{`ab`, maxMatchSteps}, // a plain string: cost 1
		{`[a-z]{1,700}b`, 16}, // a costly pattern: short strings only
	} {
		for _, negate := range []bool{false, true} {
			doc := fmt.Sprintf(`{"flags": {"f": {"variations": [false, true], "fallthrough": {"variation": 0},
				"rules": [{"clauses": [{"attribute": "s", "op": "matches", "values": [%q], "negate": %t}], "serve": {"variation": 1}}],
				"description": %q}}}`, tc.pattern, negate, strings.Repeat("x", 20000))
			snap := mustCompile(t, doc)
			f := snap.Flag("f")
			if f == nil || f.Err != nil {
				t.Fatalf("%s: %v", tc.pattern, f.Err)
			}
			c := &f.Rules[0].Clauses[0]
			maxLen := c.limit.maxLen
			if maxLen < tc.atLeast || maxLen*c.limit.cost > maxMatchSteps {
				t.Errorf("%s: strings up to %d bytes match at %d steps a byte; want at least %d, and at most %d steps", tc.pattern, maxLen, c.limit.cost, tc.atLeast, maxMatchSteps)
			}
			fits := strings.Repeat("a", maxLen-1) + "b"
			if tc.pattern == `^[a-z]+\.[a-z]+@corp\.com$` {
				fits = strings.Repeat("a", maxLen-len(".b@corp.com")) + ".b@corp.com"
			}
			if got := c.Match(fits, true); got != !negate {
				t.Errorf("%s (negate %t): a string of %d bytes, the longest matched: %t", tc.pattern, negate, len(fits), got)
			}
			if got := c.Match("a"+fits, true); got != negate {
				t.Errorf("%s (negate %t): a string of %d bytes, one too long: %t", tc.pattern, negate, len(fits)+1, got)
			}
		}
	}
}
