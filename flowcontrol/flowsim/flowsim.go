// Package flowsim is a deterministic discrete-time simulation of one agency
// behind a concurrency-limited pool, for tuning and testing the flow
// controller without Temporal or Redis.
//
// The agency follows agencysim's capacity model: Capacity calls in service,
// lognormal service time around a median, a bounded FIFO queue whose
// requests are answered 503 when it is full or when they waited longer than
// QueueTimeout, and service time inflated by 1 + InflationPerOverload ×
// (present − Capacity)/Capacity for a request that starts while more are
// present than the capacity. It may also answer a share of its calls 500
// or 503 at random, whatever the load (Agency.ErrorRate, RefuseRate). The
// client abandons a call after ClientTimeout, and may send a refused or
// abandoned call again (Scenario.Retries).
//
// In front of it sits the pool (the agency's task queue and worker slots):
// calls arrive as a Poisson process at the offered load, wait in an
// unbounded backlog, and are sent while fewer than the pool's limit are in
// flight. A Policy sets the limit: fixed, the oracle (always the true
// capacity, changed the instant it changes), or flowcontrol.Step run every
// control period on the period's statistics, its decision applied after an
// actuation delay as the workers' heartbeat would.
//
// Time advances in ticks (1 ms by default); the random source is seeded, so
// a run is reproducible.
package flowsim

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"loanflow/flowcontrol"
)

// Agency is the simulated agency's capacity model, with agencysim's meaning.
type Agency struct {
	Capacity             int
	MedianServiceTime    time.Duration
	Jitter               float64
	QueueLimit           int
	QueueTimeout         time.Duration
	InflationPerOverload float64
	// RefusalTime is how long a refusal (503) holds the client's slot: a
	// round trip, with no service. 0 frees it within the tick the call was
	// refused in (the client's pacing aside, see Policy.NoPacing).
	RefusalTime time.Duration
	// ErrorRate is the fraction of served calls answered 500 after their
	// service time, whatever the load (agencysim's error_rate); RefuseRate
	// the fraction of calls answered 503 at the door, whatever the load (a
	// gateway's or a rate limiter's stray refusals). Both are the agency's
	// background noise, not a sign of its capacity.
	ErrorRate, RefuseRate float64
}

// Bureau is agencysim's default model of KCB and NICE: capacity 20, median
// 20 ms, jitter 0.25, queue 40 with a 500 ms timeout, inflation 0.5.
func Bureau() Agency {
	return Agency{Capacity: 20, MedianServiceTime: 20 * time.Millisecond, Jitter: 0.25,
		QueueLimit: 40, QueueTimeout: 500 * time.Millisecond, InflationPerOverload: 0.5}
}

// Scraping is agencysim's default model of app scraping: capacity 10,
// median 120 ms, jitter 0.5, queue 20 with a 2 s timeout, inflation 1.
func Scraping() Agency {
	return Agency{Capacity: 10, MedianServiceTime: 120 * time.Millisecond, Jitter: 0.5,
		QueueLimit: 20, QueueTimeout: 2 * time.Second, InflationPerOverload: 1}
}

// NominalRate is the agency's nominal throughput, Capacity/MedianServiceTime,
// in calls per second.
func (a Agency) NominalRate() float64 {
	return float64(a.Capacity) / a.MedianServiceTime.Seconds()
}

