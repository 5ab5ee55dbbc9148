package loanclient_test

import (
	"testing"

	"loanflow/workflows"
	"loanflow/workflows/loanclient"
)

func TestCustomerQuery(t *testing.T) {
	if got, want := loanclient.CustomerQuery([]string{"s2:ab"}), `CustomerRef = "s2:ab"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := loanclient.CustomerQuery([]string{"s2:ab", "s1:cd"}), `CustomerRef IN ("s2:ab", "s1:cd")`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestApplicationIDMapsBothWays(t *testing.T) {
	for _, app := range []string{"app-1", "load-20261201T080000-abc-000001", "loan-x"} {
		got, ok := workflows.ApplicationID(workflows.WorkflowID(app))
		if !ok || got != app {
			t.Errorf("ApplicationID(WorkflowID(%q)) = %q, %v", app, got, ok)
		}
	}
	for _, id := range []string{"app-1", "loan-", "loanflow-flow-controller"} {
		if got, ok := workflows.ApplicationID(id); ok {
			t.Errorf("ApplicationID(%q) = %q, true; want not a loan workflow id", id, got)
		}
	}
}
