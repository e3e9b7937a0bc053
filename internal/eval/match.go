package eval

import (
	"hash/maphash"
	"slices"
	"strings"
)

// smallSet is the size up to which a ValueSet scans a slice instead of
// hashing: for a handful of strings a scan beats a map lookup.
const smallSet = 8

// ValueSet is a set of scalar values (strings, numbers, bools) with the
// equality of the `in` operator: strings case-sensitive, numbers by value,
// no equality across types.
type ValueSet struct {
	strs       []string
	table      []hashedString // more than smallSet strings: open addressing, a power of two long, at most half full
	nums       map[float64]struct{}
	hasTrue    bool
	hasFalse   bool
	size       int
	nonScalars int
}

// NewValueSet builds a set from values already normalized (string, float64,
// bool). Other values can never be equal to a scalar attribute and are
// counted but not stored.
func NewValueSet(values []any) ValueSet {
	var s ValueSet
	for _, v := range values {
		s.size++
		switch v := v.(type) {
		case string:
			s.strs = append(s.strs, v)
		case float64:
			if s.nums == nil {
				s.nums = make(map[float64]struct{})
			}
			s.nums[v] = struct{}{}
		case bool:
			if v {
				s.hasTrue = true
			} else {
				s.hasFalse = true
			}
		default:
			s.nonScalars++
		}
	}
	if len(s.strs) > smallSet {
		size := 1
		for size < 2*len(s.strs) {
			size <<= 1
		}
		s.table = make([]hashedString, size)
		mask := uint64(size - 1)
		for i, v := range s.strs {
			h := KeyHash(v)
			tag := uint32(h>>32) | 1 // never 0, the empty slot
			j := h & mask
			for s.table[j].tag != 0 {
				if s.table[j].tag == tag && s.strs[s.table[j].index] == v {
					break // a repeated value
				}
				j = (j + 1) & mask
			}
			s.table[j] = hashedString{tag, int32(i)}
		}
	}
	return s
}

// hashedString is a slot of ValueSet's table: the high half of the
// KeyHash of one of its strings (with the low bit set; 0: empty), whose
// low bits chose the slot, and the string's index. Eight bytes: a probe
// reads few cache lines, and compares a string only when the tags match.
type hashedString struct {
	tag   uint32
	index int32
}

// keySeed seeds KeyHash in this process.
var keySeed = maphash.MakeSeed()

// KeyHash is the hash ValueSet finds strings by. A context computes its
// key's once (ContainsHashed): target lists and segments' included and
// excluded keys are then found without hashing the key again, and a key
// that is not there, the usual case, without reading any string.
func KeyHash(s string) uint64 { return maphash.String(keySeed, s) }

// Len is the number of values the set was built from.
func (s *ValueSet) Len() int { return s.size }

// ContainsString reports whether the set holds the string v.
func (s *ValueSet) ContainsString(v string) bool {
	if s.table != nil {
		return s.ContainsHashed(v, KeyHash(v))
	}
	return s.scan(v)
}

// ContainsHashed is ContainsString for v whose KeyHash is h.
func (s *ValueSet) ContainsHashed(v string, h uint64) bool {
	if s.table == nil {
		return s.scan(v)
	}
	tag := uint32(h>>32) | 1
	mask := uint64(len(s.table) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		switch e := s.table[j]; e.tag {
		case 0:
			return false
		case tag:
			if s.strs[e.index] == v {
				return true
			}
		}
	}
}

// scan is ContainsString for a set of smallSet strings or fewer.
func (s *ValueSet) scan(v string) bool {
	if len(v) == 0 {
		return slices.Contains(s.strs, v)
	}
	// The first bytes are compared before the strings: most strings of a
	// set differ from v there (country codes, plans), and comparing them
	// costs no call.
	for _, x := range s.strs {
		if len(x) == len(v) && x[0] == v[0] && x == v {
			return true
		}
	}
	return false
}

// Contains reports whether the scalar v is in the set.
func (s *ValueSet) Contains(v any) bool {
	switch v := v.(type) {
	case string:
		return s.ContainsString(v)
	case float64:
		_, ok := s.nums[v]
		return ok
	case bool:
		if v {
			return s.hasTrue
		}
		return s.hasFalse
	}
	return false
}

// Match applies the clause to an attribute value (present false when the
// attribute is absent or null), following SPEC §1: an absent attribute does
// not match and negate is not applied, except for exists; an array matches
// when any element does. It must not be called for inSegment, which needs the
// whole context; the evaluator handles that operator.
func (c *Clause) Match(v any, present bool) bool {
	if c.code == opExists {
		return present != c.Negate
	}
	if !present {
		return false
	}
	if _, isArr := v.([]any); !isArr { // spares a call for the usual scalar
		return c.matchOne(v) != c.Negate
	}
	return c.MatchValue(v) != c.Negate
}

