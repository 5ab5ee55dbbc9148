package flowsim

import (
	"testing"
	"time"
)

// TestCheckAfterTheQueueDrained starts an agency of 30 calls in service ×
// 1 s (client timeout 3 s, a queue of 60) at the default
// initial limit of 10, under twice its rate, on two workers. The search
// (×1.5 a step) overshoots to about 50, and rule 3 cuts back to the last
// good limit. Its check (rule 2) read the agency two periods after the
// cut, when the calls ending were still those sent under the old limit,
// queued for a second more: the latency had not fallen, so the agency read
// slower, the queue's latency became the baseline and the old limit came
// back, "at the baseline" from then on. For the rest of the run the limit
// held 47 of 30 (0.77–0.78 × the oracle's goodput from 30 s, seeds 1–3).
// The check now waits for a period whose calls were sent after the cut
// (flowcontrol's Probe.due): the cut stands, and the limit stays within a
// few calls of the capacity (30.7–33.0 on average, 0.96–0.99).
func TestCheckAfterTheQueueDrained(t *testing.T) {
	shape := otherShape{"C30x1s from the default initial limit", func(seed uint64) Scenario {
		a := queueing(30, time.Second, 3*time.Second, 0.25)
		sc := otherScenario(a, 3*time.Second, steadyLoad(2, a), seed)
		sc.MeasureFrom, sc.Steps = 5*time.Second, []time.Duration{30 * time.Second}
		return sc
	}, 2, 10, ""}
	const seeds = 3
	var ratio, limit float64
	for seed := uint64(1); seed <= seeds; seed++ {
		oracle, ctl := runShape(t, shape, seed)
		p := ctl.Phases[1] // from 30 s: well after the search
		r := p.Goodput / oracle.Phases[1].Goodput
		t.Logf("seed %d: %.2f × the oracle from 30 s, limit %.1f of %.0f, converged %s", seed, r, p.MeanLimit, p.MeanCapacity, convergenceString(ctl.Convergence))
		ratio += r / seeds
		limit += p.MeanLimit / p.MeanCapacity / seeds
	}
	if ratio < targetGoodput || limit > 1.15 {
		t.Errorf("from 30 s: %.2f × the oracle, the limit %.2f × the capacity (mean over seeds 1–%d); want ≥ %.2f and ≤ 1.15", ratio, limit, seeds, targetGoodput)
	}
}

// TestNoLatencyCutBeforeTheFailureCutShows halves that agency's capacity
// (30 to 15 from 30 s to 50 s) under the same load. The refusals cut the
// limit to half (31.7 → 17.7); the next period, whose calls were mostly
// sent under the old limit, read their queue's latency (2.5×), and a
// latency cut took the limit to the goodput read in overload, 9 of 15 (seed
// 2). A latency cut now waits for a failure cut to show, as it waits for
// its own check: the halved phase 0.90, 0.73, 0.92 × the oracle before
// (seeds 1–3), 0.90, 0.88, 0.92 now.
func TestNoLatencyCutBeforeTheFailureCutShows(t *testing.T) {
	shape := otherShape{"C30x1s halved", func(seed uint64) Scenario {
		a := queueing(30, time.Second, 3*time.Second, 0.25)
		sc := otherScenario(a, 3*time.Second, steadyLoad(2, a), seed)
		sc.Capacity = halve(30, 15)
		return sc
	}, 2, 10, ""}
	const seeds = 3
	var ratio float64
	for seed := uint64(1); seed <= seeds; seed++ {
		oracle, ctl := runShape(t, shape, seed)
		r := ctl.Phases[1].Goodput / oracle.Phases[1].Goodput
		t.Logf("seed %d: the halved phase %.2f × the oracle, limit %.1f of %.0f", seed, r, ctl.Phases[1].MeanLimit, ctl.Phases[1].MeanCapacity)
		ratio += r / seeds
		if r < 0.8 {
			t.Errorf("seed %d: the halved phase %.2f × the oracle; want ≥ 0.80 in every seed", seed, r)
		}
	}
	if ratio < 0.88 {
		t.Errorf("the halved phase: %.2f × the oracle (mean over seeds 1–%d); want ≥ 0.88", ratio, seeds)
	}
}
