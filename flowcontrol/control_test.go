package flowcontrol

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	agencyA = "kcb"
	svc     = 20 * time.Millisecond // the fluid agency's service time
)

// fluid is a deterministic, averaged model of agencysim's agency: capacity C
// in service, service time S inflated past capacity, a queue of Q, and
// everything beyond answered 503 at once. The pool always has a backlog, so
// it keeps the limit in flight.
type fluid struct {
	C    int
	S    time.Duration
	Q    int
	Down bool
}

func (f fluid) observe(limit int) Observation {
	o := Observation{Period: time.Second, InFlight: limit, QueueWaitP90: 2 * time.Second}
	if f.Down {
		o.Calls, o.Overload = 1000, 1000
		return o
	}
	l, c := float64(limit), float64(f.C)
	present := min(l, c+float64(f.Q))
	infl := 1.0
	if present > c {
		infl = 1 + 0.5*(present-c)/c
	}
	throughput := min(present, c) / (f.S.Seconds() * infl) // per second
	lat := time.Duration(float64(time.Second) * present / throughput)
	o.OK = int64(throughput)
	o.Overload = int64(max(l-present, 0) * 100) // rejected at once, so retried often
	o.Calls = o.OK + o.Overload
	o.LatencyMean, o.LatencyP50, o.LatencyP90 = lat, lat, lat*138/100
	return o
}

// warm is an agency state past warm-up, with a 20 ms baseline, that last
// saw the agency at capacity at limit.
func warm(limit float64) AgencyState {
	return AgencyState{Limit: limit, Baseline: svc, BaselineSignal: "mean", BaselinePeriods: warmupPeriods,
		BaselineSamples: 3000, Periods: 10, Capacity: limit, HighWater: limit}
}

func state(s AgencyState) State { return State{Agencies: map[string]AgencyState{agencyA: s}} }

func cfgWith(f func(*AgencyConfig)) Config {
	c := DefaultConfig(agencyA)
	ac := c.Agencies[agencyA]
	if f != nil {
		f(&ac)
	}
	c.Agencies[agencyA] = ac
	return c
}

func step1(t *testing.T, st State, o Observation, cfg Config) (State, Decision) {
	t.Helper()
	next, ds := Step(st, map[string]Observation{agencyA: o}, cfg)
	if len(ds) != 1 || ds[0].Agency != agencyA {
		t.Fatalf("decisions %+v, want one for %s", ds, agencyA)
	}
	return next, ds[0]
}

// healthy is a period at limit 10 with a backlog and baseline latency.
func healthy() Observation { return fluid{C: 20, S: svc, Q: 40}.observe(10) }

func TestStepSinglePeriod(t *testing.T) {
	for _, tc := range []struct {
		name   string
		st     AgencyState
		obs    func() Observation
		cfg    func(*AgencyConfig)
		check  func(d Decision) bool
		reason string // a substring the reason must contain
	}{
		{
			name: "rises when healthy with demand", st: warm(10), obs: healthy,
			check: func(d Decision) bool { return d.Limit > d.Previous }, reason: "healthy, backlog",
		},
		{
			name: "holds with no demand", st: warm(10),
			obs: func() Observation {
				o := healthy()
				o.InFlight, o.QueueWaitP90 = 3, time.Millisecond
				return o
			},
			check: func(d Decision) bool { return d.Limit == 10 }, reason: "hold: no backlog",
		},
		{
			name: "backs off under overload", st: warm(30),
			obs:   func() Observation { return fluid{C: 10, S: svc, Q: 5}.observe(30) },
			check: func(d Decision) bool { return d.Limit <= 27 }, reason: "overload",
		},
		{
			name: "cuts when the agency queues", st: warm(30),
			obs:   func() Observation { return fluid{C: 20, S: svc, Q: 40}.observe(30) },
			check: func(d Decision) bool { return d.Limit >= 15 && d.Limit < 25 }, reason: "latency",
		},
		{
			name: "holds in the band at capacity", st: warm(21),
			obs:   func() Observation { return fluid{C: 20, S: svc, Q: 40}.observe(21) },
			check: func(d Decision) bool { return d.Limit == 21 }, reason: "at capacity",
		},
		{
			name: "respects the maximum", st: warm(12), obs: healthy,
			cfg:   func(c *AgencyConfig) { c.MaxLimit = 12 },
			check: func(d Decision) bool { return d.Limit == 12 },
		},
		{
			name: "respects the minimum", st: warm(2),
			obs:   func() Observation { return fluid{Down: true}.observe(2) },
			cfg:   func(c *AgencyConfig) { c.MinLimit = 2 },
			check: func(d Decision) bool { return d.Limit == 2 }, reason: "overload",
		},
		{
			name: "clamps a limit outside new bounds", st: warm(50), obs: healthy,
			cfg:   func(c *AgencyConfig) { c.MaxLimit = 40 },
			check: func(d Decision) bool { return d.Previous == 50 && d.Limit == 40 },
		},
		{
			// 500s at the baseline latency with nothing refused are the
			// agency's, not the load's: the rules read on without them.
			name: "errors that are not load do not hold growth", st: warm(10),
			obs: func() Observation {
				o := healthy()
				o.AgencyErrors = o.OK / 20
				o.Calls += o.AgencyErrors
				return o
			},
			check: func(d Decision) bool { return d.Limit > 10 }, reason: "not load; healthy, backlog",
		},
		{
			// A little above the growth threshold, within the tolerance,
			// they hold the limit and do not cut it.
			name: "errors that are not load hold within the tolerance", st: warm(10),
			obs: func() Observation {
				o := healthy()
				o.AgencyErrors = o.OK / 20
				o.Calls += o.AgencyErrors
				o.LatencyMean = svc * 112 / 100
				return o
			},
			check: func(d Decision) bool { return d.Limit == 10 }, reason: "but latency normal and no overload answers: not load",
		},
		{
			name: "learns the baseline before growing", st: AgencyState{Limit: 10}, obs: healthy,
			check: func(d Decision) bool { return d.Limit == 10 }, reason: "learning the baseline",
		},
		{
			name: "few samples gather evidence instead of growing", st: warm(10),
			obs: func() Observation {
				o := healthy()
				o.OK, o.Calls = 3, 3
				return o
			},
			check: func(d Decision) bool { return d.Limit == 10 }, reason: "gathering evidence",
		},
		{
			name: "failures in a thin period are not waited for", st: warm(10),
			obs: func() Observation {
				o := healthy()
				o.OK, o.Overload, o.Calls = 3, 3, 6
				return o
			},
			check: func(d Decision) bool { return d.Limit < 10 }, reason: "overload",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d := step1(t, state(tc.st), tc.obs(), cfgWith(tc.cfg))
			if !tc.check(d) || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("decision %+v", d)
			}
		})
	}
}

func TestStepMissingObservationHolds(t *testing.T) {
	cfg := DefaultConfig(agencyA, "nice")
	st := State{Agencies: map[string]AgencyState{agencyA: warm(10), "nice": warm(7)}}
	_, ds := Step(st, map[string]Observation{agencyA: healthy()}, cfg)
	if len(ds) != 2 || ds[0].Agency != agencyA || ds[1].Agency != "nice" {
		t.Fatalf("decisions %+v, want kcb then nice", ds)
	}
	if ds[1].Limit != 7 || ds[1].Previous != 7 || ds[1].Reason != "hold: no statistics" {
		t.Fatalf("nice: %+v, want a hold at 7", ds[1])
	}
	// An observed agency that is not configured gets the defaults.
	_, ds = Step(State{}, map[string]Observation{"other": healthy()}, DefaultConfig())
	if len(ds) != 1 || ds[0].Limit != DefaultAgencyConfig().InitialLimit {
		t.Fatalf("unconfigured agency: %+v, want a decision at the default initial limit", ds)
	}
}

