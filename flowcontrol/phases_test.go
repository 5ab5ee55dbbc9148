package flowcontrol

import (
	"math"
	"strings"
	"testing"
	"time"
)

// One test per phase of the law (see stepAgency), each on a state and a
// period chosen so that the phase alone decides.

func TestPhaseAge(t *testing.T) {
	p := &Probe{Age: 1}
	s := AgencyState{Cooldown: 2, Backoff: 1, Probe: p, Relearned: &Relearned{Age: 0}}
	s.age()
	if s.Cooldown != 1 || s.Backoff != 0 || s.Probe.Age != 2 || s.Relearned.Age != 1 {
		t.Fatalf("after one period: %+v, probe %+v, relearned %+v", s, *s.Probe, *s.Relearned)
	}
	if p.Age != 1 {
		t.Fatal("age changed the probe of the input state: states share the pointer")
	}
	s.age()
	if s.Cooldown != 0 || s.Backoff != 0 {
		t.Fatalf("timers went below zero: cooldown %d, back-off %d", s.Cooldown, s.Backoff)
	}
}

func TestPhaseGather(t *testing.T) {
	c := DefaultAgencyConfig()
	thin := Observation{Period: time.Second, Calls: 3, OK: 3, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc, InFlight: 10}
	s := warm(10)
	reason, held := s.gather(thin, true, 0, c, time.Second, 0)
	if !held || s.Evidence == nil || !strings.Contains(reason, "gathering") {
		t.Fatalf("3 calls (< MinSamples): held %v, evidence %v, %q; want held and kept", held, s.Evidence, reason)
	}
	// Failures are not waited for.
	failing := thin
	failing.Overload, failing.Calls = 2, 5
	s = warm(10)
	if _, held := s.gather(failing, true, 0, c, time.Second, 0); held {
		t.Fatal("two failures were held for more evidence")
	}
	// Nor is evidence gathered beyond maxGather periods.
	long := thin
	long.Period = maxGather * time.Second
	s = warm(10)
	if _, held := s.gather(long, false, 0, c, time.Second, 0); held {
		t.Fatalf("evidence of %s held again", long.Period)
	}
	// The period right after a change of the limit is left out.
	s = warm(10)
	s.Moved = true
	if reason, held := s.gather(thin, true, 0, c, time.Second, 0); !held || s.Evidence != nil || !strings.Contains(reason, "new limit") {
		t.Fatalf("period after a change: held %v, evidence %v, %q; want held and not kept", held, s.Evidence, reason)
	}
}

// Far below the ceiling (a capacity the agency had before), a reading
// clearly at the baseline is evidence enough to grow on fewer calls: one
// call more is a small step against the room the ceiling promises, where
// at the ceiling it is what tells the capacity from one too many.
func TestPhaseGatherBelowCeiling(t *testing.T) {
	c := DefaultAgencyConfig()
	c.MinSamples = 5
	atBase := Observation{Period: time.Second, Calls: 6, OK: 6, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc * 138 / 100, InFlight: 4}
	s := warm(4)
	s.Ceiling = 4
	if ok, need := enough(atBase, s, c, 0); ok {
		t.Fatalf("at the ceiling: enough on 6 calls (need %d); want more", need)
	}
	s.Limit, s.Ceiling = 2, 4
	atBase.InFlight = 2
	if ok, need := enough(atBase, s, c, 0); !ok {
		t.Fatalf("at 2, ceiling 4, latency at the baseline: not enough on 6 calls (need %d)", need)
	}
	// Two calls below a ceiling of 6 the room is a full half of the limit
	// of 4: MinSamples calls at the baseline tell it from none. (Telling
	// half the room from none took 7.)
	s.Limit, s.Ceiling = 4, 6
	atBase.OK, atBase.Calls, atBase.InFlight = 5, 5, 4
	if ok, need := enough(atBase, s, c, 0); !ok {
		t.Fatalf("at 4, ceiling 6, latency at the baseline: not enough on 5 calls (need %d)", need)
	}
	s.Limit, s.Ceiling = 2, 4
	atBase.OK, atBase.Calls, atBase.InFlight = 6, 6, 2
	// Latency within half its noise of the baseline (6 calls at sigma
	// 0.25: 2.5 standard errors are 25%) is at it: the baseline settles a
	// few percent low under demand.
	near := atBase
	near.LatencyMean, near.LatencyP50, near.LatencyP90 = svc*11/10, svc*11/10, svc*11/10*138/100
	if ok, need := enough(near, s, c, 0); !ok {
		t.Fatalf("at 2, ceiling 4, latency 1.1× the baseline: not enough on 6 calls (need %d)", need)
	}
	// Latency above the baseline beyond that: the full evidence, even
	// below the ceiling.
	slower := atBase
	slower.LatencyMean, slower.LatencyP50, slower.LatencyP90 = svc*12/10, svc*12/10, svc*12/10*138/100
	if ok, _ := enough(slower, s, c, 0); ok {
		t.Fatal("at 2, ceiling 4, latency 1.2× the baseline: enough on 6 calls")
	}
}

// EvidenceFloor is the count enough waits for at the limit, at a latency
// at the baseline: one call fewer is not enough, that many are. Its
// figures, at the default tolerance (15%) and sigma 0.25, are those the
// benchmark's report states: (2.5 × 0.25 ÷ 0.15)² ≈ 18 calls from a limit
// of 4 up, and at 2 (half a call's share, 25%, is the wider margin) 7.
func TestEvidenceFloorIsWhatEnoughWaitsFor(t *testing.T) {
	c := DefaultAgencyConfig()
	c.MinSamples = 5
	const sigma = 0.25
	p90 := time.Duration(float64(svc) * math.Exp(1.2816*sigma))
	for _, tc := range []struct {
		limit float64
		want  int64
	}{{1, 5}, {2, 7}, {4, 18}, {20, 18}} {
		n := EvidenceFloor(c, tc.limit, sigma)
		if n != tc.want {
			t.Errorf("EvidenceFloor at %.0f: %d, want %d", tc.limit, n, tc.want)
		}
		s := warm(tc.limit)
		for _, ok := range []int64{n - 1, n} {
			if ok < 1 {
				continue
			}
			o := Observation{Period: time.Second, Calls: ok, OK: ok, LatencyMean: svc, LatencyP50: svc, LatencyP90: p90, InFlight: int(tc.limit)}
			got, need := enough(o, s, c, 0)
			if want := ok >= n; got != want {
				t.Errorf("limit %.0f, %d calls at the baseline: enough %v (need %d), want %v", tc.limit, ok, got, need, want)
			}
		}
	}
}

func TestPhaseRead(t *testing.T) {
	c := DefaultAgencyConfig()
	o := healthy()
	// Warm-up: the baseline is the sample-weighted mean of the periods.
	// Not before three latencies have been observed since the start: the
	// calls that end first are the short ones of those sent at the start.
	s := AgencyState{Limit: 10, Periods: 2, Observed: 2 * o.LatencyMean}
	if s.read(o, c, 0); s.BaselinePeriods != 0 || s.Baseline != 0 {
		t.Fatalf("warm-up after two latencies: baseline %s (%d periods), want none yet", s.Baseline, s.BaselinePeriods)
	}
	s = AgencyState{Limit: 10, Periods: 2, Observed: 2 * time.Second}
	sig, _ := s.read(o, c, 0)
	if s.BaselinePeriods != 1 || s.Baseline != o.LatencyMean || sig.latOK || !sig.sampled {
		t.Fatalf("first warm-up period: baseline %s (%d periods), latOK %v, sampled %v", s.Baseline, s.BaselinePeriods, sig.latOK, sig.sampled)
	}
	// Warm: the ratio and the Little's-law estimate.
	s = warm(10)
	sig, _ = s.read(o, c, 0)
	if !sig.latOK || sig.ratio < 0.99 || sig.ratio > 1.01 || sig.room != 1 {
		t.Fatalf("at the baseline: %+v, want latOK, ratio 1, room 1", sig)
	}
	if want := float64(o.OK) * svc.Seconds(); sig.estimate < want*0.99 || sig.estimate > want*1.01 {
		t.Fatalf("estimate %.2f, want goodput × baseline %.2f", sig.estimate, want)
	}
	// A significantly lower latency pulls the baseline down.
	low := o
	low.LatencyMean, low.LatencyP50 = svc/2, svc/2
	s = warm(10)
	s.read(low, c, 0)
	if s.Baseline >= svc {
		t.Fatalf("baseline %s after a latency of %s, want lower than %s", s.Baseline, svc/2, svc)
	}
	// A relearned baseline whose restored limit raised the latency again
	// is reverted, and the reason says so.
	high := o
	high.LatencyMean, high.LatencyP50, high.LatencyP90 = 2*svc, 2*svc, 2*svc
	s = warm(10)
	s.Baseline, s.Relearned = svc, &Relearned{Old: svc / 2, Age: c.SettlePeriods}
	_, note := s.read(high, c, 0)
	if s.Baseline != svc/2 || s.Relearned != nil || !strings.Contains(note, "reverted") {
		t.Fatalf("relearned baseline not reverted: %s, %q", s.Baseline, note)
	}
	// An incident set the ceiling aside (rule 2 found the agency twice as
	// slow after refusals). A latency back at the baseline from before
	// it is the agency back at its old speed: the ceiling and that
	// baseline are its own again. A slowdown of 1.6× rarely reads 0.75×
	// its relearnt baseline on MinSamples calls of one period, which slow
	// start needs to restore the Peak; the limit then climbed back by
	// single calls (C10 × 500 ms, capacity to 5 and service ×1.6: the
	// recovery's phase 0.88 × the oracle over 24 runs, 0.92 now).
	s = warm(8)
	s.Ceiling, s.Peak, s.Baseline, s.PeakBaseline = 8, 20, 2*svc, svc
	s.read(o, c, 0)
	if s.Ceiling != 20 || s.Peak != 0 || s.Baseline != svc || s.PeakBaseline != 0 {
		t.Fatalf("back at the old speed: ceiling %.1f, peak %.1f, baseline %s, peak baseline %s; want 20, 0, %s, 0",
			s.Ceiling, s.Peak, s.Baseline, s.PeakBaseline, svc)
	}
	// Far below that ceiling the agency is recovering: the next period at
	// the baseline with a backlog slow-starts to half the ceiling at once
	// (LawBeforeBackAtSpeedRecovery). Under the law before it, it did
	// not, and the limit grew by the normal rules.
	if !s.Recovering {
		t.Fatalf("back at the old speed at 8 of a ceiling of 20: not recovering")
	}
	st, d := step1(t, state(s), fluid{C: 20, S: svc, Q: 40}.observe(8), DefaultConfig(agencyA))
	if got := st.Agencies[agencyA]; got.Rule != ruleSlowStart || got.Limit != 16 {
		t.Fatalf("the period after: limit %.1f (%s), want slow start to 16", got.Limit, d.Reason)
	}
	s = warm(8)
	s.Ceiling, s.Peak, s.Baseline, s.PeakBaseline = 8, 20, 2*svc, svc
	if s.read(o, c, LawBeforeBackAtSpeedRecovery); s.Recovering || s.Ceiling != 20 {
		t.Fatalf("under LawBeforeBackAtSpeedRecovery: recovering %v, ceiling %.1f; want not recovering, 20", s.Recovering, s.Ceiling)
	}
	// At the ceiling, nothing to regain: not recovering.
	s = warm(20)
	s.Ceiling, s.Peak, s.Baseline, s.PeakBaseline = 8, 20, 2*svc, svc
	if s.read(o, c, 0); s.Recovering || s.Ceiling != 20 {
		t.Fatalf("back at the old speed at the ceiling: recovering %v, ceiling %.1f; want not recovering, 20", s.Recovering, s.Ceiling)
	}
	// Still slow: nothing restored.
	s = warm(8)
	s.Ceiling, s.Peak, s.Baseline, s.PeakBaseline = 8, 20, 2*svc, svc
	s.read(high, c, 0)
	if s.Ceiling != 8 || s.Peak != 20 || s.PeakBaseline != svc {
		t.Fatalf("still slow: ceiling %.1f, peak %.1f, peak baseline %s; want 8, 20, %s kept", s.Ceiling, s.Peak, s.PeakBaseline, svc)
	}
}

