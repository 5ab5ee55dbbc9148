package activities

import (
	"testing"
	"time"
)

// TestLogSampler: one line per key per interval, the next one counting those
// left out, and keys apart.
func TestLogSampler(t *testing.T) {
	l := newLogSampler(time.Second)
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	type step struct {
		key     string
		at      time.Duration
		ok      bool
		dropped int
	}
	for i, s := range []step{
		{"mydata/agency_error", 0, true, 0},
		{"mydata/agency_error", 100 * time.Millisecond, false, 0},
		{"mydata/agency_error", 900 * time.Millisecond, false, 0},
		{"kcb/timeout", 900 * time.Millisecond, true, 0},
		{"mydata/overload", 950 * time.Millisecond, true, 0},
		{"mydata/agency_error", 999 * time.Millisecond, false, 0},
		{"mydata/agency_error", time.Second, true, 3},
		{"mydata/agency_error", 1500 * time.Millisecond, false, 0},
		{"mydata/agency_error", 10 * time.Second, true, 1},
		{"kcb/timeout", 10 * time.Second, true, 0},
	} {
		ok, dropped := l.allow(s.key, t0.Add(s.at))
		if ok != s.ok || dropped != s.dropped {
			t.Errorf("step %d (%s at %s): allow = %v, %d; want %v, %d", i, s.key, s.at, ok, dropped, s.ok, s.dropped)
		}
	}
}
