package flowsim

import (
	"testing"
	"time"

	"loanflow/flowcontrol"
)

// TestRecoveryBackAtSpeed runs the scorecard's incident of bench large
// (C20 × 300 ms, capacity to 10 and calls slowed ×2 within the client's
// timeout for 20 s, 5 s warm-up) on seeds 1–36 and counts the recoveries
// after which the limit took longer than 5 s to reach 90% of the capacity.
//
// Rule 2 finds the agency slower during the incident and sets the ceiling
// aside with the baseline from before (Peak, PeakBaseline). The first
// period after the recovery mixes slow calls with fast ones: its spread
// widens the noise past "well below the baseline", so slow start does not
// begin on it, but it reads within the old baseline's noise and brings the
// ceiling and that baseline back. Under LawBeforeBackAtSpeedRecovery the
// next period, at the old baseline, was neither "faster" nor a held
// recovery, and the limit regrew by the normal rules, with a dip first on
// seed 1 (9 → 8 → 18 in 11 s; 16 s on seed 32). Back at the old speed far
// below the ceiling, the agency is recovering, and slow start doubles back.
func TestRecoveryBackAtSpeed(t *testing.T) {
	sh := shapeNamed(t, "bench large: C20 300ms 1w 2x")
	const warmup = 5 * time.Second
	late := func(law int) (seeds []uint64) {
		for seed := uint64(1); seed <= 36; seed++ {
			sc := scorecardScenario(kinds[0], sh, seed, 0, warmup)
			p := shapeController(sh)
			p.Law = law
			ctl := run(t, sc, p)
			if at := reachedFraction(ctl.Trace, 50*time.Second+warmup, 0.9); at < 0 || at > recoverWithin {
				seeds = append(seeds, seed)
			}
		}
		return seeds
	}
	before, now := late(flowcontrol.LawBeforeBackAtSpeedRecovery), late(0)
	t.Logf("recoveries past %s: seeds %v (under LawBeforeBackAtSpeedRecovery: %v)", recoverWithin, now, before)
	if len(now) >= len(before) {
		t.Errorf("%d recoveries past %s (seeds %v), want fewer than LawBeforeBackAtSpeedRecovery's %d (%v)",
			len(now), recoverWithin, now, len(before), before)
	}
	for _, seed := range now {
		if seed == 1 || seed == 32 {
			t.Errorf("seed %d: the limit past %s to 90%% of the capacity after the recovery", seed, recoverWithin)
		}
	}
}