// A lone refusal is read with the next period: at an agency that refuses
// at once beyond its capacity, a limit one call beyond it is refused about
// once a period (the activities' pacing), never the two failures a rate
// needs in one period, and the limit grew on, or sat there, refused every
// period. Two periods of one refusal in 41 calls make a rate of 2.4%, and
// the limit is cut; one refusal in a period's hundreds is no rate, and
// holds the limit without cutting it.
func TestPhaseLoneRefusal(t *testing.T) {
	cfg := DefaultConfig(agencyA)
	refused := Observation{Period: time.Second, InFlight: 10, QueueWaitP90: 2 * time.Second,
		Calls: 41, OK: 40, Overload: 1, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc * 138 / 100}
	st := state(warm(10))
	st, d := step1(t, st, refused, cfg)
	if d.Limit != 10 {
		t.Fatalf("one refusal in 41 calls at limit 10: %q, limit %d; want it held and read with the next period", d.Reason, d.Limit)
	}
	_, d = step1(t, st, refused, cfg)
	if d.Limit >= 10 {
		t.Fatalf("a second period of one refusal in 41 calls: %q, limit %d; want a cut (2 of 82 calls refused)", d.Reason, d.Limit)
	}

	busy := healthy()
	busy.Overload, busy.Calls = 1, busy.Calls+1
	st = state(warm(10))
	st, _ = step1(t, st, busy, cfg)
	_, d = step1(t, st, busy, cfg)
	if d.Limit != 10 || st.Agencies[agencyA].Limit != 10 {
		t.Fatalf("one refusal in %d calls, twice: %q, limit %d; want it held, neither cut nor grown", busy.Calls, d.Reason, d.Limit)
	}
}

func TestPhaseCutForFailures(t *testing.T) {
	c := DefaultAgencyConfig()
	o := fluid{C: 10, S: svc, Q: 5}.observe(20) // overloaded: 503s
	s := warm(20)
	sig, _ := s.read(o, c, 0)
	reason, ok := s.cutForFailures(sig, o, c, "")
	if !ok || s.Limit >= 20 || s.Limit < 10 || s.Rule != ruleCutFailure || s.Cooldown == 0 {
		t.Fatalf("overload at limit 20, capacity 10: %q, limit %.1f, rule %s, cooldown %d", reason, s.Limit, s.Rule, s.Cooldown)
	}
	// The capacity the refusals show is remembered even when none had been
	// seen: an agency that refuses at once beyond its capacity never
	// queues, so the limit never held "at capacity", and growth searched
	// ×1.5 beyond the refusals again every few periods.
	s = warm(20)
	s.Capacity, s.HighWater = 0, 0
	sig, _ = s.read(o, c, 0)
	if _, ok := s.cutForFailures(sig, o, c, ""); !ok || s.Capacity == 0 || s.Capacity > s.Limit {
		t.Fatalf("refusals at limit 20 with no capacity seen: capacity remembered %.1f, limit %.1f; want the cut's limit", s.Capacity, s.Limit)
	}
	// Failures with normal latency and no overload answers are not load.
	notLoad := healthy()
	notLoad.AgencyErrors, notLoad.Calls = 50, notLoad.Calls+50
	s = warm(10)
	sig, _ = s.read(notLoad, c, 0)
	if reason, ok := s.cutForFailures(sig, notLoad, c, ""); !ok || s.Limit != 10 || s.Rule != ruleNotLoad {
		t.Fatalf("5xx at normal latency: %q, limit %.1f, rule %s; want a hold", reason, s.Limit, s.Rule)
	}
	// An outage (nothing succeeds) starts a recovery.
	down := fluid{Down: true}.observe(10)
	s = warm(10)
	s.Ceiling = 10
	sig, _ = s.read(down, c, 0)
	if _, ok := s.cutForFailures(sig, down, c, ""); !ok || !s.Recovering || s.Limit >= 10 {
		t.Fatalf("outage: limit %.1f, recovering %v; want a cut and a recovery ahead", s.Limit, s.Recovering)
	}
	// The cut keeps half the ceiling, and says so: shrinking further is
	// not the law's answer, and the breakers take that limit as the floor.
	if s.Floor != s.Limit || s.Limit != 5 {
		t.Fatalf("outage: limit %.1f, floor %.1f; want both half the ceiling, 5", s.Limit, s.Floor)
	}
	st, ds := Step(state(s), map[string]Observation{agencyA: down}, DefaultConfig(agencyA))
	if got := st.Agencies[agencyA]; ds[0].Floor != roundLimit(got.Limit) || ds[0].Floor <= c.MinLimit {
		t.Fatalf("outage, next period: decision %+v, limit %.1f; want the floor reported at the limit", ds[0], got.Limit)
	}
	// An agency that still answers, slowly, through its queue (a capacity
	// lost to a tenth, the limit already cut to 5 of a ceiling of 10: 2
	// calls of 10 served at 4× the baseline latency, the rest refused) is
	// in trouble too, but serves its successful calls × their latency at
	// once, and no more (2 × 80 ms ÷ 1 s, at least one call): the floor is
	// that, not half the ceiling, and the cut halves the limit as it would
	// anywhere. The law before held it at 5.
	deep := Observation{Period: time.Second, Calls: 10, OK: 2, Overload: 8, InFlight: 10, QueueWaitP90: time.Second,
		LatencyMean: 4 * svc, LatencyP50: 4 * svc, LatencyP90: 4 * svc * 138 / 100}
	for _, tc := range []struct {
		law  int
		want float64
	}{{0, 2.5}, {LawBeforeServedFloor, 5}} {
		s = warm(5)
		s.Ceiling = 10
		sig, _ = s.read(deep, c, 0)
		sig.law = tc.law
		if _, ok := s.cutForFailures(sig, deep, c, ""); !ok || s.Limit != tc.want {
			t.Fatalf("a capacity lost to a tenth, law %d: limit %.1f, floor %.1f; want %.1f", tc.law, s.Limit, s.Floor, tc.want)
		}
	}
	// A period of refusals alone, after the agency already refused calls
	// while serving others (a capacity lost, the limit still above it: at
	// a few slow calls a period may hold no success), is not an outage:
	// slow start would double the limit back into the lost capacity.
	allRefused := Observation{Period: time.Second, Calls: 4, Overload: 4, InFlight: 8, QueueWaitP90: time.Second}
	s = warm(8)
	s.Ceiling, s.Refused = 8, true
	sig, _ = s.read(allRefused, c, 0)
	sig.servedWithin = true
	if _, ok := s.cutForFailures(sig, allRefused, c, ruleCutFailure); !ok || s.Recovering || s.Limit >= 8 {
		t.Fatalf("refusals alone after refusals while serving: limit %.1f, recovering %v; want a cut, no recovery", s.Limit, s.Recovering)
	}
	// A second such period in a row is an outage after all (an agency
	// that lost capacity and then went down).
	sig, _ = s.read(allRefused, c, 0)
	if _, ok := s.cutForFailures(sig, allRefused, c, ruleCutFailure); !ok || !s.Recovering {
		t.Fatalf("a second period with nothing served: limit %.1f, recovering %v; want an outage's recovery", s.Limit, s.Recovering)
	}
	// The same period with nothing refused before, while a call's life
	// spans back to a period that served: not an outage either. A
	// capacity lost at a few slow calls a period shows such periods (its
	// first 503s, the timeouts of the calls it queued) before it has
	// refused anything while serving; taken for an outage, slow start
	// doubled the limit back into it (the shape from C halved,
	// seed 23 at 500 ms: 4 → 8 at a capacity of 4, 41.7% agency errors).
	s = warm(8)
	s.Ceiling = 8
	sig, _ = s.read(allRefused, c, 0)
	sig.servedWithin = true
	if _, ok := s.cutForFailures(sig, allRefused, c, ""); !ok || s.Recovering || s.Limit >= 8 {
		t.Fatalf("refusals alone from a healthy limit, a call served within a call's life: limit %.1f, recovering %v; want a cut, no recovery", s.Limit, s.Recovering)
	}
	// Once nothing has succeeded for as long as a call takes, the agency
	// answering nothing but 503s is down.
	sig, _ = s.read(allRefused, c, 0)
	if _, ok := s.cutForFailures(sig, allRefused, c, ruleCutFailure); !ok || !s.Recovering {
		t.Fatalf("refusals alone, nothing served for as long as a call takes: limit %.1f, recovering %v; want an outage's recovery", s.Limit, s.Recovering)
	}
	// A latency cut waits for its check, and the failures are the slow
	// tail of calls mostly served, with nothing refused (a slower agency's
	// timeouts): hold, rather than drop the check and compound the cut.
	slowTail := Observation{Period: time.Second, Calls: 26, OK: 24, Timeouts: 2, LatencyMean: 2 * svc,
		LatencyP50: 2 * svc, LatencyP90: 3 * svc, InFlight: 13, QueueWaitP90: time.Second}
	s = warm(13)
	s.Ceiling = 20
	s.Probe = &Probe{From: 20, To: 13, Latency: 3 * svc / 2, Ratio: 1.5, Age: 1}
	sig, _ = s.read(slowTail, c, 0)
	if reason, ok := s.cutForFailures(sig, slowTail, c, ruleCutLatency); !ok || s.Limit != 13 || s.Probe == nil || s.Rule != ruleWaitCut {
		t.Fatalf("timeouts while a latency cut's check is pending: %q, limit %.1f, probe %v; want a hold, the check kept", reason, s.Limit, s.Probe)
	}
	// The same with overload answers: the agency refuses, cut.
	refused := slowTail
	refused.Timeouts, refused.Overload = 0, 2
	s = warm(13)
	s.Probe = &Probe{From: 20, To: 13, Latency: 3 * svc / 2, Ratio: 1.5, Age: 1}
	sig, _ = s.read(refused, c, 0)
	if _, ok := s.cutForFailures(sig, refused, c, ruleCutLatency); !ok || s.Limit >= 13 || !s.Refused {
		t.Fatalf("overload answers while a check is pending: limit %.1f, refused %v; want a cut, Refused", s.Limit, s.Refused)
	}
	// Refused while serving: the capacity seen before is not one to jump
	// back to (the recover rule).
	if s.Capacity > s.Limit {
		t.Fatalf("overload cut to %.1f left Capacity %.1f: the recover rule would jump back into the refusals", s.Limit, s.Capacity)
	}
	// Once the agency has refused calls while serving, the cuts that
	// follow before it is seen healthy again are the same lost capacity,
	// showing now as the timeouts of the calls it queued: the capacity
	// remembered follows them down. Left at the first cut's limit, the
	// recover rule doubled the limit back into the lost capacity (the
	// issue's shape from C halved, seed 36: 4 → 8 at a capacity of 4).
	timedOut := Observation{Period: time.Second, Calls: 4, OK: 2, Timeouts: 2, LatencyMean: 3 * svc / 2,
		LatencyP50: 3 * svc / 2, LatencyP90: 2 * svc, InFlight: 8, QueueWaitP90: time.Second}
	s = warm(8)
	s.Ceiling, s.Refused = 8, true
	sig, _ = s.read(timedOut, c, 0)
	if _, ok := s.cutForFailures(sig, timedOut, c, ruleCutFailure); !ok || s.Limit >= 8 || s.Capacity > s.Limit {
		t.Fatalf("timeouts after refusals while serving: limit %.1f, Capacity %.1f; want a cut, Capacity down with it", s.Limit, s.Capacity)
	}
	// So does a period in which nothing succeeded while a call's life
	// spans back to one that served (not an outage).
	s = warm(8)
	s.Ceiling, s.Refused = 8, true
	noneServed := Observation{Period: time.Second, Calls: 2, Timeouts: 2, InFlight: 8, QueueWaitP90: time.Second}
	sig, _ = s.read(noneServed, c, 0)
	sig.servedWithin = true
	if _, ok := s.cutForFailures(sig, noneServed, c, ruleCutFailure); !ok || s.Recovering || s.Capacity > s.Limit {
		t.Fatalf("nothing served after refusals, a call served within a call's life: limit %.1f, Capacity %.1f, recovering %v; want Capacity down with the cut", s.Limit, s.Capacity, s.Recovering)
	}
	// Timeouts with nothing refused may be a slower agency's, whose
	// capacity in calls is unchanged: the capacity remembered stays.
	s = warm(8)
	s.Ceiling = 8
	sig, _ = s.read(timedOut, c, 0)
	if _, ok := s.cutForFailures(sig, timedOut, c, ""); !ok || s.Capacity != 8 {
		t.Fatalf("timeouts with nothing refused: limit %.1f, Capacity %.1f; want Capacity kept at 8", s.Limit, s.Capacity)
	}
	// No failures: not this rule.
	s = warm(10)
	sig, _ = s.read(healthy(), c, 0)
	if _, ok := s.cutForFailures(sig, healthy(), c, ""); ok {
		t.Fatal("a healthy period was cut for failures")
	}
}

