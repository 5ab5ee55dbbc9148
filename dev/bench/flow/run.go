package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/app"
	"loanflow/callstats"
	"loanflow/dev/agencysim"
	"loanflow/flowcontrol"
	"loanflow/flowcontrol/flowsim"
	"loanflow/loan"
	"loanflow/workflows"
)

// scenario is what happens to the agency and its offered load. Times are
// from the start of the measured part; the warm-up runs before 0.
type scenario struct {
	name, title string
	load        func(t time.Duration) float64 // offered load, multiple of the nominal rate
	capacity    func(t time.Duration) float64 // multiple of C
	slowdown    func(t time.Duration) float64 // service-time factor
	steps       []time.Duration
	d           time.Duration // measured length
	// workers is how many worker processes loanflow and failsafe-go run
	// on, unless -workers is given; 0 means -workers' default.
	workers int
	// paced: applications start evenly spaced instead of as Poisson
	// arrivals, so that a short ceiling check offers its rate exactly.
	paced bool
	// noQueue: the agency has no queue and refuses at once beyond its
	// capacity, as a rate-limited API answers 429 or 503: its latency
	// never rises with the load, and only its refusals show its capacity.
	noQueue bool
	// errorRate is the share of calls the agency answers 500 at random,
	// whatever the load (agencysim's error_rate): its background errors,
	// which are not its capacity.
	errorRate float64
	// refuseRate is the share of calls the agency answers 503 at once, at
	// random, whatever the load (agencysim's refuse_rate): a gateway's
	// stray refusals, which look like its capacity's until the limits
	// below show them too.
	refuseRate float64
}

// scenarioOf is scenario name measured for d; the probe's level is c.probe
// calls/s.
func scenarioOf(name string, d time.Duration, c config) (scenario, bool) {
	all := scenarios(d)
	if c.probe > 0 {
		level := c.probe / (float64(c.capacity) / c.serviceTime.Seconds())
		all = append(all, scenario{name: "probe", title: fmt.Sprintf("Temporal ceiling: %.1f calls/s, %.1f applications/s of %d calls", c.probe, c.probe/float64(max(c.callsPerApp, 1)), max(c.callsPerApp, 1)), d: d,
			load: func(time.Duration) float64 { return level }, capacity: func(time.Duration) float64 { return 1 },
			slowdown: func(time.Duration) float64 { return 1 }, paced: true})
	}
	i := slices.IndexFunc(all, func(s scenario) bool { return s.name == name })
	if i < 0 {
		return scenario{}, false
	}
	return all[i], true
}

// scenarioNames are the scenarios -scenarios accepts.
func scenarioNames() []string {
	var out []string
	for _, s := range scenarios(time.Minute) {
		out = append(out, s.name)
	}
	return out
}

