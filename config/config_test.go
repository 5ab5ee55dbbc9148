package config

import "testing"

// The Web UI reads the segment after the workflow id as a run id, so a link
// without one must stop at the workflow id (the UI then opens the latest run).
func TestWorkflowURL(t *testing.T) {
	for _, tc := range []struct{ run, want string }{
		{"", "http://ui:8233/namespaces/default/workflows/loan-a"},
		{"r1", "http://ui:8233/namespaces/default/workflows/loan-a/r1/history"},
	} {
		if got := WorkflowURL("http://ui:8233/", "default", "loan-a", tc.run); got != tc.want {
			t.Errorf("run %q: got %s, want %s", tc.run, got, tc.want)
		}
	}
}
