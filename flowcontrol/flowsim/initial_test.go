package flowsim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestInitialLimitPastTheCapacity starts the controller at a limit past
// the agency's capacity under a steady load: app scraping's model
// (capacity 10, 120 ms, jitter 0.5) at the worker's default initial limit
// of 16, an agency of capacity 5 × 200 ms at 10 (its queue of 10 holds the
// rest, so nothing is refused) and at 100 (refused until the failure cuts
// bring the limit to about twice the capacity). The first baseline is
// learnt at that limit, so it holds the agency's queue. Before the
// warm-up's check (AgencyState.WarmCheck) every later period at that limit
// read the baseline, "at capacity", and the limit stayed past the capacity
// for the whole run: from 35 s on, 0.66–0.72 × the oracle's goodput at
// scraping, 0.70–0.71 and 0.70–0.79 at the small agency (seeds 1–3). The
// check dips to half the limit, reads the agency's own latency there, and
// the latency cut that follows takes the limit to the capacity: 0.96–1.01.
func TestInitialLimitPastTheCapacity(t *testing.T) {
	steadyRun := func(a Agency, timeout time.Duration, load float64, seed uint64) Scenario {
		sc := otherScenario(a, timeout, steadyLoad(load, a), seed)
		sc.MeasureFrom = 5 * time.Second
		sc.Steps = []time.Duration{30 * time.Second}
		return sc
	}
	cases := []otherShape{
		{"scraping at the default initial limit 16", func(seed uint64) Scenario {
			return steadyRun(Scraping(), time.Second, 2, seed)
		}, 1, 16, ""},
		{"C5x200ms queue 10 at an initial limit of 10", func(seed uint64) Scenario {
			return steadyRun(queueing(5, 200*time.Millisecond, time.Second, 0.25), time.Second, 3, seed)
		}, 1, 10, ""},
		{"C5x200ms at an initial limit of 100", func(seed uint64) Scenario {
			return steadyRun(queueing(5, 200*time.Millisecond, time.Second, 0.25), time.Second, 3, seed)
		}, 1, 100, ""},
	}
	const seeds = 3
	for _, c := range cases {
		ratio, errRate := 0.0, 0.0
		for seed := uint64(1); seed <= seeds; seed++ {
			oracle, ctl := runShape(t, c, seed)
			var b strings.Builder
			fmt.Fprintf(&b, "%-44s seed %d:", c.name, seed)
			for i := range ctl.Phases {
				fmt.Fprintf(&b, " %.2f", ctl.Phases[i].Goodput/oracle.Phases[i].Goodput)
			}
			t.Log(b.String())
			// The second phase: from 35 s, well after the warm-up.
			p := ctl.Phases[1]
			ratio += p.Goodput / oracle.Phases[1].Goodput / seeds
			errRate += float64(p.Errors) / max(1, float64(p.OK+p.Errors)) / seeds
		}
		if ratio < targetGoodput || errRate > targetErrors {
			t.Errorf("%s: %.2f × the oracle from 35 s, %.1f%% agency errors (mean over seeds 1–3); want ≥ %.2f and ≤ %.0f%%",
				c.name, ratio, 100*errRate, targetGoodput, 100*targetErrors)
		}
	}
}