func TestPhaseCheckLatencyCut(t *testing.T) {
	c := DefaultAgencyConfig()
	// The latency stayed at 2× the baseline after a cut from 20 to 10:
	// the agency got slower, so the baseline is relearned and the cut undone.
	slow := fluid{C: 20, S: 2 * svc, Q: 40}.observe(10)
	s := warm(10)
	s.Probe = &Probe{From: 20, To: 10, Latency: 2 * svc, Ratio: 2, Age: c.SettlePeriods}
	sig, _ := s.read(slow, c, 0)
	reason, ok := s.checkLatencyCut(sig, slow, c, time.Second)
	if !ok || s.Rule != ruleRelearn || s.Limit != 20 || s.Relearned == nil {
		t.Fatalf("latency unchanged by the cut: %q, rule %s, limit %.1f; want relearn and the limit restored", reason, s.Rule, s.Limit)
	}
	// The same at calls longer than a period (here a period of 10 ms, the
	// calls 40 ms): the calls that ended in the check's period were sent
	// before the cut, and their latency is the old limit's queue. Not read
	// until a period whose calls were sent after the cut (the fifth);
	// the cut holds, and the latency read meanwhile, if higher, becomes the
	// check's reference. The law before read it at once.
	short := 10 * time.Millisecond
	for _, tc := range []struct {
		law, age  int
		relearned bool
	}{{0, c.SettlePeriods, false}, {0, 5, true}, {LawBeforeDrainedCheck, c.SettlePeriods, true}} {
		s = warm(10)
		s.Probe = &Probe{From: 20, To: 10, Latency: 2 * svc, Ratio: 2, Age: tc.age}
		if !tc.relearned {
			s.Probe.Latency = 3 * svc / 2 // raised by the period read
		}
		s.beforeCut(slow, c, short, tc.law)
		sig, _ = s.read(slow, c, 0)
		sig.law = tc.law
		reason, ok = s.checkLatencyCut(sig, slow, c, short)
		if relearned := ok && s.Rule == ruleRelearn; relearned != tc.relearned {
			t.Fatalf("law %d, %d periods of 10 ms after the cut, calls of 40 ms: %q, rule %s; relearned %v, want %v",
				tc.law, tc.age, reason, s.Rule, relearned, tc.relearned)
		}
		if !tc.relearned && (s.Probe == nil || s.Probe.Latency != slow.LatencyMean || s.Limit != 10) {
			t.Fatalf("law %d, %d periods after the cut: probe %+v, limit %.1f; want the cut held, the probe kept with its reference raised to %s",
				tc.law, tc.age, s.Probe, s.Limit, slow.LatencyMean)
		}
	}
	// The same latency, but the agency refused calls since the cut: it is
	// full, and its latency is its queue, not a slower agency's. No
	// relearning (a capacity halved just after a trim had its queue
	// relearnt as the baseline, 2.5× the agency's own).
	for _, refusedIn := range []string{"the periods before the check", "the check's period"} {
		s = warm(10)
		s.Probe = &Probe{From: 20, To: 10, Latency: 2 * svc, Ratio: 2, Age: c.SettlePeriods}
		full := slow
		if refusedIn == "the check's period" {
			full.Overload, full.Calls = 3, full.Calls+3
		} else {
			before := slow
			before.Overload, before.Calls, before.InFlight = 3, before.Calls+3, 20
			s.beforeCut(before, c, time.Second, 0)
		}
		s.beforeCut(full, c, time.Second, 0)
		sig, _ = s.read(full, c, 0)
		if reason, ok := s.checkLatencyCut(sig, full, c, time.Second); ok || s.Rule == ruleRelearn || s.Baseline != svc || s.Limit != 10 {
			t.Fatalf("latency unchanged by the cut, calls refused in %s: %q, rule %s, baseline %s, limit %.1f; want no slowdown read",
				refusedIn, reason, s.Rule, s.Baseline, s.Limit)
		}
	}
	// Cut twice (the first check was read at the slowdown's onset): the
	// relearned baseline restores the last good limit, as a slower agency
	// holds as many calls...
	s = warm(6)
	s.Good = 20
	s.Probe = &Probe{From: 12, To: 6, Latency: 2 * svc, Ratio: 2, Age: c.SettlePeriods}
	slow6 := fluid{C: 20, S: 2 * svc, Q: 40}.observe(6)
	sig, _ = s.read(slow6, c, 0)
	if reason, ok := s.checkLatencyCut(sig, slow6, c, time.Second); !ok || s.Rule != ruleRelearn || s.Limit != 20 {
		t.Fatalf("slower, nothing refused: %q, limit %.1f; want Good 20 restored", reason, s.Limit)
	}
	// The cut took its target as the capacity; restored, the limit is the
	// capacity again, or growth from it would accelerate as beyond one.
	if s.Capacity != 20 {
		t.Fatalf("restored to 20 with Capacity %.1f; want 20", s.Capacity)
	}
	// A slower agency holds as many calls, no more: the probes refuted
	// beyond Good still tell its capacity, and none goes beyond the
	// restored limit for a back-off (a longer one left as it is).
	for _, backoff := range []int{0, 10, 3 * probeBackoff} {
		s = warm(6)
		s.Good, s.Refuted, s.Backoff = 20, 2, backoff
		s.Probe = &Probe{From: 12, To: 6, Latency: 2 * svc, Ratio: 2, Age: c.SettlePeriods}
		sig, _ = s.read(slow6, c, 0)
		want := max(backoff, probeBackoff)
		if reason, ok := s.checkLatencyCut(sig, slow6, c, time.Second); !ok || s.Rule != ruleRelearn || s.Refuted != 2 || s.Backoff != want {
			t.Fatalf("slower, nothing refused, back-off %d: %q, refuted %d, back-off %d; want 2 and %d", backoff, reason, s.Refuted, s.Backoff, want)
		}
	}
	// ...unless the agency refused calls since it was last seen healthy:
	// it lost capacity as well (an incident), and only the cut is undone;
	// the probes refuted at the old capacity say nothing about the new one.
	s = warm(6)
	s.Good, s.Refused, s.Refuted, s.Backoff = 20, true, 2, 10
	s.Probe = &Probe{From: 12, To: 6, Latency: 2 * svc, Ratio: 2, Age: c.SettlePeriods}
	sig, _ = s.read(slow6, c, 0)
	if reason, ok := s.checkLatencyCut(sig, slow6, c, time.Second); !ok || s.Rule != ruleRelearn || s.Limit != 12 {
		t.Fatalf("slower after refusals: %q, limit %.1f; want the cut's 12 restored, not Good 20", reason, s.Limit)
	}
	if s.Refuted != 0 || s.Backoff != 0 {
		t.Fatalf("slower after refusals: refuted %d, back-off %d; want both cleared", s.Refuted, s.Backoff)
	}
	// An incident: the agency lost capacity (8 of 12) and got twice as
	// slow. At 12 its latency was 3× the old baseline; the cut to 6, below
	// the capacity, reads 2×: it fell by a third where queueing alone
	// predicts a half. The latency read is the agency's own, and Little's
	// law gives its capacity from the two readings: 12 × 2 ÷ 3 = 8. (The
	// law kept the cut and cut again on the old baseline.)
	slowSmall := fluid{C: 8, S: 2 * svc, Q: 16}.observe(6)
	s = warm(6)
	s.Good, s.Ceiling, s.Refused = 20, 20, true
	s.Probe = &Probe{From: 12, To: 6, Latency: 3 * svc, Ratio: 3, Age: c.SettlePeriods}
	sig, _ = s.read(slowSmall, c, 0)
	if reason, ok := s.checkLatencyCut(sig, slowSmall, c, time.Second); !ok || s.Rule != ruleRelearn || s.Baseline != 2*svc || math.Abs(s.Limit-8) > 0.01 {
		t.Fatalf("fell by less than queueing predicts: %q, rule %s, baseline %s, limit %.2f; want relearn, %s, 8", reason, s.Rule, s.Baseline, s.Limit, 2*svc)
	}
	// It refused calls: the ceiling of 20 is a capacity it no longer has.
	// Kept as the Peak, it comes back once the agency is seen faster.
	if s.Ceiling != 8 || s.Peak != 20 || s.PeakBaseline != svc {
		t.Fatalf("slower after refusals: ceiling %.1f, peak %.1f, peak baseline %s; want 8 and 20 kept, and the old baseline %s",
			s.Ceiling, s.Peak, s.PeakBaseline, svc)
	}
	// Found slower a second time in the same incident: the baseline kept
	// is still the one from before it, not the slow one relearnt since.
	// (It grew healthy to 10 since; the second cut, 10 → 5, read a fall
	// of a third where queueing predicts a half.)
	s.Probe = &Probe{From: 10, To: 5, Latency: 6 * svc, Ratio: 3, Age: c.SettlePeriods}
	s.Relearned, s.Limit, s.Ceiling = nil, 5, 10
	slower4 := fluid{C: 8, S: 4 * svc, Q: 16}.observe(5)
	sig, _ = s.read(slower4, c, 0)
	if reason, ok := s.checkLatencyCut(sig, slower4, c, time.Second); !ok || s.Rule != ruleRelearn || s.PeakBaseline != svc || s.Peak != 20 {
		t.Fatalf("slower again: %q, rule %s, peak %.1f, peak baseline %s; want relearn, 20 and %s kept", reason, s.Rule, s.Peak, s.PeakBaseline, svc)
	}
	// A fall in proportion to the cut is queueing still, at the lower
	// limit too: the check leaves the cut, and rule 3 may cut again.
	queued := Observation{Period: time.Second, Calls: 200, OK: 200, LatencyMean: 3 * svc / 2, LatencyP50: 3 * svc / 2,
		LatencyP90: 3 * svc / 2 * 138 / 100, InFlight: 6, QueueWaitP90: 2 * time.Second}
	s = warm(6)
	s.Probe = &Probe{From: 12, To: 6, Latency: 3 * svc, Ratio: 3, Age: c.SettlePeriods}
	sig, _ = s.read(queued, c, 0)
	if reason, ok := s.checkLatencyCut(sig, queued, c, time.Second); ok || s.Probe != nil {
		t.Fatalf("latency halved with the limit: decided %v (%q), probe %v; want checked, nothing undone", ok, reason, s.Probe)
	}
	// The latency fell with the cut: it was queueing; nothing to undo.
	s = warm(10)
	s.Good = 20
	s.Probe = &Probe{From: 20, To: 10, Latency: 2 * svc, Ratio: 2, Age: c.SettlePeriods}
	sig, _ = s.read(healthy(), c, 0)
	if _, ok := s.checkLatencyCut(sig, healthy(), c, time.Second); ok || s.Probe != nil || s.Good != 0 {
		t.Fatalf("latency fell with the cut below Good: decided %v, probe %v, Good %.1f; want checked, Good forgotten", ok, s.Probe, s.Good)
	}
}

