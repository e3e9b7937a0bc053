package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// The limits of SPEC §13 on the patterns of the matches operator. A pattern
// or a flag beyond one is malformed.
const (
	// MaxPatternBytes is the longest pattern.
	MaxPatternBytes = 1024
	// MaxPatternInstructions is the most RE2 instructions a pattern may
	// compile to (regexp/syntax: Parse, Simplify, Compile, len(Prog.Inst)).
	MaxPatternInstructions = 5000
	// MaxPatterns is the most patterns a flag or segment may hold, all
	// its matches clauses together.
	MaxPatterns = 1000
)

// The budgets that make SPEC §13's promises hold for every valid flag:
// "no valid flag makes one evaluation take more than 1 ms, or makes the
// compiled snapshot larger than 20× the document's bytes". The limits above
// do not suffice: \pL{1000} is 9 bytes, 1,002 instructions and 46 KB
// compiled, and 1,000 of them fit in one flag. So every pattern is charged
// what it costs, and a flag or segment whose patterns cost more than its
// budget is malformed (docs/DECISIONS.md).
const (
	// regexMemoryPerByte is how many bytes of compiled patterns a flag or
	// segment may hold per byte of its compact JSON. The rest of a
	// compiled flag holds up to 6 bytes per byte (a flag of many clauses
	// of one short value each), so 13 keeps the snapshot under SPEC's 20×
	// (TestCompiledSizeBounded measures 17× at worst). A regular
	// expression costs 0.5 to 2 KB compiled (a *regexp.Regexp is about
	// 250 bytes, then 40 bytes an instruction), so a flag of 200 bytes
	// holds one or two, and each clause of its own adds room for one; a
	// clause's expressions compiled together (compilePatterns) cost less
	// than apart; a plain string costs its length (literalPattern); a
	// large Unicode class such as \pL costs 5 KB in every pattern using it.
	regexMemoryPerByte = 13

	// regexMemoryFloor is what any flag or segment may hold in compiled
	// patterns whatever its size: a *regexp.Regexp costs about as much as
	// 50 instructions before its first one, so a small flag with a few
	// ordinary expressions (an email domain, an id shape) is always over
	// 13× its bytes. 16 KiB holds about ten of them. Above it the snapshot
	// stays within SPEC's 20× of the document; under it a document of many
	// tiny flags full of patterns can reach about 16 KiB a flag, still a
	// bound set in advance (docs/DECISIONS.md).
	regexMemoryFloor = 16 << 10

	// maxRegexCost bounds the matching work of one flag or segment, in
	// steps per byte of the matched string: a step is one instruction,
	// and a character class costs classSteps or largeClassSteps. Go's
	// regexp takes time linear in steps × bytes. The slowest patterns keep
	// every instruction live at every byte (nested optional repeats with a
	// final anchor that never matches: BenchmarkRegexWorstCase); they took
	// at most 12 ns a step and byte on the reference machine, a 2-core
	// container shared with other work. An ordinary pattern costs 10 to
	// 40 steps, a plain string 1 (it runs as strings.Contains), so ordinary
	// flags are far from the budget and match in microseconds. The budget
	// is SPEC's own limit of one pattern, 5,000 instructions (a program over
	// maxBacktrackInsts is charged half as much again, so the largest
	// pattern of one-rune instructions that fits has about 3,333). Matching
	// is linear in the string: maxMatchSteps bounds the strings matched.
	maxRegexCost = 5000

	// maxMatchSteps bounds the matching work of one flag or segment in one
	// evaluation: a string longer than maxMatchSteps ÷ (the cost of its
	// flag's or segment's patterns) bytes never matches them, like a value
	// that cannot be parsed. Without it a context string of a megabyte
	// made one clause of a valid pattern take seconds, and k segments
	// holding one k times as long (a black-box audit): cost grew with the
	// document times the context, where SPEC §13 wants a multiple of
	// either. 80,000 steps take at most about 1 ms in the slowest shape
	// (12 ns a step), SPEC's bound for one evaluation. Ordinary flags cost
	// 10 to 40 steps a byte, so they match strings of 2 to 8 KB; a flag of
	// plain strings (1 a byte), 80 KB; the costliest valid flag, 16 bytes.
	maxMatchSteps = 80_000

	// The steps of an instruction matching a character class, measured
	// against a one-rune instruction (1): regexp scans up to 5 ranges in
	// turn, and searches larger classes (\pL: 659 ranges) by halves.
	classSteps      = 3
	largeClassSteps = 5

	// maxBacktrackInsts is the largest program Go's regexp runs with its
	// backtracker (on strings up to 256 Kbit / instructions long); larger
	// ones run on its NFA, which takes half as long again a step.
	maxBacktrackInsts = 500
)