// Scenario is what happens to the agency and its load over one run.
type Scenario struct {
	Name   string
	Agency Agency
	// Duration is the length of the run; the measurement covers
	// [MeasureFrom, Duration).
	Duration, MeasureFrom time.Duration
	// Load is the offered load in calls per second at time t.
	Load func(t time.Duration) float64
	// Capacity (at least 1) and ServiceFactor change the agency at time t;
	// nil keeps Agency.Capacity and a factor of 1.
	Capacity      func(t time.Duration) int
	ServiceFactor func(t time.Duration) float64
	// Steps are the instants the agency or the load changes; convergence is
	// measured after each.
	Steps []time.Duration
	// ClientTimeout abandons a call that has not been answered; 0 means
	// 500 ms.
	ClientTimeout time.Duration
	// Tick is the time step; 0 means 1 ms.
	Tick time.Duration
	// Retries is how many more times a call the agency refused (503) or the
	// client abandoned is sent again, each after RetryDelay back in the
	// backlog, as the activities' retry policy does; 0 sends each call once.
	Retries    int
	RetryDelay time.Duration
	// CallBudget is each call's ScheduleToClose: from its arrival, the
	// time it may spend in the backlog, at the agency and in retries. A call
	// whose budget ends while it waits is dropped as expired; one that is
	// sent is cut by the client at the earlier of ClientTimeout and its
	// budget, and a cut by the budget is expired too, not an agency
	// failure. With Reschedule, an expired call comes back as a new one
	// with a full budget, as the loan workflow re-schedules it. 0 means no
	// budget.
	CallBudget time.Duration
	Reschedule bool
	// QuantizeLatency reports p50 and p90 as callstats reads them back from
	// its log buckets (the geometric middle of a bucket ~24.6% wide) instead
	// of exactly.
	QuantizeLatency bool
	// NoMean leaves Observation.LatencyMean unset, so the controller must use
	// the p50.
	NoMean bool
	// Dispatch is the task queue's own latency: a call (or a retry) can
	// be taken by a worker only this long after it joined the backlog
	// (uniform in [½, 1½] × Dispatch), and its wait in the queue counts
	// the dispatch. Temporal's matching on a loaded machine takes tens to
	// hundreds of milliseconds with the worker's slots free. 0 means none.
	Dispatch time.Duration
	// HostDelay is what the caller's own host adds, at time t, to the
	// latency it measures for a call: a loaded machine (the real stack's
	// Temporal server, workers and agencies on two cores) reads responses
	// late. The agency is no slower and the call ends at the same tick;
	// only the latency the controller and admission see is longer. nil
	// means none.
	HostDelay func(t time.Duration) time.Duration
	Seed      uint64
}

// Policy decides the pool's limit.
type Policy struct {
	Name string
	// Oracle sizes the pool to the agency's true capacity at every tick.
	Oracle bool
	// Fixed is a constant limit, used when Oracle is false and Controller
	// is nil.
	Fixed int
	// Controller steps the simulated agency (its tuning is
	// Controller.Agencies["agency"]) every control period of its own, as the
	// controller workflow does (flowcontrol.StepDue): the agency's Period if
	// set, Controller.Period otherwise. Its observations and the pacing of
	// refused calls follow that period.
	Controller *flowcontrol.Config
	// Law pins the controller's control law (flowcontrol.State.Law), as a
	// run recorded under an earlier one replays it; 0 runs the current law.
	Law int
	// ActuationDelay is the time between a decision and the pool following
	// it.
	ActuationDelay time.Duration
	// Window is how many control periods each observation covers, ending
	// now (a sliding window, as a controller may read from callstats); 0
	// means 1.
	Window int
	// Workers splits the pool over this many worker processes, each
	// holding its share of the limit (flowcontrol.Membership's split) and
	// following a decision after its own delay, spread evenly over
	// [0, 2×ActuationDelay] (their heartbeats are not in step); 0 means 1.
	Workers int
	// NoAdmission sends every call, even one whose budget left is below
	// the agency's recent p90 latency or the client's timeout, and classes
	// a cut by the call's budget as a timeout: the worker before
	// deadline-aware admission.
	NoAdmission bool
	// NoPacing frees a refused call's slot as soon as the refusal arrives.
	// By default the slot stays taken until the agency's recent median
	// latency has passed since the send, and a control period at least
	// for a call refused sooner than that (at the door), as the agency
	// activities hold it: otherwise a slot beyond the capacity of an agency
	// that refuses at once turns over a refusal per round trip, hundreds a
	// second.
	NoPacing bool
}

// agencyName is the name the simulation observes its agency under.
const agencyName = "agency"

// Sample is the simulation's state at the end of one control period (or
// second, without a controller).
type Sample struct {
	T         time.Duration
	Limit     int // in effect at T
	InFlight  int
	Capacity  int
	OK        int64 // in the period
	Errors    int64 // 503s, 500s and abandoned calls in the period
	Expired   int64 // calls our budget ended in the period
	LatencyMs float64
	Reason    string
}

