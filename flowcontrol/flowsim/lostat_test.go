package flowsim

import (
	"testing"
	"time"
)

// TestRegainedAtARefutedProbe halves and restores the capacity of an
// agency with no queue (the scorecard's fourth kind) on the shapes of 40
// calls a second and more, seeds 1–6 at both offsets, and counts the runs
// whose limit is back at 90% of the capacity within 5 s of its return.
//
// Held at the halved capacity, the limit probes it a call beyond, and the
// agency refuses that call; once the capacity is back it does not, and
// nothing else shows the return. Grow-back then climbed by steps of one or
// two calls, held by every reading a few percent above the baseline (bench
// large, seed 1: 10 → 11 → 13 → 13.3 → 14 … 18 over 10 s). The limit of
// the lowest probe refuted is now remembered (flowcontrol AgencyState.LostAt),
// and a reading healthy there with nothing refused goes three quarters of
// the way back to the ceiling at once (flowcontrol LawBeforeLostAt): 16
// of 36 runs regained in time before, 30 now.
func TestRegainedAtARefutedProbe(t *testing.T) {
	noQueue := kinds[3]
	if noQueue.name != "no queue ½" {
		t.Fatalf("kind %q, want no queue ½", noQueue.name)
	}
	names := map[string]bool{"bench large: C20 300ms 1w 2x": true, "C16 200ms 2w 3x, slower within timeout": true,
		"C20 100ms 3w 3x": true}
	regained, runs := 0, 0
	for _, sh := range shapes {
		if !names[sh.name] {
			continue
		}
		delete(names, sh.name)
		for _, off := range []time.Duration{0, 500 * time.Millisecond} {
			for seed := uint64(1); seed <= 6; seed++ {
				sc := scorecardScenario(noQueue, sh, seed, off, 0)
				ctl := run(t, sc, shapeController(sh))
				back := reachedFraction(ctl.Trace, 50*time.Second+off, 0.9)
				t.Logf("%s, offset %s, seed %d: back at 90%% after %s", sh.name, off, seed, convergenceString([]time.Duration{back}))
				runs++
				if back >= 0 && back <= recoverWithin {
					regained++
				}
			}
		}
	}
	if len(names) > 0 {
		t.Fatalf("shapes not found: %v", names)
	}
	t.Logf("regained within %s in %d of %d runs", recoverWithin, regained, runs)
	if regained < 28 {
		t.Errorf("regained within %s in %d of %d runs, want ≥ 28", recoverWithin, regained, runs)
	}
}