// Estimates of a compiled pattern's memory, checked against the heap by
// TestRegexMemoryEstimate: they must not be below what it holds.
const (
	regexpBytes     = 320 // a *regexp.Regexp, its syntax.Prog and small slices (about 240), its pattern struct
	instBytes       = 40  // one syntax.Inst
	runeBytes       = 4   // one rune of a character class or literal
	regexpNodeBytes = 112 // a syntax.Regexp, held for the runes inside it
	literalSize     = 48  // a pattern kept as a string: its pattern struct and string header
	clauseBytes     = 96  // the parsedValues a clause with patterns holds them in
)

// ErrPatternLimit is wrapped by the problem of a matches pattern, or of the
// patterns of a flag or segment, beyond a limit of SPEC §13 or a budget
// derived from it.
var ErrPatternLimit = errors.New("matches pattern over the limits")

// pattern is one compiled value of a matches clause, or the regular
// expressions of a clause together. A pattern that is a plain string,
// perhaps anchored (`corp`, `^beta-`, `@corp\.com$`), is matched with the
// strings package, with the same answers as regexp and without its 500
// bytes and more of compiled program.
type pattern struct {
	re   *regexp.Regexp // kind patRegexp
	lit  string         // the other kinds; for patRegexp, a suffix every match ends the string with, or ""
	kind uint8
}

// The kinds of pattern.
const (
	patRegexp   = iota
	patContains // lit
	patPrefix   // ^lit
	patSuffix   // lit$
	patEqual    // ^lit$
)

// match reports whether the pattern matches anywhere in s.
func (p *pattern) match(s string) bool {
	switch p.kind {
	case patContains:
		return strings.Contains(s, p.lit)
	case patPrefix:
		return strings.HasPrefix(s, p.lit)
	case patSuffix:
		return strings.HasSuffix(s, p.lit)
	case patEqual:
		return s == p.lit
	}
	// A pattern that ends with a literal and $ (^[a-z.]+@corp\.com$)
	// cannot match a string that does not end with that literal, which
	// costs one comparison to know rather than a run of the regexp.
	return strings.HasSuffix(s, p.lit) && p.re.MatchString(s)
}

// regexBudget is what the patterns of the flag or segment being parsed
// have used of the limits so far.
type regexBudget struct {
	maxLen  int  // the longest string the patterns match, once the flag is parsed (finish)
	count   int  // patterns seen
	memory  int  // estimated bytes compiled
	cost    int  // matching steps per byte
	pending int  // steps of the clause's patterns planned, not yet charged
	size    int  // jsonSize of the flag or segment, once needed
	spent   bool // over a budget: later patterns are not compiled
}

// finish sets what the budget bounds at evaluation: the longest string the
// patterns of the flag or segment match (maxMatchSteps).
func (b *regexBudget) finish() {
	if b != nil {
		b.maxLen = maxMatchSteps / max(b.cost, 1)
	}
}

