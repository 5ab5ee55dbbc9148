package flowsim

import (
	"reflect"
	"testing"
	"time"

	"loanflow/flowcontrol"
)

// TestAgencyPeriodIsSimulated checks that the simulator steps its agency on
// the agency's own control period (AgencyConfig.Period), as the controller
// workflow does, not on the controller's: a slow agency's longer period,
// set per agency, behaves here as it would on the real stack. The same run
// with the period set per agency and set for the whole controller must be
// the same run, decision for decision; and the period must matter (the run
// on the controller's 1 s differs), or the check proves nothing.
func TestAgencyPeriodIsSimulated(t *testing.T) {
	sc := scenarios(1)[1] // the capacity halved and restored
	policy := func(name string, controllerPeriod, agencyPeriod time.Duration) Policy {
		cfg := flowcontrol.DefaultConfig(agencyName)
		cfg.Period = controllerPeriod
		ac := cfg.Agencies[agencyName]
		ac.Period = agencyPeriod
		cfg.Agencies[agencyName] = ac
		return Policy{Name: name, Controller: &cfg, ActuationDelay: 500 * time.Millisecond}
	}
	perAgency := run(t, sc, policy("agency period 3s", time.Second, 3*time.Second))
	whole := run(t, sc, policy("controller period 3s", 3*time.Second, 0))
	fast := run(t, sc, policy("controller period 1s", time.Second, 0))

	if len(perAgency.Trace) == 0 {
		t.Fatal("no trace")
	}
	if got, want := perAgency.Trace[1].T-perAgency.Trace[0].T, 3*time.Second; got != want {
		t.Errorf("the agency was stepped every %s, want its own period %s", got, want)
	}
	if len(perAgency.Trace) != len(whole.Trace) {
		t.Fatalf("%d steps with the period set per agency, %d with it set for the controller", len(perAgency.Trace), len(whole.Trace))
	}
	for i := range perAgency.Trace {
		a, b := perAgency.Trace[i], whole.Trace[i]
		if a.T != b.T || a.Limit != b.Limit || a.Reason != b.Reason {
			t.Fatalf("step %d differs: per agency t=%s limit %d %q; controller t=%s limit %d %q",
				i, a.T, a.Limit, a.Reason, b.T, b.Limit, b.Reason)
		}
	}
	if !reflect.DeepEqual(perAgency.Convergence, whole.Convergence) || perAgency.OK != whole.OK {
		t.Errorf("per agency: %d ok, converged %v; controller: %d ok, converged %v",
			perAgency.OK, perAgency.Convergence, whole.OK, whole.Convergence)
	}
	if len(fast.Trace) == len(perAgency.Trace) {
		t.Errorf("a 1 s period stepped %d times, as many as a 3 s one", len(fast.Trace))
	}
}
