package flowsim

import (
	"fmt"
	"testing"
	"time"
)

// stall is a caller's host slow from `from` for `length`: each latency it
// measures meanwhile is `extra` longer (the real stack's two cores carry
// Temporal's server, the workers and the agencies, and a burst of
// workflow tasks delays the reads of the agency's answers).
func stall(from, length, extra time.Duration) func(time.Duration) time.Duration {
	return func(t time.Duration) time.Duration {
		if t >= from && t < from+length {
			return extra
		}
		return 0
	}
}

// TestWarmupStallDoesNotHoldTheLimitDown runs the steady 2× load of
// TestHeldWithinBand against the real stack's large agency (capacity 20 ×
// 300 ms, eight workers) with the caller's host slow for the warm-up's
// second and third seconds (+200 ms a call), on seeds 1–12. The warm-up's
// baseline comes out high, and the first period of 40 calls read well
// below it is taken as the baseline at once. On seed 6 that period read
// 10% low (280 ms; the agency's own mean is 310 ms). Against that
// baseline every period at 15 calls read 1.07–1.17×, "at capacity", and
// under demand the baseline never rises: the limit held at 15 of 20 for
// the whole 120 s, 0.00 of the periods within the band and 0.79 × the
// oracle. A baseline taken from one period is now read again in a dip
// once the limit holds (AgencyState.Unverified): 1.00 and 0.98. The other
// seeds are unchanged.
func TestWarmupStallDoesNotHoldTheLimitDown(t *testing.T) {
	a := Agency{Capacity: 20, MedianServiceTime: 300 * time.Millisecond, Jitter: 0.25,
		QueueLimit: 40, QueueTimeout: 500 * time.Millisecond, InflationPerOverload: 0.5}
	sum := 0.0
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			sc := steady(a, seed)
			sc.HostDelay = stall(2*time.Second, 2*time.Second, 200*time.Millisecond)
			p := controller(500 * time.Millisecond)
			p.Workers = 8
			sum += heldWithinBand(t, sc, p)
		})
	}
	if m := sum / float64(len(seeds)); m < meanInBand {
		t.Errorf("limit within the band %.2f of the time on average, want ≥ %.2f", m, meanInBand)
	}
}
