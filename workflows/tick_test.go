package workflows

import (
	"testing"
	"time"
)

func TestNextTickDelay(t *testing.T) {
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now    time.Duration // past base
		period time.Duration
		want   time.Duration
	}{
		{0, time.Second, 1250 * time.Millisecond},                      // just before a tick point: the next one
		{100 * time.Millisecond, time.Second, 1150 * time.Millisecond}, // 10:00:01.250
		{250 * time.Millisecond, time.Second, time.Second},             // on a tick point: one period
		{900 * time.Millisecond, time.Second, 1350 * time.Millisecond}, // 0.35 s to go is less than half: the one after
		{600 * time.Millisecond, time.Second, 650 * time.Millisecond},
		{1700 * time.Millisecond, 3 * time.Second, 1550 * time.Millisecond}, // periods of several seconds cut on their multiples
		{0, 0, 1250 * time.Millisecond},                                     // no period: one second
	} {
		now := base.Add(tc.now)
		got := nextTickDelay(now, tc.period)
		if got != tc.want {
			t.Errorf("nextTickDelay(+%s, %s) = %s, want %s", tc.now, tc.period, got, tc.want)
		}
		if end := now.Add(got); end.Add(-tickAfterBucket).Sub(end.Add(-tickAfterBucket).Truncate(max(tc.period, time.Second))) != 0 {
			t.Errorf("nextTickDelay(+%s, %s) ends at %s, not %s past a period", tc.now, tc.period, end.Format(time.StampMilli), tickAfterBucket)
		}
	}
}