func scenarios(d time.Duration) []scenario {
	one := func(time.Duration) float64 { return 1 }
	// middle is x from 1/3 of the run to 2/3, 1 before and after: a change
	// at the agency and its return.
	middle := func(x float64) func(time.Duration) float64 {
		return func(t time.Duration) float64 {
			if t >= d/3 && t < 2*d/3 {
				return x
			}
			return 1
		}
	}
	// lost is x from 1/3 of the run on, 1 before: a change that stays.
	lost := func(x float64) func(time.Duration) float64 {
		return func(t time.Duration) float64 {
			if t >= d/3 {
				return x
			}
			return 1
		}
	}
	// halved is the capacity steps' agency: C to 50% at 1/3, back at 2/3.
	halved := middle(0.5)
	warm := func(level float64) func(time.Duration) float64 {
		return func(t time.Duration) float64 {
			if t < 0 {
				return 0.5
			}
			return level
		}
	}
	return []scenario{
		{name: "surge", title: "Surge: offered load 3× capacity", load: warm(3), capacity: one, slowdown: one,
			steps: []time.Duration{0}, d: d},
		{name: "capacity", title: "Capacity step: C to 50% at 1/3, back at 2/3 (load 2×)", load: warm(2), slowdown: one,
			capacity: halved, steps: []time.Duration{0, d / 3, 2 * d / 3}, d: d},
		{name: "no-queue", title: "No queue (refuses at once beyond C): C to 50% at 1/3, back at 2/3 (load 2×)", load: warm(2), slowdown: one,
			capacity: halved, steps: []time.Duration{0, d / 3, 2 * d / 3}, d: d, noQueue: true},
		{name: "loss", title: "Lasting loss: C to 70% at 1/3, for good (load 2×)", load: warm(2), slowdown: one,
			capacity: lost(0.7), steps: []time.Duration{0, d / 3}, d: d},
		{name: "no-queue-loss", title: "Lasting loss at an agency with no queue: C to 70% at 1/3, for good (load 2×)", load: warm(2),
			slowdown: one, capacity: lost(0.7), steps: []time.Duration{0, d / 3}, d: d, noQueue: true},
		{name: "background", title: "Background errors (5% of calls answered 500 at random): C to 50% at 1/3, back at 2/3 (load 2×)",
			load: warm(2), slowdown: one, capacity: halved, steps: []time.Duration{0, d / 3, 2 * d / 3}, d: d, errorRate: 0.05},
		{name: "refusals", title: "Random refusals (2% of calls answered 503 at once, at random): C to 50% at 1/3, back at 2/3 (load 2×)",
			load: warm(2), slowdown: one, capacity: halved, steps: []time.Duration{0, d / 3, 2 * d / 3}, d: d, refuseRate: 0.02},
		{name: "scale-out", title: "Scale-out: C to 200% at 1/3, back at 2/3 (load 3×)", load: warm(3), slowdown: one,
			capacity: middle(2),
			steps:    []time.Duration{0, d / 3, 2 * d / 3}, d: d},
		{name: "slowdown", title: "Slowdown: service time ×2 at 1/3 (load 2×)", load: warm(2), capacity: one,
			slowdown: func(t time.Duration) float64 {
				if t >= d/3 {
					return 2
				}
				return 1
			},
			steps: []time.Duration{0, d / 3}, d: d},
		{name: "slow-spell", title: "Slow spell: service time ×2 at 1/3, back at 2/3 (load 2×)", load: warm(2), capacity: one,
			slowdown: middle(2),
			steps:    []time.Duration{0, d / 3, 2 * d / 3}, d: d},
		{name: "incident", title: "Incident: load 4×; at 1/3 capacity to 3/8 and service time ×3, both back at 2/3",
			load:     warm(4),
			capacity: middle(3.0 / 8),
			slowdown: middle(3),
			// Issue 13's shape: two worker processes share the agency.
			steps: []time.Duration{0, d / 3, 2 * d / 3}, d: d, workers: 2},
	}
}

// phase is the stretch of a run between two steps, measured from
// flowsim.PhaseSettle after the step that opens it, with the agency's
// counters over it.
type phase struct {
	from, to   time.Duration
	ok, errors int64
	// unservable: the agency's median service time in the phase exceeds
	// the client's timeout, so no strategy can serve it; that is the
	// breakers' case, not flow control's, and the phase is not scored.
	unservable bool
}

func (p phase) goodput() float64 { return float64(p.ok) / (p.to - p.from).Seconds() }

// phasesOf lists the phases of a scenario run with configuration c.
func phasesOf(sc scenario, c config) []phase {
	d := sc.d
	var out []phase
	for i, st := range sc.steps {
		to := d
		if i+1 < len(sc.steps) {
			to = sc.steps[i+1]
		}
		from := st + flowsim.PhaseSettle
		if from < to {
			slow := time.Duration(sc.slowdown((from+to)/2) * float64(c.serviceTime))
			out = append(out, phase{from: from, to: to, unservable: slow > c.clientTimeout})
		}
	}
	return out
}

