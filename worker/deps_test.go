package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The production worker links no Temporal server and no Web UI server: the
// dev stack that embeds them is the separate command dev/cmd/loanflow-dev.
func TestWorkerLinksNoTemporalServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "loanflow/worker").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps loanflow/worker: %v\n%s", err, out)
	}
	var bad []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "go.temporal.io/server") || strings.HasPrefix(p, "github.com/temporalio/ui-server") ||
			strings.HasPrefix(p, "loanflow/dev/") {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		n := min(len(bad), 10)
		t.Fatalf("the worker depends on %d dev-only packages, e.g. %s", len(bad), strings.Join(bad[:n], ", "))
	}
}