// planValue checks the matches value s, at field of the flag or segment
// being parsed, against the limits of SPEC §13 and plans how to match it;
// compilePatterns then compiles the plans of its clause. It reports false
// after adding a problem, or without one once the budget is spent (the
// flag is malformed already, and its later patterns are not compiled).
func (ps *problems) planValue(s, field string) (plan, bool) {
	if ps.regex == nil {
		ps.regex = &regexBudget{} // only flags with patterns have one
	}
	b := ps.regex
	b.count++
	if b.count > MaxPatterns {
		if b.count == MaxPatterns+1 {
			ps.add(field, "%w: the %s holds more than %d patterns", ErrPatternLimit, ps.kind, MaxPatterns)
		}
		return plan{}, false
	}
	if len(s) > MaxPatternBytes {
		ps.add(field, "%w: %d bytes, more than %d", ErrPatternLimit, len(s), MaxPatternBytes)
		return plan{}, false
	}
	if b.spent {
		return plan{}, false
	}
	pl, err := planPattern(s)
	if err != nil {
		ps.add(field, "%w", err)
		if errors.Is(err, ErrPatternLimit) {
			// The flag is malformed already: compiling its other patterns
			// would only spend time (a bomb repeats its costliest one).
			b.spent = true
		}
		return plan{}, false
	}
	// The clause's patterns are charged once compiled together
	// (compilePatterns); planning stops as soon as they cost more than
	// the budget apart, which bounds its work. (Together, a clause's
	// patterns cost about as much; less when they share a prefix.)
	b.pending += pl.cost
	if b.cost+b.pending > maxRegexCost {
		ps.overCost(field, b.cost+b.pending)
		return plan{}, false
	}
	return pl, true
}

// compilePatterns compiles the planned patterns of one clause, whose values
// are at field, and charges them to the budget. The regular expressions
// among them become one regexp, (?:a)|(?:b), which matches where either
// does: one *regexp.Regexp rather than several saves 500 bytes a pattern,
// and a clause's patterns are always matched together.
func (ps *problems) compilePatterns(plans []plan, field string) []pattern {
	b := ps.regex
	b.pending = 0
	if b.spent {
		return nil
	}
	var out []pattern
	var regs []plan
	memory, cost := clauseBytes, 0
	for _, pl := range plans {
		if pl.kind != patRegexp {
			out = append(out, pl.pattern)
			memory, cost = memory+pl.memory, cost+pl.cost
		} else {
			regs = append(regs, pl)
		}
	}
	if len(regs) > 1 {
		var alt strings.Builder
		for i, pl := range regs {
			if i > 0 {
				alt.WriteByte('|')
			}
			alt.WriteString("(?:" + pl.src + ")")
		}
		// Each pattern is valid alone, so the alternation says the same
		// or does not compile: a \Q without \E quotes the parentheses
		// after it, two groups may have one name. Then they stay apart,
		// and so do patterns that together would need regexp's slower
		// NFA (more than maxBacktrackInsts instructions).
		apart := 0
		for _, pl := range regs {
			apart += pl.cost
		}
		if all, err := planExpr(alt.String()); err == nil && all.cost <= apart {
			regs = []plan{all}
		}
	}
	for _, pl := range regs {
		memory, cost = memory+pl.memory, cost+pl.cost
	}
	if !ps.charge(field, memory, cost) {
		return nil
	}
	for _, pl := range regs {
		re, err := regexp.Compile(pl.expr)
		if err != nil {
			ps.add(field, "invalid regular expression: %w", err)
			return nil
		}
		out = append(out, pattern{re: re, lit: pl.lit})
	}
	return out
}

// plan is a pattern checked and costed, not yet compiled by regexp.
type plan struct {
	pattern        // a plain string; or patRegexp, to compile from expr
	src     string // the pattern as written
	expr    string // what regexp compiles
	memory  int    // estimated bytes held once compiled
	cost    int    // matching steps per byte of input
}

