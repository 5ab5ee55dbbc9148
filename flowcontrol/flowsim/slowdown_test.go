package flowsim

import (
	"testing"
	"time"
)

// TestSlowdownEndsAtTheOldBaseline holds the law to an agency back from a
// slowdown at a few calls a second: the scorecard's slowdown (service time
// ×2 from 30 s to 50 s, capacity unchanged) at C4 × 600 ms, the real-stack
// benchmark's small scale, with one and two workers. Rule 2 finds the
// agency slower and relearns its baseline from the check's few calls; once
// the agency is back, a limit past the capacity queues, and read against
// the slow baseline that queue passed for room: the limit grew to 5–6 of 4,
// and settled within ±1 call of the capacity 21–23 s after the agency's
// return in 3 of 6 seeds, never in the others.
// The baseline the agency had before the slowdown rests on many more calls,
// and a reading back at it takes it back (AgencyState.FastBaseline).
func TestSlowdownEndsAtTheOldBaseline(t *testing.T) {
	for _, sh := range shapes {
		if sh.capacity != 4 {
			continue
		}
		t.Run(sh.name, func(t *testing.T) {
			var converged, runs int
			var over float64
			for seed := uint64(1); seed <= 6; seed++ {
				sc := scorecardScenario(kinds[2], sh, seed, 0, 0)
				ctl := run(t, sc, shapeController(sh))
				after := ctl.Convergence[2]
				runs++
				if after >= 0 && after <= recoverWithin {
					converged++
				}
				last := ctl.Phases[len(ctl.Phases)-1]
				over += last.MeanLimit - last.MeanCapacity
				t.Logf("seed %d: converged %s after the recovery; limit %.1f of %.0f after it",
					seed, convergenceString([]time.Duration{after}), last.MeanLimit, last.MeanCapacity)
			}
			over /= float64(runs)
			t.Logf("converged within %s of the recovery in %d of %d runs; the limit %.2f calls past the capacity on average after it", recoverWithin, converged, runs, over)
			if converged < runs-2 || over > 0.5 {
				t.Errorf("converged within %s of the recovery in %d of %d runs, the limit %.2f calls past the capacity after it; want %d or more, and 0.5 at most",
					recoverWithin, converged, runs, over, runs-2)
			}
		})
	}
}