// The strategies, in report order.
const (
	stUnbounded  = "unbounded"
	stFixed      = "fixed-C"
	stFixedLarge = "fixed-4C"
	stPeer       = "failsafe-go"
	// stPeerDefault is failsafe-go's limiter on its defaults, around the
	// call, rejecting what exceeds its limit; on request only.
	stPeerDefault = "failsafe-go-default"
	stController  = "loanflow"
	stOracle      = "oracle"
)

var (
	defaultStrategies = []string{stOracle, stController, stPeer, stFixed, stFixedLarge, stUnbounded}
	allStrategies     = append(slices.Clone(defaultStrategies), stPeerDefault)
)

// controlPeriod is loanflow's control period in the runs.
const controlPeriod = time.Second

// unboundedSlots stands for "no limit" in a slot supplier.
const unboundedSlots = 100000

// sample is the state of one run at one instant.
type sample struct {
	T        time.Duration
	Limit    float64 // NaN when the strategy has none
	Present  int     // requests at the agency: in service + queued
	Capacity float64 // the agency's true concurrency capacity now
	// With -trace only: the agency's received requests and answers so far,
	// the workers' attempts and admission's refusals so far, the slots
	// (limit, permits issued, running) of each worker, and the task
	// queue's backlog as the server reports it.
	Requests, OK, Attempts, Expired int64
	Slots                           []slotState
	Backlog, Workflows              queueStats
	// Decision is loanflow's controller's last decision for the agency
	// and the observation it read (FlowStateQuery), once a second.
	Decision string
	// Reading is the observation that decision read, nil when none was
	// queried.
	Reading *reading
}

// reading is loanflow's controller's last observation of the agency, as
// -trace queries it: the period's length, mean latency and successful
// calls, the baseline the decision read them against, and the periods the
// controller has observed so far (a new count is a new period).
type reading struct {
	Period, Mean, Baseline time.Duration
	OK, Periods            int64
}

// slotState is one worker's slot supplier at one instant.
type slotState struct{ Limit, InUse, Running, Calling int }

// queueStats is DescribeTaskQueue's view of the agency's activity queue.
type queueStats struct {
	Count                 int64
	Age                   time.Duration
	AddRate, DispatchRate float32
	Err                   string
}

// result is one strategy on one scenario.
type result struct {
	scenario, strategy string
	window             time.Duration
	ok, errors, calls  int64   // at the agency, calls ended in the window
	trueRate           float64 // the agency's true capacity, calls/s averaged over the window
	apps               appStats
	converge           []time.Duration // per step; -1: not converged
	trace              []sample
	limiterNote        string
	phases             []phase
	expired            int64 // attempts refused by admission for the budget left
	workers            int   // worker processes the strategy ran on
	callsPerApp        int   // K: agency calls per application
	// cpu is the process's CPU time over the run (server, workers and
	// client together); started the applications it started, attempts the
	// calls' attempts that reached a worker before the run's end.
	cpu      time.Duration
	started  int
	attempts int64
}

// cpuPerCall is the CPU time the run took per call attempt it made.
func (r result) cpuPerCall() time.Duration {
	if r.attempts == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.attempts)
}

// cpuPerApp is the CPU time the run took per application it started.
func (r result) cpuPerApp() time.Duration {
	if r.started == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.started)
}

func (r result) goodput() float64 { return float64(r.ok) / r.window.Seconds() }
func (r result) errorRate() float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(r.errors) / float64(r.calls)
}

// bench is the shared stack.
type bench struct {
	cfg       config
	tc        client.Client
	stats     *callstats.Recorder
	membRDB   redisClient
	finisher  *finisher
	prefix    string
	namespace string
	seq       int
}

// runPace paces loanflow's refusals (activities.RefusalPace) on the run's
// agency: the statistics know it by its task queue's name, the requests by
// the simulated agency's.
type runPace struct {
	stats *callstats.Recorder
	name  string
}

