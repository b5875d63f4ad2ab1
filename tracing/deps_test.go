package tracing_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Tracing is opt-in down to the build: the bus, and the transports a
// program links with transports/all, do not import OpenTelemetry, so a
// program that does not import this package does not build it.
func TestBusDoesNotImportOpenTelemetry(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the build dependencies with")
	}
	for _, pkg := range []string{
		"github.com/switchyard-go/switchyard/bus",
		"github.com/switchyard-go/switchyard/transports/all",
	} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed too little to be believed: %q", pkg, deps)
		}
		for _, dep := range deps {
			if strings.HasPrefix(dep, "go.opentelemetry.io/") {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}