// loop runs Step against a fluid agency that changes with the step number,
// and returns the limit decided at each step.
func loop(t *testing.T, st State, cfg Config, steps int, agency func(step int) fluid) (State, []Decision) {
	t.Helper()
	var out []Decision
	limit := roundLimit(st.Agencies[agencyA].Limit)
	if limit == 0 {
		limit = cfg.Agencies[agencyA].InitialLimit
	}
	for i := range steps {
		var d Decision
		st, d = step1(t, st, agency(i).observe(limit), cfg)
		limit = d.Limit
		out = append(out, d)
	}
	return st, out
}

func limitsOf(ds []Decision) []int {
	out := make([]int, len(ds))
	for i, d := range ds {
		out[i] = d.Limit
	}
	return out
}

func within(ds []Decision, lo, hi int) bool {
	for _, d := range ds {
		if d.Limit < lo || d.Limit > hi {
			return false
		}
	}
	return true
}

func firstWithin(ds []Decision, lo, hi int) int {
	for i := range ds {
		if within(ds[i:], lo, hi) {
			return i
		}
	}
	return -1
}

func TestStepClosedLoop(t *testing.T) {
	base := fluid{C: 20, S: svc, Q: 40}
	cfg := DefaultConfig(agencyA)
	for _, tc := range []struct {
		name   string
		st     AgencyState
		steps  int
		agency func(i int) fluid
		check  func(ds []Decision) error
	}{
		{
			name: "stable at steady state", st: warm(20), steps: 50,
			agency: func(int) fluid { return base },
			check: func(ds []Decision) error {
				if !within(ds, 18, 22) {
					return fmt.Errorf("left ±10%% of capacity 20")
				}
				return nil
			},
		},
		{
			name: "converges from a cold start", st: AgencyState{}, steps: 30,
			agency: func(int) fluid { return base },
			check: func(ds []Decision) error {
				if i := firstWithin(ds, 18, 22); i < 0 || i > 10 {
					return fmt.Errorf("within ±10%% of 20 for good from step %d, want ≤ 10", i)
				}
				return nil
			},
		},
		{
			name: "recovers after an outage", st: warm(20), steps: 40,
			agency: func(i int) fluid {
				if i >= 10 && i < 15 {
					return fluid{Down: true}
				}
				return base
			},
			check: func(ds []Decision) error {
				// An outage is the breakers' case, not a capacity: the
				// limit keeps half the ceiling, so one doubling restores it.
				if ds[11].Limit != 10 {
					return fmt.Errorf("limit %d one step into the outage, want half the ceiling of 20, 10", ds[11].Limit)
				}
				if i := firstWithin(ds[15:], 18, 22); i < 0 || i > 6 {
					return fmt.Errorf("back within ±10%% of 20 for good %d steps after the outage, want ≤ 6", i)
				}
				return nil
			},
		},
		{
			name: "follows capacity down and back up", st: warm(20), steps: 60,
			agency: func(i int) fluid {
				if i >= 20 && i < 40 {
					return fluid{C: 10, S: svc, Q: 40}
				}
				return base
			},
			check: func(ds []Decision) error {
				if i := firstWithin(ds[20:40], 9, 11); i < 0 || i > 5 {
					return fmt.Errorf("within ±10%% of 10 for good %d steps after the drop, want ≤ 5", i)
				}
				if i := firstWithin(ds[40:], 18, 22); i < 0 || i > 5 {
					return fmt.Errorf("within ±10%% of 20 for good %d steps after the return, want ≤ 5", i)
				}
				return nil
			},
		},
		{
			name: "relearns a slower agency instead of starving it", st: warm(20), steps: 40,
			agency: func(i int) fluid {
				if i >= 10 {
					return fluid{C: 20, S: 2 * svc, Q: 40}
				}
				return base
			},
			check: func(ds []Decision) error {
				if i := firstWithin(ds[10:], 18, 22); i < 0 || i > 5 {
					return fmt.Errorf("back within ±10%% of 20 for good %d steps after the slowdown, want ≤ 5", i)
				}
				return nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ds := loop(t, state(tc.st), cfg, tc.steps, tc.agency)
			if err := tc.check(ds); err != nil {
				for i, d := range ds {
					t.Logf("step %2d: %3d  %s", i, d.Limit, d.Reason)
				}
				t.Fatalf("%v; limits %v", err, limitsOf(ds))
			}
			if tc.name == "relearns a slower agency instead of starving it" {
				if b := st.Agencies[agencyA].Baseline; b < 35*time.Millisecond || b > 45*time.Millisecond {
					t.Fatalf("baseline %s after the slowdown, want about 40ms", b)
				}
			}
		})
	}
}

// TestStepIsPureAndSerialisable checks what a Temporal workflow relies on:
// Step does not modify its input, gives the same answer twice, and a state
// that went through JSON (continue-as-new) continues identically.
func TestStepIsPureAndSerialisable(t *testing.T) {
	cfg := DefaultConfig(agencyA, "nice")
	agency := func(i int) fluid {
		if i%17 > 12 {
			return fluid{C: 8, S: svc, Q: 4}
		}
		return fluid{C: 20, S: svc, Q: 40}
	}
	st := State{}
	for i := range 60 {
		obs := map[string]Observation{
			agencyA: agency(i).observe(roundLimit(st.Agencies[agencyA].Limit)),
			"nice":  fluid{C: 15, S: 2 * svc, Q: 30}.observe(roundLimit(st.Agencies["nice"].Limit)),
		}
		for a, o := range obs {
			o.Now = time.Unix(1700000000+int64(i), 0).UTC()
			obs[a] = o
		}
		before, _ := json.Marshal(st)
		next1, ds1 := Step(st, obs, cfg)
		after, _ := json.Marshal(st)
		if string(before) != string(after) {
			t.Fatalf("step %d modified its input state", i)
		}
		next2, ds2 := Step(st, obs, cfg)
		if !reflect.DeepEqual(ds1, ds2) || !reflect.DeepEqual(next1, next2) {
			t.Fatalf("step %d is not deterministic", i)
		}
		var viaJSON State
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &viaJSON); err != nil {
			t.Fatal(err)
		}
		next3, ds3 := Step(viaJSON, obs, cfg)
		if !reflect.DeepEqual(ds1, ds3) {
			t.Fatalf("step %d after a JSON round trip decided %+v, want %+v", i, ds3, ds1)
		}
		n1, _ := json.Marshal(next1)
		n3, _ := json.Marshal(next3)
		if string(n1) != string(n3) {
			t.Fatalf("step %d after a JSON round trip: state %s, want %s", i, n3, n1)
		}
		st = next1
	}
	if st.Steps != 60 || !st.Now.Equal(time.Unix(1700000059, 0)) {
		t.Fatalf("steps %d now %s, want 60 and the last observation's time", st.Steps, st.Now)
	}
}

