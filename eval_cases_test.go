package flags

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/flagstream/flags/internal/evalcases"
	"github.com/google/go-cmp/cmp"
)

// defaultCaseTime is the clock of cases that do not set "at".
var defaultCaseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestEvalCases runs the conformance cases written from SPEC alone.
func TestEvalCases(t *testing.T) {
	files := evalcases.Read(t, "testdata/eval")
	total := 0
	for _, cf := range files {
		t.Run(filepath.Base(cf.Path), func(t *testing.T) {
			now := defaultCaseTime
			client, err := New(WithDocument(cf.Document), WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer client.Close()
			for _, tc := range cf.Cases {
				total++
				t.Run(tc.Name, func(t *testing.T) {
					now = defaultCaseTime
					if tc.At != "" {
						if now, err = time.Parse(time.RFC3339Nano, tc.At); err != nil {
							t.Fatalf("at: %v", err)
						}
					}
					ec, err := ContextFromJSON(tc.Context)
					if err != nil {
						t.Fatalf("context: %v", err)
					}
					got := evalTyped(t, client, tc.Flag, ec, tc.Type, tc.Default)
					var gotAny, wantAny map[string]any
					if err := json.Unmarshal(got, &gotAny); err != nil {
						t.Fatal(err)
					}
					delete(gotAny, "flag")
					if err := json.Unmarshal(tc.Want, &wantAny); err != nil {
						t.Fatalf("want: %v", err)
					}
					if diff := cmp.Diff(wantAny, gotAny); diff != "" {
						t.Errorf("%s: evaluation mismatch (-want +got):\n%s", tc.Flag, diff)
					}
				})
			}
		})
	}
	t.Logf("%d cases in %d files", total, len(files))
}

// decodeDefault decodes a case's default as a T; the zero T when the case
// gives none.
func decodeDefault[T any](t *testing.T, def json.RawMessage) T {
	t.Helper()
	var d T
	if len(def) > 0 {
		if err := json.Unmarshal(def, &d); err != nil {
			t.Fatalf("default %s for type %T: %v", def, d, err)
		}
	}
	return d
}

// evalTyped evaluates through the typed getter the case asks for and returns
// the result in the `flags eval` JSON shape.
func evalTyped(t *testing.T, c *Client, key string, ec Context, typ string, def json.RawMessage) []byte {
	t.Helper()
	ctx := context.Background()
	var out any
	switch typ {
	case "bool":
		out = c.BoolDetail(ctx, key, ec, decodeDefault[bool](t, def))
	case "string":
		out = c.StringDetail(ctx, key, ec, decodeDefault[string](t, def))
	case "int":
		out = c.IntDetail(ctx, key, ec, decodeDefault[int](t, def))
	case "float":
		out = c.FloatDetail(ctx, key, ec, decodeDefault[float64](t, def))
	case "json":
		var d json.RawMessage
		if len(def) > 0 {
			d = def
		}
		out = c.JSONDetail(ctx, key, ec, d)
	case "", "any":
		out = c.Value(ctx, key, ec, decodeDefault[any](t, def))
	default:
		t.Fatalf("unknown case type %q", typ)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