// planPattern checks the pattern s against the limits of SPEC §13, chooses
// how to match it, and estimates what that costs, without compiling it with
// regexp. s is at most MaxPatternBytes long.
func planPattern(s string) (plan, error) {
	tree, err := syntax.Parse(s, syntax.Perl) // as regexp.Compile does
	if err != nil {
		return plan{}, fmt.Errorf("invalid regular expression: %w", err)
	}
	tree = tree.Simplify()
	if lit, kind, ok := literalPattern(tree); ok {
		// len/8: the allocator rounds a string up to its size class.
		return plan{pattern: pattern{lit: lit, kind: kind}, src: s, memory: literalSize + len(lit) + len(lit)/8, cost: 1}, nil
	}
	suffix := requiredSuffix(tree)
	// Simplify expands repeats by sharing their operand, so a tree is
	// small however large its program: bound the program before making it.
	if instBound(tree) > 2*MaxPatternInstructions {
		return plan{}, fmt.Errorf("%w: compiles to more than %d instructions", ErrPatternLimit, MaxPatternInstructions)
	}
	// Compiling costs about a microsecond per 4 instructions; a pattern whose
	// classes alone cost twice the budget to match (\pL{1000} six times:
	// 6,000 large classes) is refused before it is compiled, so refusing
	// it costs no more than reading it.
	if steps := stepBound(tree); steps > 2*maxRegexCost {
		return plan{}, fmt.Errorf("%w: costs at least %d matching steps per byte, more than %d; use fewer or simpler patterns",
			ErrPatternLimit, steps/2, maxRegexCost)
	}
	prog, err := syntax.Compile(tree)
	if err != nil {
		return plan{}, fmt.Errorf("invalid regular expression: %w", err)
	}
	if len(prog.Inst) > MaxPatternInstructions {
		return plan{}, fmt.Errorf("%w: compiles to %d instructions, more than %d", ErrPatternLimit, len(prog.Inst), MaxPatternInstructions)
	}
	pl, err := planProg(s, tree, prog)
	pl.lit, pl.memory = suffix, pl.memory+len(suffix)
	return pl, err
}

// requiredSuffix is the literal a regular expression ends with before $,
// which every match ends the string with; "" when it ends otherwise, or
// with a literal that folds case or holds U+FFFD (which stands for any
// byte that is not UTF-8).
func requiredSuffix(tree *syntax.Regexp) string {
	if tree.Op != syntax.OpConcat || len(tree.Sub) < 2 || tree.Sub[len(tree.Sub)-1].Op != syntax.OpEndText {
		return ""
	}
	last := tree.Sub[len(tree.Sub)-2 : len(tree.Sub)-1]
	if last[0].Op != syntax.OpLiteral {
		return ""
	}
	lit, _ := plainLiteral(last)
	return lit
}

// planExpr plans the regular expression expr, within no limit.
func planExpr(expr string) (plan, error) {
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return plan{}, err
	}
	tree = tree.Simplify()
	prog, err := syntax.Compile(tree)
	if err != nil {
		return plan{}, err
	}
	return planProg(expr, tree, prog)
}

// planProg plans the regular expression src, parsed and simplified to
// tree, compiled to prog.
func planProg(src string, tree *syntax.Regexp, prog *syntax.Prog) (plan, error) {
	pl := plan{src: src, expr: src}
	if anchored(prog) {
		// Go's regexp runs a pattern anchored at the start with its
		// "onepass" engine when it can, which copies every character
		// class per instruction: ^\pL+$ holds 28 KB, ^(?:\pL\d){50}$
		// 428 KB. An empty group in front leaves the match unchanged (no
		// valid pattern starts with a repetition, which would repeat the
		// group) and the pattern on the engines that copy nothing.
		pl.expr = "()" + src
		var err error
		if tree, err = syntax.Parse(pl.expr, syntax.Perl); err == nil {
			tree = tree.Simplify()
			prog, err = syntax.Compile(tree)
		}
		if err != nil {
			return plan{}, fmt.Errorf("invalid regular expression: %w", err)
		}
	}
	pl.memory, pl.cost = progCost(tree, prog, len(pl.expr))
	return pl, nil
}