func TestResume(t *testing.T) {
	cfg := cfgWith(func(c *AgencyConfig) { c.MaxLimit = 30 })
	st := Resume(map[string]int{agencyA: 50, "nice": 12}, cfg)
	if l := st.Agencies[agencyA].Limit; l != 30 {
		t.Fatalf("resumed kcb at %v, want it clamped to 30", l)
	}
	_, d := step1(t, State{Agencies: map[string]AgencyState{agencyA: st.Agencies["nice"]}}, healthy(), cfg)
	if d.Previous != 12 || d.Limit != 12 {
		t.Fatalf("first step after resume: %+v, want a hold at 12 while the baseline is learned", d)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig(agencyA).Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*AgencyConfig)
		want string
	}{
		{func(c *AgencyConfig) { c.MinLimit = 0 }, "min_limit 0: accepted 1 or more"},
		{func(c *AgencyConfig) { c.MaxLimit = 0 }, "max_limit 0"},
		{func(c *AgencyConfig) { c.InitialLimit = 1000 }, "initial_limit 1000"},
		{func(c *AgencyConfig) { c.LatencyTolerance = 1 }, "latency_tolerance 1: accepted more than 1"},
		{func(c *AgencyConfig) { c.FailureTarget = 1 }, "failure_target 1"},
		{func(c *AgencyConfig) { c.Headroom = 0.5 }, "headroom 0.5"},
		{func(c *AgencyConfig) { c.BacklogQueueWait = 0 }, "backlog_queue_wait 0s"},
		{func(c *AgencyConfig) { c.SettlePeriods = 0 }, "settle_periods 0"},
		{func(c *AgencyConfig) { c.MinSamples = 0 }, "min_samples 0"},
	} {
		err := cfgWith(tc.mod).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "agency kcb") {
			t.Errorf("Validate() = %v, want an error naming agency kcb and %q", err, tc.want)
		}
	}
	if err := (Config{Agencies: map[string]AgencyConfig{}}).Validate(); err == nil || !strings.Contains(err.Error(), "period 0s") {
		t.Errorf("Validate() with no period = %v, want an error naming the period", err)
	}
}

// TestStepGathersEvidenceAcrossPeriods checks the low-rate path: periods
// with a handful of calls are merged until the latency is known well enough
// to grow on, and a latency that is clearly too high is acted on without
// waiting.
func TestStepGathersEvidenceAcrossPeriods(t *testing.T) {
	thin := func(lat time.Duration) Observation {
		return Observation{Calls: 3, OK: 3, LatencyMean: lat, LatencyP50: lat, LatencyP90: lat * 138 / 100,
			QueueWaitP90: time.Second, InFlight: 10, Period: time.Second}
	}
	cfg := DefaultConfig(agencyA)
	st := state(warm(10))
	var d Decision
	steps := 0
	for d.Limit <= 10 && steps < 20 {
		st, d = step1(t, st, thin(svc), cfg)
		steps++
	}
	// σ = 0.25: 2.5σ/√n within the 15% margin takes 18 calls, 6 periods.
	if steps != 6 || !strings.Contains(d.Reason, "healthy") {
		t.Fatalf("grew after %d thin periods (%s), want 6", steps, d.Reason)
	}
	if ev := st.Agencies[agencyA].Evidence; ev != nil {
		t.Fatalf("evidence %+v left after a decision, want none", ev)
	}
	// A latency twice the baseline is beyond the noise of MinSamples calls.
	st = state(warm(10))
	o := thin(2 * svc)
	o.OK, o.Calls = 10, 10
	_, d = step1(t, st, o, cfg)
	if d.Limit >= 10 || !strings.Contains(d.Reason, "latency") {
		t.Fatalf("decision %+v on 10 calls at 2× the baseline, want a latency cut", d)
	}
}

// Expired calls (our own deadline's doing) do not move the limit: a period
// with thousands of them decides as the same period without them.
func TestStepIgnoresExpiredCalls(t *testing.T) {
	cfg := DefaultConfig(agencyA)
	st := state(warm(10))
	clean := healthy()
	noisy := clean
	noisy.Expired = 5000
	_, want := step1(t, st, clean, cfg)
	_, got := step1(t, st, noisy, cfg)
	if got != want {
		t.Fatalf("with expired calls: %+v; without: %+v", got, want)
	}
}

// During an outage (a failure cut with nothing delivered) the limit keeps
// half the ceiling: an outage is the breakers' case, not a capacity. Once
// the agency is back, the limit doubles back to the ceiling on the first
// healthy period, even one with a single successful call; without an
// outage it does not (a lost capacity is not probed by doubling).
func TestStepSlowStartAfterOutage(t *testing.T) {
	cfg := DefaultConfig(agencyA)
	st := warm(20)
	st.Good, st.Ceiling = 20, 20
	down := Observation{Period: time.Second, Calls: 8, Timeouts: 8, InFlight: 20, QueueWaitP90: 5 * time.Second}
	next, d := step1(t, state(st), down, cfg)
	for range 6 {
		next, d = step1(t, next, down, cfg)
	}
	if d.Limit != 10 || !next.Agencies[agencyA].Recovering {
		t.Fatalf("after the outage: limit %d, outage %v; want half the ceiling 10, true", d.Limit, next.Agencies[agencyA].Recovering)
	}
	// Calls expire meanwhile (the backlog aged); they change nothing.
	back := Observation{Period: time.Second, Calls: 1, OK: 1, Expired: 40, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc,
		InFlight: d.Limit, QueueWaitP90: 5 * time.Second}
	limits := []int{d.Limit}
	for range 5 {
		back.InFlight = d.Limit
		back.OK = int64(max(1, d.Limit/2))
		back.Calls = back.OK
		next, d = step1(t, next, back, cfg)
		limits = append(limits, d.Limit)
	}
	if limits[len(limits)-1] < 18 {
		t.Fatalf("limits after the agency came back %v: want back near the ceiling 20 within 5 periods", limits)
	}
	// A capacity loss without an outage is not slow-started.
	st2 := warm(10)
	st2.Ceiling = 20
	_, d2 := step1(t, state(st2), back, cfg)
	if d2.Limit >= 20 {
		t.Fatalf("without an outage the limit jumped to %d", d2.Limit)
	}
}

// After a slowdown the baseline is the slow agency's. When the agency is
// fast again its latency falls far below that baseline: that is a recovery,
// and the limit goes back toward the ceiling by slow start at once, on the
// agency's own latency as the new baseline, instead of +1 at a time while
// the baseline creeps down.
func TestStepSlowStartAfterSlowdown(t *testing.T) {
	cfg := DefaultConfig(agencyA)
	st := warm(3)
	st.Baseline = 2 * svc // relearned while the agency was twice as slow
	st.Good, st.Ceiling = 3, 18
	fast := Observation{Period: time.Second, Calls: 14, OK: 14, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc * 138 / 100,
		InFlight: 3, QueueWaitP90: 5 * time.Second}
	next, d := step1(t, state(st), fast, cfg)
	if d.Limit < 9 || !strings.Contains(d.Reason, "slow start") {
		t.Fatalf("agency fast again: %+v, want slow start to half the ceiling (9) or more", d)
	}
	if b := next.Agencies[agencyA].Baseline; b != svc {
		t.Fatalf("baseline %s after the recovery, want the agency's own latency %s", b, svc)
	}
	// Latency at the baseline is no such sign: no slow start.
	st.Baseline = svc
	_, d = step1(t, state(st), fast, cfg)
	if strings.Contains(d.Reason, "slow start") {
		t.Fatalf("latency at the baseline: %+v, want no slow start", d)
	}
}

