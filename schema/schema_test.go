package schema

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/flagstream/flags/internal/evalcases"
	"github.com/flagstream/flags/rules"
)

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSON))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("flags.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("flags.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, data []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return s.Validate(v)
}

// lintClean reports whether `flags lint` finds no problem in data (warnings
// about unknown members aside).
func lintClean(data []byte) bool {
	doc, err := rules.ParseDocument(data)
	if err != nil {
		return false
	}
	return len(rules.Validate(doc)) == 0
}

// TestTestdataDocumentsValidate: every well-formed document the repository
// ships validates: the quickstart and the documents of the evaluation
// cases whose flags lint finds clean.
func TestTestdataDocumentsValidate(t *testing.T) {
	s := compile(t)
	root := filepath.Join("..", "testdata")
	checked := 0
	quick, err := os.ReadFile(filepath.Join(root, "quickstart.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, s, quick); err != nil {
		t.Errorf("quickstart.json: %v", err)
	}
	checked++
	for _, cf := range evalcases.Read(t, filepath.Join(root, "eval")) {
		if !lintClean(cf.Document) {
			continue // a case file about malformed flags
		}
		if err := validate(t, s, cf.Document); err != nil {
			t.Errorf("%s: lint finds it clean, the schema refuses it: %v", cf.Path, err)
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d documents validated", checked)
	}
}

// TestSchemaAgreesWithLint: on documents whose problems are of shape, the
// schema refuses exactly those lint finds problems in.
func TestSchemaAgreesWithLint(t *testing.T) {
	s := compile(t)
	flag := func(members string) string {
		return `{"flags": {"f": {` + members + `}}}`
	}
	const ok = `"on": true, "variations": [false, true], "fallthrough": {"variation": 1}`
	good := []string{
		`{}`,
		`{"$schema": "https://github.com/flagstream/flags/schema/flags.schema.json", "version": 3}`,
		flag(ok),
		flag(ok + `, "offVariation": 0, "salt": "s", "description": "d", "tags": ["a"], "deprecated": true, "trackEvents": true`),
		flag(ok + `, "targets": [{"values": ["u1", 2, true], "variation": 0}, {"attribute": "email", "values": [], "variation": 1}]`),
		flag(ok + `, "rules": [{"id": "r", "clauses": [{"attribute": "org.plan", "op": "in", "values": ["pro"], "negate": true}], "serve": {"variation": 0}}]`),
		flag(ok + `, "rules": [{"clauses": [{"op": "inSegment", "values": ["s"]}, {"attribute": "x", "op": "exists"}], "serve": {"variation": 0}}]`),
		flag(`"on": true, "variations": ["a", "b"], "fallthrough": {"rollout": {"bucketBy": "orgId", "experiment": true,
		   "variations": [{"variation": 0, "weight": 25000}, {"variation": 1, "weight": 75000}]}}`),
		flag(`"on": true, "variations": ["a", "b"], "fallthrough": {"rollout": {"variations": [{"variation": 0}, {"variation": 1}],
		   "schedule": [{"at": "2026-12-01T00:00:00Z", "weights": [100000, 0]}, {"at": "2026-12-08T00:00:00Z", "weights": [0, 100000]}]}}`),
		flag(ok + `, "prerequisites": [{"flag": "g", "variation": 1}]`),
		flag(ok + `, "guard": {"metric": "errors", "better": "lower", "control": 0, "treatment": 1, "alpha": 0.01, "minUnits": 50,
		   "tripped": {"at": "2026-12-03T10:00:00Z", "pValue": 0.001, "units": [100, 98], "rates": [0.1, 0.2]}}`),
		`{"segments": {"beta": {"version": 2, "included": ["u1"], "excluded": ["u9"], "attribute": "key",
		   "rules": [{"id": "r", "clauses": [{"attribute": "country", "op": "in", "values": ["fr"]}], "weight": 50000, "bucketBy": "key", "salt": "x"}]}}}`,
	}
	bad := []string{
		`{"version": -1}`,
		`{"version": "3"}`,
		`{"flags": []}`,
		`{"flags": {"bad key!": {` + ok + `}}}`,
		flag(`"on": true, "variations": [false, true]`), // no fallthrough
		flag(`"on": "yes", "variations": [false, true], "fallthrough": {"variation": 0}`), // on not a bool
		flag(`"on": true, "variations": [], "fallthrough": {"variation": 0}`),
		flag(ok + `, "offVariation": -1`),
		flag(ok + `, "tags": "a"`),
		flag(ok + `, "trackEvents": 1`),
		flag(ok + `, "rules": [{"clauses": [{"attribute": "x", "op": "eq", "values": ["a"]}], "serve": {"variation": 0}}]`),
		flag(ok + `, "rules": [{"clauses": [{"attribute": "x", "op": "in", "values": ["a"]}]}]`), // no serve
		flag(ok + `, "targets": [{"values": [{"a": 1}], "variation": 0}]`),
		flag(ok + `, "prerequisites": [{"flag": "g"}]`),
		flag(`"on": true, "variations": [false, true], "fallthrough": {"variation": 1, "rollout": {"variations": [{"variation": 0, "weight": 100000}]}}`),
		flag(`"on": true, "variations": [false, true], "fallthrough": {}`),
		flag(`"on": true, "variations": [false, true], "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 100001}]}}`),
		flag(`"on": true, "variations": [false, true], "fallthrough": {"rollout": {"variations": [{"variation": 0}], "schedule": [{"at": "tomorrow", "weights": [100000]}]}}`),
		flag(ok + `, "guard": {"metric": "errors", "better": "smaller", "control": 0, "treatment": 1}`),
		flag(ok + `, "guard": {"metric": "errors", "better": "lower", "control": 0, "treatment": 1, "alpha": 1}`),
		flag(ok + `, "guard": {"metric": "errors", "better": "lower", "control": 0}`),
		`{"segments": {"s": {"included": "u1"}}}`,
		`{"segments": {"s": {"rules": [{"weight": -5}]}}}`,
	}
	for _, d := range good {
		if !lintClean([]byte(d)) {
			t.Errorf("the corpus is wrong: lint finds problems in a good document %s", d)
		}
		if err := validate(t, s, []byte(d)); err != nil {
			t.Errorf("schema refuses a good document %s: %v", d, err)
		}
	}
	for _, d := range bad {
		if lintClean([]byte(d)) {
			t.Errorf("the corpus is wrong: lint finds no problem in a bad document %s", d)
		}
		if err := validate(t, s, []byte(d)); err == nil {
			t.Errorf("schema accepts a bad document %s", strings.TrimSpace(d))
		}
	}
}
