package workflows

import (
	"time"

	"loanflow/activities"
)

// tickAfterBucket is how long after a statistics bucket's end the
// controller ticks: just past the grace after which Observe takes the
// bucket as complete (activities.WindowEnd), so that the bucket read is as
// fresh as it can be, with a margin for the local activity to start.
const tickAfterBucket = activities.BucketGrace + 50*time.Millisecond

// nextTickDelay is how long the controller sleeps from now so that its next
// tick falls tickAfterBucket past a whole period, as the statistics' buckets
// are cut (on whole seconds of the clock). A sleep of one period from
// wherever the last tick ended lets the tick drift anywhere within the
// second, and the newest complete bucket is then on average half a second
// older when it is read: half a second more lag in the control loop. The
// delay is at least half a period, so a late tick does not run the next one
// at once.
func nextTickDelay(now time.Time, period time.Duration) time.Duration {
	if period <= 0 {
		period = time.Second
	}
	next := now.Add(-tickAfterBucket).Truncate(period).Add(period + tickAfterBucket)
	if next.Sub(now) < period/2 {
		next = next.Add(period)
	}
	return next.Sub(now)
}