// Result is the outcome of one run over the measured window.
type Result struct {
	Scenario, Policy string
	// OK counts successful calls; Overload the agency's 503s; Abandoned the
	// calls the client gave up on; Errors its 500s (Agency.ErrorRate).
	// Calls still in flight at the end count in none.
	OK, Overload, Abandoned, Errors int64
	// Expired counts the calls whose budget ended (not agency errors).
	Expired int64
	// Goodput is OK per second.
	Goodput float64
	// ErrorRate is (Overload + Abandoned + Errors) / calls ended, as the
	// agency sees it.
	ErrorRate float64
	// LatencyP50 and LatencyP99 are the application latency (backlog wait plus
	// agency latency) of the successful calls.
	LatencyP50, LatencyP99 time.Duration
	// Convergence is, for each of the scenario's steps, the time until the
	// limit came within 10% (at least 1) of the capacity and stayed there
	// until the next step; -1 when it never did. The limit is sampled at the
	// end of each period, so a figure is the end of the first period from
	// which it stayed in the band, and 0 means it never left the band.
	Convergence []time.Duration
	// Phases are the stretches between steps (see Phase).
	Phases []Phase
	Trace  []Sample
}

// outcome of one call.
type outcome int8

const (
	outOK outcome = iota
	outOverload
	outAbandoned
	outExpired
	outError
)

type call struct {
	arrived, sent, deadline int64 // ticks
	budget                  int64 // ticks: the end of its budget, 0 without
	budgetCut               bool  // deadline is the budget's, not the client timeout's
	worker                  int
	attempts                int
	retryAt                 int64 // ticks, while waiting to be retried
	endAt                   int64 // ticks, when in service
	visibleAt               int64 // ticks, when a worker may take it from the backlog
	abandon                 bool  // in service but the client gives up at deadline first
	fail                    bool  // in service, answered 500 at its end (Agency.ErrorRate)
}

// events is a min-heap of in-service calls by the tick they leave.
type events []*call

func (e events) Len() int           { return len(e) }
func (e events) Less(i, j int) bool { return e.at(i) < e.at(j) }
func (e events) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)        { *e = append(*e, x.(*call)) }
func (e *events) Pop() any {
	old := *e
	c := old[len(old)-1]
	*e = old[:len(old)-1]
	return c
}
func (e events) at(i int) int64 {
	if e[i].abandon {
		return e[i].deadline
	}
	return e[i].endAt
}

// fifo is a queue of calls that reuses its backing array.
type fifo struct {
	items []*call
	head  int
}

func (q *fifo) push(c *call) { q.items = append(q.items, c) }
func (q *fifo) len() int     { return len(q.items) - q.head }
func (q *fifo) front() *call { return q.items[q.head] }
func (q *fifo) pop() *call {
	c := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	return c
}

// period accumulates one control period's statistics.
type period struct {
	ok, overload, abandoned, expired int64
	errors                           int64 // answered 500
	latencies                        []time.Duration
	waits                            []time.Duration
}

