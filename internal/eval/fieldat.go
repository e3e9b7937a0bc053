package eval

import (
	"errors"
	"strconv"
	"strings"
)

// ErrorOffset returns the byte offset in its text at which a JSON text's
// parsing stopped, when err says (a syntax error, invalid UTF-8, nesting
// too deep).
func ErrorOffset(err error) (int, bool) {
	var se *syntaxError
	if errors.As(err, &se) {
		return se.byteOffset, true
	}
	return 0, false
}

// fieldFrame is an object or array open at the offset FieldAt looks for.
type fieldFrame struct {
	array bool
	key   string // the member being read, in an object
	index int    // the element being read, in an array
}

// FieldAt returns the path, in the form of a Problem's Field
// ("variations[0]", "rules[2].clauses[0].values"), of the value of the JSON
// object text data that holds byte offset off; "" for the object itself.
// It reads data as far as off only, so that data after it may be anything:
// it names where a parse failed, for an error to say which field is wrong.
func FieldAt(data []byte, off int) string {
	var stack []fieldFrame
	var lastString string // the last string read: a key when a ':' follows
	for i := 0; i < off && i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			lastString, i = stringAt(data, i, off)
		case ':':
			if n := len(stack); n > 0 && !stack[n-1].array {
				stack[n-1].key = lastString
			}
		case ',':
			if n := len(stack); n > 0 && stack[n-1].array {
				stack[n-1].index++
			} else if n > 0 {
				stack[n-1].key = "" // the next member's key is being read
			}
		case '{', '[':
			stack = append(stack, fieldFrame{array: c == '['})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	return fieldPath(stack)
}

// stringAt reads the string whose opening quote is at data[i], stopping at
// off, and returns it (as written when it does not unquote) and the offset
// of its closing quote.
func stringAt(data []byte, i, off int) (string, int) {
	j := i + 1
	for j < len(data) && j < off && data[j] != '"' {
		if data[j] == '\\' {
			j++
		}
		j++
	}
	if s, err := strconv.Unquote(string(data[i:min(j+1, len(data))])); err == nil {
		return s, j
	}
	return string(data[i+1 : min(j, len(data))]), j
}

// fieldPath is the path of the innermost of stack's values; the first
// frame is the object itself, whose members are the fields.
func fieldPath(stack []fieldFrame) string {
	var b strings.Builder
	for d, f := range stack {
		switch {
		case d == 0 && f.array:
			return ""
		case f.array:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		case f.key == "" && d == len(stack)-1:
			// An object whose next member's key is being read.
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
	}
	return b.String()
}