func TestPhaseCutForLatency(t *testing.T) {
	c := DefaultAgencyConfig()
	queued := fluid{C: 10, S: svc, Q: 40}.observe(15) // 15 in flight at capacity 10
	s := warm(15)
	sig, _ := s.read(queued, c, 0)
	reason, ok := s.cutForLatency(sig, queued, c, "")
	if !ok || s.Rule != ruleCutLatency || s.Limit >= 15 || s.Limit < 7.5 || s.Probe == nil {
		t.Fatalf("latency above tolerance: %q, rule %s, limit %.1f, probe %v; want a cut by at most half and its check", reason, s.Rule, s.Limit, s.Probe)
	}
	// While the last cut's check is pending, hold.
	s = warm(15)
	s.Probe = &Probe{From: 20, To: 15, Age: 1}
	sig, _ = s.read(queued, c, 0)
	if _, ok := s.cutForLatency(sig, queued, c, ""); !ok || s.Rule != ruleWaitCut || s.Limit != 15 {
		t.Fatalf("cut pending: rule %s, limit %.1f; want a hold", s.Rule, s.Limit)
	}
	// Right after a failure cut, before it has shown, the latency read is
	// the old limit's queue: hold. Once shown, or under the law before,
	// cut.
	for _, tc := range []struct {
		law   int
		shown bool
		hold  bool
	}{{0, false, true}, {0, true, false}, {LawBeforeFailureCutShown, false, false}} {
		s = warm(15)
		sig, _ = s.read(queued, c, 0)
		sig.law, sig.shown = tc.law, tc.shown
		reason, ok := s.cutForLatency(sig, queued, c, ruleCutFailure)
		if held := ok && s.Rule == ruleWaitCut && s.Limit == 15; held != tc.hold || !ok {
			t.Fatalf("after a failure cut, law %d, shown %v: %q, rule %s, limit %.1f; held %v, want %v",
				tc.law, tc.shown, reason, s.Rule, s.Limit, held, tc.hold)
		}
	}
}

// A latency cut on a period of a few calls goes back to the last good
// limit, not to the Little's-law estimate: a handful of calls at one or two
// a second read their goodput ±40% and their latency ±25%, and one that
// reads high (a noisy period, or an agency slightly slower within the
// tolerance) halved the limit of 9 at a capacity of 8, and the
// limit stayed at 3–5 to the end of the run. On the full evidence
// (goodputSamples calls) it goes to the estimate, as before.
func TestPhaseCutForLatencyOnThinEvidence(t *testing.T) {
	c := DefaultAgencyConfig()
	c.MinSamples = 5
	full := fluid{C: 10, S: svc, Q: 40}.observe(15) // 15 in flight at capacity 10: goodput×baseline 8
	thin := full
	thin.OK, thin.Calls = 6, 6 // the same latency on a few calls
	for _, tc := range []struct {
		name string
		o    Observation
		want float64
	}{{"a few calls", thin, 14}, {"the full evidence", full, 8 * c.Headroom}} {
		s := warm(15)
		s.Good = 14
		sig, _ := s.read(tc.o, c, 0)
		reason, ok := s.cutForLatency(sig, tc.o, c, "")
		if !ok || s.Rule != ruleCutLatency || math.Abs(s.Limit-tc.want) > 0.01 || s.Probe == nil {
			t.Errorf("%s: %q, rule %s, limit %.1f, probe %v; want a cut to %.1f and its check", tc.name, reason, s.Rule, s.Limit, s.Probe, tc.want)
		}
	}
}

// A limit held in the band between the growth and the cut thresholds
// keeps a queue at the agency: trimmed to the Little's-law estimate ×
// Headroom once the periods held at it show the queue beyond their noise,
// once between two increases, and only at the Ceiling.
func TestPhaseTrim(t *testing.T) {
	c := DefaultAgencyConfig()
	at := func(limit int) (AgencyState, Observation) {
		s := warm(float64(limit))
		s.Ceiling, s.Good = float64(limit), float64(limit)
		return s, fluid{C: 20, S: svc, Q: 40}.observe(limit)
	}
	step := func(s *AgencyState, o Observation) (string, bool) {
		sig, _ := s.read(o, c, 0)
		s.hold(o, sig)
		return s.trim(sig, o, c, ruleAtCapacity)
	}
	// 22 calls at a capacity of 20: latency 1.15× the baseline, in the band.
	s, o := at(22)
	if reason, ok := step(&s, o); ok {
		t.Fatalf("trimmed on one period: %q", reason)
	}
	reason, ok := step(&s, o)
	if !ok || s.Rule != ruleTrim || roundLimit(s.Limit) != 20 || !s.Trimmed || s.Probe == nil ||
		s.Ceiling != s.Limit || s.Good != s.Limit || s.Backoff == 0 {
		t.Fatalf("two periods at 22, capacity 20: %q, rule %s, limit %.1f, trimmed %v, probe %v, ceiling %.1f, good %.1f, back-off %d; "+
			"want a trim to 20 checked as a latency cut, the ceiling and Good at it, and a back-off",
			reason, s.Rule, s.Limit, s.Trimmed, s.Probe, s.Ceiling, s.Good, s.Backoff)
	}
	// One call beyond the capacity is the queue the Headroom keeps.
	s, o = at(21)
	step(&s, o)
	if reason, ok := step(&s, o); ok {
		t.Fatalf("trimmed at 21, capacity 20: %q", reason)
	}
	// Once between two increases: a slower agency is trimmed once.
	s, o = at(22)
	s.Trimmed = true
	step(&s, o)
	if reason, ok := step(&s, o); ok {
		t.Fatalf("trimmed again without an increase: %q", reason)
	}
	// Below the Ceiling (an incident's lower capacity) the law holds, and
	// the regrow rule watches for the capacity to come back.
	s, o = at(22)
	s.Ceiling = 30
	step(&s, o)
	if reason, ok := step(&s, o); ok {
		t.Fatalf("trimmed below the ceiling: %q", reason)
	}
	// A period in which the limit was in use only part of the way (a
	// surge's first: demand, but its goodput reads low by that share)
	// is not evidence.
	s, o = at(22)
	step(&s, o)
	part := o
	part.OK, part.Calls = o.OK*3/4, o.OK*3/4
	if reason, ok := step(&s, part); ok || s.Held != nil {
		t.Fatalf("a period three quarters in use: %q, held %v; want the evidence dropped", reason, s.Held)
	}
	// A period after a move, or one without demand, starts the evidence
	// over.
	s, o = at(22)
	step(&s, o)
	s.Moved = true
	step(&s, o)
	s.Moved = false
	if reason, ok := step(&s, o); ok || s.Held == nil || s.Held.Period != o.Period {
		t.Fatalf("evidence kept across a move: %q, held %v", reason, s.Held)
	}
}

