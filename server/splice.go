package server

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Admin writes edit a document file in place (SPEC §13): only the bytes of
// the written member change. The new value takes the place of the old one
// (or follows the object's last member, or is cut out with its separator),
// written in the style of the value it replaces or of its neighbour:
// indented with the file's indentation when that costs at most twice the
// request body, else on one line. Every other byte of the file is kept, in
// its order, so a file kept in git shows the write as a change of that
// member's lines only.
//
// The scanner below reads documents that already parsed (rules.ParseDocument
// accepted them), so it only locates things; it still answers anything it
// does not expect with errSplice, never a panic, and never recurses.

// errSplice reports bytes the in-place editor cannot read: the file is not
// the document it was loaded as.
var errSplice = errors.New("not a JSON object as loaded")

// jsonMember is one member of a JSON object: byte offsets into the text.
type jsonMember struct {
	lead     int // just after the '{' or ',' before the member
	keyStart int // the key's opening quote
	keyEnd   int // just after the key's closing quote
	valStart int
	valEnd   int
	key      string
}

// jsonObject is an object's braces and members.
type jsonObject struct {
	open, close int // offsets of '{' and '}'
	members     []jsonMember
}

// last returns the index of the last member named key, or -1.
func (o *jsonObject) last(key string) int {
	for i := len(o.members) - 1; i >= 0; i-- {
		if o.members[i].key == key {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDelim(c byte) bool {
	switch c {
	case ',', ':', '{', '}', '[', ']', '"':
		return true
	}
	return isSpace(c)
}

func skipSpaceAt(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipString returns the offset just after the string whose quote is at i.
func skipString(data []byte, i int) (int, error) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errSplice
}

// skipValueAt returns the offset just after the value that starts at i.
// It counts brackets rather than recursing, so no nesting costs stack.
func skipValueAt(data []byte, i int) (int, error) {
	depth := 0
	for i < len(data) {
		switch c := data[i]; {
		case c == '{' || c == '[':
			depth++
			i++
			continue
		case c == '}' || c == ']':
			depth--
			i++
			if depth < 0 {
				return 0, errSplice
			}
		case isSpace(c) || c == ',' || c == ':':
			if depth == 0 {
				return 0, errSplice
			}
			i++
			continue
		default:
			end, err := skipToken(data, i)
			if err != nil {
				return 0, err
			}
			i = end
		}
		if depth == 0 {
			return i, nil
		}
	}
	return 0, errSplice
}

// skipToken returns the offset just after the string, number or literal
// that starts at i.
func skipToken(data []byte, i int) (int, error) {
	if data[i] == '"' {
		return skipString(data, i)
	}
	for i < len(data) && !isDelim(data[i]) {
		i++
	}
	return i, nil
}

// scanObject reads the members of the object whose '{' is at data[open].
func scanObject(data []byte, open int) (*jsonObject, error) {
	if open >= len(data) || data[open] != '{' {
		return nil, errSplice
	}
	o := &jsonObject{open: open}
	i := open + 1
	for {
		lead := i
		i = skipSpaceAt(data, i)
		if i >= len(data) {
			return nil, errSplice
		}
		if data[i] == '}' && len(o.members) == 0 {
			o.close = i
			return o, nil
		}
		m, err := scanMember(data, lead, i)
		if err != nil {
			return nil, err
		}
		o.members = append(o.members, m)
		i = skipSpaceAt(data, m.valEnd)
		if i >= len(data) {
			return nil, errSplice
		}
		switch data[i] {
		case ',':
			i++
		case '}':
			o.close = i
			return o, nil
		default:
			return nil, errSplice
		}
	}
}

// scanMember reads the member whose key's quote is expected at data[i],
// after the separator ending at lead: its key, colon and value.
func scanMember(data []byte, lead, i int) (jsonMember, error) {
	if data[i] != '"' {
		return jsonMember{}, errSplice
	}
	m := jsonMember{lead: lead, keyStart: i}
	var err error
	if m.keyEnd, err = skipString(data, i); err != nil {
		return jsonMember{}, err
	}
	if m.key, err = decodeKey(data[m.keyStart:m.keyEnd]); err != nil {
		return jsonMember{}, err
	}
	i = skipSpaceAt(data, m.keyEnd)
	if i >= len(data) || data[i] != ':' {
		return jsonMember{}, errSplice
	}
	m.valStart = skipSpaceAt(data, i+1)
	if m.valEnd, err = skipValueAt(data, m.valStart); err != nil {
		return jsonMember{}, err
	}
	return m, nil
}

// decodeKey decodes a quoted object key.
func decodeKey(quoted []byte) (string, error) {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", errSplice
	}
	return s, nil
}

// lineIndent returns the spaces and tabs between the start of pos's line and
// pos, and whether only those stand there.
func lineIndent(data []byte, pos int) (string, bool) {
	start := bytes.LastIndexByte(data[:pos], '\n') + 1
	for _, c := range data[start:pos] {
		if c != ' ' && c != '\t' {
			return "", false
		}
	}
	return string(data[start:pos]), true
}

// style is how a JSON value is laid out in a file.
type style struct {
	multiLine bool   // one member or element per line
	unit      string // indentation added per level (multiLine)
	spaced    bool   // one line with ": " and ", " (not multiLine)
}

// defaultUnit is the indentation used when a file shows none to copy.
const defaultUnit = "  "

// styleOf reads the layout of value, whose member starts a line indented
// by indent (ok false: it does not start a line).
func styleOf(value []byte, indent string, ok bool) style {
	if nl := bytes.IndexByte(value, '\n'); nl >= 0 && ok {
		next := value[nl+1:]
		n := 0
		for n < len(next) && (next[n] == ' ' || next[n] == '\t') {
			n++
		}
		unit := defaultUnit
		if ws := string(next[:n]); len(ws) > len(indent) && ws[:len(indent)] == indent {
			unit = ws[len(indent):]
		}
		return style{multiLine: true, unit: unit}
	}
	// One line: spaced when the first separator outside strings is
	// followed by a space.
	for i := 0; i < len(value); i++ {
		switch value[i] {
		case '"':
			end, err := skipString(value, i)
			if err != nil {
				return style{}
			}
			i = end - 1
		case ':', ',':
			return style{spaced: i+1 < len(value) && value[i+1] == ' '}
		}
	}
	return style{}
}

// render lays out the compact JSON value v in style st, for a member whose
// line is indented by indent, using nl as line break. It returns v itself
// when the layout would take more than limit bytes, so that a value nested
// deep is never inflated by indentation.
func render(v []byte, st style, indent, nl string, limit int) []byte {
	if !st.multiLine && !st.spaced {
		return v
	}
	r := renderer{st: st, indent: indent, nl: nl, out: make([]byte, 0, max(0, min(limit, 2*len(v)))+1)}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isSpace(c) {
			continue
		}
		if c != '"' {
			r.punct(c)
		} else {
			end, err := skipString(v, i)
			if err != nil {
				return v
			}
			r.breakAfterOpen(c)
			r.out = append(r.out, v[i:end]...)
			i = end - 1
		}
		if len(r.out) > limit {
			return v
		}
	}
	return r.out
}

// renderer is render's output and where it stands in the value.
type renderer struct {
	st         style
	indent, nl string
	out        []byte
	depth      int
	open       bool // just after '{' or '[': the break waits for the first member
}

// newline breaks the line and indents it for depth d.
func (r *renderer) newline(d int) {
	r.out = append(r.out, r.nl...)
	r.out = append(r.out, r.indent...)
	for range d {
		r.out = append(r.out, r.st.unit...)
	}
}

// breakAfterOpen puts the line break that an opening bracket left waiting
// before c, the first thing inside it (unless c closes it at once), and
// reports whether a bracket had just opened.
func (r *renderer) breakAfterOpen(c byte) bool {
	wasOpen := r.open
	if wasOpen && c != '}' && c != ']' && r.st.multiLine {
		r.newline(r.depth)
	}
	r.open = false
	return wasOpen
}

// punct writes c, anything but a string's quote, laid out.
func (r *renderer) punct(c byte) {
	wasOpen := r.breakAfterOpen(c)
	switch c {
	case '{', '[':
		r.out = append(r.out, c)
		r.depth++
		r.open = true
	case '}', ']':
		r.depth--
		if r.st.multiLine && !wasOpen {
			r.newline(r.depth)
		}
		r.out = append(r.out, c)
	case ',':
		r.out = append(r.out, ',')
		if r.st.multiLine {
			r.newline(r.depth)
		} else {
			r.out = append(r.out, ' ')
		}
	case ':':
		r.out = append(r.out, ':', ' ')
	default:
		r.out = append(r.out, c)
	}
}

// edit is one replacement of data[from:to].
type edit struct {
	from, to int
	text     []byte
}

func (e edit) apply(data []byte) []byte {
	out := make([]byte, 0, len(data)-(e.to-e.from)+len(e.text))
	out = append(out, data[:e.from]...)
	out = append(out, e.text...)
	return append(out, data[e.to:]...)
}

// spliceChange applies c to the document file data (empty: no file yet) in
// place, and reports whether anything changed. budget bounds what the file
// grows by (twice the request body): a new member may take that many bytes,
// a replaced value the old one's bytes and that many more; a layout that
// needs more is given up for the compact value.
func spliceChange(data []byte, c Change, budget int) ([]byte, bool, error) {
	section := "flags"
	if c.Kind == KindSegment {
		section = "segments"
	}
	nl := lineBreak(data)
	start := skipSpaceAt(data, 0)
	if start == len(data) { // a new file
		if c.Value == nil {
			return data, false, nil
		}
		return []byte("{" + freshMembers(c, section, nl, budget) + "}" + nl), true, nil
	}
	top, err := scanObject(data, start)
	if err != nil {
		return nil, false, err
	}
	if end := skipSpaceAt(data, top.close+1); end != len(data) {
		return nil, false, errSplice
	}
	i := top.last(section)
	if i < 0 || bytes.Equal(data[top.members[i].valStart:top.members[i].valEnd], []byte("null")) {
		if c.Value == nil {
			return data, false, nil
		}
		return spliceSectionAbsent(data, top, i, c, section, nl, budget), true, nil
	}
	if c.Value == nil {
		return deleteMember(data, top.members[i].valStart, c.Key)
	}
	return spliceSetMember(data, top, top.members[i], c, nl, budget)
}

// spliceSectionAbsent sets c in the section the top-level object top lacks
// (i < 0) or holds as null (its member i).
func spliceSectionAbsent(data []byte, top *jsonObject, i int, c Change, section, nl string, budget int) []byte {
	if len(top.members) == 0 { // {}
		return edit{top.open + 1, top.close, []byte(freshMembers(c, section, nl, budget))}.apply(data)
	}
	// The top level's members show its layout: one per line, indented
	// by unit, or all on one line.
	unit, multi := lineIndent(data, top.members[0].keyStart)
	if unit == "" {
		unit = defaultUnit
	}
	st := style{multiLine: multi, unit: unit}
	if i >= 0 { // "flags": null becomes the object
		m := top.members[i]
		indent, _ := lineIndent(data, m.keyStart)
		return edit{m.valStart, m.valEnd, []byte(oneMember(c, st, indent, nl, budget))}.apply(data)
	}
	// No such section yet: it follows the top level's last member.
	lastM := top.members[len(top.members)-1]
	indent, _ := lineIndent(data, lastM.keyStart)
	head := "," + memberHead(data, lastM, quoteKey(section))
	text := head + oneMember(c, st, indent, nl, budget-len(head))
	return edit{lastM.valEnd, lastM.valEnd, []byte(text)}.apply(data)
}

// spliceSetMember writes c's value into the section object held by the
// top-level member holder: in place of the key's last member, as the first
// member of an empty object, or after the last member.
func spliceSetMember(data []byte, top *jsonObject, holder jsonMember, c Change, nl string, budget int) ([]byte, bool, error) {
	obj, err := scanObject(data, holder.valStart)
	if err != nil {
		return nil, false, err
	}
	quoted := quoteKey(c.Key)
	if j := obj.last(c.Key); j >= 0 { // in place of the old value
		m := obj.members[j]
		if out, ok := keepLayout(data, m.valStart, m.valEnd, c.Value); ok {
			return out, true, nil
		}
		indent, ok := lineIndent(data, m.keyStart)
		st := styleOf(data[m.valStart:m.valEnd], indent, ok)
		// The file grows by at most budget: the new value may take the
		// old one's bytes and budget more (a small PATCH of an indented
		// flag keeps it indented).
		return edit{m.valStart, m.valEnd, render(c.Value, st, indent, nl, budget+m.valEnd-m.valStart)}.apply(data), true, nil
	}
	if len(obj.members) == 0 { // an empty object
		indent, ok := lineIndent(data, holder.keyStart)
		unit, _ := lineIndent(data, top.members[0].keyStart) // the top level's indentation
		text := quoted + ":" + string(c.Value)
		if ok && unit != "" { // members one per line: this one a level deeper than its holder
			st := style{multiLine: true, unit: unit}
			inner := indent + unit
			head := nl + inner + quoted + ": "
			text = head + string(render(c.Value, st, inner, nl, budget-len(head))) + nl + indent
		}
		return edit{obj.open + 1, obj.close, []byte(text)}.apply(data), true, nil
	}
	lastM, indent, st := newMemberLayout(data, obj)
	head := "," + memberHead(data, lastM, quoted)
	text := head + string(render(c.Value, st, indent, nl, budget-len(head)))
	return edit{lastM.valEnd, lastM.valEnd, []byte(text)}.apply(data), true, nil
}

// keepLayout writes the object newVal (compact) over the object at
// data[start:end] by replacing only the values that differ, when the two
// have the same members in the same order and every member that differs
// holds a scalar in both: a kill switch changes the bytes of "on" and
// "version" only, whatever the flag's layout (arrays on one line inside an
// indented flag, say, which render would redo one element a line). ok is
// false when the change is another: render lays the new value out.
func keepLayout(data []byte, start, end int, newVal []byte) ([]byte, bool) {
	if data[start] != '{' || len(newVal) == 0 || newVal[0] != '{' {
		return nil, false
	}
	old, err := scanObject(data, start)
	if err != nil || old.close != end-1 {
		return nil, false
	}
	nw, err := scanObject(newVal, 0)
	if err != nil || len(nw.members) != len(old.members) {
		return nil, false
	}
	var edits []edit
	for i, om := range old.members {
		nm := nw.members[i]
		if om.key != nm.key {
			return nil, false
		}
		ov, nv := data[om.valStart:om.valEnd], newVal[nm.valStart:nm.valEnd]
		same, scalars := sameJSON(ov, nv)
		if !same && !scalars {
			return nil, false // an object or array changed
		}
		if !same {
			edits = append(edits, edit{om.valStart, om.valEnd, nv})
		}
	}
	out := data
	for i := len(edits) - 1; i >= 0; i-- { // from the end: offsets before stay right
		out = edits[i].apply(out)
	}
	return out, true
}

// sameJSON reports whether the value old (as the file writes it) is the
// compact value nv, and else whether both are scalars (so that nv can take
// old's bytes without changing the layout around them).
func sameJSON(old, nv []byte) (same, scalars bool) {
	if bytes.Equal(old, nv) {
		return true, false
	}
	if isScalarJSON(old) && isScalarJSON(nv) {
		return false, true
	}
	var compact bytes.Buffer
	return json.Compact(&compact, old) == nil && bytes.Equal(compact.Bytes(), nv), false
}

// isScalarJSON reports whether v is a string, number, bool or null.
func isScalarJSON(v []byte) bool { return len(v) > 0 && v[0] != '{' && v[0] != '[' }

// newMemberLayout is where and how a new member of obj (which has members)
// goes: after its last member lastM, indented by indent and laid out in st
// like lastM, or like the last member holding an object when lastM holds a
// scalar (a new flag should look like the flags, not like a stray number).
func newMemberLayout(data []byte, obj *jsonObject) (lastM jsonMember, indent string, st style) {
	lastM = obj.members[len(obj.members)-1]
	like := lastM
	for k := len(obj.members) - 1; k >= 0; k-- {
		if data[obj.members[k].valStart] == '{' {
			like = obj.members[k]
			break
		}
	}
	indent, ok := lineIndent(data, lastM.keyStart)
	return lastM, indent, styleOf(data[like.valStart:like.valEnd], indent, ok)
}

// memberHead is what stands before a new member's value when it copies the
// layout of the member m: m's leading space, the quoted key, and m's colon
// with the space around it.
func memberHead(data []byte, m jsonMember, quoted string) string {
	return string(data[m.lead:m.keyStart]) + quoted + string(data[m.keyEnd:m.valStart])
}

// lineBreak is the line break the file data uses: CRLF when it holds one.
func lineBreak(data []byte) string {
	if bytes.Contains(data, []byte("\r\n")) {
		return "\r\n"
	}
	return "\n"
}

// quoteKey is key as a JSON string.
func quoteKey(key string) string {
	b, _ := marshalNoEscape(key) // a string always encodes
	return string(b)
}

// freshMembers is the inside of a new top-level object holding c alone, in
// the default layout: {"SECTION": {"KEY": VALUE}}, two spaces a level.
func freshMembers(c Change, section, nl string, budget int) string {
	st := style{multiLine: true, unit: defaultUnit}
	head := nl + defaultUnit + quoteKey(section) + ": "
	return head + oneMember(c, st, defaultUnit, nl, budget-len(head)-len(nl)) + nl
}

// oneMember is an object holding c's member alone: {"KEY": VALUE}, laid out
// in st for a holder indented by indent.
func oneMember(c Change, st style, indent, nl string, budget int) string {
	quoted := quoteKey(c.Key)
	if !st.multiLine {
		return "{" + quoted + ":" + string(c.Value) + "}"
	}
	inner := indent + st.unit
	head := "{" + nl + inner + quoted + ": "
	tail := nl + indent + "}"
	return head + string(render(c.Value, st, inner, nl, budget-len(head)-len(tail))) + tail
}

// deleteMember removes every member named key (the last one is the one that
// counts; an earlier duplicate would come back) from the object at open,
// with its separator, and reports whether there was one.
func deleteMember(data []byte, open int, key string) ([]byte, bool, error) {
	changed := false
	for {
		obj, err := scanObject(data, open)
		if err != nil {
			return nil, false, err
		}
		j := obj.last(key)
		if j < 0 {
			return data, changed, nil
		}
		changed = true
		m := obj.members[j]
		var e edit
		switch {
		case j > 0: // from the end of the previous value: its comma and this member
			e = edit{obj.members[j-1].valEnd, m.valEnd, nil}
		case len(obj.members) > 1: // the first: this member, its comma, up to the next key
			e = edit{m.keyStart, obj.members[1].keyStart, nil}
		default: // the only one: the object becomes {}
			e = edit{obj.open + 1, obj.close, nil}
		}
		data = e.apply(data)
	}
}
