package flowsim

import (
	"testing"
	"time"

	"loanflow/flowcontrol"
)

// TestGrowthAfterSlowStartIsGentle runs the scorecard's incident (5 s
// warm-up) of C20 × 100 ms (capacity to 6, the calls past the client's
// timeout) and of bench large (C20 × 300 ms to 10, slowed ×2 within it) on
// seeds 1–18 at both offsets, and counts the runs whose limit was not
// within ±10% of the capacity for good within 5 s of the recovery.
//
// Slow start ends at the ceiling once a period there reads healthy. Under
// LawBeforeSlowStartCapacity the capacity the law knew was still the one
// the incident's cuts had set, far below the ceiling, so growth beyond the
// ceiling doubled its steps as in a search and went past the capacity
// until the latency cut it back. The ceiling read healthy is now the
// capacity seen, and growth beyond it goes a call at a time.
func TestGrowthAfterSlowStartIsGentle(t *testing.T) {
	for _, name := range []string{"C20 100ms 3w 3x", "bench large: C20 300ms 1w 2x"} {
		sh := shapeNamed(t, name)
		late := func(law int) int {
			count := 0
			for _, off := range []time.Duration{0, 500 * time.Millisecond} {
				for seed := uint64(1); seed <= 18; seed++ {
					sc := scorecardScenario(kinds[0], sh, seed, off, 5*time.Second)
					p := shapeController(sh)
					p.Law = law
					ctl := run(t, sc, p)
					if c := ctl.Convergence[2]; c < 0 || c > recoverWithin {
						count++
					}
				}
			}
			return count
		}
		before, now := late(flowcontrol.LawBeforeSlowStartCapacity), late(0)
		t.Logf("%s: %d of 36 runs not converged within %s of the recovery (%d under LawBeforeSlowStartCapacity)", sh.name, now, recoverWithin, before)
		if now >= before {
			t.Errorf("%s: %d of 36 runs not converged within %s of the recovery, want fewer than LawBeforeSlowStartCapacity's %d",
				sh.name, now, recoverWithin, before)
		}
	}
}