// At a limit of one call the latency cannot be ours: a slower agency is
// relearned at once instead of held at 1 for good.
func TestPhaseCutForLatencyAtOneCall(t *testing.T) {
	c := DefaultAgencyConfig()
	slow := Observation{Period: time.Second, Calls: 25, OK: 25, LatencyMean: 2 * svc, LatencyP50: 2 * svc,
		LatencyP90: 2 * svc * 138 / 100, InFlight: 1, QueueWaitP90: time.Second}
	s := warm(1)
	s.Ceiling, s.Good = 4, 0
	sig, _ := s.read(slow, c, 0)
	reason, ok := s.cutForLatency(sig, slow, c, "")
	if !ok || s.Rule != ruleRelearn || s.Baseline != 2*svc || s.Relearned == nil || s.Relearned.Old != svc || s.Limit != 4 {
		t.Fatalf("latency 2× at one call: %q, rule %s, baseline %s, limit %.1f; want the baseline relearnt at %s and the limit back to the ceiling 4",
			reason, s.Rule, s.Baseline, s.Limit, 2*svc)
	}
	// Not while a relearnt baseline waits for its check, and not above one
	// call: two calls may queue behind each other at a capacity of one.
	s = warm(1)
	s.Relearned = &Relearned{Old: svc / 2}
	sig, _ = s.read(slow, c, 0)
	if _, ok := s.cutForLatency(sig, slow, c, ""); !ok || s.Rule != ruleNotOurs || s.Baseline != svc {
		t.Fatalf("relearnt baseline pending: rule %s, baseline %s; want a hold", s.Rule, s.Baseline)
	}
	s = warm(2)
	s.Capacity, s.Good = 0, 0
	two := slow
	two.InFlight = 2 // goodput×baseline 0.5: below 2, so a cut to 1
	sig, _ = s.read(two, c, 0)
	if _, ok := s.cutForLatency(sig, two, c, ""); !ok || s.Rule != ruleCutLatency || s.Baseline != svc {
		t.Fatalf("latency 2× at two calls: rule %s, baseline %s; want a cut, the baseline kept", s.Rule, s.Baseline)
	}
}

// A queue wait is demand only with the limit in use: a task queue's
// dispatch latency is a wait every task has with the slots free.
func TestDemanded(t *testing.T) {
	c := DefaultAgencyConfig()
	const lat = 300 * time.Millisecond
	// 20 calls at 300 ms through a 1 s period: Little's law says 6 in use.
	o := Observation{Period: time.Second, Calls: 20, OK: 20, LatencyMean: lat, LatencyP50: lat, QueueWaitP90: 100 * time.Millisecond, InFlight: 6}
	for _, tc := range []struct {
		name  string
		limit float64
		edit  func(*Observation)
		want  bool
	}{
		{"queue wait, 6 of 8 in use", 8, nil, true},
		{"queue wait, 6 of 20 in use", 20, nil, false},
		{"no queue wait, 6 of 8 in use", 8, func(o *Observation) { o.QueueWaitP90 = 10 * time.Millisecond }, false},
		{"in flight at the limit", 20, func(o *Observation) { o.InFlight = 19 }, true},
		{"p50 without a mean", 8, func(o *Observation) { o.LatencyMean = 0 }, true},
		{"no successful call, some in flight", 8, func(o *Observation) { o.OK, o.Calls = 0, 0 }, false},
	} {
		o := o
		if tc.edit != nil {
			tc.edit(&o)
		}
		if got := demanded(o, tc.limit, c); got != tc.want {
			t.Errorf("%s: demanded = %v, want %v", tc.name, got, tc.want)
		}
	}
	// The limit in effect during the period just after a step is the
	// lower one.
	s := warm(12)
	s.Moved, s.MovedFrom = true, 8
	if got := s.inEffect(); got != 8 {
		t.Errorf("in effect after a step 8 → 12: %.1f, want 8", got)
	}
	s.MovedFrom = 16
	if got := s.inEffect(); got != 12 {
		t.Errorf("in effect after a cut 16 → 12: %.1f, want 12", got)
	}
}

func TestPhaseGrow(t *testing.T) {
	c := DefaultAgencyConfig()
	// No capacity seen yet: ×1.5.
	s := warm(10)
	s.Capacity, s.HighWater = 0, 0
	sig, _ := s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, "", 0); s.Limit != 15 || s.Rule != ruleSearch {
		t.Fatalf("healthy, capacity unknown: %q, limit %.1f; want 15", reason, s.Limit)
	}
	// No capacity seen yet, but the last ×1.5 has not shown: wait for it
	// rather than compound it (at a high call rate a period's evidence is
	// enough at once).
	s = warm(10)
	s.Capacity, s.HighWater, s.Moved = 0, 0, true
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, ruleSearch, 0); s.Limit != 10 || s.Rule != ruleWaitGrow {
		t.Fatalf("search step not shown yet: %q, limit %.1f, rule %s; want a hold", reason, s.Limit, s.Rule)
	}
	// Far below the last capacity seen: back toward it.
	s = warm(10)
	s.Capacity = 30
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, "", 0); s.Limit != 20 || s.Rule != ruleRecover {
		t.Fatalf("below the last capacity: %q, limit %.1f; want 20", reason, s.Limit)
	}
	// Not while probes beyond Good are backed off: the last capacity was
	// read at the refuted probe's limit.
	s = warm(10)
	s.Capacity, s.Good, s.Ceiling, s.Refuted, s.Backoff = 30, 10, 10, 1, 5
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, "", 0); s.Rule == ruleRecover {
		t.Fatalf("below a refuted capacity, backing off: %q, limit %.1f; want no jump back to it", reason, s.Limit)
	}
	// Probes beyond a refuted Good wait for the back-off.
	s = warm(10)
	s.Good, s.Ceiling, s.Refuted, s.Backoff = 10, 10, 1, 5
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, "", 0); s.Limit != 10 || s.Rule != ruleBackoff {
		t.Fatalf("back-off pending: %q, limit %.1f, rule %s; want a hold", reason, s.Limit, s.Rule)
	}
	// The queue gone at an unchanged limit after holds at capacity: the
	// capacity came back. The cuts of its loss lowered HighWater to the
	// lost capacity, so the limit climbs back toward the ceiling, the
	// highest limit seen healthy before the loss.
	s = warm(10)
	s.Ceiling, s.Good = 20, 10
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, ruleAtCapacity, c.SettlePeriods); s.Limit != 17.5 || s.Rule != ruleRegrow {
		t.Fatalf("capacity back after a loss: %q, limit %.1f, rule %s; want three quarters of the way to the ceiling 20", reason, s.Limit, s.Rule)
	}
	// Below a limit of 4, halfway: three quarters of the way rounds to
	// the ceiling itself, and a reading of a few calls passes for the
	// queue gone.
	s = warm(2)
	s.Ceiling, s.Good = 4, 2
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, ruleAtCapacity, c.SettlePeriods); s.Limit != 3 || s.Rule != ruleRegrow {
		t.Fatalf("capacity back after a loss, at 2: %q, limit %.1f, rule %s; want halfway to the ceiling 4", reason, s.Limit, s.Rule)
	}
	// Held at capacity but for a step within the rounding: still at
	// capacity, the regrow applies the same.
	s = warm(10)
	s.Ceiling, s.Good = 20, 10
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, ruleGrow, c.SettlePeriods); s.Limit != 17.5 || s.Rule != ruleRegrow {
		t.Fatalf("capacity back after a step within the rounding: %q, limit %.1f, rule %s; want 17.5", reason, s.Limit, s.Rule)
	}
	// An increase keeps the periods held at capacity before it: the queue
	// gone at the higher limit is the capacity back all the more. Reset by
	// the step, the regrow waited for two more periods held at capacity
	// (C12 × 300 ms halved, seed 1: a step of 0.1 that crossed the rounding
	// put the regrow off, and the limit climbed back a call at a time).
	s = warm(10)
	s.Ceiling, s.Good, s.Capacity = 14, 10, 10
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, ruleSettle, c.SettlePeriods); roundLimit(s.Limit) != 11 || s.Rule != ruleGrow || s.Saturated != c.SettlePeriods {
		t.Fatalf("a step from a limit held at capacity: %q, limit %.1f, rule %s, saturated %d; want 11 by a step, saturated %d kept",
			reason, s.Limit, s.Rule, s.Saturated, c.SettlePeriods)
	}
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, s.Rule, s.Saturated); s.Rule != ruleRegrow {
		t.Fatalf("the queue gone after a step: %q, limit %.1f, rule %s; want a regrow toward the ceiling 14", reason, s.Limit, s.Rule)
	}
	// Far below the ceiling with the latency at the baseline (a capacity
	// back while the limit was held at the lost one): the steps double
	// without waiting for each to show.
	s = warm(6)
	s.Ceiling, s.Good = 14, 6
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, ruleCutLatency, 0); s.Limit != 7 || s.Rule != ruleGrowBack {
		t.Fatalf("far below the ceiling: %q, limit %.1f, rule %s; want 7 by %s", reason, s.Limit, s.Rule, ruleGrowBack)
	}
	s.Moved = false // the step shown
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, ruleGrowBack, 0); s.Limit != 9 || s.Rule != ruleGrowBack {
		t.Fatalf("growing back: %q, limit %.1f, rule %s; want 9, the step doubled", reason, s.Limit, s.Rule)
	}
	// Near the ceiling, or at a small limit, one step at a time.
	s = warm(3)
	s.Ceiling, s.Good = 8, 3
	sig, _ = s.read(healthy(), c, 0)
	if reason := s.grow(sig, healthy(), c, ruleGrow, 0); s.Rule == ruleGrowBack {
		t.Fatalf("at a limit of 3: %q, rule %s; want no accelerated growth", reason, s.Rule)
	}
	// No demand: hold.
	idle := healthy()
	idle.QueueWaitP90, idle.InFlight = 0, 2
	s = warm(10)
	sig, _ = s.read(idle, c, 0)
	if reason := s.grow(sig, idle, c, "", 0); s.Limit != 10 || s.Rule != ruleIdle {
		t.Fatalf("no backlog: %q, limit %.1f", reason, s.Limit)
	}
}

