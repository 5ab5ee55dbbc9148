package service_test

import (
	"context"
	"testing"
	"time"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/flowcontrol"
	"loanflow/internal/testenv"
	"loanflow/loadgen"
	"loanflow/service"
)

// A limit written through the controller's write path reaches the running
// worker within two control periods, and the simulated agency then never
// has more calls in service than the limit.
func TestControllerLimitReachesRunningWorker(t *testing.T) {
	env := startDevWith(t, func(c *service.Config) { c.NoController = true })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	period := env.Config.Flow.Period
	const limit = 3
	ca := &activities.ControllerActivities{Stats: env.Stats, Redis: env.Redis, Prefix: env.Config.RedisPrefix}
	written := time.Now()
	if err := ca.ApplyLimits(ctx, activities.ApplyLimitsInput{Decisions: []flowcontrol.Decision{{Agency: string(agency.KCB), Limit: limit}}}); err != nil {
		t.Fatal(err)
	}
	for env.PoolLimit(string(agency.KCB)) != limit {
		if time.Since(written) > 2*period {
			t.Fatalf("limit %d not applied after %s (2 control periods); pool at %d", limit, time.Since(written), env.PoolLimit(string(agency.KCB)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("limit applied %s after the write", time.Since(written).Round(time.Millisecond))

	env.Sim.ResetStats(agency.KCB)
	sum, err := loadgen.Run(ctx, env.Client, loadgen.Options{Count: 40, Rate: 200, RunID: "lim-" + testenv.ID()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sum.FirstError(); err != nil {
		t.Fatal(err)
	}
	st := env.Sim.Stats(agency.KCB)
	if st.OK < 40 {
		t.Fatalf("kcb served %d calls, want at least 40", st.OK)
	}
	if st.MaxInService > limit {
		t.Fatalf("kcb had %d calls in service at once, limit %d", st.MaxInService, limit)
	}
	t.Logf("kcb: %d calls, at most %d in service (limit %d)", st.OK, st.MaxInService, limit)
}
