package eval

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrMalformed is matched (with errors.Is) by every Problem: the flag or
// segment it names is kept but cannot be evaluated.
var ErrMalformed = errors.New("flags: malformed")

// Problem is one thing wrong with one flag or segment, located by a field path
// in the style of the document, e.g. rules[2].clauses[0].op. It is an error
// that matches ErrMalformed and unwraps to its cause, like io/fs.PathError.
type Problem struct {
	Kind  string // "flag" or "segment"
	Key   string // the flag or segment key
	Field string // path inside it; empty for the whole object
	Err   error  // what is wrong
}

// Error formats the problem as "flags.KEY.FIELD: message".
func (p *Problem) Error() string {
	return p.Path() + ": " + p.Err.Error()
}

// Path is the problem's location in the document, e.g. flags.beta.rules[0].serve.
func (p *Problem) Path() string {
	s := p.Kind + "s." + p.Key
	if p.Field != "" {
		if p.Field[0] == '[' {
			s += p.Field
		} else {
			s += "." + p.Field
		}
	}
	return s
}

// Unwrap returns the cause.
func (p *Problem) Unwrap() error { return p.Err }

// Is reports whether target is ErrMalformed.
func (p *Problem) Is(target error) bool { return target == ErrMalformed }

// problems collects the problems of one flag or segment while it is parsed.
// In quiet mode it builds no field paths (join and item return ""): the
// parse is only asked whether there is any problem.
type problems struct {
	kind, key string
	quiet     bool
	list      []*Problem
	c         *compiler    // the compilation's arena and interned values
	tree      any          // the flag's or segment's JSON, parsed
	regex     *regexBudget // once the flag has patterns
}

func (ps *problems) add(field, format string, args ...any) {
	ps.list = append(ps.list, &Problem{Kind: ps.kind, Key: ps.key, Field: field, Err: fmt.Errorf(format, args...)})
}

// join builds field paths: join("rules[1]", "serve") = "rules[1].serve".
func (ps *problems) join(parent, child string) string {
	if ps.quiet {
		return ""
	}
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// item builds an indexed field path: item("rules", 2) = "rules[2]".
func (ps *problems) item(parent string, i int) string {
	if ps.quiet {
		return ""
	}
	return parent + "[" + strconv.Itoa(i) + "]"
}