func TestPhaseSlowStart(t *testing.T) {
	c := DefaultAgencyConfig()
	back := Observation{Period: time.Second, Calls: 2, OK: 2, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc,
		InFlight: 2, QueueWaitP90: time.Second}
	// Recovering, far below the ceiling: to half of it at once.
	s := warm(2)
	s.Ceiling, s.Recovering = 20, true
	if reason, ok := s.slowStart(back, c, 0); !ok || s.Limit != 10 || !s.Recovering {
		t.Fatalf("recovering at 2, ceiling 20: %q, limit %.1f", reason, s.Limit)
	}
	// At the ceiling, read healthy: slow start ends there, the ceiling the
	// good limit, and the normal rules decide the period.
	s = warm(20)
	s.Ceiling, s.Recovering = 20, true
	back.InFlight = 20
	if reason, ok := s.slowStart(back, c, 0); ok || s.Limit != 20 || s.Recovering || s.Good != 20 {
		t.Fatalf("recovering at the ceiling: %q, limit %.1f, recovering %v, Good %.1f; want no step, 20, over, Good 20", reason, s.Limit, s.Recovering, s.Good)
	}
	if _, ok := s.slowStart(back, c, 0); ok {
		t.Fatal("slow start went on past the ceiling")
	}
	// The law before LawBeforeCeilingStop: one step of 12.5% beyond it, a
	// probe from it; then over.
	s = warm(20)
	s.Ceiling, s.Recovering = 20, true
	if reason, ok := s.slowStart(back, c, LawBeforeCeilingStop); !ok || s.Limit != 22.5 || s.Recovering || s.Good != 20 {
		t.Fatalf("law %d, recovering at the ceiling: %q, limit %.1f, recovering %v, Good %.1f; want 22.5, over, Good 20", LawBeforeCeilingStop, reason, s.Limit, s.Recovering, s.Good)
	}
	if _, ok := s.slowStart(back, c, LawBeforeCeilingStop); ok {
		t.Fatal("slow start went on beyond its step past the ceiling")
	}
	// Not recovering, latency at the baseline: no slow start.
	s = warm(2)
	s.Ceiling = 20
	back.InFlight = 2
	if _, ok := s.slowStart(back, c, 0); ok {
		t.Fatal("slow start without a recovery")
	}
	// At the ceiling right after the step to it: the period read has not
	// seen the ceiling yet, so no step beyond it (which would take the
	// ceiling as the agency's good limit unseen).
	s = warm(20)
	s.Ceiling, s.Recovering, s.Moved, s.Rule = 20, true, true, ruleSlowStart
	back.InFlight = 12
	if reason, ok := s.slowStart(back, c, 0); ok {
		t.Fatalf("a step beyond the ceiling before the ceiling showed: %q, limit %.1f", reason, s.Limit)
	}
	// Back from a slowdown at the ceiling (nothing to regain): the baseline
	// is still the slow agency's, against which a queue at this limit
	// would pass for room. Read on enough calls, it is taken at once...
	fast := Observation{Period: time.Second, Calls: 60, OK: 60, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc * 138 / 100,
		InFlight: 20, QueueWaitP90: time.Second}
	s = warm(20)
	s.Ceiling, s.Good, s.Baseline = 20, 20, 2*svc
	if _, ok := s.slowStart(fast, c, 0); ok || s.Baseline != svc || s.Limit != 20 {
		t.Fatalf("back from a slowdown at the ceiling: stepped %v, baseline %s, limit %.1f; want no step, baseline %s", ok, s.Baseline, s.Limit, svc)
	}
	// ...but not from a handful of calls, too noisy for it (at the
	// benchmark's MinSamples of 5, 12 calls read well below the baseline).
	few := fast
	few.Calls, few.OK = 12, 12
	s = warm(20)
	s.Ceiling, s.Good, s.Baseline = 20, 20, 2*svc
	c5 := c
	c5.MinSamples = 5
	if _, ok := s.slowStart(few, c5, 0); ok || s.Baseline != 2*svc {
		t.Fatalf("12 calls faster: baseline %s; want it kept at %s", s.Baseline, 2*svc)
	}
	// The baseline it had before rule 2 found it slower (FastBaseline),
	// though, needs only to be read again, not measured: 12 calls back at
	// it take it back, and the evidence gathered at the slow speed goes.
	s = warm(20)
	s.Ceiling, s.Good, s.Baseline, s.FastBaseline = 20, 20, 2*svc, svc*105/100
	s.Evidence = &Observation{Period: time.Second, Calls: 4, OK: 4, LatencyMean: 2 * svc}
	if reason, ok := s.slowStart(few, c5, 0); ok || s.Baseline != svc*105/100 || s.FastBaseline != 0 || s.Evidence != nil || s.Unverified {
		t.Fatalf("12 calls back at the old speed: %q, baseline %s, fast baseline %s, evidence %v; want %s taken back, the evidence dropped",
			reason, s.Baseline, s.FastBaseline, s.Evidence, svc*105/100)
	}
	// Not under the law before it, nor from calls that do not read that
	// speed (still 1.5× it).
	s = warm(20)
	s.Ceiling, s.Good, s.Baseline, s.FastBaseline = 20, 20, 2*svc, svc*105/100
	if _, ok := s.slowStart(few, c5, LawBeforeFastBaseline); ok || s.Baseline != 2*svc {
		t.Fatalf("12 calls back at the old speed, pinned law: baseline %s; want %s kept", s.Baseline, 2*svc)
	}
	s.FastBaseline = svc * 2 / 3
	if _, ok := s.slowStart(few, c5, 0); ok || s.Baseline != 2*svc || s.FastBaseline != svc*2/3 {
		t.Fatalf("12 calls at 1.5× the old speed: baseline %s, fast baseline %s; want both kept", s.Baseline, s.FastBaseline)
	}
	// Rule 2 keeps it when it finds the agency slower without refusals;
	// with refusals the agency lost capacity too, and its old baseline
	// goes with the Peak, nor does the pinned law keep it.
	for _, tc := range []struct {
		refused bool
		law     int
		want    time.Duration
	}{{false, 0, svc}, {true, 0, 0}, {false, LawBeforeFastBaseline, 0}} {
		s = warm(20)
		s.Refused = tc.refused
		s.slower(2*svc, 20, tc.law)
		if s.FastBaseline != tc.want || s.Baseline != 2*svc {
			t.Fatalf("found slower (refused %v, law %d): fast baseline %s, baseline %s; want %s and %s", tc.refused, tc.law, s.FastBaseline, s.Baseline, tc.want, 2*svc)
		}
	}
	// A doubling cut for timeouts: the agency is still in trouble, and its
	// recovery, still to come, is slow-started. (Ended there, a recovery
	// at C4 × 600 ms climbed back one call at a time.) Cut for refusals,
	// the slow start ends.
	for _, capacity := range []bool{false, true} {
		s = warm(4)
		s.Ceiling, s.Good, s.SlowFrom, s.Recovering = 4, 4, 2, true
		s.endSlowStart(ruleSlowStart, capacity)
		if s.Recovering == capacity {
			t.Fatalf("a doubling to the ceiling cut (for refusals: %v): recovering %v; want %v", capacity, s.Recovering, !capacity)
		}
	}
	// An incident lowered the ceiling (a doubling refused); back from its
	// slowdown, the ceiling from before it returns and slow start climbs
	// toward it.
	s = warm(9)
	s.Ceiling, s.Good, s.SlowFrom, s.Limit = 18, 9, 9, 13
	s.endSlowStart(ruleSlowStart, true)
	if s.Ceiling != 9 || s.Peak != 18 {
		t.Fatalf("doubling refused in an incident: ceiling %.1f, peak %.1f; want 9 and 18 kept", s.Ceiling, s.Peak)
	}
	s.Limit, s.Baseline = 9, 2*svc
	fast.InFlight = 9
	if reason, ok := s.slowStart(fast, c, 0); !ok || s.Ceiling != 18 || s.Limit != 18 || s.Peak != 0 {
		t.Fatalf("back from the incident's slowdown: %q, limit %.1f, ceiling %.1f, peak %.1f; want 18, 18, 0", reason, s.Limit, s.Ceiling, s.Peak)
	}
	// A ceiling lowered to the limit itself (rule 2 found the agency
	// slower after refusals): read against it slow start has nothing to
	// regain, but read against the Peak it has, on fewer calls than a
	// relearning alone needs (30 of 40).
	fast30 := fast
	fast30.Calls, fast30.OK, fast30.InFlight = 30, 30, 8
	// The baseline from before the slowdown, within the reading's noise
	// of it, is taken back rather than the reading of one period: it
	// rests on more calls.
	s = warm(8)
	s.Ceiling, s.Peak, s.Good, s.Baseline, s.PeakBaseline = 8, 20, 8, 2*svc, svc*105/100
	c5.MinSamples = 5
	if reason, ok := s.slowStart(fast30, c5, 0); !ok || s.Ceiling != 20 || s.Peak != 0 || s.Limit != 16 {
		t.Fatalf("back from the incident's slowdown at the lowered ceiling: %q, limit %.1f, ceiling %.1f, peak %.1f; want 16, 20, 0", reason, s.Limit, s.Ceiling, s.Peak)
	}
	if s.Baseline != svc*105/100 || s.PeakBaseline != 0 {
		t.Fatalf("back at the old speed: baseline %s, peak baseline %s; want %s taken back", s.Baseline, s.PeakBaseline, svc*105/100)
	}
	// A doubling refused with overload answers: the agency's capacity is
	// below the ceiling now, and the ceiling comes down to what slow start
	// came from (or half the refused limit), not to a Good learnt before
	// the trouble.
	s = warm(18)
	s.Ceiling, s.Good, s.SlowFrom = 18, 18, 9
	s.endSlowStart(ruleSlowStart, true)
	if s.Ceiling != 9 || s.Recovering {
		t.Fatalf("doubling refused by overload: ceiling %.1f, recovering %v; want 9, over", s.Ceiling, s.Recovering)
	}
	// Refused with timeouts (an agency still in trouble): the ceiling keeps
	// the Good limit, its capacity once the trouble is over.
	s = warm(18)
	s.Ceiling, s.Good, s.SlowFrom = 18, 18, 9
	s.endSlowStart(ruleSlowStart, false)
	if s.Ceiling != 18 {
		t.Fatalf("doubling refused by timeouts: ceiling %.1f; want 18", s.Ceiling)
	}
}

