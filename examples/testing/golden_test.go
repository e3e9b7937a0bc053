package shop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flagstream/flags"
	"github.com/flagstream/flags/flagstest"
)

var update = flag.Bool("update", false, "rewrite testdata/details.golden")

// TestEvaluationDetails evaluates every flag of testdata/flags.json for a
// set of users and compares the details (value, variation, version,
// reason) with testdata/details.golden, one JSON line per evaluation in
// the shape of `flags eval`. After an intended change, run
//
//	go test ./examples/testing -run TestEvaluationDetails -update
//
// and review the golden file's diff.
func TestEvaluationDetails(t *testing.T) {
	td := flagstest.New(t, flagstest.FromFile(t, "testdata/flags.json"))
	users := []flags.Context{
		flags.NewContext("vip-42").Build(),
		flags.NewContext("marie").Set("country", "fr").Build(),
		flags.NewContext("user-1").Build(),
		flags.NewContext("user-3").Set("country", "de").Build(),
		flags.ContextFromMap(map[string]any{"country": "fr"}), // no key: INVALID_CONTEXT
	}
	var got bytes.Buffer
	for _, u := range users {
		who, _ := json.Marshal(u)
		got.WriteString("# " + string(who) + "\n")
		for r := range td.Client.AllFlags(context.Background(), u).All() {
			line, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			got.Write(line)
			got.WriteByte('\n')
		}
	}

	const golden = "testdata/details.golden"
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", golden)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")); diff != "" {
		t.Errorf("evaluation details differ from %s (-want +got):\n%s\nrun with -update if the change is intended", golden, diff)
	}
}
