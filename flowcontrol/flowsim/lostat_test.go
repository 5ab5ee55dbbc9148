package flowsim

import (
	"strings"
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

// TestNoLostAtRegrowAfterALastingLoss runs the same halving and return of
// an agency with no queue, then takes it to 70% of its capacity at 70 s for
// good, on bench large and C16 × 200 ms, seeds 1–6 at both offsets, and
// counts the steps after 72 s that read a refuted probe's limit taken
// (flowcontrol AgencyState.LostAt) and went back toward the earlier
// capacity: none of them is that capacity back.
//
// Held a call or two beyond the capacity left, the limit is refused a call
// or two a period, and the refusals that the agency's background rates
// account for are read as none (flowcontrol AgencyState.denoise). On the law
// before (flowcontrol LawBeforeLostAtCleared) a period whose refusals were
// all left out that way read as the probe's limit taken with nothing
// refused: the limit went three quarters of the way to the earlier capacity
// (bench large: 15 → 19 at a capacity of 14), 10 times in these 24 runs.
// A refusal left out now keeps the probe refuted.
func TestNoLostAtRegrowAfterALastingLoss(t *testing.T) {
	noQueue := kinds[3]
	names := map[string]bool{"bench large: C20 300ms 1w 2x": true, "C16 200ms 2w 3x, slower within timeout": true}
	regrown, runs := 0, 0
	for _, sh := range shapes {
		if !names[sh.name] {
			continue
		}
		delete(names, sh.name)
		left := max(sh.capacity*7/10, 1)
		for _, off := range []time.Duration{0, 500 * time.Millisecond} {
			for seed := uint64(1); seed <= 6; seed++ {
				sc := scorecardScenario(noQueue, sh, seed, off, 0)
				capacity, lost := sc.Capacity, 70*time.Second+off
				sc.Capacity = func(t time.Duration) int {
					if t >= lost {
						return left
					}
					return capacity(t)
				}
				sc.Duration, sc.Steps = 100*time.Second, append(sc.Steps, lost)
				r := run(t, sc, shapeController(sh))
				highest, ok, errs := 0, int64(0), int64(0)
				for _, s := range r.Trace {
					if s.T <= lost+2*time.Second {
						continue
					}
					highest = max(highest, s.Limit)
					ok, errs = ok+s.OK, errs+s.Errors
					if strings.Contains(s.Reason, "refuted lately") {
						regrown++
						t.Logf("%s, offset %s, seed %d, %s: %s (capacity %d)", sh.name, off, seed, s.T, s.Reason, left)
					}
				}
				runs++
				t.Logf("%s, offset %s, seed %d: from 72 s, limit up to %d at a capacity of %d, errors %.1f%% of %d calls",
					sh.name, off, seed, highest, left, 100*float64(errs)/float64(max(ok+errs, 1)), ok+errs)
			}
		}
	}
	if len(names) > 0 {
		t.Fatalf("shapes not found: %v", names)
	}
	if regrown > 1 {
		t.Errorf("%d regrows toward the earlier capacity at a refuted probe's limit in %d runs after a lasting loss, want ≤ 1", regrown, runs)
	}
}