// The first healthy period after an outage still holds the tail of the
// outage: calls sent a client's timeout ago, timing out now. Fewer of them
// than successes do not hold the slow start back.
func TestStepSlowStartReadsPastTheOutageTail(t *testing.T) {
	cfg := DefaultConfig(agencyA)
	st := warm(1)
	st.Good, st.Ceiling, st.Recovering = 1, 8, true
	back := Observation{Period: time.Second, Calls: 3, OK: 2, Timeouts: 1, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc,
		InFlight: 1, QueueWaitP90: 5 * time.Second}
	_, d := step1(t, state(st), back, cfg)
	if d.Limit < 4 || !strings.Contains(d.Reason, "slow start") {
		t.Fatalf("agency back, one timeout of the outage: %+v, want slow start to half the ceiling", d)
	}
	// As many timeouts as successes: still failing.
	back.Timeouts, back.Calls = 2, 4
	_, d = step1(t, state(st), back, cfg)
	if strings.Contains(d.Reason, "slow start") {
		t.Fatalf("as many timeouts as successes: %+v, want no slow start", d)
	}
}

// A refuted probe backs the next one off from the first time, and a cut of
// one call at a small capacity (noise, not a changed capacity) does not
// clear the back-off.
func TestProbeBackoff(t *testing.T) {
	c := DefaultAgencyConfig()
	s := AgencyState{Good: 4}
	s.settle(5, 4, viaGood, 0, c)
	if s.Backoff != probeBackoff || s.Refuted != 1 {
		t.Fatalf("after the first refuted probe: back-off %d, refuted %d; want %d, 1", s.Backoff, s.Refuted, probeBackoff)
	}
	s.settle(5, 4, viaGood, 0, c)
	if s.Backoff != 2*probeBackoff || s.Refuted != 2 {
		t.Fatalf("after the second: back-off %d, refuted %d; want %d, 2", s.Backoff, s.Refuted, 2*probeBackoff)
	}
	s.Good = 4.3
	s.settle(4, 2.9, viaEstimate, 0, c)
	if s.Backoff != 2*probeBackoff || s.Refuted != 2 {
		t.Fatalf("a cut of one call below Good cleared the back-off: %d, refuted %d", s.Backoff, s.Refuted)
	}
	// A cut far below Good, by more than one call: the capacity changed,
	// and the refuted probes say nothing about the new one.
	lost := AgencyState{Good: 20, Refuted: 2, Backoff: 20}
	lost.settle(20, 9, viaEstimate, 0, c)
	if lost.Backoff != 0 || lost.Refuted != 0 {
		t.Fatalf("a cut from 20 to 9 left the back-off %d, refuted %d; want both cleared", lost.Backoff, lost.Refuted)
	}
	for range 10 {
		s.settle(5, 4.3, viaGood, 0, c)
	}
	if s.Backoff != maxBackoff || maxBackoff != 64 {
		t.Fatalf("back-off %d after many refuted probes, want the cap %d (64 periods)", s.Backoff, maxBackoff)
	}
	// A run recorded under the law before the bound keeps its own.
	pinned := s
	pinned.settle(5, 4.3, viaGood, LawBeforeProbeBound, c)
	if pinned.Backoff != maxBackoffWas {
		t.Fatalf("back-off %d under LawBeforeProbeBound, want its cap %d", pinned.Backoff, maxBackoffWas)
	}
}

// Below a limit of 10 the settling after a probe refuted back to Good
// doubles with each refuted probe while Good is the Ceiling (probes beyond
// a capacity the agency keeps confirming), and stays SettlePeriods below
// the Ceiling: there the probes seek a capacity the agency had before, and
// held at a lost capacity nothing else shows it come back.
func TestSettleAfterRefutedProbe(t *testing.T) {
	c := DefaultAgencyConfig()
	atCeiling := AgencyState{Good: 9, Ceiling: 9, Refuted: 1}
	if got := atCeiling.settle(10, 9, viaGood, 0, c); got != c.SettlePeriods<<2 {
		t.Fatalf("the second refuted probe at the ceiling: settle %d periods, want %d", got, c.SettlePeriods<<2)
	}
	below := AgencyState{Good: 9, Ceiling: 17, Refuted: 1}
	if got := below.settle(10, 9, viaGood, 0, c); got != c.SettlePeriods {
		t.Fatalf("the second refuted probe toward a ceiling of 17: settle %d periods, want %d", got, c.SettlePeriods)
	}
	if below.Refuted != 2 || below.Backoff != 2*probeBackoff {
		t.Fatalf("below the ceiling: refuted %d, back-off %d; want the count kept (2, %d): grow leaves it unread there",
			below.Refuted, below.Backoff, 2*probeBackoff)
	}
}

// TestGrowBackStopsAtTheCeiling: after a capacity that came back, grow-back
// doubles its steps toward the ceiling (the highest limit seen healthy);
// once there, growth beyond it starts gently, as beyond any capacity seen,
// instead of carrying the doubled step past it. Seen on the real stack: a
// limit regaining a capacity of 20 went 17→20→22→26 and drew a latency cut
// to 19.
func TestGrowBackStopsAtTheCeiling(t *testing.T) {
	const ceiling = 22
	agency := fluid{C: ceiling, S: svc, Q: 40}
	s := warm(10) // the limit the lost capacity left, read at capacity there
	s.Ceiling, s.Good = ceiling, 10
	st, cfg := state(s), DefaultConfig(agencyA)
	var d Decision
	var path []int
	for range 12 {
		st, d = step1(t, st, agency.observe(roundLimit(st.Agencies[agencyA].Limit)), cfg)
		path = append(path, d.Limit)
		if d.Limit > ceiling {
			break
		}
	}
	if d.Limit <= ceiling {
		t.Fatalf("limits %v: never grew beyond the ceiling %d", path, ceiling)
	}
	if first := d.Limit; first > ceiling+1 {
		t.Fatalf("limits %v: the first step beyond the ceiling %d went to %d, want at most %d (one call, 5%% of it)", path, ceiling, first, ceiling+1)
	}
	if reached := path[min(3, len(path)-1)]; reached < 18 {
		t.Errorf("limits %v: grow-back reached only %d after 4 periods, want ≥ 18 of the ceiling %d", path, reached, ceiling)
	}
}

// TestSlowStartProbeShowsBeforeGrowth: slow start's last step goes one
// step beyond the ceiling, a probe from it. The period after it holds
// mostly calls sent under the ceiling, which read healthy; growing on them
// compounded the probe (4 → 5 → 6 at a capacity of 4 on the real stack's
// small incident). The limit holds until the probe shows.
func TestSlowStartProbeShowsBeforeGrowth(t *testing.T) {
	s := warm(4)
	s.Limit, s.Ceiling, s.Good, s.SlowFrom = 5, 4, 4, 4
	s.Rule, s.Moved, s.MovedFrom = ruleSlowStart, true, 4
	// The period read: the calls under the old limit of 4, at the baseline.
	o := fluid{C: 4, S: svc, Q: 40}.observe(4)
	_, d := step1(t, state(s), o, DefaultConfig(agencyA))
	if d.Limit != 5 {
		t.Fatalf("the period after slow start's probe to 5: limit %d (%s), want 5 held until the probe shows", d.Limit, d.Reason)
	}
}

