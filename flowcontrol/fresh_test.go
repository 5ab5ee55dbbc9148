package flowcontrol

import (
	"strings"
	"testing"
	"time"
)

// TestFasterInTheLastPeriod is the real stack's small incident at its
// recovery (bench-flow -scenarios incident, traced): the limit at 2 of a
// ceiling of 4, evidence of 4 calls gathered over three periods at 2.76×
// the baseline (the incident's calls, slowed ×3), and a last period of 3
// calls at 0.98×, the agency back at its speed. Read whole the evidence is
// 2.02× the baseline, and law 29 cut the limit to 1 on it; from there slow
// start waited 9 s for evidence gathered at a call a second. Now the
// earlier periods are left out: the last one is too thin to decide on, so
// the limit holds and the evidence is gathered anew from it, and the next
// period at the baseline, read with it, regrows the limit.
func TestFasterInTheLastPeriod(t *testing.T) {
	cfg := cfgWith(func(ac *AgencyConfig) { ac.MinSamples = 5 }) // the benchmarks' and the simulator's
	gathered := Observation{Period: 3 * time.Second, Calls: 4, OK: 4, InFlight: 2, QueueWaitP90: 20 * time.Second,
		LatencyMean: svc * 276 / 100, LatencyP50: svc * 273 / 100, LatencyP90: svc * 273 / 100}
	back := Observation{Period: time.Second, Calls: 3, OK: 3, InFlight: 2, QueueWaitP90: 20 * time.Second,
		LatencyMean: svc * 98 / 100, LatencyP50: svc * 91 / 100, LatencyP90: svc * 113 / 100}
	start := func(law int) State {
		s := warm(2)
		s.Ceiling, s.Good, s.HighWater, s.Capacity, s.SinceMove, s.Refused = 4, 2, 4, 2, 8, true
		ev := gathered
		s.Evidence = &ev
		st := state(s)
		st.Law = law
		return st
	}

	// Law 29 cut on the whole evidence.
	_, d := step1(t, start(LawBeforeFreshEvidence), back, cfg)
	if d.Limit != 1 || !strings.Contains(d.Reason, "latency") {
		t.Errorf("law %d: %q, limit %d; want the latency cut to 1 it made", LawBeforeFreshEvidence, d.Reason, d.Limit)
	}

	next, d := step1(t, start(0), back, cfg)
	got := next.Agencies[agencyA]
	if d.Limit != 2 || !strings.Contains(d.Reason, "gathering anew") {
		t.Fatalf("%q, limit %d; want the limit held at 2, the evidence gathered anew from the last period", d.Reason, d.Limit)
	}
	if got.Evidence == nil || got.Evidence.OK != back.OK || got.Baseline != svc {
		t.Fatalf("evidence %+v, baseline %s; want the last period alone kept, the baseline %s", got.Evidence, got.Baseline, svc)
	}
	// The next period at the baseline, read with the last one: the limit
	// grows (slow start toward the ceiling, or a step).
	again := back
	again.LatencyMean = svc * 101 / 100
	_, d = step1(t, next, again, cfg)
	if d.Limit <= 2 {
		t.Errorf("the period after: %q, limit %d; want the limit grown from 2", d.Reason, d.Limit)
	}

	// Slower in the last period: read whole, as before.
	slower := back
	slower.LatencyMean, slower.LatencyP50, slower.LatencyP90 = svc*3, svc*3, svc*3
	if _, d := step1(t, start(0), slower, cfg); d.Limit != 1 {
		t.Errorf("slower in the last period: %q, limit %d; want the latency cut to 1", d.Reason, d.Limit)
	}
}

// TestChangedFaster holds the test's bounds: two calls on each side, and a
// fall beyond the noise of both.
func TestChangedFaster(t *testing.T) {
	o := func(ok int64, mean time.Duration) Observation {
		return Observation{OK: ok, Calls: ok, LatencyMean: mean, LatencyP50: mean, LatencyP90: mean * 13 / 10}
	}
	for _, tc := range []struct {
		name   string
		before Observation
		last   Observation
		want   bool
	}{
		{"the traced recovery", o(4, 1607*time.Millisecond), o(3, 569*time.Millisecond), true},
		{"one call in the last period", o(4, 1607*time.Millisecond), o(1, 569*time.Millisecond), false},
		{"one call before it", o(1, 1607*time.Millisecond), o(3, 569*time.Millisecond), false},
		{"a fall within the noise", o(6, 700*time.Millisecond), o(4, 600*time.Millisecond), false},
		{"slower", o(4, 600*time.Millisecond), o(3, 1200*time.Millisecond), false},
		{"faster on many calls", o(100, 700*time.Millisecond), o(100, 600*time.Millisecond), true},
	} {
		merged := tc.before.merge(tc.last)
		if got, why := changedFaster(merged, tc.last); got != tc.want {
			t.Errorf("%s: %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
}
