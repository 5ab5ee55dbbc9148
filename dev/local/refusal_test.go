package local_test

import (
	"context"
	"testing"
	"time"

	"loanflow/agency"
	"loanflow/dev/agencysim"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/internal/testenv"
	"loanflow/loan"
)

// A burst of applications against a bureau that refuses at once beyond one
// call in service (a rate limit answering 503, no queue): the flow
// controller starts far above that capacity, so most first calls to KCB
// are refused. Every application still ends with a decision, none
// FAILED: a refusal is the agency's "not now", paced and retried within
// the call's budget, and the limit comes down to what KCB takes. Postgres
// agrees with every result.
func TestApplicationsThroughARefusingBureauEndToEnd(t *testing.T) {
	kcb := agencysim.DefaultConfig(agency.KCB)
	kcb.Capacity, kcb.QueueLimit, kcb.MedianServiceTime = 1, -1, 50*time.Millisecond
	env := startDevWith(t, func(c *local.Config) {
		c.AgencySim = map[agency.Name]agencysim.Config{agency.KCB: kcb}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 12
	sum, err := loadgen.Run(ctx, env.Client, loadgen.Options{Count: n, Rate: 50, RunID: "refuse-" + testenv.ID(), Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	st := env.Sim.Stats(agency.KCB)
	t.Logf("outcomes %v; KCB answered %d OK and refused %d", sum.ByStatus, st.OK, st.Overload)
	if st.Overload == 0 {
		t.Fatal("KCB refused no call: the test did not run against a refusing bureau")
	}
	if err := sum.FirstError(); err != nil {
		t.Fatalf("an application failed: %v", err)
	}
	if len(sum.Outcomes) != n {
		t.Fatalf("%d outcomes, want %d", len(sum.Outcomes), n)
	}
	for _, o := range sum.Outcomes {
		res := o.Result
		if res.Status == loan.StatusFailed {
			t.Errorf("%s failed: %s (%s)", res.ApplicationID, res.Error, res.Reason())
			continue
		}
		rec, err := env.Store.GetApplication(ctx, res.ApplicationID)
		if err != nil {
			t.Fatalf("%s: %v", res.ApplicationID, err)
		}
		if rec.Status != res.Status {
			t.Errorf("%s: postgres has %s, the workflow returned %s", res.ApplicationID, rec.Status, res.Status)
		}
	}
}
