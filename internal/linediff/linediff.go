// Package linediff is the line diff of audit entries, shared by `flags
// history` and the web console: the lines of two JSON values, indented,
// compared by a longest common subsequence.
package linediff

import (
	"bytes"
	"encoding/json"
	"strings"
)

// MaxCells bounds the comparison table (lines before × lines after);
// larger values are shown whole, before then after.
const MaxCells = 4 << 20

// Line is a line of a diff.
type Line struct {
	Op   byte   // ' ' both have it, '-' only the first, '+' only the second, '.' unchanged lines left out
	Text string // the line ("" for '.')
}

// JSONLines is v indented by two spaces, a line a slice element; none for
// null or nothing.
func JSONLines(v json.RawMessage) []string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	var b bytes.Buffer
	if err := json.Indent(&b, v, "", "  "); err != nil {
		return []string{string(v)}
	}
	return strings.Split(b.String(), "\n")
}

// Diff lists the lines of a and b as a diff, with context unchanged lines
// around each change and a '.' line where unchanged lines are left out.
func Diff(a, b []string, context int) []Line {
	if len(a)*len(b) > MaxCells {
		return replaced(a, b)
	}
	return withContext(editScript(a, b), context)
}

// replaced is the diff that removes all of a and adds all of b, for values
// too large to compare line by line.
func replaced(a, b []string) []Line {
	out := make([]Line, 0, len(a)+len(b))
	for _, l := range a {
		out = append(out, Line{'-', l})
	}
	for _, l := range b {
		out = append(out, Line{'+', l})
	}
	return out
}

// editScript is every line of a and b in order, each marked ' ', '-' or
// '+', following a longest common subsequence of the two.
func editScript(a, b []string) []Line {
	lcs, w := lcsTable(a, b)
	var all []Line
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			all = append(all, Line{' ', a[i]})
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			all = append(all, Line{'-', a[i]})
			i++
		default:
			all = append(all, Line{'+', b[j]})
			j++
		}
	}
	return all
}

// lcsTable returns the table lcs, with lcs[i*w+j] the length of the longest
// common subsequence of a[i:] and b[j:], and its row width w.
func lcsTable(a, b []string) (lcs []int32, w int) {
	w = len(b) + 1
	lcs = make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	return lcs, w
}

// withContext keeps the changed lines of all and up to context unchanged
// lines either side of each, putting a '.' line where lines are left out.
func withContext(all []Line, context int) []Line {
	keep := nearChanges(all, context)
	var out []Line
	skipped := false
	for k, l := range all {
		if !keep[k] {
			skipped = true
			continue
		}
		if skipped {
			out = append(out, Line{Op: '.'})
		}
		skipped = false
		out = append(out, l)
	}
	if skipped && len(out) > 0 {
		out = append(out, Line{Op: '.'})
	}
	return out
}

// nearChanges marks the lines of all that are no more than context lines
// from a changed one.
func nearChanges(all []Line, context int) []bool {
	keep := make([]bool, len(all))
	for k, l := range all {
		if l.Op == ' ' {
			continue
		}
		for d := max(0, k-context); d <= min(len(all)-1, k+context); d++ {
			keep[d] = true
		}
	}
	return keep
}