// Run simulates one scenario under one policy.
func Run(sc Scenario, p Policy) (Result, error) {
	if err := validate(sc, p); err != nil {
		return Result{}, err
	}
	tick := sc.Tick
	if tick <= 0 {
		tick = time.Millisecond
	}
	clientTimeout := sc.ClientTimeout
	if clientTimeout <= 0 {
		clientTimeout = 500 * time.Millisecond
	}
	ticks := func(d time.Duration) int64 { return int64(d / tick) }
	at := func(n int64) time.Duration { return time.Duration(n) * tick }
	capacity := func(n int64) int {
		if sc.Capacity != nil {
			return sc.Capacity(at(n))
		}
		return sc.Agency.Capacity
	}
	factor := func(n int64) float64 {
		if sc.ServiceFactor != nil {
			return sc.ServiceFactor(at(n))
		}
		return 1
	}

	rng := rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x9e3779b97f4a7c15))
	res := Result{Scenario: sc.Name, Policy: p.Name}
	var (
		backlog, queue fifo
		retrying       fifo // in retry order, which is also time order
		inService      events
		refusing       events // refused calls, by the tick their slot is freed
		poolInFlight   int
		limit          int
		pending        []pendingLimit
		st             = flowcontrol.State{Law: p.Law}
		cur            period
		history        []period // the previous Window-1 periods, oldest first
		okLat          []time.Duration
		secOK, secErr  int64
		secExp         int64
		workers        = max(p.Workers, 1)
		wLimit         = make([]int, workers)
		wInFlight      = make([]int, workers)
		recent         []recentCall // successful calls, for admission's p90
		admitP90       time.Duration
		paceP50        time.Duration
		reason         string
		nextArrival    = 0.0 // seconds; the first arrival is at once
		end            = ticks(sc.Duration)
		from           = ticks(sc.MeasureFrom)
		ctlEvery       = int64(0)
	)
	switch {
	case p.Oracle:
		limit = capacity(0)
	case p.Controller != nil:
		ctlEvery = ticks(p.Controller.PeriodOf(agencyName))
		limit = p.Controller.Agencies[agencyName].InitialLimit
		if limit == 0 {
			limit = flowcontrol.DefaultAgencyConfig().InitialLimit
		}
	default:
		limit = p.Fixed
	}
	setAll := func(l int) {
		for w := range wLimit {
			wLimit[w] = shareOf(l, w, workers)
		}
	}
	setAll(limit)
	sampleEvery := ctlEvery
	if sampleEvery == 0 {
		sampleEvery = ticks(time.Second)
	}

	budget := ticks(sc.CallBudget)
	// dispatched is when a call that joins the backlog now is visible to
	// the workers.
	dispatched := func(now int64) int64 {
		if sc.Dispatch <= 0 {
			return now
		}
		return now + ticks(time.Duration((0.5+rng.Float64())*float64(sc.Dispatch)))
	}
	arrive := func(now int64) *call {
		c := &call{arrived: now, visibleAt: dispatched(now)}
		if budget > 0 {
			c.budget = now + budget
		}
		return c
	}
	expire := func(c *call, now int64) {
		cur.expired++
		secExp++
		if now >= from {
			res.Expired++
		}
		if sc.Reschedule {
			backlog.push(arrive(now))
		}
	}
	// free gives c's slot back to the pool.
	free := func(c *call) {
		poolInFlight--
		wInFlight[c.worker]--
	}
	// account records c's outcome at now, and schedules its retry.
	var account func(c *call, out outcome, now int64)
	finish := func(c *call, out outcome, now int64) {
		free(c)
		account(c, out, now)
	}
	account = func(c *call, out outcome, now int64) {
		if out == outAbandoned && c.budgetCut && !p.NoAdmission {
			// Our own budget cut it, not the agency.
			expire(c, now)
			return
		}
		switch out {
		case outOK:
			cur.ok++
			lat := at(now - c.sent)
			if sc.HostDelay != nil {
				lat += sc.HostDelay(at(now))
			}
			cur.latencies = append(cur.latencies, lat)
			recent = append(recent, recentCall{at: at(now), lat: lat})
			if len(recent) > 2*recentSize {
				recent = append(recent[:0], recent[len(recent)-recentSize:]...)
			}
			secOK++
		case outOverload:
			cur.overload++
			secErr++
		case outAbandoned:
			cur.abandoned++
			secErr++
		case outError:
			cur.errors++
			secErr++
		}
		if out != outOK && c.attempts < sc.Retries && (c.budget == 0 || now+ticks(sc.RetryDelay) < c.budget) {
			c.attempts++
			c.retryAt = now + ticks(sc.RetryDelay)
			retrying.push(c)
		}
		if now < from {
			return
		}
		switch out {
		case outOK:
			res.OK++
			okLat = append(okLat, at(now-c.arrived))
		case outOverload:
			res.Overload++
		case outAbandoned:
			res.Abandoned++
		case outError:
			res.Errors++
		}
	}
	serve := func(c *call, now int64, present int) {
		capNow := capacity(now)
		z := min(max(rng.NormFloat64(), -4), 4)
		d := float64(sc.Agency.MedianServiceTime) * math.Exp(sc.Agency.Jitter*z) * factor(now)
		if over := present - capNow; over > 0 && sc.Agency.InflationPerOverload > 0 {
			d *= 1 + sc.Agency.InflationPerOverload*float64(over)/float64(capNow)
		}
		c.endAt = now + max(1, int64(math.Round(d/float64(tick))))
		c.abandon = c.deadline < c.endAt
		// Drawn only for an agency that fails at random, so that the other
		// scenarios keep their random sequence.
		c.fail = sc.Agency.ErrorRate > 0 && rng.Float64() < sc.Agency.ErrorRate
		heap.Push(&inService, c)
	}

	// refuse answers c 503 at now. The refusal is read at once; its slot
	// stays taken for the round trip (RefusalTime) and, with pacing, until
	// the agency's recent median latency has passed since the send, and a
	// control period for a call refused sooner than that (no later than
	// the call's deadline).
	refuse := func(c *call, now int64) {
		hold := ticks(sc.Agency.RefusalTime)
		if !p.NoPacing {
			// Counted from the send: a call refused after a wait in the
			// agency's queue has held its slot for that wait already.
			// Refused sooner than a call is served, at the door, it is
			// held a control period at least.
			until := c.sent + ticks(paceP50)
			if now < until {
				until = max(until, c.sent+sampleEvery)
			}
			hold = max(hold, until-now)
		}
		if c.deadline > now {
			hold = min(hold, c.deadline-now)
		}
		if hold <= 0 {
			finish(c, outOverload, now)
			return
		}
		// The refusal is read (and the call retried) at once; only its
		// slot stays taken.
		account(c, outOverload, now)
		h := &call{worker: c.worker, endAt: now + hold}
		heap.Push(&refusing, h)
	}

	for now := int64(0); now < end; now++ {
		// The limit: the oracle follows the capacity at once; decisions take
		// effect after the actuation delay.
		if p.Oracle && capacity(now) != limit {
			limit = capacity(now)
			setAll(limit)
		}
		for len(pending) > 0 && pending[0].at <= now {
			wLimit[pending[0].worker] = pending[0].limit
			pending = pending[1:]
		}
		// Calls leaving service.
		for inService.Len() > 0 && inService.at(0) <= now {
			c := heap.Pop(&inService).(*call)
			if c.abandon {
				finish(c, outAbandoned, now)
			} else if c.fail {
				finish(c, outError, now)
			} else {
				finish(c, outOK, now)
			}
		}
		for refusing.Len() > 0 && refusing.at(0) <= now {
			free(heap.Pop(&refusing).(*call))
		}
		// Queued calls that waited too long: the client's timeout or the
		// agency's, whichever comes first (both are FIFO in send order).
		queueDeadline := ticks(sc.Agency.QueueTimeout)
		for queue.len() > 0 {
			c := queue.front()
			switch {
			case c.deadline <= now && c.deadline <= c.sent+queueDeadline:
				queue.pop()
				finish(c, outAbandoned, now)
				continue
			case c.sent+queueDeadline <= now:
				queue.pop()
				refuse(c, now)
				continue
			}
			break
		}
		// Free agency slots go to queued calls in arrival order.
		for capNow := capacity(now); inService.Len() < capNow && queue.len() > 0; {
			c := queue.pop()
			serve(c, now, inService.Len()+1+queue.len())
		}
		// Arrivals: a Poisson process at the offered load; with no load,
		// look again next tick.
		for nextArrival <= at(now).Seconds() {
			rate := sc.Load(at(now))
			if rate <= 0 {
				nextArrival = at(now + 1).Seconds()
				break
			}
			backlog.push(arrive(now))
			nextArrival += rng.ExpFloat64() / rate
		}
		// Retries rejoin the backlog (at its end, as a new task would).
		for retrying.len() > 0 && retrying.front().retryAt <= now {
			c := retrying.pop()
			c.visibleAt = dispatched(now)
			backlog.push(c)
		}
		// Calls whose budget ended while they waited leave the backlog.
		for backlog.len() > 0 && backlog.front().budget > 0 && backlog.front().budget <= now {
			expire(backlog.pop(), now)
		}
		// Each worker sends while below its share of the limit (starting
		// with a different worker each tick, as their pollers race).
		for k := range workers {
			w := (int(now) + k) % workers
			for wInFlight[w] < wLimit[w] && backlog.len() > 0 && backlog.front().visibleAt <= now {
				c := backlog.pop()
				if !p.NoAdmission && c.budget > 0 && at(c.budget-now) < max(admitP90, clientTimeout) {
					expire(c, now) // not sent: too little budget left
					continue
				}
				c.sent = now
				c.worker = w
				c.deadline = now + ticks(clientTimeout)
				if c.budget > 0 && c.budget < c.deadline {
					c.deadline, c.budgetCut = c.budget, true
				}
				poolInFlight++
				wInFlight[w]++
				cur.waits = append(cur.waits, at(now-c.arrived))
				switch capNow := capacity(now); {
				case sc.Agency.RefuseRate > 0 && rng.Float64() < sc.Agency.RefuseRate:
					refuse(c, now)
				case inService.Len() < capNow && queue.len() == 0:
					serve(c, now, inService.Len()+1)
				case queue.len() < sc.Agency.QueueLimit:
					queue.push(c)
				default:
					refuse(c, now)
				}
			}
		}
		// The end of a control period.
		if (now+1)%sampleEvery == 0 {
			t := at(now + 1)
			if p.Controller != nil {
				win := merge(history, cur)
				o := observe(&win, sc, backlog, now, at, poolInFlight, at(sampleEvery)*time.Duration(len(history)+1), t)
				var ds []flowcontrol.Decision
				st, ds = flowcontrol.StepDue(st, map[string]flowcontrol.Observation{agencyName: o}, *p.Controller, []string{agencyName})
				d := ds[0]
				reason = d.Reason
				for w := range workers {
					delay := p.ActuationDelay
					if workers > 1 {
						delay = p.ActuationDelay * 2 * time.Duration(w) / time.Duration(workers-1)
					}
					pending = append(pending, pendingLimit{at: now + 1 + ticks(delay), worker: w, limit: shareOf(d.Limit, w, workers)})
				}
				slices.SortStableFunc(pending, func(a, b pendingLimit) int { return cmp.Compare(a.at, b.at) })
			}
			admitP90 = recentP90(recent, at(now))
			paceP50 = recentQuantile(recent, at(now), 0.5)
			limit = 0
			for _, l := range wLimit {
				limit += l
			}
			lat := 0.0
			if len(cur.latencies) > 0 {
				lat = float64(mean(cur.latencies)) / float64(time.Millisecond)
			}
			res.Trace = append(res.Trace, Sample{T: t, Limit: limit, InFlight: poolInFlight, Capacity: capacity(now),
				OK: secOK, Errors: secErr, Expired: secExp, LatencyMs: lat, Reason: reason})
			secOK, secErr, secExp = 0, 0, 0
			if p.Window > 1 {
				history = append(history, cur)
				if len(history) > p.Window-1 {
					history = history[1:]
				}
				cur = period{}
			} else {
				cur = period{latencies: cur.latencies[:0], waits: cur.waits[:0]}
			}
		}
	}

	window := (sc.Duration - sc.MeasureFrom).Seconds()
	res.Goodput = float64(res.OK) / window
	if ended := res.OK + res.Overload + res.Abandoned + res.Errors; ended > 0 {
		res.ErrorRate = float64(res.Overload+res.Abandoned+res.Errors) / float64(ended)
	}
	slices.Sort(okLat)
	res.LatencyP50, res.LatencyP99 = quantile(okLat, 0.5), quantile(okLat, 0.99)
	res.Convergence = convergence(res.Trace, sc)
	res.Phases = phases(res.Trace, sc)
	return res, nil
}

