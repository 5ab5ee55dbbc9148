package flowsim

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// scaleOutAt is when TestCapacityGrownAfterLongSteadyLoad doubles the
// agency's capacity: long enough for the probes beyond the capacity the
// controller confirmed to have backed off to their bound.
const scaleOutAt = 300 * time.Second

// TestCapacityGrownAfterLongSteadyLoad runs every shape at a steady load
// (at least 3× its nominal rate) for 300 s, doubles its capacity (the
// agency scaled out, or a contract was raised), and measures when the
// limit reached 90% of the new capacity, on seeds 1–6: within
// scaleOutWithin in all but scaleOutLate of the 48 runs, and within
// scaleOutMean on average (a run beyond the bound counts as the bound).
// Nothing but a probe beyond the capacity the controller confirmed shows
// that the capacity grew: held at it, a queueing agency has no queue to
// lose and its latency does not change. When the probes' back-off doubled
// up to 256 periods, 13 of the 48 runs had not found the doubling 150 s
// after it came, and the mean (those counted as 150 s) was 75 s; with the back-off bounded
// at 64 periods, one (the shape, 1.34 s calls from C, seed 6: at
// six calls a second every step waits for its evidence) and 50 s.
func TestCapacityGrownAfterLongSteadyLoad(t *testing.T) {
	var sum time.Duration
	runs, late := 0, 0
	for _, sh := range shapes {
		for seed := uint64(1); seed <= 6; seed++ {
			sc := recoveryIncident(sh, seed)
			c := sh.capacity
			sc.Duration = scaleOutAt + scaleOutWithin + 10*time.Second
			sc.Capacity = func(t time.Duration) int {
				if t >= scaleOutAt {
					return 2 * c
				}
				return c
			}
			sc.ServiceFactor = nil
			sc.Steps = []time.Duration{scaleOutAt}
			rate := max(sh.load, 3) * sc.Agency.NominalRate()
			sc.Load = func(time.Duration) float64 { return rate }
			ctl := run(t, sc, shapeController(sh))
			if os.Getenv("SCALEOUT_TRACE") == fmt.Sprintf("%s/%d", sh.name, seed) {
				for _, x := range ctl.Trace {
					if x.T > scaleOutAt-40*time.Second {
						t.Logf("  t=%5.1fs cap=%2d limit=%3d in-flight=%3d ok=%4d err=%3d exp=%3d latency=%6.1fms  %s",
							x.T.Seconds(), x.Capacity, x.Limit, x.InFlight, x.OK, x.Errors, x.Expired, x.LatencyMs, x.Reason)
					}
				}
			}
			found := reachedFraction(ctl.Trace, scaleOutAt, 0.9)
			t.Logf("%s seed %d: 90%% of the doubled capacity %s after it doubled", sh.name, seed, convergenceString([]time.Duration{found}))
			if found < 0 || found > scaleOutWithin {
				late++
				found = scaleOutWithin
			}
			sum += found
			runs++
		}
	}
	mean := sum / time.Duration(runs)
	t.Logf("%d of %d runs later than %s; %s on average", late, runs, scaleOutWithin, mean.Round(time.Second))
	if late > scaleOutLate {
		t.Errorf("%d of %d runs found the doubled capacity later than %s, want at most %d", late, runs, scaleOutWithin, scaleOutLate)
	}
	if mean > scaleOutMean {
		t.Errorf("the doubled capacity found %s after it came on average, want within %s", mean.Round(time.Second), scaleOutMean)
	}
}

// Bounds of TestCapacityGrownAfterLongSteadyLoad.
const (
	scaleOutWithin = 150 * time.Second
	scaleOutLate   = 2
	scaleOutMean   = 60 * time.Second
)

// TestProbesAtABoundedBackoffCostLittle runs every shape at a steady load
// for 600 s, at a queueing agency and at one that refuses at once beyond
// its capacity, on seeds 1–3, and holds the agency errors from 60 s on to
// steadyErrors: bounded at 64 periods, the back-off probes a confirmed
// capacity about once a minute, one call too many for a period or two.
// On seeds 1–8 the back-off doubling up to 256 periods read 0.021%
// (queueing) and 0.107% (refusing) agency errors, 1,717,892 calls served
// at the refusing agency; bounded, 0.024% and 0.195%, and 1,716,275: the
// price of finding a grown capacity within a minute or so
// (TestCapacityGrownAfterLongSteadyLoad) is about one refused call a
// minute.
func TestProbesAtABoundedBackoffCostLittle(t *testing.T) {
	for _, queueless := range []bool{false, true} {
		var ok, errs int64
		for _, sh := range shapes {
			for seed := uint64(1); seed <= 3; seed++ {
				sc := recoveryIncident(sh, seed)
				sc.Duration = 600 * time.Second
				sc.Capacity, sc.ServiceFactor, sc.Steps = nil, nil, nil
				if queueless {
					sc = refusingAgency(sc)
				}
				for _, x := range run(t, sc, shapeController(sh)).Trace {
					if x.T > time.Minute {
						ok, errs = ok+x.OK, errs+x.Errors
					}
				}
			}
		}
		rate := float64(errs) / float64(ok+errs)
		t.Logf("refusing at once %v: %d calls served, %d agency errors (%.3f%%)", queueless, ok, errs, 100*rate)
		if rate > steadyErrors {
			t.Errorf("refusing at once %v: %.3f%% agency errors under steady load, want ≤ %.2f%%", queueless, 100*rate, 100*steadyErrors)
		}
	}
}

// steadyErrors bounds TestProbesAtABoundedBackoffCostLittle's agency errors.
const steadyErrors = 0.003