// TestGrowthLandsOnTheCeiling: growth from below the ceiling (above the
// reach of grow-back) lands its doubled step on the ceiling, the highest
// limit seen healthy, and goes beyond it one increase at a time. Seen on
// the real stack after a capacity of 20 came back: 17 → 19 → 22 → 23, cut.
func TestGrowthLandsOnTheCeiling(t *testing.T) {
	const ceiling = 20
	agency := fluid{C: 24, S: svc, Q: 40} // room beyond the ceiling: only the steps are under test
	s := warm(14)                         // at capacity at 14 (a reading the capacity's return ended)
	s.Ceiling, s.Good = ceiling, 14
	st, cfg := state(s), DefaultConfig(agencyA)
	var path []int
	for range 12 {
		var d Decision
		st, d = step1(t, st, agency.observe(roundLimit(st.Agencies[agencyA].Limit)), cfg)
		path = append(path, d.Limit)
		if d.Limit > ceiling {
			break
		}
	}
	if !slices.Contains(path, ceiling) || path[len(path)-1] <= ceiling {
		t.Fatalf("limits %v: want the ceiling %d reached, then a step beyond it", path, ceiling)
	}
	if first := path[len(path)-1]; first > ceiling+1 {
		t.Fatalf("limits %v: the first step beyond the ceiling %d went to %d, want at most %d", path, ceiling, first, ceiling+1)
	}
}

// TestCutCheckReadsTheOldLimitsLatency: a capacity lost halfway through a
// period reads there only in part (1.5× the baseline at a limit of 20, the
// capacity halved to 10), and the latency cut it causes is checked against
// that reading. The next period, held while the cut shows, still has the
// calls sent under 20 queued at the agency (3×). At the cut's limit the
// queue is smaller but still there (1.5×): read against the first period,
// the latency "stayed", the agency was taken as slower and the cut undone
// (20 → 13 → 20 on the real stack's large capacity step, then a failure
// cut 2 s later). Against the highest reading before the cut showed, the
// latency fell by half with the limit: our queue, and the cut holds.
func TestCutCheckReadsTheOldLimitsLatency(t *testing.T) {
	s := warm(20)
	s.Ceiling, s.Good = 20, 20
	st, cfg := state(s), DefaultConfig(agencyA)
	half := Observation{Period: time.Second, InFlight: 20, QueueWaitP90: 2 * time.Second,
		OK: 667, Calls: 667, LatencyMean: 30 * time.Millisecond, LatencyP50: 30 * time.Millisecond, LatencyP90: 41 * time.Millisecond}
	st, d := step1(t, st, half, cfg)
	cut := d.Limit
	if cut >= 20 {
		t.Fatalf("the period the capacity halved in: limit %d (%s), want a latency cut", d.Limit, d.Reason)
	}
	lost := fluid{C: 10, S: svc, Q: 40}
	path := []int{20, cut}
	// The period after the cut: our calls sent under 20 still at the agency.
	st, d = step1(t, st, lost.observe(20), cfg)
	path = append(path, d.Limit)
	for range 4 {
		st, d = step1(t, st, lost.observe(roundLimit(st.Agencies[agencyA].Limit)), cfg)
		path = append(path, d.Limit)
		if strings.Contains(d.Reason, "agency slower") || d.Limit > cut+1 {
			t.Fatalf("limits %v: %q; want the cut held (the latency fell with the limit: the capacity was lost)", path, d.Reason)
		}
	}
}

// TestSlowCallsSpanPeriodsWithoutSuccess: at calls longer than the period
// (the 1.34 s), a capacity lost with the limit still above it can
// leave two periods in a row with nothing but refusals and timeouts, and
// taking the second for an outage slow-started the limit back into the
// lost capacity. A period with no success is an outage once none has
// succeeded for as long as a call takes (twice the baseline latency).
func TestSlowCallsSpanPeriodsWithoutSuccess(t *testing.T) {
	allRefused := Observation{Period: time.Second, Calls: 4, Overload: 4, InFlight: 8, QueueWaitP90: time.Second}
	for _, tc := range []struct {
		baseline time.Duration
		outageAt int // the period, counted from 1, read as an outage
	}{
		{svc, 2},                     // calls within a period: the second period in a row
		{1340 * time.Millisecond, 4}, // a call's life spans 2.68 periods: three refused in a row are still the capacity lost
	} {
		s := warm(8)
		s.Baseline, s.Ceiling, s.Refused = tc.baseline, 8, true
		st, cfg := state(s), DefaultConfig(agencyA)
		for n := 1; n <= tc.outageAt; n++ {
			var d Decision
			st, d = step1(t, st, allRefused, cfg)
			if got := st.Agencies[agencyA].Recovering; got != (n == tc.outageAt) {
				t.Fatalf("baseline %s, period %d with nothing served: recovering %v (%s); want an outage at period %d",
					tc.baseline, n, got, d.Reason, tc.outageAt)
			}
		}
	}
}

// TestGrowthWaitsOnceForAStep: near the capacity growth lets each step
// show before the next. At a few calls a period that wait was taken twice:
// the period right after the step was left out of the evidence, the next
// ones gathered under the new limit, and the decision on them then waited
// another period anyway (on flowsim's C4 × 600 ms shape a capacity that
// came back took 8–15 s to regain, 8–13 s without the second wait).
// Evidence read wholly after the step had shown is the step's showing:
// growth goes on from it. A decision on the period right after the step
// still waits.
func TestGrowthWaitsOnceForAStep(t *testing.T) {
	at := func(limit int, ok int64) Observation {
		return Observation{Period: time.Second, InFlight: limit, QueueWaitP90: 2 * time.Second,
			OK: ok, Calls: ok, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc * 138 / 100}
	}
	start := func(t *testing.T) (State, Config) {
		s := warm(6)
		s.Ceiling, s.Good = 6, 6
		st, cfg := state(s), DefaultConfig(agencyA)
		st, d := step1(t, st, at(6, 20), cfg)
		if d.Limit != 7 {
			t.Fatalf("healthy at 6 with a backlog: limit %d (%s), want a step to 7", d.Limit, d.Reason)
		}
		return st, cfg
	}
	t.Run("evidence gathered after the step showed", func(t *testing.T) {
		st, cfg := start(t)
		var reasons []string
		for _, ok := range []int64{10, 10, 10} { // 18 calls decide here; a period holds 10
			var d Decision
			st, d = step1(t, st, at(7, ok), cfg)
			reasons = append(reasons, d.Reason)
			if d.Limit != 7 && len(reasons) < 3 {
				t.Fatalf("periods after the step: %q; want the limit held while the evidence gathers", reasons)
			}
		}
		if got := roundLimit(st.Agencies[agencyA].Limit); got != 8 {
			t.Fatalf("periods after the step: %q, limit %d; want the gathered evidence, read after the step showed, to grow it to 8",
				reasons, got)
		}
	})
	t.Run("the period right after the step", func(t *testing.T) {
		st, cfg := start(t)
		_, d := step1(t, st, at(7, 20), cfg)
		if d.Limit != 7 {
			t.Fatalf("the period right after the step: limit %d (%s), want 7 held until the step shows", d.Limit, d.Reason)
		}
	})
}