type pendingLimit struct {
	at     int64
	worker int
	limit  int
}

// shareOf is worker w's share of global among n workers, as
// flowcontrol.Membership splits it (without rotation): global/n, one more
// for the first global%n; it may be 0.
func shareOf(global, w, n int) int {
	s := global / n
	if w < global%n {
		s++
	}
	return s
}

// recentCall is a successful call's end and latency.
type recentCall struct {
	at  time.Duration
	lat time.Duration
}

// Admission's estimate of the agency's latency, as callstats'
// AgencyLatency: the p90 of the last recentSize successful calls within
// recentMaxAge, none with fewer than recentMin.
const (
	recentSize   = 128
	recentMaxAge = 30 * time.Second
	recentMin    = 5
)

func recentP90(recent []recentCall, now time.Duration) time.Duration {
	return recentQuantile(recent, now, 0.9)
}

// recentQuantile is the q-quantile of the last recentSize successful calls
// within recentMaxAge, 0 with fewer than recentMin.
func recentQuantile(recent []recentCall, now time.Duration, q float64) time.Duration {
	var lats []time.Duration
	for i := len(recent) - 1; i >= 0 && len(lats) < recentSize; i-- {
		if now-recent[i].at <= recentMaxAge {
			lats = append(lats, recent[i].lat)
		}
	}
	if len(lats) < recentMin {
		return 0
	}
	slices.Sort(lats)
	return lats[min(len(lats)-1, int(q*float64(len(lats))))]
}