func TestPhaseDip(t *testing.T) {
	c := DefaultAgencyConfig()
	// 15 calls at a capacity of 20, against a baseline taken from one
	// period that read 10% low: every period reads 1.11×, in the hold band.
	at := func(limit int, unverified bool) (AgencyState, Observation) {
		s := warm(float64(limit))
		s.Baseline, s.Unverified = svc*9/10, unverified
		return s, fluid{C: 20, S: svc, Q: 40}.observe(limit)
	}
	step := func(s *AgencyState, o Observation) (string, bool) {
		sig, _ := s.read(o, c, 0)
		s.hold(o, sig)
		return s.dip(o, c, time.Second)
	}
	s, o := at(15, true)
	if reason, ok := step(&s, o); ok {
		t.Fatalf("dipped on one period: %q", reason)
	}
	reason, ok := step(&s, o)
	if !ok || s.Rule != ruleDip || s.Limit != 13 || s.Dip == nil || s.Dip.From != 15 {
		t.Fatalf("two periods at 15 on a one-period baseline: %q, rule %s, limit %.1f, dip %+v; want a dip to 13 from 15",
			reason, s.Rule, s.Limit, s.Dip)
	}
	// A baseline averaged over the warm-up, or read in a dip, is not
	// dipped for.
	s, o = at(15, false)
	step(&s, o)
	if reason, ok := step(&s, o); ok {
		t.Fatalf("dipped on a verified baseline: %q", reason)
	}
	// At a few calls a dip of one is more than 15%: none.
	s, o = at(6, true)
	step(&s, o)
	if reason, ok := step(&s, o); ok {
		t.Fatalf("dipped at 6 calls: %q", reason)
	}
	// Latency at the baseline: nothing to doubt.
	s, o = at(15, true)
	s.Baseline = svc
	step(&s, o)
	if reason, ok := step(&s, o); ok {
		t.Fatalf("dipped with the latency at the baseline: %q", reason)
	}
}

func TestPhaseCheckDip(t *testing.T) {
	c := DefaultAgencyConfig()
	start := func() AgencyState {
		s := warm(13)
		s.Baseline, s.Unverified = svc*9/10, true
		s.Refuted, s.Backoff = 1, 10
		s.Dip = &Dip{From: 15, To: 13}
		return s
	}
	read := fluid{C: 20, S: svc, Q: 40}.observe(13)
	read.OK, read.Calls = 30, 30
	// The period the dip began in and those up to SettlePeriods hold.
	s := start()
	s.Dip.Age = c.SettlePeriods - 1
	sig, _ := s.read(read, c, 0)
	if reason, ok := s.checkDip(sig, read, c); !ok || s.Dip == nil || s.Limit != 13 {
		t.Fatalf("dip not yet settled: %q, dip %+v, limit %.1f; want a hold at 13", reason, s.Dip, s.Limit)
	}
	// Then the periods read at the dip gather relearnSamples calls: 30,
	// then 60.
	s.Dip.Age = c.SettlePeriods
	sig, _ = s.read(read, c, 0)
	if reason, ok := s.checkDip(sig, read, c); !ok || s.Dip == nil || s.Dip.Read == nil || s.Dip.Read.OK != 30 {
		t.Fatalf("dip read 30 calls: %q, dip %+v; want a hold, 30 calls read", reason, s.Dip)
	}
	s.Dip.Age++
	sig, _ = s.read(read, c, 0)
	reason, ok := s.checkDip(sig, read, c)
	if !ok || s.Dip != nil || s.Limit != 15 || s.Baseline != svc || s.Unverified || s.Rule != ruleDipDone {
		t.Fatalf("dip read 60 calls at %s: %q, dip %+v, limit %.1f, baseline %s, unverified %v; want the baseline %s, the limit back to 15",
			svc, reason, s.Dip, s.Limit, s.Baseline, s.Unverified, svc)
	}
	// The baseline was low: the probes refuted against it are forgotten.
	if s.Refuted != 0 || s.Backoff != 0 {
		t.Fatalf("baseline raised by the dip: refuted %d, back-off %d; want both cleared", s.Refuted, s.Backoff)
	}
	// A dip that reads nothing gives the limit back without a baseline.
	s = start()
	s.Dip.Age = c.SettlePeriods + maxGather + 1
	empty := Observation{Period: time.Second, InFlight: 13}
	sig, _ = s.read(empty, c, 0)
	if reason, ok := s.checkDip(sig, empty, c); !ok || s.Dip != nil || s.Limit != 15 || s.Baseline != svc*9/10 || !s.Unverified {
		t.Fatalf("dip read nothing: %q, dip %+v, limit %.1f, baseline %s; want the limit back, the baseline left, still unverified",
			reason, s.Dip, s.Limit, s.Baseline)
	}
}

// TestPhaseReadBaselineNoise: on the climb from the warm-up, a reading is
// compared with the warm-up's mean (Averaged, here 62 calls) within the
// noise of both. A reading 1.08× it on 100 calls (σ 0.25, noise 0.0625)
// is within the growth threshold at a limit of 30 (one call of queue,
// 3%, within the threshold) once the search has ended; not in the search,
// nor at a limit of 8 (a call of queue is 12.5%), nor with a baseline
// relearnt from one reading, nor under the law before. A reading 0.965×
// it is not followed lower, as it is under the law before. A cut ends the
// climb.
func TestPhaseReadBaselineNoise(t *testing.T) {
	c := DefaultAgencyConfig()
	at := func(f float64, limit int) Observation {
		lat := time.Duration(f * float64(svc))
		return Observation{Period: time.Second, Calls: 100, OK: 100, InFlight: limit,
			LatencyMean: lat, LatencyP50: lat, LatencyP90: time.Duration(float64(lat) * math.Exp(1.2816*0.25))}
	}
	averaged := func(limit float64) AgencyState {
		s := warm(limit)
		s.BaselineSamples, s.Averaged = 62, true
		return s
	}
	search := averaged(30)
	search.Capacity, search.HighWater = 0, 0
	relearnt := warm(30)
	relearnt.BaselineSamples = 62
	for _, tc := range []struct {
		name     string
		s        AgencyState
		law      int
		wantRoom bool
	}{
		{"the warm-up's mean at 30", averaged(30), 0, true},
		{"the warm-up's mean at 30, law before", averaged(30), LawBeforeBaselineNoise, false},
		{"the warm-up's mean at 30, in the search", search, 0, false},
		{"the warm-up's mean at 8", averaged(8), 0, false},
		{"a baseline of another reading at 30", relearnt, 0, false},
	} {
		s := tc.s
		sig, _ := s.read(at(1.08, int(s.Limit)), c, tc.law)
		if !sig.latOK || (sig.room > 0) != tc.wantRoom {
			t.Errorf("%s: 1.08× the baseline on 100 calls: growth threshold %.3f, room %.2f; want room %v", tc.name, sig.growBelow, sig.room, tc.wantRoom)
		}
	}
	for _, tc := range []struct {
		law         int
		wantLowered bool
	}{{0, false}, {LawBeforeBaselineNoise, true}} {
		s := averaged(30)
		s.read(at(0.965, 30), c, tc.law)
		if lowered := s.Baseline < svc; lowered != tc.wantLowered {
			t.Errorf("law %d: baseline %s after a reading 0.965× it; want lowered %v", tc.law, s.Baseline, tc.wantLowered)
		}
	}
	// The warm-up sets it; a relearnt baseline or a cut clears it.
	s := AgencyState{Limit: 10, Periods: 2, Observed: 2 * time.Second}
	if s.read(at(1, 10), c, 0); !s.Averaged {
		t.Error("a warm-up period: Averaged not set")
	}
	s = averaged(30)
	s.slower(at(1.5, 30).LatencyMean, 30, 0)
	if s.Averaged {
		t.Error("a baseline relearnt from a reading: Averaged still set")
	}
	s = averaged(30)
	s.settle(30, 25, viaEstimate, 0, c)
	if s.Averaged {
		t.Error("a cut: Averaged still set")
	}
}

