package flowsim

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"loanflow/flowcontrol"
)

// periodPolicy is the default controller on a controller period and an
// agency period of its own (0: the controller's), its decisions reaching
// the pool after 500 ms.
func periodPolicy(controller, agency time.Duration) Policy {
	cfg := flowcontrol.DefaultConfig(agencyName)
	cfg.Period = controller
	ac := cfg.Agencies[agencyName]
	ac.Period = agency
	cfg.Agencies[agencyName] = ac
	name := fmt.Sprintf("controller period %s, agency period %s", controller, agency)
	return Policy{Name: name, Controller: &cfg, ActuationDelay: 500 * time.Millisecond}
}

// TestAgencyPeriodIsSimulated checks that the simulator steps its agency on
// the agency's own control period (AgencyConfig.Period), as the controller
// workflow does, not on the controller's: a slow agency's longer period,
// set per agency, behaves here as it would on the real stack. The same run
// with the period set per agency and set for the whole controller must be
// the same run, decision for decision; and the period must matter (the run
// on the controller's 1 s differs), or the check proves nothing.
func TestAgencyPeriodIsSimulated(t *testing.T) {
	sc := scenarios(1)[1] // the capacity halved and restored
	perAgency := run(t, sc, periodPolicy(time.Second, 3*time.Second))
	whole := run(t, sc, periodPolicy(3*time.Second, 0))
	fast := run(t, sc, periodPolicy(time.Second, 0))

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

// TestLongerPeriodNoBetter backs the advice in the README and the sample
// contract file: a longer control period is not needed for a slow,
// low-rate agency. Four agency models, from app scraping (C10 × 120 ms, 83
// calls a second) down to C6 × 2 s (3 a second), each through the three
// scenarios of TestScenarios at its own rates, 90 s long, seeds 1–12: the
// agency's own period of 3 s serves none of them better than the
// controller's 1 s (goodput ÷ the oracle, averaged over its scenarios and
// seeds, not higher by more than 0.02). The law reads several periods
// together where one holds too few calls (gather) and cuts within one; a
// longer period only makes each decision later. Should a change of the law
// make longer periods pay, this fails and the advice must change with it.
func TestLongerPeriodNoBetter(t *testing.T) {
	onto := func(a Agency, timeout time.Duration) func(Scenario) Scenario {
		return func(sc Scenario) Scenario {
			sc = onAgency(sc, a, timeout)
			sc.Duration = 90 * time.Second
			return sc
		}
	}
	models := []struct {
		name string
		onto func(Scenario) Scenario
	}{
		{"scraping C10 × 120 ms", onto(Scraping(), 5*time.Second)},
		{"C8 × 600 ms", onto(Agency{Capacity: 8, MedianServiceTime: 600 * time.Millisecond, Jitter: 0.5,
			QueueLimit: 16, QueueTimeout: 2 * time.Second, InflationPerOverload: 1}, 5*time.Second)},
		{"C4 × 1 s", onto(Agency{Capacity: 4, MedianServiceTime: time.Second, Jitter: 0.5,
			QueueLimit: 8, QueueTimeout: 3 * time.Second, InflationPerOverload: 1}, 8*time.Second)},
		{"C6 × 2 s", onto(Agency{Capacity: 6, MedianServiceTime: 2 * time.Second, Jitter: 0.3,
			QueueLimit: 12, QueueTimeout: 5 * time.Second, InflationPerOverload: 1}, 10*time.Second)},
	}
	short, long := periodPolicy(time.Second, time.Second), periodPolicy(time.Second, 3*time.Second)
	for _, m := range models {
		var ratio, errs [2]float64
		runs := 0
		for seed := uint64(1); seed <= 12; seed++ {
			for _, sc := range scenarios(seed) {
				sc = m.onto(sc)
				oracle := run(t, sc, Policy{Name: "oracle", Oracle: true})
				for i, p := range []Policy{short, long} {
					r := run(t, sc, p)
					ratio[i] += r.Goodput / oracle.Goodput
					errs[i] += r.ErrorRate
				}
				runs++
			}
		}
		n := float64(runs)
		t.Logf("%-22s goodput ÷ oracle: 1 s %.3f, 3 s %.3f; agency errors: 1 s %.2f%%, 3 s %.2f%%",
			m.name, ratio[0]/n, ratio[1]/n, 100*errs[0]/n, 100*errs[1]/n)
		if ratio[1]/n > ratio[0]/n+0.02 {
			t.Errorf("%s: a 3 s period served it better than 1 s (%.3f against %.3f × the oracle): the advice against longer periods no longer holds",
				m.name, ratio[1]/n, ratio[0]/n)
		}
	}
}