func (p runPace) AgencyMedianLatency(string) (time.Duration, bool) {
	return p.stats.AgencyMedianLatency(p.name)
}

// agencyJitter is the simulated agency's lognormal sigma of service times.
const agencyJitter = 0.25

// runOne runs one strategy through one scenario on a fresh simulated agency
// and a task queue of its own.
func (b *bench) runOne(ctx context.Context, sc scenario, strategy string) (res result, err error) {
	b.seq++
	c := b.cfg
	cpu0 := cpuTime()
	runID := fmt.Sprintf("r%02d-%s-%s", b.seq, sc.name, strategy)
	agencyName := fmt.Sprintf("kcb-r%02d", b.seq)
	tq := agency.Name(agencyName).TaskQueue()
	k := max(c.callsPerApp, 1)
	res = result{scenario: sc.name, strategy: strategy, window: sc.d, callsPerApp: k}

	queue := 2 * c.capacity
	if sc.noQueue {
		queue = -1 // agencysim: no queue
	}
	sim := agencysim.New(map[agency.Name]agencysim.Config{agency.KCB: {
		Capacity: c.capacity, MedianServiceTime: c.serviceTime, Jitter: agencyJitter,
		QueueLimit: queue, QueueTimeout: c.clientTimeout / 2, InflationPerOverload: 0.5,
	}})
	base, stopSim, err := sim.Start(ctx, "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer func() { _ = stopSim() }()
	ac, err := agency.NewClient(agency.ClientConfig{URLs: map[agency.Name]string{agency.KCB: base + "/kcb"}, Timeout: c.clientTimeout})
	if err != nil {
		return res, fmt.Errorf("agency client: %w", err)
	}

	start := time.Now().Add(c.warmup) // t = 0
	end := start.Add(sc.d)
	log := &runLog{}
	b.finisher.runs.Store(runID, log)
	defer b.finisher.runs.Delete(runID)
	call := &agencyCall{acts: &activities.AgencyActivities{Agencies: ac}, deadline: end, log: log}

	capAt := func(t time.Duration) float64 { return sc.capacity(t) * float64(c.capacity) }
	// loanflow and failsafe-go run on the scenario's worker processes,
	// each with slots of its own; the others' limits are one pool.
	workers := 1
	if strategy == stController || strategy == stPeer || strategy == stPeerDefault {
		workers = c.workers
		if !c.workersSet && sc.workers > 0 {
			workers = sc.workers
		}
	}
	res.workers = workers
	initial := unboundedSlots
	switch strategy {
	case stFixed, stOracle, stController:
		initial = c.capacity
	case stFixedLarge:
		initial = 4 * c.capacity
	}
	peer := tunedPeer(c, workers)
	if strategy == stPeer {
		initial = int(peer.initialLimit)
	}
	var wopts worker.Options
	if strategy == stController {
		wopts.Interceptors = []interceptor.WorkerInterceptor{callstats.NewInterceptor(b.stats)}
	}
	var suppliers []*flowcontrol.SlotSupplier
	var limiters []adaptivelimiter.AdaptiveLimiter[loan.CreditScore]
	for i := range workers {
		s, err := flowcontrol.NewPrefetchingSlotSupplier(initial, c.prefetch)
		if err != nil {
			return res, err
		}
		t, err := flowcontrol.NewTuner(s)
		if err != nil {
			return res, err
		}
		o := wopts
		o.Tuner = t
		// Only activities run on these workers: their workflow-task
		// pollers never start.
		app.ApplyPollers(&o, c.pollers)
		act := *call
		acts := *call.acts
		acts.Gate = flowcontrol.Gates{string(agency.KCB): s}
		if strategy == stController {
			acts.Pace, acts.RefusalPeriod = runPace{b.stats, agencyName}, func(string) time.Duration { return controlPeriod }
		}
		act.acts = &acts
		switch strategy {
		case stPeer:
			// Its limit is the worker's slots, so the calls beyond it wait
			// in the task queue as loanflow's do; a permit is only waited
			// for in the activity right after a cut, until calls end.
			act.limiter, act.gated = peer.build(s), true
		case stPeerDefault:
			act.limiter = adaptivelimiter.NewWithDefaults[loan.CreditScore]()
		}
		if act.limiter != nil {
			limiters = append(limiters, act.limiter)
		}
		wk := worker.New(b.tc, tq, o)
		wk.RegisterActivity(&act)
		if err := wk.Start(); err != nil {
			return res, fmt.Errorf("start worker %d on %s: %w", i, tq, err)
		}
		defer wk.Stop()
		suppliers = append(suppliers, s)
	}
	supplier := suppliers[0]
	// The limit, summed over the worker processes: what the convergence
	// measures for every strategy but unbounded, which has none and is
	// measured by the requests present at the agency.
	limit := func() float64 {
		sum := 0
		for _, s := range suppliers {
			sum += s.Limit()
		}
		return float64(sum)
	}
	switch {
	case strategy == stUnbounded:
		limit = func() float64 { return math.NaN() }
	case len(limiters) > 0:
		limit = func() float64 {
			sum := 0
			for _, l := range limiters {
				sum += l.Limit()
			}
			return float64(sum)
		}
	}
	if strategy == stController {
		stop, err := b.startController(ctx, runID, agencyName, suppliers)
		if err != nil {
			return res, err
		}
		defer stop()
	}

	// The agency's faults and the oracle's pool follow the scenario.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last struct{ c, f float64 }
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			t := time.Since(start)
			cf, ff := sc.capacity(t), sc.slowdown(t)
			if cf != last.c || ff != last.f {
				last.c, last.f = cf, ff
				n := max(1, int(math.Round(capAt(t))))
				_ = sim.SetFaults(agency.KCB, agencysim.Faults{Capacity: &n, ServiceTimeFactor: ff, ErrorRate: sc.errorRate, RefuseRate: sc.refuseRate})
				if strategy == stOracle {
					supplier.SetLimit(n)
				}
			}
			select {
			case <-rctx.Done():
				return
			case <-tk.C:
			}
		}
	}()

	// The sampler.
	var traceMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(c.sampleEvery)
		defer tk.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-tk.C:
			}
			t := time.Since(start)
			if t > sc.d {
				return
			}
			s := sim.Stats(agency.KCB)
			x := sample{T: t, Limit: limit(), Present: s.InService + s.Queued, Capacity: capAt(t)}
			if c.trace {
				x.Requests, x.OK = s.Requests, s.OK
				x.Attempts, x.Expired = log.attempts.Load(), log.expired.Load()
				for _, sp := range suppliers {
					x.Slots = append(x.Slots, slotState{Limit: sp.Limit(), InUse: sp.InUse(), Running: sp.Running(), Calling: sp.Calling()})
				}
				if len(res.trace)%max(1, int(time.Second/c.sampleEvery)) == 0 { // what printTrace prints
					x.Backlog = b.backlog(rctx, tq, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
					x.Workflows = b.backlog(rctx, benchQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
					if strategy == stController {
						x.Decision, x.Reading = b.decision(rctx, controllerID(runID), agencyName)
					}
				}
			}
			traceMu.Lock()
			res.trace = append(res.trace, x)
			traceMu.Unlock()
		}
	}()

	// Each phase's counters, taken at its edges.
	res.phases = phasesOf(sc, c)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range res.phases {
			p := &res.phases[i]
			if !sleepUntil(rctx, start.Add(p.from)) {
				return
			}
			a := sim.Stats(agency.KCB)
			if !sleepUntil(rctx, start.Add(p.to)) {
				return
			}
			z := sim.Stats(agency.KCB)
			p.ok = z.OK - a.OK
			p.errors = (z.Overload - a.Overload) + (z.Errors - a.Errors) + (z.Abandoned - a.Abandoned)
		}
	}()

	if c.cpuProfiles != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := profileWindow(rctx, c.cpuProfiles, runID, start, end); err != nil {
				fmt.Fprintln(os.Stderr, "bench flow:", err)
			}
		}()
	}

	// The measurement window's counters, taken at its two edges.
	var s0, s1 agencysim.Stats
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !sleepUntil(rctx, start) {
			return
		}
		s0 = sim.Stats(agency.KCB)
		if !sleepUntil(rctx, end) {
			return
		}
		s1 = sim.Stats(agency.KCB)
	}()

	// The offered load: Poisson arrivals of applications at the scenario's
	// rate of calls ÷ K (evenly spaced when the scenario is paced).
	rng := rand.New(rand.NewPCG(uint64(b.seq), 7))
	var starts sync.WaitGroup
	var startErrs int
	var firstStartErr error
	var startMu sync.Mutex
	next := start.Add(-c.warmup)
	for next.Before(end) {
		if !sleepUntil(ctx, next) {
			return res, ctx.Err()
		}
		t := time.Since(start)
		seq := log.add(time.Now())
		in := appInput{Run: runID, Seq: seq, AgencyTQ: tq, CallBudget: c.clientTimeout + time.Second, Calls: k,
			Request: activities.AgencyRequest{Agency: agency.KCB, CustomerID: fmt.Sprintf("C%08d", seq%100_000_000),
				ApplicationID: fmt.Sprintf("%s-%d", runID, seq)}}
		starts.Add(1)
		go func() {
			defer starts.Done()
			_, err := b.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: in.Request.ApplicationID, TaskQueue: benchQueue,
			}, ApplicationWorkflow, in)
			if err != nil {
				startMu.Lock()
				startErrs++
				if firstStartErr == nil {
					firstStartErr = err
				}
				startMu.Unlock()
				log.finish(seq, causeNotStarted, time.Now())
			}
		}()
		gap := 1.0
		if !sc.paced {
			gap = rng.ExpFloat64()
		}
		next = next.Add(time.Duration(gap / appRate(sc, t, c) * float64(time.Second)))
	}
	starts.Wait()
	if !sleepUntil(ctx, end) {
		return res, ctx.Err()
	}
	// Let the leftovers drain: the activity refuses at once from now on.
	for _, s := range suppliers {
		s.SetLimit(unboundedSlots)
	}
	drainBy := time.Now().Add(c.drain)
	for log.outstanding() > 0 && time.Now().Before(drainBy) {
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return res, ctx.Err()
		}
	}
	left := log.outstanding()
	if left > 0 {
		b.terminateLeftovers(ctx, log, runID)
	}
	// The next run starts on a server that has caught up: leftover tasks
	// of this one would otherwise delay the next strategy's.
	b.settle(ctx)
	cancel()
	wg.Wait()

	res.cpu, res.started, res.attempts = cpuTime()-cpu0, log.count(), log.attempts.Load()
	res.ok = s1.OK - s0.OK
	res.errors = (s1.Overload - s0.Overload) + (s1.Errors - s0.Errors) + (s1.Abandoned - s0.Abandoned)
	res.calls = res.ok + res.errors
	res.apps = log.stats(start, end)
	res.expired = log.expired.Load()
	res.trueRate = trueRate(sc, c)
	res.converge = convergence(res.trace, sc.steps, sc.d, strategy == stUnbounded)
	if startErrs > 0 || left > 0 {
		res.limiterNote = fmt.Sprintf("%d starts failed, %d applications terminated after the drain", startErrs, left)
		if firstStartErr != nil {
			res.limiterNote += fmt.Sprintf(" (the first start's error: %v)", firstStartErr)
		}
	}
	return res, nil
}