// charge adds the memory and matching cost of a clause's patterns to the
// budget of the flag or segment; past either budget it adds a problem and
// spends it.
func (ps *problems) charge(field string, memory, cost int) bool {
	b := ps.regex
	if b.size == 0 {
		b.size = jsonSize(ps.tree)
	}
	b.memory += memory
	b.cost += cost
	switch {
	case b.memory > regexMemoryFloor+regexMemoryPerByte*b.size:
		ps.add(field, "%w: the %s's patterns need about %d bytes compiled, more than 16 KiB and %d× its %d bytes of compact JSON; "+
			"use fewer or simpler patterns, or startsWith, endsWith, contains",
			ErrPatternLimit, ps.kind, b.memory, regexMemoryPerByte, b.size)
		b.spent = true
	case b.cost > maxRegexCost:
		ps.overCost(field, b.cost)
	}
	return !b.spent
}

// overCost adds the problem of patterns costing more than maxRegexCost.
func (ps *problems) overCost(field string, cost int) {
	ps.add(field, "%w: the %s's patterns cost %d matching steps per byte, more than %d; use fewer or simpler patterns",
		ErrPatternLimit, ps.kind, cost, maxRegexCost)
	ps.regex.spent = true
}

// jsonSize is the length of v, a parsed tree, encoded as compact JSON with
// no escapes but those strings need: the size of a flag or segment however
// its document is indented or escapes its strings, so that reformatting a
// document (as a server does) never changes which flags are valid.
func jsonSize(v any) int {
	switch x := v.(type) {
	case object:
		n := 2 + max(0, len(x.m)-1) // {} and commas
		for _, m := range x.m {
			n += len(m.key) + 3 + jsonSize(m.val) // "key":
		}
		return n
	case array:
		n := 2 + max(0, len(x.items)-1)
		for _, e := range x.items {
			n += jsonSize(e)
		}
		return n
	case string:
		return len(x) + 2
	case json.Number:
		return len(x)
	case bool:
		if x {
			return 4
		}
		return 5
	}
	return 4 // null
}

// literalPattern reports whether the simplified pattern re matches exactly
// where a string (with ^ and $ anchors, outside multi-line mode) does, and
// that string. Literals that fold case are left to regexp, and so are
// those holding U+FFFD: regexp reads an invalid byte of the matched
// string as U+FFFD, the strings package does not.
func literalPattern(re *syntax.Regexp) (string, uint8, bool) {
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	begin := len(subs) > 0 && subs[0].Op == syntax.OpBeginText
	if begin {
		subs = subs[1:]
	}
	end := len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText
	if end {
		subs = subs[:len(subs)-1]
	}
	lit, ok := plainLiteral(subs)
	if !ok {
		return "", 0, false
	}
	switch {
	case begin && end:
		return lit, patEqual, true
	case begin:
		return lit, patPrefix, true
	case end:
		return lit, patSuffix, true
	}
	return lit, patContains, true
}

// plainLiteral is the string subs (the pattern without its anchors)
// matches: "" for none or an empty match, a literal's runes when it neither
// folds case nor holds U+FFFD; false for anything else.
func plainLiteral(subs []*syntax.Regexp) (string, bool) {
	switch {
	case len(subs) == 0:
		return "", true
	case len(subs) > 1:
		return "", false
	}
	sub := subs[0]
	if sub.Op == syntax.OpEmptyMatch {
		return "", true
	}
	if sub.Op != syntax.OpLiteral || sub.Flags&syntax.FoldCase != 0 {
		return "", false
	}
	for _, r := range sub.Rune {
		if r == utf8.RuneError || !utf8.ValidRune(r) {
			return "", false
		}
	}
	return string(sub.Rune), true
}

// instBound is an upper bound of the instructions syntax.Compile makes of
// the simplified re, at most twice their number.
func instBound(re *syntax.Regexp) int64 {
	return 2 + treeBound(re, map[*syntax.Regexp]int64{}, nil) // 2: the program's InstFail and InstMatch
}

// stepBound bounds from above the matching steps per byte of tree's
// program as progCost counts them, before compiling it: instBound's count
// with each character class weighted as progCost weighs its instruction.
// Its only excess over progCost is one step per star, so twice the budget
// is safely over it.
func stepBound(re *syntax.Regexp) int64 {
	return 2 + treeBound(re, map[*syntax.Regexp]int64{}, classWeight)
}

