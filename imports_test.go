package flags

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestLibraryImportsNoThirdPartyModule: "every program that imports flags
// compiles r3labs/sse, the backoff library and x/net". The root package's
// import closure holds the standard library and this module's own packages
// only; the stream client (and its SSE reader) is opted into by importing
// package stream.
func TestLibraryImportsNoThirdPartyModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool to list the imports with")
		}
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
	cmd.Stderr = new(strings.Builder)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, cmd.Stderr)
	}
	const module = "github.com/flagstream/flags"
	var own, foreign []string
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == module || strings.HasPrefix(pkg, module+"/") {
			own = append(own, pkg)
		} else {
			foreign = append(foreign, pkg)
		}
	}
	if len(foreign) > 0 {
		t.Errorf("package flags imports, directly or not, packages of other modules:\n\t%s", strings.Join(foreign, "\n\t"))
	}
	if len(own) == 0 {
		t.Errorf("go list -deps listed nothing of %s: %q", module, out)
	}
	for _, pkg := range own {
		if pkg == module+"/stream" || pkg == module+"/server" || pkg == module+"/flagstest" {
			t.Errorf("package flags imports %s, a floor above it (docs/ARCHITECTURE.md)", pkg)
		}
	}
}