// appRate is how many applications per second start at t: the scenario's
// offered load, in calls/s, over the calls each application makes.
func appRate(sc scenario, t time.Duration, c config) float64 {
	nominal := float64(c.capacity) / c.serviceTime.Seconds()
	return sc.load(t) * nominal / float64(max(c.callsPerApp, 1))
}

// trueRate is the agency's true capacity in calls per second, averaged over
// the window: C(t) over the mean service time, which for agencysim's
// lognormal jitter σ is the median × e^(σ²/2).
func trueRate(sc scenario, c config) float64 {
	mean := meanServiceSeconds(c)
	const steps = 1000
	sum := 0.0
	for i := range steps {
		t := time.Duration((float64(i) + 0.5) / steps * float64(sc.d))
		sum += sc.capacity(t) * float64(c.capacity) / (mean * sc.slowdown(t))
	}
	return sum / steps
}

// convergence measures, after each step, when the concurrency a strategy
// imposes on the agency entered the band of ±max(10% of the capacity, 1
// call) around the true capacity for good, until the next step or the end;
// -1 when it did not. That concurrency is the limit, or the requests present
// at the agency when more are (calls admitted under a higher limit still
// running after a cut, or, in a hand-off between worker processes, the calls
// that hold both shares at 0 until one ends); for a strategy without a limit
// (present), the requests present alone.
func convergence(trace []sample, steps []time.Duration, d time.Duration, present bool) []time.Duration {
	points := make([]flowsim.Point, len(trace))
	for i, x := range trace {
		v := max(x.Limit, float64(x.Present))
		if present {
			v = float64(x.Present)
		}
		points[i] = flowsim.Point{T: x.T, Value: v, Capacity: x.Capacity}
	}
	return flowsim.Convergence(points, steps, d)
}

