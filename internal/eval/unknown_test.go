package eval

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func unknownStrings(us []*UnknownField) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.String())
	}
	return out
}

// TestLintWarnsOnUnknownFields: the typos "enabled" and "negated" (and an
// unknown member at every level the format describes) are found, with their
// path and what they probably mean, while evaluation still ignores them.
func TestLintWarnsOnUnknownFields(t *testing.T) {
	doc := `{
	  "version": 3, "flag": {},
	  "flags": {
	    "new-checkout": {
	      "enabled": true, "on": true, "variations": [{"anything": 1}, {"enabled": 2}],
	      "prerequisites": [{"flag": "other", "variation": 0, "value": 1}],
	      "targets": [{"attr": "email", "values": ["a@b"], "variation": 1}],
	      "rules": [{"id": "r", "clauses": [
	          {"attribute": "plan", "op": "in", "values": ["pro"]},
	          {"attribute": "country", "operator": "in", "op": "in", "value": ["fr"], "values": ["fr"], "negated": true}],
	        "serve": {"rollout": {"bucketBy": "key", "experimnet": true,
	          "variations": [{"variation": 0, "weight": 50000, "wieght": 1}, {"variation": 1, "weight": 50000}],
	          "schedule": [{"at": 0, "weights": [50000, 50000], "note": "x"}]}, "varation": 1}}],
	      "fallthrough": {"variation": 0, "comment": "?"},
	      "BucketBy": "key"
	    },
	    "other": {"on": true, "variations": [1, 2], "fallthrough": {"variation": 0}, "": 1, "a.b": 2}
	  },
	  "segments": {
	    "beta": {"include": ["u1"], "rules": [{"clauses": [{"op": "exists", "attribute": "x", "negate": false}], "wieght": 5, "description": "d"}]}
	  }
	}`
	got, err := UnknownFields([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`flag: unknown field, ignored; did you mean "flags"?`,
		`flags.new-checkout.enabled: unknown field, ignored; did you mean "on"?`,
		`flags.new-checkout.BucketBy: unknown field, ignored`,
		`flags.new-checkout.prerequisites[0].value: unknown field, ignored`,
		`flags.new-checkout.targets[0].attr: unknown field, ignored; did you mean "attribute"?`,
		`flags.new-checkout.rules[0].clauses[1].operator: unknown field, ignored; did you mean "op"?`,
		`flags.new-checkout.rules[0].clauses[1].value: unknown field, ignored; did you mean "values"?`,
		`flags.new-checkout.rules[0].clauses[1].negated: unknown field, ignored; did you mean "negate"?`,
		`flags.new-checkout.rules[0].serve.varation: unknown field, ignored; did you mean "variation"?`,
		`flags.new-checkout.rules[0].serve.rollout.experimnet: unknown field, ignored; did you mean "experiment"?`,
		`flags.new-checkout.rules[0].serve.rollout.variations[0].wieght: unknown field, ignored; did you mean "weight"?`,
		`flags.new-checkout.rules[0].serve.rollout.schedule[0].note: unknown field, ignored`,
		`flags.new-checkout.fallthrough.comment: unknown field, ignored`,
		`flags.other."": unknown field, ignored`,
		`flags.other."a.b": unknown field, ignored`,
		`segments.beta.include: unknown field, ignored; did you mean "included"?`,
		`segments.beta.rules[0].wieght: unknown field, ignored; did you mean "weight"?`,
		`segments.beta.rules[0].description: unknown field, ignored`,
	}
	if diff := cmp.Diff(want, unknownStrings(got)); diff != "" {
		t.Errorf("UnknownFields (-want +got):\n%s", diff)
	}
	if g := got[1]; g.Kind != "flag" || g.Key != "new-checkout" || g.Field != "" || g.Name != "enabled" || g.Suggestion != "on" {
		t.Errorf("UnknownFields[1] = %+v", *g)
	}
	if g := got[7]; g.Field != "rules[0].clauses[1]" || g.Path() != "flags.new-checkout.rules[0].clauses[1].negated" {
		t.Errorf("UnknownFields[7] = %+v, path %s", *g, g.Path())
	}

	// SPEC §1: unknown fields are ignored by evaluation; only lint warns.
	parsed, err := ParseDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ps := Compile(parsed).Problems(); len(ps) != 0 {
		t.Errorf("Compile: problems %v, want none (unknown fields are ignored)", problemStrings(ps))
	}
}

func TestUnknownFieldsRepeatedMembers(t *testing.T) {
	// A repeated unknown member is listed once; of a repeated known member
	// only the last (the one evaluation reads) is checked.
	doc := `{"flags":{"f":{"x":1,"x":2,"on":true,"variations":[1],
		"fallthrough":{"variation":0,"typo":1},"fallthrough":{"variation":0,"other":1}}}}`
	got, err := UnknownFields([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`flags.f.x: unknown field, ignored`,
		`flags.f.fallthrough.other: unknown field, ignored`,
	}
	if diff := cmp.Diff(want, unknownStrings(got)); diff != "" {
		t.Errorf("UnknownFields (-want +got):\n%s", diff)
	}
}

func TestUnknownFieldsSkipsWhatIsNotChecked(t *testing.T) {
	// Wrong shapes are problems, not unknown fields; data is not checked.
	doc := `{"flags":{"a":[1],"b":null,"c":{"rules":{"x":1},"fallthrough":[{"y":1}],"variations":[{"z":1}],"tags":[{"t":1}]}},
		"segments":{"s":"nope","t":{"included":[{"k":1}]}}}`
	got, err := UnknownFields([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("UnknownFields = %q, want none", unknownStrings(got))
	}
}

func TestUnknownFieldsInvalidDocument(t *testing.T) {
	for _, doc := range []string{`{`, `[]`, `null`, `{"flags":[]}`, `{"version":"1"}`, `{"a":1}x`} {
		_, err := UnknownFields([]byte(doc))
		_, perr := ParseDocument([]byte(doc))
		if !errors.Is(err, ErrInvalidDocument) || perr == nil {
			t.Errorf("UnknownFields(%s) = %v, want ErrInvalidDocument (ParseDocument: %v)", doc, err, perr)
		}
	}
	got, err := UnknownFields([]byte(` {} `))
	if err != nil || len(got) != 0 {
		t.Errorf("UnknownFields({}) = %v, %v; want nothing", got, err)
	}
}

func TestSuggestField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		object *knownObject
		want   string
	}{
		{"enabled", flagFields, "on"},
		{"Enabled", flagFields, "on"},
		{"negated", clauseFields, "negate"},
		{"operator", clauseFields, "op"},
		{"attr", clauseFields, "attribute"},
		{"attr", targetFields, "attribute"},
		{"value", clauseFields, "values"},
		{"variant", serveFields, "variation"},
		{"variants", flagFields, "variations"},
		{"enabled", clauseFields, ""}, // a synonym only where its field is
		{"value", serveFields, ""},    // no "values" in a serve
		{"OFFVARIATION", flagFields, "offVariation"},
		{"fallthruogh", flagFields, "fallthrough"}, // two edits
		{"falltrough", flagFields, "fallthrough"},
		{"fallthr", flagFields, ""},        // four
		{"negaet", clauseFields, "negate"}, // a swap is one edit
		{"id", clauseFields, ""},           // "op" is two edits, as long as the name
		{"om", flagFields, "on"},
		{"saltt", segmentRuleFields, "salt"},
		{"bucket_by", rolloutFields, "bucketBy"},
		{"wieghts", scheduleStepFields, "weights"},
		{"flgs", documentFields, "flags"},
		{"versoin", segmentFields, "version"},
		{"übersetzung", flagFields, ""},
	} {
		if got := suggestField(tc.name, tc.object); got != tc.want {
			t.Errorf("suggestField(%q, %s) = %q, want %q", tc.name, tc.object.name, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		limit int
		want  int
	}{
		{"", "", 2, 0},
		{"on", "on", 2, 0},
		{"on", "om", 2, 1},
		{"negate", "negaet", 2, 1},
		{"kitten", "sitting", 5, 3},
		{"kitten", "sitting", 2, 3},
		{"a", "abcdef", 2, 3},
		{"ça", "ca", 2, 1},
	} {
		if got := editDistance(tc.a, tc.b, tc.limit); got != tc.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tc.a, tc.b, tc.limit, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a, tc.limit); got != tc.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tc.b, tc.a, tc.limit, got, tc.want)
		}
	}
}

