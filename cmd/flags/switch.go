package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/flagstream/flags/rules"
)

// runSwitch implements `flags switch FLAG on|off`: the kill switch as one
// command. It sends PATCH /v1/admin/flags/FLAG with the merge patch
// {"on": false} (or true), which changes nothing else of the flag, so an
// operator token is enough (SPEC §10), and prints the flag's new version and
// the snapshot version that published it. With --if-match it changes the
// flag only if it is still at that version. Exit status: 0 once published;
// 2 for bad arguments or a refusal; 1 when the server cannot be reached or
// fails.
func runSwitch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, opts := newAdminFlags("flags switch", "an operator or admin token", stderr)
	ifMatch := fs.String("if-match", "", `switch only if the flag is still at this version (its ETag, "3" or 3)`)
	comment := fs.String("comment", "", "why: recorded in the audit log (X-Flags-Comment)")
	c, pos, code := opts.parse(fs, args, func(pos []string) string {
		switch {
		case len(pos) != 2 || (pos[1] != "on" && pos[1] != "off"):
			return "want FLAG on|off (usage: flags switch --url BASE [--token-file F] FLAG off)"
		case !rules.ValidKey(pos[0]):
			return fmt.Sprintf("%q is not a flag key", pos[0])
		}
		return ""
	})
	if c == nil {
		return code
	}
	key, state := pos[0], pos[1]
	tag := *ifMatch
	if tag != "" && !strings.HasPrefix(tag, `"`) {
		tag = `"` + tag + `"`
	}
	body := fmt.Sprintf(`{"on": %t}`, state == "on")
	a, code := c.call(ctx, stderr, "flags switch", http.MethodPatch, "/v1/admin/flags/"+url.PathEscape(key), []byte(body),
		"Content-Type", "application/merge-patch+json", "If-Match", tag, "X-Flags-Comment", *comment)
	if a == nil {
		return code
	}
	var patch struct {
		Version int64                      `json:"version"`
		Flags   map[string]json.RawMessage `json:"flags"`
	}
	var flagVersion struct {
		Version int64 `json:"version"`
	}
	if json.Unmarshal(a.body, &patch) != nil || json.Unmarshal(patch.Flags[key], &flagVersion) != nil {
		fmt.Fprintf(stderr, "flags switch: the server's answer does not decode: %s\n", a.body)
		return 1
	}
	fmt.Fprintf(stdout, "flags.%s %s: flag version %d, published as version %d\n", key, state, flagVersion.Version, patch.Version)
	return 0
}
