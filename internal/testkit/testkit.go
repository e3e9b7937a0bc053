// Package testkit holds what the module's tests in several packages share:
// a concurrency-safe output buffer and the generation document the
// listener tests of flags and stream both publish. Only tests import it.
package testkit

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/flagstream/flags/rules"
)

// SyncBuffer is an io.Writer that a program's goroutines and the test
// read and write at the same time (a logger's output, a command's stdout).
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns the complete lines written so far (a line still being
// written is left out).
func (s *SyncBuffer) Lines() []string {
	out := s.String()
	i := strings.LastIndexByte(out, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(out[:i], "\n")
}

// GenDoc is the document of generation gen: "gen" serves gen, "label"
// serves "g<gen>" (so a snapshot read whole must agree with "gen"),
// "stable" never changes, and "beta" serves true to the members of segment
// "testers", which holds the given keys.
func GenDoc(t testing.TB, version int64, gen int, testers ...string) *rules.Document {
	t.Helper()
	if testers == nil {
		testers = []string{}
	}
	ts, err := json.Marshal(testers)
	if err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf(`{"version":%d,"flags":{
		"gen":{"on":true,"variations":[%d],"fallthrough":{"variation":0}},
		"label":{"on":true,"variations":["g%d"],"fallthrough":{"variation":0}},
		"stable":{"on":true,"variations":["same"],"fallthrough":{"variation":0}},
		"beta":{"on":true,"variations":[false,true],
			"rules":[{"id":"t","clauses":[{"op":"inSegment","values":["testers"]}],"serve":{"variation":1}}],
			"fallthrough":{"variation":0}}},
		"segments":{"testers":{"included":%s}}}`, version, gen, gen, ts)
	doc, err := rules.ParseDocument([]byte(data))
	if err != nil {
		t.Fatalf("GenDoc: %v", err)
	}
	return doc
}