// TestWarmCheckFindsABaselineLearntPastTheCapacity starts at a limit of 10
// at an agency of capacity 5 that queues the rest: the warm-up learns the
// queue's latency as the baseline. The current law checks it with a dip to
// half the limit, and the limit comes down to the capacity; a controller
// pinned to the law before the check holds the limit where it started.
func TestWarmCheckFindsABaselineLearntPastTheCapacity(t *testing.T) {
	f := fluid{C: 5, S: svc, Q: 10}
	cfg := cfgWith(func(c *AgencyConfig) { c.InitialLimit = 10 })
	for _, tc := range []struct {
		name     string
		law      int
		min, max int
	}{
		{"current law", 0, 5, 6},
		{"pinned before the warm-up's check", LawBeforeWarmCheck, 9, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := State{Law: tc.law}
			limit, dipped := cfg.Agencies[agencyA].InitialLimit, false
			var d Decision
			for i := 0; i < 40; i++ {
				st, d = step1(t, st, f.observe(limit), cfg)
				limit = d.Limit
				dipped = dipped || strings.HasPrefix(d.Reason, "dip ")
			}
			if limit < tc.min || limit > tc.max {
				t.Errorf("limit %d after 40 periods (last: %s), want %d to %d", limit, d.Reason, tc.min, tc.max)
			}
			if dipped != (tc.law == 0) {
				t.Errorf("dipped %v under law %d", dipped, tc.law)
			}
			if s := st.Agencies[agencyA]; tc.law == 0 && s.Baseline > 25*time.Millisecond {
				t.Errorf("baseline %s, want the agency's own 20 ms", s.Baseline)
			}
		})
	}
}

// TestLoneWarmRefusalArmsNoWarmCheck: a warm-up well below its limit (no
// backlog) reading one refusal in 80 calls, as an agency refusing 2% of its
// calls at random does, did not fill the limit, and its baseline is the
// agency's own: the warm-up's check is not armed. Two refusals in a period
// arm it, as before; so does one under the law pinned before the change.
func TestLoneWarmRefusalArmsNoWarmCheck(t *testing.T) {
	cfg := cfgWith(func(c *AgencyConfig) { c.InitialLimit = 20 })
	for _, tc := range []struct {
		name    string
		law     int
		refused int64
		armed   bool
	}{
		{"one refusal", 0, 1, false},
		{"two refusals", 0, 2, true},
		{"one refusal, pinned law", LawBeforeLoneWarmRefusal, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, dipped := State{Law: tc.law}, false
			var reasons []string
			for i := 0; i < 6; i++ {
				o := Observation{Period: time.Second, InFlight: 10, Calls: 40, OK: 40,
					LatencyMean: svc, LatencyP50: svc, LatencyP90: svc * 138 / 100}
				if i == 2 {
					o.Calls, o.Overload = 40+tc.refused, tc.refused
				}
				var d Decision
				st, d = step1(t, st, o, cfg)
				reasons = append(reasons, d.Reason)
				dipped = dipped || strings.HasPrefix(d.Reason, "dip ")
			}
			s := st.Agencies[agencyA]
			if s.BaselinePeriods < warmupPeriods {
				t.Fatalf("baseline learnt over %d periods, want %d", s.BaselinePeriods, warmupPeriods)
			}
			// Armed, the check waits for a cut; two refusals cut, and it dips.
			if armed := s.WarmCheck || dipped; armed != tc.armed {
				t.Errorf("%d refused in the warm-up, law %d: warm-up check armed %v (%q), want %v", tc.refused, tc.law, armed, reasons, tc.armed)
			}
		})
	}
}

// TestTroubleFloorTested: held at the trouble floor (half the Ceiling)
// with most calls timing out, the floor is tested once it has held a
// second failure cut: a quarter below it, failures that fall were our
// queue's and lift the floor; failures that stay are the agency's, and the
// limit goes back to the floor for good. Under LawBeforeFloorTest the floor
// holds. The test reads 20 calls over as many periods as its wait allows,
// and failures found ours at calls still slow below the floor relearn the
// baseline (LawBeforeFloorTestRead).
func TestTroubleFloorTested(t *testing.T) {
	// At the floor of 13: 4 of 17 calls succeed at 650 ms, 13 time out.
	slow := func(limit, ok, timeouts int) Observation {
		lat := 650 * time.Millisecond
		return Observation{Period: time.Second, Calls: int64(ok + timeouts), OK: int64(ok), Timeouts: int64(timeouts),
			LatencyMean: lat, LatencyP50: lat, LatencyP90: lat * 12 / 10, InFlight: limit, QueueWaitP90: 5 * time.Second}
	}
	start := func(law int) State {
		s := warm(26)
		s.Baseline, s.Limit, s.Good, s.Ceiling = 250*time.Millisecond, 13, 26, 26
		st := state(s)
		st.Law = law
		return st
	}
	// run feeds trouble at the limit until the floor's test starts, then
	// the test's periods at the limit it went to, for 12 periods or, with
	// verdict, until the test is read.
	run := func(t *testing.T, law int, testOK, testTimeouts int, verdict bool) (State, []string) {
		t.Helper()
		cfg := DefaultConfig(agencyA)
		st, reasons := start(law), []string(nil)
		var d Decision
		for range 12 {
			limit := int(st.Agencies[agencyA].Limit + 0.5)
			o := slow(limit, 4, 13)
			if st.Agencies[agencyA].FloorTest != nil || limit < 13 {
				o = slow(limit, testOK, testTimeouts)
			}
			st, d = step1(t, st, o, cfg)
			reasons = append(reasons, fmt.Sprintf("%d %s", d.Limit, d.Reason))
			if verdict && st.Agencies[agencyA].FloorTested {
				break // what follows the verdict is the other rules'
			}
		}
		return st, reasons
	}
	has := func(reasons []string, part string) bool {
		return slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, part) })
	}

	t.Run("our queue", func(t *testing.T) {
		st, reasons := run(t, 0, 12, 1, true)
		s := st.Agencies[agencyA]
		if !has(reasons, "below it to test it") || !has(reasons, ", ours: no floor") || !s.FloorOurs || s.Limit >= 12.5 {
			t.Fatalf("limit %.1f, floor lifted %v; want the floor tested, the failures ours and the limit below the floor of 13:\n%s",
				s.Limit, s.FloorOurs, strings.Join(reasons, "\n"))
		}
		// The test's calls, 650 ms at 2.6× the baseline of 250 ms below
		// the floor, are the agency's own latency: it is slower, and lost
		// capacity too (LawBeforeFloorTestRead). The baseline is relearnt,
		// the limit kept at the test's, not restored to Good (26).
		if !has(reasons, "13 calls read (need 20)") || !has(reasons, "and the agency slower") ||
			s.Baseline != 650*time.Millisecond || s.Limit != 9.75 || s.Ceiling != 9.75 || s.Peak != 26 ||
			s.PeakBaseline != 250*time.Millisecond || s.Recovering {
			t.Fatalf("baseline %s, limit %.2f, ceiling %.2f (peak %.1f at %s), recovering %v; want the test held on past its first 13 calls, "+
				"the baseline 650ms, the limit and ceiling 9.75, the ceiling of 26 set aside with the baseline of 250ms:\n%s",
				s.Baseline, s.Limit, s.Ceiling, s.Peak, s.PeakBaseline, s.Recovering, strings.Join(reasons, "\n"))
		}
	})
	t.Run("our queue, LawBeforeFloorTestRead", func(t *testing.T) {
		st, reasons := run(t, LawBeforeFloorTestRead, 12, 1, true)
		s := st.Agencies[agencyA]
		if !has(reasons, ", ours: no floor") || has(reasons, "calls read") || has(reasons, "agency slower") || s.Baseline != 250*time.Millisecond {
			t.Fatalf("baseline %s; want the test read on its first period and the baseline kept at 250ms:\n%s",
				s.Baseline, strings.Join(reasons, "\n"))
		}
	})
	t.Run("a few calls a period", func(t *testing.T) {
		// 3 calls a period, 2 of them successes: the test reads on
		// until 20 calls or the end of its wait, not one period's 3.
		st, reasons := run(t, 0, 2, 1, true)
		read := 0
		for _, r := range reasons {
			if strings.Contains(r, "calls read (need 20)") {
				read++
			}
		}
		if read < 2 || !st.Agencies[agencyA].FloorTested {
			t.Fatalf("%d periods held to read the test's calls, tested %v; want 2 or more, then the verdict:\n%s",
				read, st.Agencies[agencyA].FloorTested, strings.Join(reasons, "\n"))
		}
	})
	t.Run("the agency's own", func(t *testing.T) {
		st, reasons := run(t, 0, 3, 10, false)
		s := st.Agencies[agencyA]
		tests := 0
		for _, r := range reasons {
			if strings.Contains(r, "below it to test it") {
				tests++
			}
		}
		if tests != 1 || !has(reasons, "the agency's own: back to 13.0") || s.FloorOurs || !s.FloorTested || s.Limit != 13 {
			t.Fatalf("limit %.1f, %d tests, floor lifted %v; want one test, the failures the agency's and the limit back at 13:\n%s",
				s.Limit, tests, s.FloorOurs, strings.Join(reasons, "\n"))
		}
	})
	t.Run("LawBeforeFloorTest", func(t *testing.T) {
		st, reasons := run(t, LawBeforeFloorTest, 12, 1, false)
		if has(reasons, "trouble floor") || st.Agencies[agencyA].Limit != 13 {
			t.Fatalf("limit %.1f; want the floor of 13 held, untested:\n%s", st.Agencies[agencyA].Limit, strings.Join(reasons, "\n"))
		}
	})
}

