package flags

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryImportsNoThirdPartyModule: "every program that imports flags
// — even one reading a file or using only flagstest — compiles r3labs/sse,
// the backoff library and x/net". The import closures of package flags and
// of package flagstest hold the standard library and this module's own
// packages only; the stream client (and its SSE reader) is opted into by
// importing package stream. Package flags imports no floor above its own
// (docs/ARCHITECTURE.md).
func TestLibraryImportsNoThirdPartyModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list the imports with")
	}
	const module = "github.com/flagstream/flags"
	above := map[string]bool{module + "/stream": true, module + "/server": true, module + "/flagstest": true}
	for _, pkg := range []string{".", "./flagstest"} {
		cmd := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg)
		cmd.Stderr = new(strings.Builder)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, cmd.Stderr)
		}
		var own, foreign []string
		for _, dep := range strings.Fields(string(out)) {
			if dep == module || strings.HasPrefix(dep, module+"/") {
				own = append(own, dep)
			} else {
				foreign = append(foreign, dep)
			}
		}
		if len(foreign) > 0 {
			t.Errorf("%s imports, directly or not, packages of other modules:\n\t%s", pkg, strings.Join(foreign, "\n\t"))
		}
		if len(own) == 0 {
			t.Errorf("go list -deps %s listed nothing of %s: %q", pkg, module, out)
		}
		if pkg != "." {
			continue
		}
		for _, dep := range own {
			if above[dep] {
				t.Errorf("package flags imports %s, a floor above its own", dep)
			}
		}
	}
}