// classWeight weighs a character class as progCost weighs its instruction.
func classWeight(re *syntax.Regexp) int {
	switch {
	case len(re.Rune) <= 2:
		return 1
	case len(re.Rune) <= 2*5:
		return classSteps
	}
	return largeClassSteps
}

// treeBound counts the instructions of re's program, without the
// program's own; class, when not nil, weighs each character class (nil:
// one instruction). seen holds the bounds of subexpressions already
// counted (Simplify shares a repeated operand between its copies). The
// count is an int64, capped, so that it cannot overflow on any platform.
func treeBound(re *syntax.Regexp, seen map[*syntax.Regexp]int64, class func(*syntax.Regexp) int) int64 {
	if n, ok := seen[re]; ok {
		return n
	}
	var n int64
	switch re.Op {
	case syntax.OpCharClass:
		if class != nil {
			n = int64(class(re))
		}
	case syntax.OpLiteral:
		n = int64(len(re.Rune))
	case syntax.OpCapture, syntax.OpStar:
		n = 2 + treeBound(re.Sub[0], seen, class)
	case syntax.OpPlus, syntax.OpQuest:
		n = 1 + treeBound(re.Sub[0], seen, class)
	case syntax.OpConcat, syntax.OpAlternate:
		for _, sub := range re.Sub {
			n += treeBound(sub, seen, class)
		}
		if re.Op == syntax.OpAlternate {
			n += int64(len(re.Sub) - 1) // an InstAlt between each two
		}
	case syntax.OpRepeat: // Simplify leaves none; bounded as it would expand
		sub := treeBound(re.Sub[0], seen, class)
		if re.Max == -1 {
			n = 2 + int64(max(1, re.Min))*sub
		} else {
			n = int64(re.Max)*sub + int64(re.Max-re.Min)
		}
	}
	n = max(1, min(n, 1<<40)) // 1<<40: no overflow however deep the nesting
	seen[re] = n
	return n
}

// progCost estimates the memory regexp holds for prog, compiled from
// tree (simplified) and a pattern of n bytes, and the matching steps per
// byte of input it takes at worst.
func progCost(tree *syntax.Regexp, prog *syntax.Prog, n int) (memory, cost int) {
	memory = regexpBytes + instBytes*cap(prog.Inst) + 3*n + 16*prog.NumCap + runeMemory(tree, map[*syntax.Regexp]bool{})
	for i := range prog.Inst {
		switch in := &prog.Inst[i]; {
		case in.Op != syntax.InstRune || len(in.Rune) == 1:
			cost++
		case len(in.Rune) <= 2*5: // regexp scans up to 5 ranges in turn
			cost += classSteps
		default: // and searches more by halves
			cost += largeClassSteps
		}
	}
	if len(prog.Inst) > maxBacktrackInsts {
		cost += cost / 2 // run by regexp's NFA, which is slower a step
	}
	return memory, cost
}

// runeMemory is what the runes of tree's literals and classes hold once
// compiled: the instructions point into them. A node of at most two runes
// keeps them inside itself, so the whole node is held.
func runeMemory(re *syntax.Regexp, seen map[*syntax.Regexp]bool) int {
	if seen[re] {
		return 0
	}
	seen[re] = true
	n := 0
	if (re.Op == syntax.OpLiteral || re.Op == syntax.OpCharClass) && len(re.Rune) > 0 {
		if len(re.Rune) <= 2 {
			n = regexpNodeBytes
		} else {
			n = runeBytes * cap(re.Rune)
		}
	}
	for _, sub := range re.Sub {
		n += runeMemory(sub, seen)
	}
	return n
}

// anchored reports whether prog starts with ^ (or \A): the programs Go's
// regexp may run with its onepass engine.
func anchored(prog *syntax.Prog) bool {
	in := prog.Inst[prog.Start]
	return in.Op == syntax.InstEmptyWidth && syntax.EmptyOp(in.Arg)&syntax.EmptyBeginText != 0
}