// startController starts loanflow's controller for the run's agency: the
// real FlowControllerWorkflow (under an id of the run's own) and a
// Membership that keeps the worker's slot supplier at the global limit it
// writes to Redis, as service.StartWorkers wires them.
func (b *bench) startController(ctx context.Context, runID, agencyName string, suppliers []*flowcontrol.SlotSupplier) (stop func(), err error) {
	ac := flowcontrol.DefaultAgencyConfig()
	ac.InitialLimit = b.cfg.initialLimit
	ac.MinSamples = b.cfg.minSamples
	cfg := flowcontrol.Config{Period: controlPeriod, Agencies: map[string]flowcontrol.AgencyConfig{agencyName: ac}}
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var running sync.WaitGroup
	for i, s := range suppliers {
		m, err := flowcontrol.NewMembership(b.membRDB, flowcontrol.MembershipOptions{
			Prefix: b.prefix, WorkerID: fmt.Sprintf("%s-w%d", runID, i), Heartbeat: 500 * time.Millisecond, TTL: 3 * time.Second,
		}, map[string]*flowcontrol.SlotSupplier{agencyName: s}, map[string]int{agencyName: ac.InitialLimit})
		if err != nil {
			cancel()
			running.Wait()
			return nil, fmt.Errorf("controller membership: %w", err)
		}
		running.Add(1)
		go func() {
			defer running.Done()
			_ = m.Run(mctx)
		}()
	}
	go func() {
		running.Wait()
		close(done)
	}()
	id := controllerID(runID)
	if _, err := b.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.ControllerTaskQueue},
		workflows.FlowControllerWorkflow, workflows.FlowControllerInput{Config: cfg}); err != nil {
		cancel()
		<-done
		return nil, fmt.Errorf("start the flow controller: %w", err)
	}
	return func() {
		tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer tcancel()
		_ = b.tc.TerminateWorkflow(tctx, id, "", "benchmark run over")
		cancel()
		<-done
	}, nil
}

