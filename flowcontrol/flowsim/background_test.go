package flowsim

import (
	"fmt"
	"testing"
	"time"
)

// TestBackgroundFailures runs the capacity halving (30 s to 50 s) of every
// shape whose halved capacity still serves 20 calls a second or more, at
// agencies, queueing or not, that answer some calls 500 or 503 at random,
// whatever the load: 5% of the calls 500 (agencysim's error_rate), or 0.5%
// refused at the door (a gateway's stray 503s). Seeds 1–3; each phase's
// goodput, the mean over the seeds, is held to a share of the oracle's,
// which meets the same failures.
//
// Before the control law told an agency's background failures from its
// capacity (AgencyState.Levels), every refusal held growth and a period
// with two failures beyond the FailureTarget cut the limit: at 5% of 500s
// the limit ratcheted down to a fraction of the capacity, 0.38 × the
// oracle at C20 × 100 ms and 0.53–0.80 in the restored phase of the other
// shapes; at 0.5% of 503s, 0.57 at the queue-less C20 × 100 ms.
func TestBackgroundFailures(t *testing.T) {
	cases := []struct {
		name             string
		errors, refusals float64
		minGoodput       float64
	}{
		{"5% answered 500", 0.05, 0, 0.9},
		{"0.5% refused", 0, 0.005, 0.8},
	}
	for _, tc := range cases {
		for _, sh := range shapes {
			halved := sh
			halved.dropTo, halved.slowdown = max(sh.capacity/2, 1), 1
			if float64(halved.dropTo)/sh.service.Seconds() < 20 {
				continue
			}
			for _, queueless := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/queue-less %v", tc.name, sh.name, queueless), func(t *testing.T) {
					var sum [3]float64
					for seed := uint64(1); seed <= 3; seed++ {
						sc := recoveryIncident(halved, seed)
						if queueless {
							sc = refusingAgency(sc)
						}
						sc.Agency.ErrorRate, sc.Agency.RefuseRate = tc.errors, tc.refusals
						oracle := run(t, sc, Policy{Name: "oracle", Oracle: true, Workers: sh.workers})
						ctl := run(t, sc, shapeController(sh))
						for i := range sum {
							sum[i] += ctl.Phases[i].Goodput / oracle.Phases[i].Goodput
						}
						t.Logf("seed %d: goodput %.2f, %.2f, %.2f × oracle; errors %.1f%% (oracle %.1f%%); limit back at 90%% %s after the recovery",
							seed, ctl.Phases[0].Goodput/oracle.Phases[0].Goodput, ctl.Phases[1].Goodput/oracle.Phases[1].Goodput,
							ctl.Phases[2].Goodput/oracle.Phases[2].Goodput, 100*ctl.ErrorRate, 100*oracle.ErrorRate,
							convergenceString([]time.Duration{reachedFraction(ctl.Trace, 50*time.Second, 0.9)}))
					}
					for i, s := range sum {
						if mean := s / 3; mean < tc.minGoodput {
							t.Errorf("phase %d: goodput %.2f × the oracle's over seeds 1–3, want ≥ %.2f", i+1, mean, tc.minGoodput)
						}
					}
				})
			}
		}
	}
}
