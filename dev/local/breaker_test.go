package local_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/dev/agencysim"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/workflows"
)

// fastBreakers trip and recover within seconds, so an incident fits a test.
func fastBreakers() map[string]breaker.Config {
	out := map[string]breaker.Config{}
	for _, n := range agency.All {
		c := breaker.DefaultConfig()
		c.FloorPeriods, c.OpenAfterPeriods, c.RecoveryPeriods = 2, 2, 2
		c.CoolDown = 3 * time.Second
		c.ProbeFraction = 0.3
		if n.Mandatory() {
			// Long enough for the entry check below to meet the entry
			// closed even on a slow machine; the bureau probes after it.
			c.CoolDown = 15 * time.Second
		}
		out[string(n)] = c
	}
	return out
}

// traffic keeps starting applications until stopped and remembers them all.
type traffic struct {
	env  *local.Observer
	opts workflows.Options
	mu   sync.Mutex
	runs []client.WorkflowRun
	seq  int
	id   string
}

func (tr *traffic) start(ctx context.Context, t *testing.T) client.WorkflowRun {
	tr.mu.Lock()
	tr.seq++
	i := tr.seq
	tr.mu.Unlock()
	app := loan.Application{ApplicationID: tr.id + "-" + itoa(i), CustomerID: "C" + pad8(1+i%50), Amount: 5_000_000, TermMonths: 24}
	run, err := loadgen.Start(ctx, tr.env.Client, app, tr.opts)
	if err != nil {
		t.Errorf("start %s: %v", app.ApplicationID, err)
		return nil
	}
	tr.mu.Lock()
	tr.runs = append(tr.runs, run)
	tr.mu.Unlock()
	return run
}

// result waits for one application.
func result(ctx context.Context, t *testing.T, run client.WorkflowRun) loan.Result {
	t.Helper()
	var res loan.Result
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("%s: %v", run.GetID(), err)
	}
	return res
}

// waitBreaker polls the published state until name reaches want.
func waitBreaker(ctx context.Context, t *testing.T, env *local.Observer, name string, want breaker.State, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := env.Breakers.Read(ctx, []string{name})
		if err != nil {
			t.Fatal(err)
		}
		if st[name].State == want {
			t.Logf("%s breaker %s (waited %s): %s", name, want, time.Since(deadline.Add(-within)).Round(time.Millisecond), st[name].Reason)
			return
		}
		if time.Now().After(deadline) {
			var fs workflows.FlowControllerStatus
			if v, err := env.Client.QueryWorkflow(ctx, workflows.FlowControllerID, "", workflows.FlowStateQuery); err == nil {
				_ = v.Get(&fs)
			}
			t.Fatalf("%s breaker still %s after %s, want %s; controller: limits %v, observations %+v, machines %+v",
				name, st[name].State, within, want, fs.Limits, fs.Observations, fs.Board.Machines)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The scripted incident of the circuit-breaker issue, on the embedded stack
// with the simulated agencies over HTTP: MyData fails and is routed around,
// heals; KCB goes down and closes the entry, comes back and reopens it.
// Every application started meanwhile ends in a terminal status that
// matches Postgres.
func TestBreakersIncidentEndToEnd(t *testing.T) {
	env := startDevWith(t, func(c *local.Config) { c.Breakers = fastBreakers() })
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tr := &traffic{env: env, id: "brk-" + testenv.ID(), opts: workflows.Options{
		AgencyScheduleToClose: 5 * time.Second, BureauWait: 2 * time.Minute, BreakerPoll: 2 * time.Second,
	}}
	// Background traffic: the breakers need calls to judge the agencies.
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopLoad) }); <-loadDone }
	defer stop() // also when a check fails: no start may outlive the test
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(250 * time.Millisecond)
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
	setFaults := func(n agency.Name, f agencysim.Faults) {
		if err := env.Sim.SetFaults(n, f); err != nil {
			t.Fatal(err)
		}
	}

	// 1. MyData fails: half open, then open; new applications take scraping.
	setFaults(agency.MyData, agencysim.Faults{ErrorRate: 1})
	waitBreaker(ctx, t, env, "mydata", breaker.HalfOpen, 30*time.Second)
	waitBreaker(ctx, t, env, "mydata", breaker.Open, 30*time.Second)
	if res := result(ctx, t, tr.start(ctx, t)); res.CreditPath != workflows.CreditPathScraping {
		t.Fatalf("with MyData open an application took %s", res.CreditPath)
	}

	// 2. MyData heals: back to closed through a probing half-open.
	setFaults(agency.MyData, agencysim.Faults{})
	waitBreaker(ctx, t, env, "mydata", breaker.Closed, 45*time.Second)

	// 3. KCB goes down: its breaker opens and so does the entry.
	setFaults(agency.KCB, agencysim.Faults{Down: true})
	waitBreaker(ctx, t, env, "kcb", breaker.Open, 45*time.Second)
	waitBreaker(ctx, t, env, breaker.Entry, breaker.Open, 5*time.Second)
	t0 := time.Now()
	if res := result(ctx, t, tr.start(ctx, t)); res.Status != loan.StatusRejected || res.Reason() != loan.ReasonLoanProductUnavailable {
		t.Fatalf("with KCB open an application ended %s/%s, want REJECTED/LOAN_PRODUCT_UNAVAILABLE", res.Status, res.Reason())
	}
	t.Logf("an application refused at entry took %s", time.Since(t0).Round(time.Millisecond))

	// 4. KCB comes back: the entry reopens, applications are decided again.
	setFaults(agency.KCB, agencysim.Faults{})
	waitBreaker(ctx, t, env, breaker.Entry, breaker.Closed, 30*time.Second)
	waitBreaker(ctx, t, env, "kcb", breaker.Closed, 45*time.Second)
	stop()
	if res := result(ctx, t, tr.start(ctx, t)); res.Reason() == loan.ReasonLoanProductUnavailable || res.Status == loan.StatusFailed {
		t.Fatalf("after KCB recovered an application ended %s/%s", res.Status, res.Reason())
	}

	// Every application ends in a terminal status that matches Postgres.
	counts := map[string]int{}
	for _, run := range tr.runs {
		res := result(ctx, t, run)
		rec, err := env.Store.GetApplication(ctx, res.ApplicationID)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Status.Final() || rec.Status != res.Status || rec.CreditPath != res.CreditPath {
			t.Errorf("%s: postgres %s/%s, workflow %s/%s", res.ApplicationID, rec.Status, rec.CreditPath, res.Status, res.CreditPath)
		}
		counts[string(res.Status)+"/"+res.Reason()+"/"+res.CreditPath]++
	}
	t.Logf("%d applications: %v", len(tr.runs), counts)

	events, err := env.Store.BreakerEvents(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Breaker+":"+e.To] = true
	}
	for _, want := range []string{"mydata:half_open", "mydata:open", "mydata:closed", "kcb:open", "kcb:closed", "loan_product:open", "loan_product:closed"} {
		if !seen[want] {
			t.Errorf("breaker_events lacks a transition %s (have %v)", want, seen)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
func pad8(i int) string { return fmt.Sprintf("%08d", i) }