// controllerID is the workflow id of a run's flow controller.
func controllerID(runID string) string { return "bench-flow-controller-" + runID }

// decision queries the controller for its last decision on the agency and
// the observation it was taken on, for -trace: as text, and as the reading
// baselineTable counts (nil when the query failed or the agency has no
// state yet).
func (b *bench) decision(ctx context.Context, id, agencyName string) (string, *reading) {
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	v, err := b.tc.QueryWorkflow(qctx, id, "", workflows.FlowStateQuery)
	if err != nil {
		return "query: " + err.Error(), nil
	}
	var st workflows.FlowControllerStatus
	if err := v.Get(&st); err != nil {
		return "query: " + err.Error(), nil
	}
	var rd *reading
	o := st.Observations[agencyName]
	out := fmt.Sprintf("obs ok=%d fail=%d+%d+%d mean=%s p50=%s p90=%s inflight=%d wait=%s", o.OK, o.Overload, o.AgencyErrors, o.Timeouts,
		o.LatencyMean.Round(time.Millisecond), o.LatencyP50.Round(time.Millisecond), o.LatencyP90.Round(time.Millisecond), o.InFlight, o.QueueWaitP90.Round(time.Millisecond))
	// The state the decision left: the baseline it reads latency against
	// (and the calls the warm-up's mean rests on, while it is that mean),
	// and the capacity it last saw.
	if a, ok := st.State.Agencies[agencyName]; ok {
		rd = &reading{Period: o.Period, Mean: o.LatencyMean, Baseline: a.Baseline, OK: o.OK, Periods: a.Periods}
		out += fmt.Sprintf(" baseline=%s", a.Baseline.Round(time.Millisecond))
		if a.Averaged {
			out += fmt.Sprintf(" (warm-up mean of %d calls)", a.BaselineSamples)
		}
		out += fmt.Sprintf(" capacity=%.1f", a.Capacity)
	}
	for _, d := range st.Decisions {
		if d.Agency == agencyName {
			out += fmt.Sprintf(" | %d→%d %s", d.Previous, d.Limit, d.Reason)
		}
	}
	return out, rd
}