// Phase is the stretch between two of a scenario's steps, measured from
// PhaseSettle after the step that opens it (from MeasureFrom for the first).
type Phase struct {
	From, To                time.Duration
	OK, Errors, Expired     int64
	Goodput                 float64 // OK per second
	MeanLimit, MeanCapacity float64
}

// PhaseSettle is how long after a step a phase's measurement starts.
const PhaseSettle = 5 * time.Second

func phases(trace []Sample, sc Scenario) []Phase {
	bounds := append(append([]time.Duration{sc.MeasureFrom}, sc.Steps...), sc.Duration)
	out := make([]Phase, 0, len(bounds)-1)
	for i := 0; i+1 < len(bounds); i++ {
		ph := Phase{From: bounds[i], To: bounds[i+1]}
		if i > 0 {
			ph.From += PhaseSettle
		}
		n := 0
		for _, x := range trace {
			if x.T <= ph.From || x.T > ph.To {
				continue
			}
			ph.OK += x.OK
			ph.Errors += x.Errors
			ph.Expired += x.Expired
			ph.MeanLimit += float64(x.Limit)
			ph.MeanCapacity += float64(x.Capacity)
			n++
		}
		if n > 0 {
			ph.MeanLimit /= float64(n)
			ph.MeanCapacity /= float64(n)
		}
		if d := (ph.To - ph.From).Seconds(); d > 0 {
			ph.Goodput = float64(ph.OK) / d
		}
		out = append(out, ph)
	}
	return out
}

