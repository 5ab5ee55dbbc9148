package workflows

import "time"

// tickAfterBucket is how long after a statistics bucket's end (plus the
// bucket's grace, activities.WindowEnd) the controller ticks: the last
// complete bucket is then as fresh as it can be when Observe reads it.
const tickAfterBucket = 250 * time.Millisecond

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
	for next.Sub(now) < period/2 {
		next = next.Add(period)
	}
	return next.Sub(now)
}