// backlog asks the server for a task queue's backlog of one type
// (DescribeTaskQueue with its statistics).
func (b *bench) backlog(ctx context.Context, tq string, typ enumspb.TaskQueueType) queueStats {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := b.tc.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace: b.namespace, TaskQueue: &taskqueuepb.TaskQueue{Name: tq, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: typ, ReportStats: true,
	})
	if err != nil {
		return queueStats{Err: err.Error()}
	}
	st := r.GetStats()
	return queueStats{Count: st.GetApproximateBacklogCount(), Age: st.GetApproximateBacklogAge().AsDuration(),
		AddRate: st.GetTasksAddRate(), DispatchRate: st.GetTasksDispatchRate()}
}

// settle waits, up to a minute, until the applications' workflow task
// queue has no backlog left.
func (b *bench) settle(ctx context.Context) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if q := b.backlog(ctx, benchQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW); q.Err == "" && q.Count == 0 {
			return
		}
		if !sleepUntil(ctx, time.Now().Add(500*time.Millisecond)) {
			return
		}
	}
}

// terminateLeftovers ends the applications of a run that did not drain.
func (b *bench) terminateLeftovers(ctx context.Context, log *runLog, runID string) {
	log.mu.Lock()
	var ids []int
	for i := range log.start {
		if log.end[i].IsZero() {
			ids = append(ids, i)
		}
	}
	log.mu.Unlock()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, i := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_ = b.tc.TerminateWorkflow(tctx, fmt.Sprintf("%s-%d", runID, i), "", "benchmark run over")
		}()
	}
	wg.Wait()
}

// profileWindow writes the process's CPU profile from start to end into
// dir/runID.pprof. The whole process is profiled (server, workers, agency
// and client together), so two runs' profiles differ by what their
// strategies cost.
func profileWindow(ctx context.Context, dir, runID string, start, end time.Time) error {
	if !sleepUntil(ctx, start) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cpu profile folder: %w", err)
	}
	path := filepath.Join(dir, runID+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("cpu profile %s: %w", path, err)
	}
	sleepUntil(ctx, end)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the machine's 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

var errNoRuns = errors.New("no runs: -scenarios and -strategies select nothing")