// TestLatencyCutAtARefusingAgency: a latency above the tolerance cuts by at
// most half, and by at most a quarter at an agency that refused calls since
// it was last healthy (Refused), unless a quarter of the limit is less than
// a call. Under LawBeforeRefusedLatencyCut it cuts by half there too.
func TestLatencyCutAtARefusingAgency(t *testing.T) {
	// 10 calls at 2.2× the baseline of 100 ms: goodput × baseline (1.05
	// with the headroom) is below every limit here, so the cut keeps what
	// the law lets it keep.
	slow := func(limit int) Observation {
		lat := 220 * time.Millisecond
		return Observation{Period: time.Second, Calls: 10, OK: 10, LatencyMean: lat, LatencyP50: lat, LatencyP90: lat * 12 / 10,
			InFlight: limit, QueueWaitP90: 5 * time.Second}
	}
	for _, tc := range []struct {
		name    string
		limit   float64
		refused bool
		law     int
		want    float64
	}{
		{"refused", 12, true, 0, 9},
		{"not refused", 12, false, 0, 6},
		{"refused, a quarter less than a call", 3.6, true, 0, 1.8},
		{"refused, LawBeforeRefusedLatencyCut", 12, true, LawBeforeRefusedLatencyCut, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := warm(20)
			s.Baseline, s.Limit, s.Good, s.Ceiling, s.Refused = 100*time.Millisecond, tc.limit, 0, 20, tc.refused
			st := state(s)
			st.Law = tc.law
			st, d := step1(t, st, slow(int(tc.limit)), DefaultConfig(agencyA))
			if got := st.Agencies[agencyA].Limit; math.Abs(got-tc.want) > 1e-9 || st.Agencies[agencyA].Rule != ruleCutLatency {
				t.Fatalf("limit %.2f (%s), want a latency cut to %.2f", got, d.Reason, tc.want)
			}
		})
	}
}

// TestSlowStartEndsAtACapacity: slow start ends at the ceiling once a
// period there reads healthy, and the ceiling is then the capacity seen:
// growth beyond it goes a call at a time, however low the capacity an
// incident's cuts had set. Under LawBeforeSlowStartCapacity that capacity
// stayed, and the steps beyond the ceiling doubled as in a search.
func TestSlowStartEndsAtACapacity(t *testing.T) {
	for _, tc := range []struct {
		name string
		law  int
		want float64 // the capacity seen after the period at the ceiling
	}{
		{"now", 0, 20},
		{"LawBeforeSlowStartCapacity", LawBeforeSlowStartCapacity, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := warm(20)
			s.Ceiling, s.Capacity, s.Good, s.HighWater, s.Recovering, s.Rule = 20, 6, 10, 20, true, ruleWaitGrow
			st := state(s)
			st.Law = tc.law
			// The agency has room beyond the ceiling: its latency at 20
			// is the baseline.
			agency := fluid{C: 40, S: svc, Q: 80}
			st, d := step1(t, st, agency.observe(20), DefaultConfig(agencyA))
			got := st.Agencies[agencyA]
			if got.Recovering || got.Rule == ruleSlowStart || got.Capacity != tc.want || got.Good != 20 {
				t.Fatalf("at the ceiling read healthy: recovering %v, rule %s, capacity %.1f, good %.1f (%s); want slow start over, capacity %.1f, good 20",
					got.Recovering, got.Rule, got.Capacity, got.Good, d.Reason, tc.want)
			}
			// Growth beyond it while the agency has room: within 10% of the
			// capacity seen, the additive step (a call, or 5% of the
			// limit); the search's doubling steps only past that.
			limit, doubled := got.Limit, false
			for i := 0; i < 6 && limit <= (1+nearCapacity)*20; i++ {
				st, d = step1(t, st, agency.observe(roundLimit(limit)), DefaultConfig(agencyA))
				next := st.Agencies[agencyA].Limit
				if next-limit > max(1, minStep*limit)+1e-9 {
					doubled = true
					if tc.law == 0 {
						t.Fatalf("period %d beyond the ceiling: %.1f→%.1f (%s), want the additive step within 10%% of the capacity seen", i+1, limit, next, d.Reason)
					}
				}
				limit = next
			}
			if tc.law != 0 && !doubled {
				t.Fatalf("under LawBeforeSlowStartCapacity: no doubled step within 10%% of the ceiling, want the search's")
			}
		})
	}
}

// TestLoneRefusalRefutesAProbe: held at a capacity of 4 it lost (Good 4,
// Ceiling 8), the limit probes a call beyond it. At an agency that refuses
// at once beyond its capacity, the probe's answer is one refusal a period;
// of a few calls, that refutes it at once, back to Good, the probe counted
// as refuted. Under LawBeforeProbeRefused it was read with the next period.
// With many calls a period, one refusal is no such answer: it is read with
// the next period as before. A step of several calls beyond Good goes back
// one call: back to Good would undo the calls below the refusal too.
func TestLoneRefusalRefutesAProbe(t *testing.T) {
	probe := func(limit float64) AgencyState {
		s := warm(4)
		s.Limit, s.Good, s.Ceiling, s.Periods = limit, 4, 8, 30
		return s
	}
	refused := func(calls int64) Observation {
		return Observation{Period: time.Second, Calls: calls, OK: calls - 1, Overload: 1, InFlight: 5,
			LatencyMean: svc, LatencyP50: svc, LatencyP90: svc * 138 / 100, QueueWaitP90: time.Second}
	}
	cfg := DefaultConfig(agencyA)
	st, d := step1(t, state(probe(5)), refused(5), cfg)
	s := st.Agencies[agencyA]
	if d.Limit != 4 || !strings.Contains(d.Reason, "refused 1 of 5 calls at a probe beyond 4.0") || s.Refuted != 1 || !s.Refused {
		t.Fatalf("a probe to 5 refused once in 5 calls: limit %d (%s), refuted %d, refused %v; want back to 4 at once, the probe refuted",
			d.Limit, d.Reason, s.Refuted, s.Refused)
	}
	pinned := state(probe(5))
	pinned.Law = LawBeforeProbeRefused
	if _, d := step1(t, pinned, refused(5), cfg); d.Limit != 5 || !strings.Contains(d.Reason, "hold") {
		t.Fatalf("under LawBeforeProbeRefused: limit %d (%s), want the probe held, the refusal read with the next period", d.Limit, d.Reason)
	}
	if _, d := step1(t, state(probe(5)), refused(probeRefusalCalls+1), cfg); d.Limit != 5 {
		t.Fatalf("one refusal in %d calls: limit %d (%s), want the probe held", probeRefusalCalls+1, d.Limit, d.Reason)
	}
	// A step of several calls beyond Good goes back one call, below the
	// refused limit, not to Good (LawBeforeStepRefused).
	st, d = step1(t, state(probe(7)), refused(5), cfg)
	if d.Limit != 6 || !strings.Contains(d.Reason, "a step beyond 4.0: a call back, to 6") || st.Agencies[agencyA].Refuted != 1 {
		t.Fatalf("a step from Good 4 to 7 refused once: limit %d (%s), refuted %d; want 6, a call back, counted refuted",
			d.Limit, d.Reason, st.Agencies[agencyA].Refuted)
	}
	pinnedStep := state(probe(7))
	pinnedStep.Law = LawBeforeStepRefused
	if _, d := step1(t, pinnedStep, refused(5), cfg); d.Limit != 7 || strings.Contains(d.Reason, "refused 1 of") {
		t.Fatalf("under LawBeforeStepRefused a step from Good 4 to 7 refused once: limit %d (%s), want it held, left to the rules for a rate", d.Limit, d.Reason)
	}
}

