package flowsim

import (
	"testing"
	"time"
)

// slowedPastTimeout is a queueing agency of capacity c and service time
// svc, at jitter 0.25, under load × its nominal rate, slowed by factor from
// 30 s to 50 s: enough for the slow tail of its calls to pass the client's
// timeout, so that some of them time out at any limit, the oracle's too.
func slowedPastTimeout(c int, svc, timeout time.Duration, load, factor float64) func(seed uint64) Scenario {
	return func(seed uint64) Scenario {
		a := queueing(c, svc, timeout, 0.25)
		sc := otherScenario(a, timeout, steadyLoad(load, a), seed)
		sc.ServiceFactor = func(t time.Duration) float64 {
			if inMiddle(t) {
				return factor
			}
			return 1
		}
		return sc
	}
}

// TestSlowdownPastTimeout runs two agencies slowed with their capacity
// unchanged, their calls' slow tail now past the client's timeout: C40 ×
// 50 ms on two workers slowed ×2 against a 150 ms timeout, and C16 × 150 ms
// slowed ×3 against 700 ms; seeds 1–3. The timeouts of the first slow period
// cut the limit (rule 1), at a latency that reads a busier agency as readily
// as a slower one. Before LawBeforeTimeoutsChecked nothing checked that cut:
// at C40 the limit went to half the capacity and stayed there for the 20 s
// of the slowdown, every period's 4–8% of timeouts (the oracle's own 5%) cut
// again, or held for the check of a latency cut that rule 1, reading each
// period first, never let read one. The slowed phase ran at 0.50–0.53 × the
// oracle on these seeds (0.52 over seeds 1–12), C16 × 150 ms at 0.79 (seed 1
// at 0.54; 0.85 over seeds 1–12). Now the timeouts cut is checked as a
// latency cut is, on the period its check is due: the latency stayed, the
// agency is slower, the cut is undone (0.96 and 0.98 on these seeds, 0.93
// and 0.96 over seeds 1–12). The slowed phase must be at least targetGoodput
// × the oracle's (mean over the seeds), with agency errors within 2 points
// of the oracle's (a slower agency's tail fails whatever the limit). Run
// with -v for every run.
func TestSlowdownPastTimeout(t *testing.T) {
	cases := []otherShape{
		{"C40x50ms x2 timeout 150ms 2w", slowedPastTimeout(40, 50*time.Millisecond, 150*time.Millisecond, 2, 2), 2, 40, ""},
		{"C16x150ms x3 timeout 700ms", slowedPastTimeout(16, 150*time.Millisecond, 700*time.Millisecond, 2, 3), 1, 16, ""},
	}
	const seeds = 3
	for _, c := range cases {
		var ratio, errs, oracleErrs float64
		for seed := uint64(1); seed <= seeds; seed++ {
			oracle, ctl := runShape(t, c, seed)
			r := ctl.Phases[1].Goodput / oracle.Phases[1].Goodput
			e := phaseErrors(ctl.Phases[1])
			oe := phaseErrors(oracle.Phases[1])
			ratio += r / seeds
			errs += e / seeds
			oracleErrs += oe / seeds
			t.Logf("%s seed %d: slowed phase %.2f × the oracle, errors %.1f%% (the oracle's %.1f%%)", c.name, seed, r, 100*e, 100*oe)
		}
		if ratio < targetGoodput {
			t.Errorf("%s: slowed phase %.2f × the oracle over seeds 1–3, want ≥ %.2f", c.name, ratio, targetGoodput)
		}
		if errs > oracleErrs+0.02 {
			t.Errorf("%s: slowed phase errors %.1f%%, the oracle's %.1f%%, want within 2 points of them", c.name, 100*errs, 100*oracleErrs)
		}
	}
}

// phaseErrors is a phase's share of calls that failed.
func phaseErrors(p Phase) float64 {
	return float64(p.Errors) / max(1, float64(p.OK+p.Errors))
}
