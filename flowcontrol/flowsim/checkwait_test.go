package flowsim

import (
	"testing"
	"time"
)

// maxHeldOverFailures is the most periods in a row TestCheckWaitIsBounded
// lets the limit stay put above the capacity while a tenth or more of the
// calls fail: a cut's settling (SettlePeriods of the default config) and
// the periods a check due at calls of a second or two waits.
const maxHeldOverFailures = 5

// TestCheckWaitIsBounded runs C60 × 1 s on two workers, its capacity
// halved from 30 s to 50 s, on seeds 1–24. On seed 4 the loss starts with
// a latency cut of 5% (59 → 56, back to the last good limit), whose check
// (rule 2) would compare the latency before and after it. The capacity
// lost, the calls queue and time out, and rule 1 held those timeouts for
// the pending check: nothing refused, most calls served, the slow tail of
// a slower agency as far as it could tell. But rule 1 reads each period
// before rule 2, so while calls timed out every period the check never
// read one, and the hold had no end; nor could that check have told
// anything, a 5% cut predicting a fall of the latency well within the
// noise the check reads at (15%, EvidenceMargin). Before
// LawBeforeCheckWaitBound the limit stayed at 56 for 11 periods in a row
// with 13–38% of the calls timing out, the halved phase at 0.58 × the
// oracle with 21% errors (the 24 seeds' halved phases 0.870 on average).
// Now rule 1 holds only for a check that can tell: at most 2 periods in a
// row, seed 4 at 0.91, the 24 seeds at 0.887. Run with -v for every run.
func TestCheckWaitIsBounded(t *testing.T) {
	c := otherShape{"C60x1s halved 2w", capacityDrop(60, time.Second, 3*time.Second, 2, 30), 2, 30, ""}
	worst := 0
	var halved float64
	const seeds = 24
	for seed := uint64(1); seed <= seeds; seed++ {
		oracle, ctl := runShape(t, c, seed)
		held := heldOverFailures(ctl.Trace)
		r := ctl.Phases[1].Goodput / oracle.Phases[1].Goodput
		halved += r / seeds
		worst = max(worst, held)
		t.Logf("seed %2d: held over failures %2d periods in a row at most; halved phase %.2f × the oracle, %d errors",
			seed, held, r, ctl.Phases[1].Errors)
	}
	t.Logf("halved phase %.3f × the oracle on average; held over failures %d periods in a row at most", halved, worst)
	if worst > maxHeldOverFailures {
		t.Errorf("the limit stayed put above the capacity for %d periods in a row while a tenth or more of the calls failed, want ≤ %d",
			worst, maxHeldOverFailures)
	}
}

// heldOverFailures is the longest run of periods in trace in which the
// limit stayed where it was, above the capacity, while a tenth or more of
// the calls that ended failed.
func heldOverFailures(trace []Sample) int {
	run, longest := 0, 0
	for i, x := range trace {
		if i > 0 && x.Limit == trace[i-1].Limit && x.Limit > x.Capacity && x.Errors > 0 && 10*x.Errors >= x.OK+x.Errors {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}