// merge returns the statistics of the periods together, in new slices.
func merge(history []period, cur period) period {
	if len(history) == 0 {
		return cur
	}
	var m period
	for _, p := range append(slices.Clone(history), cur) {
		m.ok += p.ok
		m.overload += p.overload
		m.abandoned += p.abandoned
		m.errors += p.errors
		m.expired += p.expired
		m.latencies = append(m.latencies, p.latencies...)
		m.waits = append(m.waits, p.waits...)
	}
	return m
}

// observe turns a period's counters into the controller's Observation.
func observe(cur *period, sc Scenario, backlog fifo, now int64, at func(int64) time.Duration,
	inFlight int, length, end time.Duration) flowcontrol.Observation {
	o := flowcontrol.Observation{
		Calls:        cur.ok + cur.overload + cur.abandoned + cur.errors,
		OK:           cur.ok,
		Overload:     cur.overload,
		AgencyErrors: cur.errors,
		Timeouts:     cur.abandoned,
		Expired:      cur.expired,
		InFlight:     inFlight,
		Period:       length,
		Now:          time.Unix(0, 0).Add(end),
	}
	slices.Sort(cur.latencies)
	o.LatencyP50, o.LatencyP90 = quantile(cur.latencies, 0.5), quantile(cur.latencies, 0.9)
	if sc.QuantizeLatency {
		o.LatencyP50, o.LatencyP90 = quantize(o.LatencyP50), quantize(o.LatencyP90)
	}
	if !sc.NoMean && len(cur.latencies) > 0 {
		o.LatencyMean = mean(cur.latencies)
	}
	waits := cur.waits
	if backlog.len() > 0 { // calls still waiting count with their wait so far
		waits = append(waits, at(now-backlog.front().arrived))
	}
	slices.Sort(waits)
	o.QueueWaitP90 = quantile(waits, 0.9)
	return o
}

