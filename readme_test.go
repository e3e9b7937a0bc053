package flags_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/flagstream/flags"
)

// TestReadmeTour: the README's example document, evaluated for the tour's
// user, prints what the tour says it prints.
func TestReadmeTour(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	_, doc, ok := strings.Cut(readme, "## The document, by example")
	if ok {
		_, doc, ok = strings.Cut(doc, "```json\n")
	}
	if ok {
		doc, _, ok = strings.Cut(doc, "```")
	}
	_, said, found := strings.Cut(readme, "r.Reason.Kind, r.Reason.RuleID) // ")
	said, _, _ = strings.Cut(said, "\n")
	if !ok || !found {
		t.Fatal("README: the example document or the tour's printed line is not where this test looks")
	}
	c, err := flags.New(flags.WithDocument([]byte(doc)))
	if err != nil {
		t.Fatalf("the README's document: %v", err)
	}
	defer c.Close()
	if probs := c.Snapshot().Problems(); len(probs) > 0 {
		t.Errorf("the README's document has problems: %v", probs)
	}
	user := flags.NewContext("user-123").
		Set("email", "ann@corp.com").
		Set("country", "fr").
		Set("org", map[string]any{"id": "uni-7", "plan": "enterprise"}).
		Build()
	r := c.BoolDetail(context.Background(), "new-checkout", user, false)
	if got := fmt.Sprintln(r.Value, r.Variation, r.Version, r.Reason.Kind, r.Reason.RuleID); strings.TrimSpace(got) != said {
		t.Errorf("the tour prints %q with the README's document; the README says %q", strings.TrimSpace(got), said)
	}
}