// After a cut, rule 1 holds refusals and errors for SettlePeriods after the
// limit moved, and timeouts (calls sent a client's timeout ago) for the
// whole settling, which doubles after refuted probes at a few calls: a
// capacity lost later in that settling is cut at once. The law before held
// every failure for the whole settling.
func TestPhaseSettledFailures(t *testing.T) {
	c := DefaultAgencyConfig()
	refused := fluid{C: 2, S: svc, Q: 1}.observe(4) // a capacity of 2 at a limit of 4: 503s
	if refused.Overload == 0 || refused.OK == 0 {
		t.Fatalf("observation %+v: want refusals among successes", refused)
	}
	timedOut := refused
	timedOut.Timeouts, timedOut.Overload = refused.Overload, 0
	for _, tc := range []struct {
		name      string
		o         Observation
		sinceMove int
		law       int
		hold      bool
	}{
		{"refusals right after the cut", refused, 1, 0, true},
		{"refusals at SettlePeriods after the cut", refused, c.SettlePeriods, 0, true},
		{"refusals past SettlePeriods, still settling", refused, c.SettlePeriods + 1, 0, false},
		{"timeouts past SettlePeriods, still settling", timedOut, c.SettlePeriods + 1, 0, true},
		{"refusals past SettlePeriods, law before", refused, c.SettlePeriods + 1, LawBeforeSettledFailures, true},
	} {
		s := warm(4)
		s.Cooldown, s.SinceMove = 3*c.SettlePeriods, tc.sinceMove
		sig, _ := s.read(tc.o, c, 0)
		sig.law = tc.law
		reason, ok := s.cutForFailures(sig, tc.o, c, ruleCutFailure)
		if !ok {
			t.Fatalf("%s: no decision; want a hold or a cut", tc.name)
		}
		if held := s.Rule == ruleWaitCut && s.Limit == 4; held != tc.hold {
			t.Errorf("%s: %q, limit %.1f, rule %s; want hold %v", tc.name, reason, s.Limit, s.Rule, tc.hold)
		}
	}
}

// TestPhaseLostAt checks the probe refuted below the ceiling and its
// return: a cut that refutes a probe while the limit is held below the
// ceiling (a capacity lost) records the probe's limit, a cut at the ceiling
// does not; a later reading healthy at that limit goes three quarters of
// the way back to the ceiling at once, one below it or at capacity does
// not, nor does the law before.
func TestPhaseLostAt(t *testing.T) {
	cfg := DefaultConfig(agencyA)
	lost := func(limit float64) AgencyState {
		s := warm(10)
		s.Limit, s.Ceiling, s.Good, s.SinceMove, s.Rule = limit, 20, 10, 5, ruleGrow
		return s
	}
	for _, tc := range []struct {
		name     string
		s        AgencyState
		wantLost float64
	}{
		{"a probe refuted below the ceiling", lost(13), 13},
		{"a probe refuted at the ceiling", func() AgencyState { s := lost(13); s.Ceiling = 10; return s }(), 0},
	} {
		next, d := step1(t, state(tc.s), fluid{C: 10, S: svc, Q: 40}.observe(13), cfg)
		s := next.Agencies[agencyA]
		if d.Limit >= 13 {
			t.Fatalf("%s: %q, limit %d; want a cut", tc.name, d.Reason, d.Limit)
		}
		if s.LostAt != tc.wantLost {
			t.Errorf("%s: %q, LostAt %.1f; want %.1f", tc.name, d.Reason, s.LostAt, tc.wantLost)
		}
	}

	for _, tc := range []struct {
		name   string
		limit  float64
		agency fluid
		law    int
		regrow bool
	}{
		{"healthy at the refuted limit", 13, fluid{C: 20, S: svc, Q: 40}, 0, true},
		{"healthy above it", 15, fluid{C: 20, S: svc, Q: 40}, 0, true},
		{"healthy below it", 11, fluid{C: 20, S: svc, Q: 40}, 0, false},
		{"at capacity at the refuted limit", 13, fluid{C: 12, S: svc, Q: 40}, 0, false},
		{"healthy at the refuted limit, law before", 13, fluid{C: 20, S: svc, Q: 40}, LawBeforeLostAt, false},
	} {
		s := lost(tc.limit)
		s.LostAt = 13
		st := state(s)
		st.Law = tc.law
		next, d := step1(t, st, tc.agency.observe(int(tc.limit)), cfg)
		got := next.Agencies[agencyA]
		want := tc.limit + 0.75*(20-tc.limit)
		if regrew := got.Rule == ruleRegrow && math.Abs(got.Limit-want) < 0.01; regrew != tc.regrow {
			t.Errorf("%s: %q, limit %.2f, rule %s; want regrow to %.2f %v", tc.name, d.Reason, got.Limit, got.Rule, want, tc.regrow)
		}
		if tc.regrow && got.LostAt != 0 {
			t.Errorf("%s: LostAt %.1f after the regrow; want it cleared", tc.name, got.LostAt)
		}
	}
}

// TestPhaseLostAtCleared: a limit that took the ceiling again, by any rule,
// clears the limit of a probe refuted below it (AgencyState.LostAt). Kept, a
// later loss to a capacity above that limit read one healthy period there as
// the earlier capacity back, and regrew three quarters of the way to the
// ceiling, far beyond what the agency had.
func TestPhaseLostAtCleared(t *testing.T) {
	cfg := DefaultConfig(agencyA)
	for _, tc := range []struct {
		name      string
		law       int
		wantClear bool
	}{
		{"current law", 0, true},
		{"law before", LawBeforeLostAtCleared, false},
	} {
		// Back at the ceiling of 20 after a probe to 11 was refuted there
		// (a regrow passed it), and held at capacity: 20 is one call more
		// than the agency's 19.
		s := warm(20)
		s.Ceiling, s.Good, s.LostAt, s.SinceMove, s.Rule = 20, 20, 11, 5, ruleGrow
		st := state(s)
		st.Law = tc.law
		next, d := step1(t, st, fluid{C: 19, S: svc, Q: 40}.observe(20), cfg)
		got := next.Agencies[agencyA]
		if got.Rule != ruleAtCapacity || got.Limit != 20 {
			t.Fatalf("%s: %q, rule %s, limit %.1f; want held at capacity at 20", tc.name, d.Reason, got.Rule, got.Limit)
		}
		if cleared := got.LostAt == 0; cleared != tc.wantClear {
			t.Fatalf("%s: %q, LostAt %.1f; want cleared %v", tc.name, d.Reason, got.LostAt, tc.wantClear)
		}

		// The agency then loses a capacity to 14, and the limit is held
		// at 13: a healthy period there is no capacity of 20 back.
		got.Limit, got.Good, got.Capacity, got.HighWater, got.SinceMove, got.Rule = 13, 13, 13, 13, 5, ruleGrow
		next.Agencies[agencyA] = got
		next, d = step1(t, next, fluid{C: 14, S: svc, Q: 40}.observe(13), cfg)
		after := next.Agencies[agencyA]
		if regrew := after.Rule == ruleRegrow; regrew == tc.wantClear {
			t.Errorf("%s: at 13 of a capacity of 14, %q, limit %.2f, rule %s; want a regrow %v", tc.name, d.Reason, after.Limit, after.Rule, !tc.wantClear)
		}
	}
}

// TestPhaseHeldRecovery: a limit cut to a third of the ceiling or less,
// read slow there on calls all sent under it, then back at the baseline at
// that limit or a higher one on two calls or more, is the agency recovered:
// slow start, toward the ceiling (the Peak's, if a refused slow start
// lowered it). Not on one call, not below that limit (queueing predicts
// the fall), not before the calls read were all sent under it, not once
// the baseline has been relearnt slow (the slow agency reads at it), and
// not under the law before LawBeforeHeldRecovery.
func TestPhaseHeldRecovery(t *testing.T) {
	c := DefaultAgencyConfig()
	read := func(lat time.Duration) Observation {
		return Observation{Period: time.Second, Calls: 2, OK: 2, LatencyMean: lat, LatencyP50: lat, LatencyP90: lat,
			InFlight: 2, QueueWaitP90: time.Second}
	}
	slowed := func() AgencyState {
		s := warm(2)
		s.Ceiling, s.SinceMove = 9, 3
		if _, ok := s.slowStart(read(2*svc), c, 0); ok || s.Slowed != 2 {
			t.Fatalf("read slow at 2: stepped %v, Slowed %d; want no step, Slowed 2", ok, s.Slowed)
		}
		return s
	}
	s := slowed()
	if reason, ok := s.slowStart(read(svc), c, 0); !ok || s.Limit != 4.5 || !s.Recovering || s.Slowed != 0 {
		t.Fatalf("back at the baseline at 2: %q, limit %.1f, recovering %v, Slowed %d; want 4.5, recovering, Slowed 0", reason, s.Limit, s.Recovering, s.Slowed)
	}
	s = slowed()
	s.Limit = 3
	at3 := read(svc)
	at3.InFlight = 3
	if _, ok := s.slowStart(at3, c, 0); !ok {
		t.Fatal("back at the baseline at 3, read slow at 2: no slow start")
	}
	s = slowed()
	one := read(svc)
	one.Calls, one.OK = 1, 1
	if reason, ok := s.slowStart(one, c, 0); ok {
		t.Fatalf("one call at the baseline (a slowed agency's by chance): %q", reason)
	}
	s = slowed()
	s.Limit = 1
	if reason, ok := s.slowStart(read(svc), c, 0); ok {
		t.Fatalf("at the baseline at 1, read slow at 2 (the cut's fall): %q", reason)
	}
	s = slowed()
	s.Ceiling = 5
	if reason, ok := s.slowStart(read(svc), c, 0); ok {
		t.Fatalf("at 2 of a ceiling of 5 (a capacity halved): %q", reason)
	}
	s = slowed()
	s.slower(2*svc, 2, 0)
	s.Rule, s.Limit = ruleRelearn, 2
	if reason, ok := s.slowStart(read(2*svc), c, 0); ok {
		t.Fatalf("at the slow baseline relearnt: %q", reason)
	}
	// Calls that end within a period of the move were sent before it.
	s = warm(2)
	s.Ceiling, s.SinceMove = 9, 1
	if s.slowStart(read(2*svc), c, 0); s.Slowed != 0 {
		t.Fatalf("read slow right after the move: Slowed %d", s.Slowed)
	}
	// A slow start during the incident, refused, lowered the ceiling to
	// where it began (2, the Peak 9): read against the Peak, the recovery
	// is deep, and the Peak is the ceiling again.
	s = slowed()
	s.Limit = 1
	s.Slowed, s.Ceiling, s.Peak = 1, 2, 9
	if reason, ok := s.slowStart(read(svc), c, 0); !ok || s.Ceiling != 9 || s.Peak != 0 || s.Limit != 4.5 {
		t.Fatalf("back at the baseline at 1 of a lowered ceiling of 2 (Peak 9): %q, ceiling %.1f, Peak %.1f, limit %.1f; want ceiling 9, limit 4.5", reason, s.Ceiling, s.Peak, s.Limit)
	}
	s = slowed()
	if reason, ok := s.slowStart(read(svc), c, LawBeforeHeldRecovery); ok {
		t.Fatalf("law %d: %q", LawBeforeHeldRecovery, reason)
	}
}