// TestProbeTakenRegrowsAtOnce: held at 2 of a lost capacity of 4 at an
// agency with no queue, the probe to 3 is refused once at the baseline
// latency, so LostAt is 3 and it was refused at once (LostRefused). A later
// period at 3 with nothing refused regrows the limit three quarters of the
// way back to 4 at once, on 3 calls, fewer than MinSamples. Not when the
// probe's refusal came with the latency read slow (an agency that queues,
// refusing from its full queue), nor when the period at 3 reads slow
// itself, nor under LawBeforeProbeTaken: those wait for the evidence.
func TestProbeTakenRegrowsAtOnce(t *testing.T) {
	lost := func(limit float64) AgencyState {
		s := warm(limit)
		s.Good, s.Ceiling, s.Capacity, s.HighWater, s.Periods = 2, 4, 2, 4, 30
		return s
	}
	at := func(calls, refused int64, lat time.Duration) Observation {
		return Observation{Period: time.Second, Calls: calls, OK: calls - refused, Overload: refused, InFlight: 3,
			LatencyMean: lat, LatencyP50: lat, LatencyP90: lat * 138 / 100, QueueWaitP90: time.Second}
	}
	cfg := DefaultConfig(agencyA)
	st, d := step1(t, state(lost(3)), at(3, 1, svc), cfg)
	if s := st.Agencies[agencyA]; d.Limit != 2 || s.LostAt != 3 || !s.LostRefused {
		t.Fatalf("the probe to 3 refused once at the baseline latency: limit %d (%s), LostAt %.1f, LostRefused %v; want back to 2, LostAt 3, refused at once",
			d.Limit, d.Reason, s.LostAt, s.LostRefused)
	}
	if st, d := step1(t, state(lost(3)), at(3, 1, 2*svc), cfg); st.Agencies[agencyA].LostRefused {
		t.Fatalf("the probe to 3 refused once with the latency at 2× the baseline: LostRefused (%s), want it left unset", d.Reason)
	}
	taken := func(refusedAtOnce bool, law int) State {
		s := lost(3)
		s.LostAt, s.LostRefused, s.SinceMove = 3, refusedAtOnce, 3
		st := state(s)
		st.Law = law
		return st
	}
	st, d = step1(t, taken(true, 0), at(3, 0, svc), cfg)
	if s := st.Agencies[agencyA]; d.Limit != 4 || !strings.Contains(d.Reason, "nothing refused at 3") || s.LostAt != 0 || s.Good != 3 {
		t.Fatalf("a period at 3 with nothing refused: limit %d (%s), LostAt %.1f, Good %.1f; want 4 at once, LostAt cleared, Good 3",
			d.Limit, d.Reason, s.LostAt, s.Good)
	}
	for _, tc := range []struct {
		name string
		st   State
		o    Observation
	}{
		{"the probe refused from a queue", taken(false, 0), at(3, 0, svc)},
		{"the period at 3 read slow", taken(true, 0), at(3, 0, 2*svc)},
		{"under LawBeforeProbeTaken", taken(true, LawBeforeProbeTaken), at(3, 0, svc)},
	} {
		if _, d := step1(t, tc.st, tc.o, cfg); d.Limit != 3 {
			t.Errorf("%s: limit %d (%s), want 3 held for the evidence", tc.name, d.Limit, d.Reason)
		}
	}
}

// TestRefusedHeldIsSeenHealthy: a limit of 41 held at an agency with no
// queue and a capacity of 40, refused twice a period at 260 calls, the
// latency at the baseline. Too few refusals to cut; the limit a call below
// is now Good and the Ceiling, and the probes counted refuted beyond the
// search's 30 are cleared. Under LawBeforeRefusedHeld only a period without
// a refusal counted, and none came.
func TestRefusedHeldIsSeenHealthy(t *testing.T) {
	held := func() AgencyState {
		s := warm(41)
		s.Good, s.Ceiling, s.Refuted, s.Backoff, s.Periods = 30, 30, 2, 20, 30
		return s
	}
	o := Observation{Period: time.Second, Calls: 262, OK: 260, Overload: 2, InFlight: 41, QueueWaitP90: time.Second,
		LatencyMean: svc, LatencyP50: svc, LatencyP90: svc * 138 / 100}
	cfg := DefaultConfig(agencyA)
	st, d := step1(t, state(held()), o, cfg)
	s := st.Agencies[agencyA]
	if d.Limit != 41 || !strings.Contains(d.Reason, "hold: 2 refused") {
		t.Fatalf("limit %d (%s), want 41 held on 2 refusals", d.Limit, d.Reason)
	}
	if s.Good != 40 || s.Ceiling != 40 || s.Refuted != 0 || s.Backoff != 0 {
		t.Fatalf("Good %.1f, Ceiling %.1f, refuted %d, back-off %d; want 40, 40 and the back-off cleared", s.Good, s.Ceiling, s.Refuted, s.Backoff)
	}
	pinned := state(held())
	pinned.Law = LawBeforeRefusedHeld
	st, _ = step1(t, pinned, o, cfg)
	if s := st.Agencies[agencyA]; s.Good != 30 || s.Ceiling != 30 || s.Refuted != 2 {
		t.Fatalf("under LawBeforeRefusedHeld: Good %.1f, Ceiling %.1f, refuted %d; want them as they were (30, 30, 2)", s.Good, s.Ceiling, s.Refuted)
	}
	// Slow as well: the refusals may be the agency's trouble, not its
	// capacity; nothing is learnt.
	slow := o
	slow.LatencyMean, slow.LatencyP50, slow.LatencyP90 = 2*svc, 2*svc, 3*svc
	st, _ = step1(t, state(held()), slow, cfg)
	if s := st.Agencies[agencyA]; s.Good != 30 || s.Ceiling != 30 {
		t.Fatalf("refused and slow: Good %.1f, Ceiling %.1f; want 30, 30", s.Good, s.Ceiling)
	}
}