// quantize reads d back as callstats does: the geometric middle of its log
// bucket, buckets growing by 60000^(1/50) from 1 ms.
func quantize(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d
	}
	const growth = 1.246129062952
	i := math.Floor(math.Log(float64(d)/float64(time.Millisecond)) / math.Log(growth))
	lo := float64(time.Millisecond) * math.Pow(growth, i)
	return time.Duration(lo * math.Sqrt(growth))
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// convergence measures, after each step, when the limit entered the band
// around the capacity for good (until the next step or the end).
func convergence(trace []Sample, sc Scenario) []time.Duration {
	points := make([]Point, len(trace))
	for i, x := range trace {
		points[i] = Point{T: x.T, Value: float64(x.Limit), Capacity: float64(x.Capacity)}
	}
	return Convergence(points, sc.Steps, sc.Duration)
}

// Point is one sample of a controlled value (a limit, or calls at the
// agency) and the true capacity it should track.
type Point struct {
	T               time.Duration
	Value, Capacity float64
}

// Convergence measures, after each step, when the value entered the band of
// ±max(10% of the capacity, 1) around the capacity for good, until the next
// step or end; -1 when it did not, 0 when it never left. A NaN value is
// outside the band.
func Convergence(points []Point, steps []time.Duration, end time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(steps))
	for i, s := range steps {
		stop := end
		if i+1 < len(steps) {
			stop = steps[i+1]
		}
		entered := time.Duration(-1)
		first := true
		for _, x := range points {
			if x.T <= s || x.T > stop {
				continue
			}
			switch {
			case outsideBand(x.Value, x.Capacity):
				entered = -1
			case first: // never left the band
				entered = 0
			case entered < 0:
				entered = x.T - s
			}
			first = false
		}
		out = append(out, entered)
	}
	return out
}

// outsideBand reports whether value is outside the band Convergence
// measures in: ±max(10% of the capacity, 1) around capacity. A NaN value
// is outside it.
func outsideBand(value, capacity float64) bool {
	return math.IsNaN(value) || math.Abs(value-capacity) > max(0.1*capacity, 1)
}

func validate(sc Scenario, p Policy) error {
	a := sc.Agency
	switch {
	case sc.Load == nil:
		return fmt.Errorf("scenario %s: load is nil: accepted a function of time", sc.Name)
	case sc.Duration <= 0 || sc.MeasureFrom < 0 || sc.MeasureFrom >= sc.Duration:
		return fmt.Errorf("scenario %s: measure from %s to %s: accepted 0 ≤ from < duration", sc.Name, sc.MeasureFrom, sc.Duration)
	case sc.CallBudget < 0 || p.Workers < 0:
		return fmt.Errorf("scenario %s: call budget %s, policy %s: workers %d: accepted 0 or more", sc.Name, sc.CallBudget, p.Name, p.Workers)
	case sc.Retries < 0 || sc.RetryDelay < 0:
		return fmt.Errorf("scenario %s: retries %d after %s: accepted 0 or more", sc.Name, sc.Retries, sc.RetryDelay)
	case a.Capacity < 1 || a.MedianServiceTime <= 0 || a.QueueLimit < 0 || a.QueueTimeout <= 0 || a.RefusalTime < 0:
		return fmt.Errorf("scenario %s: agency %+v: accepted capacity ≥ 1, median and queue timeout > 0, queue limit and refusal time ≥ 0", sc.Name, a)
	case !(a.ErrorRate >= 0 && a.ErrorRate < 1) || !(a.RefuseRate >= 0 && a.RefuseRate < 1):
		return fmt.Errorf("scenario %s: agency error rate %v, refuse rate %v: accepted 0 to less than 1", sc.Name, a.ErrorRate, a.RefuseRate)
	case !p.Oracle && p.Controller == nil && p.Fixed < 1:
		return fmt.Errorf("policy %s: fixed %d: accepted 1 or more, or oracle, or a controller", p.Name, p.Fixed)
	case p.Controller != nil:
		if err := p.Controller.Validate(); err != nil {
			return fmt.Errorf("policy %s: %w", p.Name, err)
		}
	}
	return nil
}
