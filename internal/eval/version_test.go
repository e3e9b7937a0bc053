package eval

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestVersionOf: the version is found at the top level of a flag's JSON
// only, as a plain integer, once; anything else makes the flag compare
// whole.
func TestVersionOf(t *testing.T) {
	for _, c := range []struct {
		raw   string
		value int64
		ok    bool
	}{
		{`{"on":true,"version":7}`, 7, true},
		{` { "version" : 0 , "on":true} `, 0, true},
		{`{"rules":[{"id":"version","version":3}],"x":{"version":4},"version":12}`, 12, true},
		{`{"description":"a \"version\": 5 in a string","version":9}`, 9, true},
		{`{"on":true}`, 0, false},              // no version
		{`{"version":1,"version":2}`, 2, true}, // twice: the last wins, as in the parser
		{`{"version":1,"on":true,"version":2}`, 2, true},
		{`{"version":1,"version":"2"}`, 0, false},
		{`{"versio\u006e":1,"version":2}`, 2, true},            // the last, plain, wins
		{`{"version":1,"versio\u006e":2,"on":true}`, 0, false}, // an escaped name, not last: compared whole
		{`{"version":01}`, 0, false},                           // not JSON
		{`{"version":1.0}`, 0, false},                          // a number the parser must judge
		{`{"version":-1}`, 0, false},                           // a problem
		{`{"version":"1"}`, 0, false},                          // a problem
		{`{"version":99999999999999999999}`, 0, false},         // beyond int64
		{`{"versio\u006e":1}`, 0, false},                       // an escaped name: compared whole
		{`{"version":1`, 0, false},                             // cut short
		{`{"a":[1,{"b":"]"}],"version":5}`, 5, true},           // brackets inside strings
		{`[1]`, 0, false},
		{``, 0, false},
	} {
		v := versionOf([]byte(c.raw))
		if v.ok != c.ok || v.ok && (v.value != c.value || c.raw[v.start:v.end] != itoa(c.value)) {
			t.Errorf("versionOf(%s) = %+v, want value %d ok %v", c.raw, v, c.value, c.ok)
		}
	}
}

func itoa(n int64) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestDefinitionsSharedAcrossVersions: flags that differ only in their
// versions share one Definition and keep their own versions; a difference
// anywhere else, or a version the parser must judge, compiles apart.
func TestDefinitionsSharedAcrossVersions(t *testing.T) {
	const rule = `"rules":[{"id":"r","clauses":[{"attribute":"email","op":"endsWith","values":["@corp.com"]}],"serve":{"variation":1}}]`
	s := Compile(docOf(t, 1, map[string]string{
		"a":    `{"on":true,"variations":[false,true],"fallthrough":{"variation":1},"version":3}`,
		"b":    `{"on":true,"variations":[false,true],"fallthrough":{"variation":1},"version":41}`,
		"c":    `{"on":true,"variations":[false,true],"fallthrough":{"variation":0},"version":3}`,
		"r1":   `{"version":1,"on":true,"variations":[false,true],` + rule + `,"fallthrough":{"variation":0}}`,
		"r2":   `{"version":2,"on":true,"variations":[false,true],` + rule + `,"fallthrough":{"variation":0}}`,
		"neg":  `{"on":true,"variations":[false,true],"fallthrough":{"variation":1},"version":-3}`,
		"dup":  `{"on":true,"variations":[false,true],"fallthrough":{"variation":1},"version":5,"version":6}`,
		"none": `{"on":true,"variations":[false,true],"fallthrough":{"variation":1}}`,
	}, nil))
	a, b, c := s.Flag("a"), s.Flag("b"), s.Flag("c")
	if a.Definition != b.Definition || a.Version != 3 || b.Version != 41 {
		t.Errorf("a, b (versions 3, 41): shared %v, versions %d %d", a.Definition == b.Definition, a.Version, b.Version)
	}
	if c.Definition == a.Definition || c.Fallthrough.Variation != 0 {
		t.Errorf("c differs in its fallthrough: shared %v", c.Definition == a.Definition)
	}
	r1, r2 := s.Flag("r1"), s.Flag("r2")
	if r1.Definition != r2.Definition || r1.Version != 1 || r2.Version != 2 || len(r2.Rules) != 1 {
		t.Errorf("r1, r2: shared %v, versions %d %d", r1.Definition == r2.Definition, r1.Version, r2.Version)
	}
	t.Run("versions the parser judges", func(t *testing.T) { checkJudgedVersions(t, s, a) })
}

// checkJudgedVersions checks the flags of TestDefinitionsSharedAcrossVersions
// whose version the parser must judge: a negative one is malformed and
// shares nothing with a, of the same bytes but for its version; two
// versions are a duplicate member, malformed; a missing one is 0.
func checkJudgedVersions(t *testing.T, s *Snapshot, a *Flag) {
	t.Helper()
	if neg := s.Flag("neg"); neg.Err == nil || neg.Definition == a.Definition {
		t.Errorf("version -3: error %v, shared %v", neg.Err, neg.Definition == a.Definition)
	}
	if dup := s.Flag("dup"); dup.Err == nil || !strings.Contains(dup.Err.Error(), "flags.dup.version: named twice") {
		t.Errorf("two versions: error %v, want the duplicate named", dup.Err)
	}
	if none := s.Flag("none"); none.Version != 0 || none.Err != nil {
		t.Errorf("no version: version %d, error %v", none.Version, none.Err)
	}
}

// FuzzVersionOf: in JSON the parser accepts, the version versionOf finds
// is the one member "version" the parser reads.
func FuzzVersionOf(f *testing.F) {
	f.Add([]byte(`{"on":true,"version":7}`))
	f.Add([]byte(`{"version":1,"version":2}`))
	f.Add([]byte(`{"version":1,"versio\u006e":2,"on":true}`))
	f.Add([]byte(`{"a":[1,{"b":"]\""}],"version":5 }`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v := versionOf(raw)
		tree, err := parseJSONIn(&arena{}, raw, flagLevel)
		obj, isObj := tree.(object)
		if !v.ok || err != nil || !isObj {
			return // versionOf follows only the structure; the parser judges the rest
		}
		got, _ := obj.get("version") // the last member named version, escapes decoded
		if num, _ := got.(json.Number); string(num) != itoa(v.value) || string(raw[v.start:v.end]) != itoa(v.value) {
			t.Fatalf("versionOf(%q) = %+v; the parser reads version %v", raw, v, got)
		}
	})
}
