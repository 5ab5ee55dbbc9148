package local_test

import (
	"context"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/dev/agencysim"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/workflows"
)

// override sends an operator override to the controller.
func override(ctx context.Context, t *testing.T, env *local.Observer, name, state, reason string) {
	t.Helper()
	o := workflows.BreakerOverride{Agency: name, State: state, Reason: reason}
	if err := env.Client.SignalWorkflow(ctx, workflows.FlowControllerID, "", workflows.BreakerOverrideSignal, o); err != nil {
		t.Fatal(err)
	}
}

// emptyRedis deletes every key of the test's prefix, as a Redis restarted
// without its data would have lost them.
func emptyRedis(ctx context.Context, t *testing.T, env *local.Observer) int {
	t.Helper()
	var keys []string
	iter := env.Redis.Scan(ctx, 0, env.Config.RedisPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := env.Redis.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return len(keys)
}

// Redis loses its data while MyData's breaker is forced open: the breaker is
// published again within a period, and in between readers keep it open (the
// staleness rule), so no application is sent to MyData.
func TestBreakerStaysOpenWhenRedisLosesItsData(t *testing.T) {
	env := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	override(ctx, t, env, "mydata", "open", "drill: redis data loss")
	waitBreaker(ctx, t, env, "mydata", breaker.Open, 10*time.Second)
	// Traffic flows: the loan worker's reader has seen the records.
	if res := result(ctx, t, mustStart(ctx, t, env, "before-"+testenv.ID())); res.CreditPath != workflows.CreditPathScraping {
		t.Fatalf("with mydata open an application took %q (%s/%s)", res.CreditPath, res.Status, res.Reason())
	}
	// A worker's reader that has seen the record, as every loan worker has.
	reader := &activities.BreakerActivities{Breakers: breaker.NewReader(env.Breakers, 0, env.Logger)}
	if st, _ := reader.ReadBreakers(ctx); st["mydata"].State != breaker.Open {
		t.Fatalf("reader sees mydata %s", st["mydata"].State)
	}

	n := emptyRedis(ctx, t, env)
	t.Logf("deleted %d keys", n)
	if st, _ := reader.ReadBreakers(ctx); st["mydata"].State != breaker.Open {
		t.Fatalf("right after the data loss a reader routes mydata as %s (held %q), want open", st["mydata"].State, st["mydata"].Held)
	}
	run := mustStart(ctx, t, env, "redisloss-"+testenv.ID())
	// Back in Redis within two periods, still open with its override.
	deadline := time.Now().Add(2*env.Config.Flow.Period + time.Second)
	for {
		live, err := env.Breakers.Read(ctx, []string{"mydata"})
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := live["mydata"]; ok {
			if st.State != breaker.Open || st.Override == nil {
				t.Fatalf("mydata republished as %+v, want open with the operator's override", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mydata's breaker not published again after Redis lost it")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := result(ctx, t, run); res.CreditPath != workflows.CreditPathScraping {
		t.Fatalf("an application started after the data loss took %q (%s/%s %s), want SCRAPING", res.CreditPath, res.Status, res.Reason(), res.StatusDetail)
	}
}

// The controller is terminated: the watchdog schedule starts it again within
// seconds, and its breakers come back as they were (rebuilt, not blank).
func TestControllerTerminatedIsBackWithItsState(t *testing.T) {
	env := startDevWith(t, func(c *local.Config) { c.WatchdogEvery = 2 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	override(ctx, t, env, "nice", "open", "drill: controller termination")
	waitBreaker(ctx, t, env, "nice", breaker.Open, 10*time.Second)
	waitBreaker(ctx, t, env, breaker.Entry, breaker.Open, 5*time.Second)
	d, err := env.Client.DescribeWorkflowExecution(ctx, workflows.FlowControllerID, "")
	if err != nil {
		t.Fatal(err)
	}
	first := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	if err := env.Client.TerminateWorkflow(ctx, workflows.FlowControllerID, first, "drill"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for {
		d, err := env.Client.DescribeWorkflowExecution(ctx, workflows.FlowControllerID, "")
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
			d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != first {
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("controller not running again 10 s after termination (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	back := time.Since(killed)
	// It ticks: for three seconds the heartbeat is never older than a
	// period and a half.
	time.Sleep(2 * env.Config.Flow.Period)
	for watch := time.Now(); time.Since(watch) < 3*time.Second; time.Sleep(100 * time.Millisecond) {
		hb, err := activities.ReadHeartbeat(ctx, env.Redis, env.Config.RedisPrefix)
		if err != nil || !hb.Found || hb.Age > 3*env.Config.Flow.Period/2 {
			t.Fatalf("restarted controller does not tick: heartbeat %+v, %v", hb, err)
		}
	}
	live, err := env.Breakers.Read(ctx, []string{"nice", breaker.Entry})
	if err != nil {
		t.Fatal(err)
	}
	if live["nice"].State != breaker.Open || live["nice"].Override == nil || live[breaker.Entry].State != breaker.Open {
		t.Fatalf("after the restart nice %+v, entry %s: the override was lost", live["nice"], live[breaker.Entry].State)
	}
	events, err := env.Store.BreakerEvents(ctx, "nice")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.To == string(breaker.Closed) {
			t.Fatalf("a transition of nice to closed was audited: %+v", e)
		}
	}
	t.Logf("controller back %s after termination", back.Round(time.Millisecond))
}

// Overrides sent back to back while the controller continues as new every
// three periods: every one is applied and audited, none lost at the seam.
func TestOverridesAcrossContinueAsNewAreApplied(t *testing.T) {
	env := startDevWith(t, func(c *local.Config) { c.ControllerPeriodsPerRun = 3 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 12
	states := []string{"open", "closed"}
	for i := range n {
		override(ctx, t, env, "scraping", states[i%2], "drill "+itoa(i))
		time.Sleep(350 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, err := env.Store.BreakerEvents(ctx, "scraping")
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, e := range events {
			if e.Source == "operator" {
				got++
			}
		}
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d overrides audited: the others were lost", got, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitBreaker(ctx, t, env, "scraping", breaker.Closed, 5*time.Second)
	live, _ := env.Breakers.Read(ctx, []string{"scraping"})
	if live["scraping"].Override == nil || live["scraping"].Reason != "operator: drill "+itoa(n-1) {
		t.Fatalf("last override not in force: %+v", live["scraping"])
	}
}

// A bureau outage many times longer than the cool-down: the entry closes
// once and does not reopen until the bureau is back; while KCB is half open
// only the controller's probes reach it; waiting applications finish.
func TestLongBureauOutageKeepsEntryShut(t *testing.T) {
	env := startDevWith(t, func(c *local.Config) {
		c.Breakers = fastBreakers()
		kcb := c.Breakers["kcb"]
		kcb.CoolDown = 2 * time.Second
		c.Breakers["kcb"] = kcb
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := &traffic{env: env, id: "outage-" + testenv.ID(), opts: workflows.Options{
		AgencyScheduleToClose: 3 * time.Second, BureauWait: time.Minute, BreakerPoll: time.Second,
	}}
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(stopLoad) }); <-loadDone }
	defer stop()
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopLoad:
				return
			case <-tick.C:
				tr.start(ctx, t)
			}
		}
	}()
	if err := env.Sim.SetFaults(agency.KCB, agencysim.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	waitBreaker(ctx, t, env, "kcb", breaker.Open, 45*time.Second)
	waitBreaker(ctx, t, env, breaker.Entry, breaker.Open, 5*time.Second)
	opened := time.Now()
	env.Sim.ResetStats(agency.KCB)
	const outage = 20 * time.Second // ten cool-downs
	time.Sleep(outage)
	calls := env.Sim.Stats(agency.KCB).Requests
	if err := env.Sim.SetFaults(agency.KCB, agencysim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitBreaker(ctx, t, env, "kcb", breaker.Closed, 30*time.Second)
	waitBreaker(ctx, t, env, breaker.Entry, breaker.Closed, 5*time.Second)
	stop()

	events, err := env.Store.BreakerEvents(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	reopen, halfOpen := 0, 0
	for _, e := range events {
		if e.At.Before(opened.Add(-time.Second)) || e.At.After(opened.Add(outage)) {
			continue
		}
		if e.Breaker == breaker.Entry && e.To == string(breaker.Closed) {
			reopen++
		}
		if e.Breaker == "kcb" && e.To == string(breaker.HalfOpen) {
			halfOpen++
		}
	}
	// Probes: one a period while half open (ProbeCalls 1); a period is 1 s.
	maxProbes := int64(outage / env.Config.Flow.Period)
	t.Logf("outage %s: kcb half open %d times, %d calls reached kcb (probe bound %d), entry reopened %d times", outage, halfOpen, calls, maxProbes, reopen)
	if reopen != 0 {
		t.Errorf("entry reopened %d times during the outage, want 0", reopen)
	}
	if halfOpen == 0 {
		t.Errorf("kcb never went half open during the outage: nothing probed it")
	}
	if calls > maxProbes {
		t.Errorf("%d calls reached kcb while it was down, more than the probe trickle (%d)", calls, maxProbes)
	}
	for _, run := range tr.runs {
		res := result(ctx, t, run)
		rec, err := env.Store.GetApplication(ctx, res.ApplicationID)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Status.Final() || rec.Status != res.Status {
			t.Errorf("%s: postgres %s, workflow %s", res.ApplicationID, rec.Status, res.Status)
		}
	}
}

func mustStart(ctx context.Context, t *testing.T, env *local.Observer, id string) client.WorkflowRun {
	t.Helper()
	app := loan.Application{ApplicationID: id, CustomerID: "C00000042", Amount: 5_000_000, TermMonths: 24}
	run, err := loadgen.Start(ctx, env.Client, app, workflows.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return run
}
