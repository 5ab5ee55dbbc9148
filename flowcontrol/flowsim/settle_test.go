package flowsim

import (
	"testing"
	"time"
)

// TestFailuresPastTheSettle halves the capacity of C4 × 600 ms (one
// worker, twice its rate) while the limit settles after a refuted probe,
// the scorecard's capacity ½ kind. At a few calls the settling after a cut
// back to the last good limit doubles with each refuted probe (up to eight
// times SettlePeriods); rule 1 held every failure meanwhile as the cut
// still draining, so a capacity lost then was refused a third to two
// thirds of its calls for seven periods (seed 1: the limit at 4 of 2 from
// 31 to 40 s). Refusals and errors are now held for SettlePeriods after
// the limit moved, not for the whole settling (flowcontrol
// LawBeforeSettledFailures). The halved phase, from 5 s after the drop,
// seeds 1–8 at both offsets: 6.8% agency errors and 0.94 × the oracle
// before, 2.7% and 0.97 now.
func TestFailuresPastTheSettle(t *testing.T) {
	sh := shapeNamed(t, "C4 600ms 1w 2x")
	halved := kinds[1]
	if halved.name != "capacity ½" {
		t.Fatalf("kind %q, want capacity ½", halved.name)
	}
	const seeds = 8
	var errs, ratio float64
	n := 0
	for _, off := range []time.Duration{0, 500 * time.Millisecond} {
		for seed := uint64(1); seed <= seeds; seed++ {
			sc := scorecardScenario(halved, sh, seed, off, 0)
			oracle := run(t, sc, Policy{Name: "oracle", Oracle: true, Workers: sh.workers})
			ctl := run(t, sc, shapeController(sh))
			ph := ctl.Phases[2]
			e := 0.0
			if calls := ph.OK + ph.Errors; calls > 0 {
				e = float64(ph.Errors) / float64(calls)
			}
			r := ph.Goodput / oracle.Phases[2].Goodput
			t.Logf("offset %s seed %d: halved phase %.2f × the oracle, %.1f%% agency errors, limit %.1f of %.0f",
				off, seed, r, 100*e, ph.MeanLimit, ph.MeanCapacity)
			errs += e
			ratio += r
			n++
		}
	}
	errs /= float64(n)
	ratio /= float64(n)
	t.Logf("mean over %d runs: %.2f × the oracle, %.1f%% agency errors", n, ratio, 100*errs)
	if errs > 0.04 {
		t.Errorf("halved phase: %.1f%% agency errors (mean of %d runs), want ≤ 4%%", 100*errs, n)
	}
	if ratio < 0.96 {
		t.Errorf("halved phase: %.2f × the oracle (mean of %d runs), want ≥ 0.96", ratio, n)
	}
}

// shapeNamed is the scorecard's shape of that name.
func shapeNamed(t *testing.T, name string) shape {
	t.Helper()
	for _, s := range shapes {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("shape %q not found", name)
	return shape{}
}