// MatchValue reports whether the operator matches v, or, for an array, any
// of its elements; negate is not applied.
func (c *Clause) MatchValue(v any) bool {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if c.matchOne(e) {
				return true
			}
		}
		return false
	}
	return c.matchOne(v)
}

// matchOne applies the operator to one value. It dispatches on the
// operator's code, a jump table; each family of operators has a function of
// its own, the set lookup of "in" (the most common) excepted.
func (c *Clause) matchOne(v any) bool {
	switch c.code {
	case opIn:
		return c.set.Contains(v)
	case opStartsWith, opEndsWith, opContains:
		s, ok := v.(string)
		return ok && c.matchString(s)
	case opMatches:
		s, ok := v.(string)
		return ok && c.matchPattern(s)
	case opLessThan, opLessThanOrEqual, opGreaterThan, opGreaterThanOrEqual:
		f, ok := v.(float64)
		return ok && c.matchNumber(f)
	case opBefore, opAfter:
		t, ok := instant(v)
		return ok && c.matchInstant(t)
	case opSemVerEqual, opSemVerLessThan, opSemVerGreaterThan:
		s, ok := v.(string)
		return ok && c.matchSemver(s)
	}
	return false
}

// matchString applies startsWith, endsWith or contains to s. A loop per
// operator, so that HasPrefix and HasSuffix are inlined.
func (c *Clause) matchString(s string) bool {
	switch c.code {
	case opStartsWith:
		for _, want := range c.strings {
			if strings.HasPrefix(s, want) {
				return true
			}
		}
	case opEndsWith:
		for _, want := range c.strings {
			if strings.HasSuffix(s, want) {
				return true
			}
		}
	default:
		for _, want := range c.strings {
			if strings.Contains(s, want) {
				return true
			}
		}
	}
	return false
}

// matchPattern applies matches to s. A string longer than the patterns'
// owner can afford to match never matches (maxMatchSteps).
func (c *Clause) matchPattern(s string) bool {
	if c.limit != nil && len(s) > c.limit.maxLen {
		return false
	}
	for i := range c.patterns {
		if c.patterns[i].match(s) {
			return true
		}
	}
	return false
}

// matchNumber applies a numeric comparison to f.
func (c *Clause) matchNumber(f float64) bool {
	for _, want := range c.numbers {
		if compareNumbers(c.code, f, want) {
			return true
		}
	}
	return false
}

// matchInstant applies before or after to t.
func (c *Clause) matchInstant(t moment) bool {
	for _, want := range c.instants {
		if (c.code == opBefore && t.before(want)) || (c.code == opAfter && want.before(t)) {
			return true
		}
	}
	return false
}

// matchSemver applies a semver operator to s.
func (c *Clause) matchSemver(s string) bool {
	var got semver
	if major, minor, patch, plain := plainVersion(s); plain {
		got = semver{major: major, minor: minor, patch: patch}
	} else if v, ok := parseFullSemver(s); ok {
		got = v
	} else {
		return false
	}
	for i := range c.versions {
		cmp := got.compare(&c.versions[i])
		if (c.code == opSemVerEqual && cmp == 0) ||
			(c.code == opSemVerLessThan && cmp < 0) ||
			(c.code == opSemVerGreaterThan && cmp > 0) {
			return true
		}
	}
	return false
}

func compareNumbers(op opCode, a, b float64) bool {
	switch op {
	case opLessThan:
		return a < b
	case opLessThanOrEqual:
		return a <= b
	case opGreaterThan:
		return a > b
	case opGreaterThanOrEqual:
		return a >= b
	}
	return false
}

// semver is a parsed Semantic Versioning 2.0 version. pre is kept as the
// original dotted string and compared identifier by identifier.
type semver struct {
	major, minor, patch uint64
	pre                 string
}

// parseSemver accepts SemVer 2.0 plus a leading "v" and a missing minor or
// patch ("2", "2.3"). Build metadata is dropped. It does not allocate.
func parseSemver(s string) (semver, bool) {
	if v, ok := parsePlainSemver(s); ok {
		return v, true
	}
	return parseFullSemver(s)
}

