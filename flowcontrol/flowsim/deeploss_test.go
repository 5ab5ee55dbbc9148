package flowsim

import (
	"testing"
	"time"
)

// TestCapacityLostToATenth runs a queueing agency of C10 × 200 ms at twice
// its nominal rate whose capacity falls to 1 from 30 s to 50 s, on seeds
// 1–3, and holds the loss's phase (from 5 s after it) to half the oracle's
// goodput and half its calls refused at most, mean over the seeds. The
// first cut halves the limit to 5. Past the capacity the agency's queue
// holds the few calls it serves (700–990 ms against 200 ms) and refuses the
// rest, and rule 1 read slow successes, or a period without one, as an
// agency in trouble: it kept half the ceiling, 5, refused 84–92% of the
// time for as long as the loss lasted, at 0.16–0.27 × the oracle. An agency
// that still answers, not mostly past the client's timeout, serves its
// successful calls × their latency at once, and no more: the cut keeps at
// most that. What is left (the lab notes): periods with nothing served
// still keep half the ceiling, and at 200 ms calls two of them read as an
// outage, whose slow start doubles back into the loss.
func TestCapacityLostToATenth(t *testing.T) {
	sh := otherShape{name: "C10x200ms to 1", sc: capacityDrop(10, 200*time.Millisecond, time.Second, 2, 1), workers: 1, initial: 5}
	const seeds = 3
	var goodput, errs float64
	for seed := uint64(1); seed <= seeds; seed++ {
		oracle, ctl := runShape(t, sh, seed)
		loss := ctl.Phases[1]
		r := loss.Goodput / oracle.Phases[1].Goodput
		e := float64(loss.Errors) / max(1, float64(loss.OK+loss.Errors))
		goodput, errs = goodput+r/seeds, errs+e/seeds
		t.Logf("seed %d: phases %.2f, %.2f, %.2f × the oracle; %.0f%% of the loss's calls refused or failed; limit %.1f in the loss",
			seed, ctl.Phases[0].Goodput/oracle.Phases[0].Goodput, r, ctl.Phases[2].Goodput/oracle.Phases[2].Goodput, 100*e, loss.MeanLimit)
	}
	t.Logf("the loss: %.2f × the oracle, %.0f%% agency errors (mean over seeds 1–%d)", goodput, 100*errs, seeds)
	if goodput < 0.5 || errs > 0.5 {
		t.Errorf("the capacity lost to a tenth: %.2f × the oracle and %.0f%% agency errors in the loss; want ≥ 0.5 and ≤ 50%%", goodput, 100*errs)
	}
}
