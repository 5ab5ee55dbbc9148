package flowsim

import (
	"testing"
	"time"

	"loanflow/flowcontrol"
)

// TestSlowdownCheckedOnItsEvidence slows bench large's agency (C20 ×
// 300 ms, one worker, load 2×) with its capacity unchanged, by as much as
// keeps its calls within the client's timeout (×1.85), for 20 s from 30 s
// after the load step: the scorecard's slowdown, after its 5 s warm-up,
// seeds 1–36 at both offsets. It counts the runs whose limit converged
// within 5 s of the slowdown (within ±max(10%, 1 call) of the capacity for
// good).
//
// The first slow period cuts the limit to about half (rule 3: the latency
// doubled, a queue or a slower agency alike), and the cut's check (rule 2)
// tells which: the latency stayed, the agency is slower, the cut is undone.
// That check's verdicts turn on half the fall queueing predicts for the cut
// (about a quarter here); under LawBeforeCheckEvidence it waited for the
// noise to be within the evidence margin (15%) instead, a period longer at
// the calls' halved rate, and the limit sat at half the capacity meanwhile:
// 37 of these 72 runs converged in time then, 55 now.
func TestSlowdownCheckedOnItsEvidence(t *testing.T) {
	sh, slowdown := shapeNamed(t, "bench large: C20 300ms 1w 2x"), kinds[2]
	if slowdown.name != "slowdown" {
		t.Fatalf("kind %q, want the slowdown", slowdown.name)
	}
	const warmup = 5 * time.Second
	converged := func(law int) (n, runs int) {
		for _, off := range []time.Duration{0, 500 * time.Millisecond} {
			for seed := uint64(1); seed <= 36; seed++ {
				p := shapeController(sh)
				p.Law = law
				ctl := run(t, scorecardScenario(slowdown, sh, seed, off, warmup), p)
				after := ctl.Convergence[1]
				runs++
				if after >= 0 && after <= recoverWithin {
					n++
				}
				t.Logf("law %d, offset %s, seed %d: converged %s after the slowdown", law, off, seed, convergenceString([]time.Duration{after}))
			}
		}
		return n, runs
	}
	before, runs := converged(flowcontrol.LawBeforeCheckEvidence)
	now, _ := converged(0)
	t.Logf("converged within %s of the slowdown in %d of %d runs (%d under LawBeforeCheckEvidence)", recoverWithin, now, runs, before)
	if now < 50 {
		t.Errorf("converged within %s of the slowdown in %d of %d runs, want ≥ 50 (%d under LawBeforeCheckEvidence)", recoverWithin, now, runs, before)
	}
}
