package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"

	"github.com/flagstream/flags/internal/limited"
)

// maxPushFileBytes bounds the document `flags push` reads (the server's own
// default limit is 64 MiB too).
const maxPushFileBytes = 64 << 20

// runPush implements `flags push` (SPEC §10): it sends a document file to
// PUT /v1/admin/document, which replaces every flag and segment at once, and
// prints the version published and what changed. Exit status: 0 once the
// server has published it (or found nothing to change); 2 for bad
// arguments, an unreadable file, or a refusal (every problem the server
// names is printed on stderr); 1 when the server cannot be reached or
// fails.
func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, opts := newAdminFlags("flags push", "the admin token", stderr)
	ifMatch := fs.String("if-match", "", `push only if the server still serves this snapshot ETag ("EPOCH:VERSION", from GET /v1/flags)`)
	comment := fs.String("comment", "", "why: recorded in the audit log (X-Flags-Comment)")
	c, files, code := opts.parse(fs, args, func(files []string) string {
		if len(files) != 1 {
			return "want one FILE (usage: flags push --url BASE [--token-file F] FILE)"
		}
		return ""
	})
	if c == nil {
		return code
	}
	doc, err := limited.ReadFile(files[0], maxPushFileBytes)
	if err != nil {
		fmt.Fprintf(stderr, "flags push: %v\n", err)
		return 2
	}
	a, code := c.call(ctx, stderr, "flags push", http.MethodPut, "/v1/admin/document", doc,
		"Content-Type", "application/json", "If-Match", *ifMatch, "X-Flags-Comment", *comment)
	if a == nil {
		return code
	}
	var patch struct {
		Version  int64                      `json:"version"`
		Flags    map[string]json.RawMessage `json:"flags"`
		Segments map[string]json.RawMessage `json:"segments"`
	}
	if err := json.Unmarshal(a.body, &patch); err != nil {
		fmt.Fprintf(stderr, "flags push: the server's answer does not decode: %v\n", err)
		return 1
	}
	if len(patch.Flags)+len(patch.Segments) == 0 {
		fmt.Fprintf(stdout, "version %d: nothing changed\n", patch.Version)
		return 0
	}
	fmt.Fprintf(stdout, "version %d\n", patch.Version)
	for _, part := range []struct {
		name string
		m    map[string]json.RawMessage
	}{{"flags", patch.Flags}, {"segments", patch.Segments}} {
		for _, key := range slices.Sorted(maps.Keys(part.m)) {
			what := "set"
			if string(part.m[key]) == "null" {
				what = "deleted"
			}
			fmt.Fprintf(stdout, "  %s.%s %s\n", part.name, key, what)
		}
	}
	return 0
}