// fullDocument uses every field of the format, with valid values.
const fullDocument = `{
  "$schema": "../schema/flags.schema.json",
  "version": 5,
  "flags": {
    "full": {
      "version": 2, "on": true, "variations": ["a", "b", "c"], "offVariation": 0,
      "prerequisites": [{"flag": "other", "variation": 1}],
      "targets": [{"attribute": "email", "values": ["x@example.com"], "variation": 2}],
      "rules": [{
        "id": "r1", "description": "beta users",
        "clauses": [
          {"attribute": "country", "op": "in", "values": ["fr"], "negate": true},
          {"op": "inSegment", "values": ["beta"]}
        ],
        "serve": {"rollout": {
          "bucketBy": "org.id", "salt": "s", "experiment": true,
          "variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}],
          "schedule": [{"at": "2026-01-01T00:00:00Z", "weights": [100000, 0]},
                       {"at": 1798761600000, "weights": [0, 100000]}]
        }}
      }],
      "fallthrough": {"variation": 1},
      "salt": "full-salt", "description": "everything", "tags": ["t"], "deprecated": false,
      "trackEvents": true,
      "guard": {"metric": "errors", "better": "lower", "control": 0, "treatment": 1, "alpha": 0.05, "minUnits": 100,
                "tripped": {"at": "2026-01-02T00:00:00Z", "pValue": 0.01, "units": [100, 100], "rates": [0.1, 0.2]}}
    },
    "other": {"on": true, "variations": [false, true], "fallthrough": {"variation": 1}}
  },
  "segments": {
    "beta": {
      "version": 1, "included": ["u1"], "excluded": ["u2"], "attribute": "key",
      "rules": [{"id": "sr", "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                 "weight": 25000, "bucketBy": "key", "salt": "beta-salt"}]
    }
  }
}`

