package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionLine says which flags this is: the module version it was built
// from ("(devel)" from a checkout), the commit and whether the tree had
// changes when build info records them, and the Go version.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "flags (no build information) " + runtime.Version()
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	line := fmt.Sprintf("flags %s", v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		line += fmt.Sprintf(" (%s%s)", rev, modified)
	}
	return line + " " + info.GoVersion
}
