package local_test

import (
	"context"
	"testing"
	"time"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/flowcontrol"
	"loanflow/internal/testenv"
)

// A limit written through the controller's write path reaches the running
// worker within two control periods, and the simulated agency then never
// has more calls in service than the limit.
func TestControllerLimitReachesRunningWorker(t *testing.T) {
	env := startDevWith(t, func(c *local.Config) { c.NoController = true })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	period := env.Config.Flow.Period
	const limit = 3
	// Without a controller nothing publishes breakers, and readers would
	// hold the entry shut (the fail-safe rule): publish them closed.
	var closed []breaker.Status
	for _, n := range append([]string{breaker.Entry}, "kcb", "nice", "mydata", "scraping") {
		closed = append(closed, breaker.Status{Name: n, State: breaker.Closed, Machine: breaker.Closed})
	}
	if err := env.Breakers.Write(ctx, closed, 0); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	if err := flowcontrol.WriteLimits(ctx, env.Redis, env.Config.RedisPrefix, map[string]int{string(agency.KCB): limit}); err != nil {
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