func parseFullSemver(s string) (semver, bool) {
	var v semver
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdents(s[i+1:], false) {
			return v, false
		}
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre = s[i+1:]
		if !validIdents(v.pre, true) {
			return v, false
		}
		s = s[:i]
	}
	nums := [3]uint64{}
	for n := 0; n < 3; n++ {
		end := strings.IndexByte(s, '.')
		part := s
		if end >= 0 {
			part = s[:end]
		}
		x, ok := parseNumericIdent(part)
		if !ok {
			return v, false
		}
		nums[n] = x
		if end < 0 {
			s = ""
			break
		}
		s = s[end+1:]
		if n == 2 {
			return v, false // a fourth component
		}
	}
	if s != "" {
		return v, false
	}
	v.major, v.minor, v.patch = nums[0], nums[1], nums[2]
	return v, true
}

// parsePlainSemver is parseSemver's one-pass path for the versions
// contexts nearly always carry: one to three dot-separated numbers with no
// prefix, pre-release or build ("2.10.1"). It reports false for anything
// else, which parseSemver then parses in full (and may still accept).
func parsePlainSemver(s string) (semver, bool) {
	major, minor, patch, ok := plainVersion(s)
	return semver{major: major, minor: minor, patch: patch}, ok
}

// plainVersion is parsePlainSemver with its result in registers.
func plainVersion(s string) (major, minor, patch uint64, ok bool) {
	major, i, ok := numericPart(s, 0)
	if !ok || i == len(s) {
		return major, 0, 0, ok
	}
	if s[i] != '.' {
		return 0, 0, 0, false
	}
	minor, i, ok = numericPart(s, i+1)
	if !ok || i == len(s) {
		return major, minor, 0, ok
	}
	if s[i] != '.' {
		return 0, 0, 0, false
	}
	patch, i, ok = numericPart(s, i+1)
	return major, minor, patch, ok && i == len(s)
}

// numericPart reads the digits of s from i: a number of 1 to 19 digits
// without a leading zero, and where it ends.
func numericPart(s string, i int) (uint64, int, bool) {
	start := i
	var x uint64
	for ; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			break
		}
		x = x*10 + uint64(d)
	}
	n := i - start
	if n == 0 || n > 19 || n > 1 && s[start] == '0' {
		return 0, i, false
	}
	return x, i, true
}

func parseNumericIdent(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || len(s) > 19 {
		return 0, false
	}
	var x uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		x = x*10 + uint64(c-'0')
	}
	return x, true
}

// validIdents checks dot-separated identifiers of [0-9A-Za-z-]; in a
// pre-release, numeric identifiers must not have leading zeros.
func validIdents(s string, pre bool) bool {
	if s == "" || s[len(s)-1] == '.' { // a trailing dot leaves an empty identifier
		return false
	}
	for id := range strings.SplitSeq(s, ".") {
		if !validIdent(id, pre) {
			return false
		}
	}
	return true
}

// validIdent checks one identifier of validIdents.
func validIdent(id string, pre bool) bool {
	if id == "" {
		return false
	}
	numeric := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
			numeric = false
		default:
			return false
		}
	}
	return !(pre && numeric && len(id) > 1 && id[0] == '0')
}

func (a *semver) compare(b *semver) int {
	switch {
	case a.major != b.major:
		return cmpU(a.major, b.major)
	case a.minor != b.minor:
		return cmpU(a.minor, b.minor)
	case a.patch != b.patch:
		return cmpU(a.patch, b.patch)
	}
	switch {
	case a.pre == b.pre:
		return 0
	case a.pre == "":
		return 1 // a release ranks above its pre-releases
	case b.pre == "":
		return -1
	}
	x, y := a.pre, b.pre
	for {
		if x == "" || y == "" {
			switch {
			case x == "" && y == "":
				return 0
			case x == "":
				return -1
			default:
				return 1
			}
		}
		var ix, iy string
		ix, x = cutDot(x)
		iy, y = cutDot(y)
		if c := compareIdent(ix, iy); c != 0 {
			return c
		}
	}
}

func cutDot(s string) (string, string) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func compareIdent(a, b string) int {
	na, nb := isDigits(a), isDigits(b)
	switch {
	case na && nb:
		if len(a) != len(b) { // no leading zeros: longer is larger
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case na:
		return -1
	case nb:
		return 1
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func cmpU(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// Fingerprint packs a string's length and its first and last bytes. A
// context's attributes are found by comparing it before their names, so
// that a lookup compares the bytes of at most the one name that can be
// equal, most of the time; a clause holds its attribute's (AttrFP).
func Fingerprint(v string) uint32 {
	if v == "" {
		return 0
	}
	return uint32(len(v))<<16 | uint32(v[0])<<8 | uint32(v[len(v)-1])
}