// knownPairs lists every (object, field) of the table reachable from the
// top level.
func knownPairs() map[string]bool {
	pairs := map[string]bool{}
	var walk func(o *knownObject)
	walk = func(o *knownObject) {
		for name, f := range o.fields {
			key := o.name + "." + name
			if pairs[key] {
				continue
			}
			pairs[key] = true
			if f.obj != nil {
				walk(f.obj)
			}
			if f.items != nil {
				walk(f.items)
			}
		}
	}
	walk(documentFields)
	walk(flagFields)
	walk(segmentFields)
	return pairs
}

// TestUnknownFieldsTableMatchesCompiler checks the table of known fields
// against the compiler with a document that uses every field: the document
// is valid and has no unknown field; it uses every field of the table; and
// each field it uses, given a value of the wrong type, makes the compiler
// report a problem at that field (so the compiler reads it), except the
// fields SPEC §7 and §9 add, which evaluation does not read yet.
func TestUnknownFieldsTableMatchesCompiler(t *testing.T) {
	doc, err := ParseDocument([]byte(fullDocument))
	if err != nil {
		t.Fatal(err)
	}
	if ps := Compile(doc).Problems(); len(ps) != 0 {
		t.Fatalf("the full document has problems: %q", problemStrings(ps))
	}
	got, err := UnknownFields([]byte(fullDocument))
	if err != nil || len(got) != 0 {
		t.Fatalf("UnknownFields(full document) = %q, %v; want none", unknownStrings(got), err)
	}
	pairs := knownPairs()
	t.Run("the document uses every field", func(t *testing.T) {
		visited := visitedFields(t, doc)
		var missing []string
		for pair := range pairs {
			if !visited[pair] {
				missing = append(missing, pair)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Fatalf("the full document does not use %q", missing)
		}
	})
	t.Run("the compiler reads every field", func(t *testing.T) {
		for _, pair := range sortedKeys(pairs) {
			if pair == "document.$schema" {
				continue // for editors (a JSON Schema's address): known, read by nothing
			}
			checkCompilerReads(t, pair)
		}
	})
}

// visitedFields is the set of object.field pairs of the known-fields table
// that the full document doc uses.
func visitedFields(t *testing.T, doc *Document) map[string]bool {
	t.Helper()
	visited := map[string]bool{}
	w := &unknownWalker{visit: func(o *knownObject, name, _ string) { visited[o.name+"."+name] = true }}
	names, err := topLevelNames([]byte(fullDocument))
	if err != nil {
		t.Fatal(err)
	}
	w.names(names, documentFields, "", "", "")
	for key, raw := range doc.Flags {
		tree, _ := parseJSON(raw)
		w.object(tree.(object), flagFields, "flag", key, "")
	}
	for key, raw := range doc.Segments {
		tree, _ := parseJSON(raw)
		w.object(tree.(object), segmentFields, "segment", key, "")
	}
	return visited
}

// checkCompilerReads gives the field pair (object.field) a value of the
// wrong type wherever the full document uses it, and checks that the
// document is then invalid (a document field) or the compiler reports a
// problem at the field.
func checkCompilerReads(t *testing.T, pair string) {
	t.Helper()
	data, paths := withWrongType(t, pair)
	mutated, err := ParseDocument(data)
	if strings.HasPrefix(pair, "document.") {
		if err == nil {
			t.Errorf("%s of the wrong type: the document is not invalid", pair)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", pair, err)
	}
	if !problemAt(Compile(mutated).Problems(), paths) {
		t.Errorf("%s of the wrong type at %q: no problem there, so the compiler does not read it", pair, paths)
	}
}

// withWrongType is the full document with every occurrence of the field
// pair given a value of the wrong type (an array where an object is
// wanted, an object elsewhere), and the paths of those occurrences.
func withWrongType(t *testing.T, pair string) (data []byte, paths []string) {
	t.Helper()
	var tree map[string]any
	dec := json.NewDecoder(strings.NewReader(fullDocument))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		t.Fatal(err)
	}
	plainOccurrences(tree, func(o *knownObject, name, path string, f knownField, set func(any)) {
		if o.name+"."+name != pair {
			return
		}
		paths = append(paths, path)
		if f.obj != nil || o == documentFields {
			set([]any{}) // wants an object
		} else {
			set(map[string]any{}) // wants anything but an object
		}
	})
	data, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	return data, paths
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func problemAt(ps []*Problem, paths []string) bool {
	for _, p := range ps {
		for _, path := range paths {
			got := p.Path()
			if got == path || strings.HasPrefix(got, path+".") || strings.HasPrefix(got, path+"[") {
				return true
			}
		}
	}
	return false
}

// plainOccurrences calls found for every known member of a document decoded
// by encoding/json, with its path and a function that replaces its value.
func plainOccurrences(top map[string]any, found func(o *knownObject, name, path string, f knownField, set func(any))) {
	var walk func(m map[string]any, known *knownObject, kind, key, field string)
	walk = func(m map[string]any, known *knownObject, kind, key, field string) {
		for name, v := range m {
			f, ok := known.fields[name]
			if !ok {
				continue
			}
			path := joinField(field, name)
			found(known, name, (&Problem{Kind: kind, Key: key, Field: path}).Path(), f, func(nv any) { m[name] = nv })
			if c, ok := v.(map[string]any); ok && f.obj != nil {
				walk(c, f.obj, kind, key, path)
			}
			if items, ok := v.([]any); ok && f.items != nil {
				for i, item := range items {
					if c, ok := item.(map[string]any); ok {
						walk(c, f.items, kind, key, path+"["+strconv.Itoa(i)+"]")
					}
				}
			}
		}
	}
	for name := range top {
		n := name
		found(documentFields, name, name, documentFields.fields[name], func(nv any) { top[n] = nv })
	}
	for kind, known := range map[string]*knownObject{"flag": flagFields, "segment": segmentFields} {
		members, _ := top[kind+"s"].(map[string]any)
		for key, v := range members {
			if m, ok := v.(map[string]any); ok {
				walk(m, known, kind, key, "")
			}
		}
	}
}

// TestUnknownFieldsCoverCompilerReads reads the rules package's source for
// the member names the compiler reads (o.get("x"), ps.str(o, "x", ...) and
// the like) and checks that the table knows each: a field added to the
// compiler but not to the table would be warned about as unknown.
func TestUnknownFieldsCoverCompilerReads(t *testing.T) {
	known := map[string]bool{}
	for pair := range knownPairs() {
		known[pair[strings.LastIndexByte(pair, '.')+1:]] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	reads := regexp.MustCompile(`\.(?:get|val)\("([A-Za-z]+)"\)|ps\.([a-zA-Z0-9]+)\([a-zA-Z]+, "([A-Za-z]+)"`)
	found := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") || file == "unknown.go" {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range reads.FindAllSubmatch(src, -1) {
			name := string(m[1])
			if name == "" {
				if string(m[2]) == "add" {
					continue // ps.add(field, "message")
				}
				name = string(m[3])
			}
			found++
			if !known[name] {
				t.Errorf("%s reads the member %q, which the table of known fields (unknown.go) lacks", file, name)
			}
		}
	}
	if found < 40 {
		t.Errorf("found %d member reads in the compiler, want at least 40: has its source changed shape? Update the pattern", found)
	}
}

// TestUnknownFieldsLinear: the cost of UnknownFields grows with the size of
// the document, however many members one object has or however long a name
// is (no member looked up by a scan of its object; no edit distance computed
// for names of very different lengths). Sixteen times the members must cost
// well under the 256 times a quadratic scan would (measured: 19-24x linear,
// 135-520x with a scan per member).
func TestUnknownFieldsLinear(t *testing.T) {
	doc := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`{"flags":{"f":{"on":true,"variations":[1],"fallthrough":{"variation":0}`)
		for i := range n {
			fmt.Fprintf(&b, `,"rules":[],"x%d":1`, i)
		}
		b.WriteString(`,"` + strings.Repeat("y", 16*n) + `":1}}}`)
		return []byte(b.String())
	}
	measure := func(n int) float64 {
		data := doc(n)
		got, err := UnknownFields(data)
		if err != nil || len(got) != n+1 {
			t.Fatalf("UnknownFields(%d members) = %d fields, %v", n, len(got), err)
		}
		best := 0.0
		for range 3 { // the least of three: the others were disturbed
			r := testing.Benchmark(func(b *testing.B) {
				for range b.N {
					UnknownFields(data)
				}
			})
			if ns := float64(r.NsPerOp()); best == 0 || ns < best {
				best = ns
			}
		}
		return best
	}
	if bt := flag.Lookup("test.benchtime"); bt != nil { // 1 s a measurement is more than needed
		old := bt.Value.String()
		bt.Value.Set("100ms")
		defer bt.Value.Set(old)
	}
	small, large := measure(1000), measure(16000)
	t.Logf("%.0f ns, %.0f ns: %.1fx", small, large, large/small)
	if ratio := large / small; ratio > 64 {
		t.Errorf("16x the members cost %.1fx the time (%.0f ns, %.0f ns), want about 16x", ratio, small, large)
	}
}
