package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestBaselineTable checks which periods baselineTable counts: each
// period once, in the measured part, of enough calls, under a limit and a
// capacity the trace shows unchanged over the period and the second
// before the reading; and the ratio's quantiles.
func TestBaselineTable(t *testing.T) {
	base := 300 * time.Millisecond
	// A trace sampled every 500 ms; a reading of a period of 500 ms on
	// every other sample, with its mean latency in ms (0: no reading).
	type pt struct {
		limit, capacity float64
		ok              int64
		mean            int
	}
	trace := func(from float64, pts ...pt) []sample {
		var tr []sample
		var periods int64
		for i, p := range pts {
			x := sample{T: time.Duration((from + 0.5*float64(i)) * float64(time.Second)), Limit: p.limit, Capacity: p.capacity}
			if p.mean > 0 {
				periods++
				x.Reading = &reading{Period: 500 * time.Millisecond, Mean: time.Duration(p.mean) * time.Millisecond,
					Baseline: base, OK: p.ok, Periods: periods}
			}
			tr = append(tr, x)
		}
		return tr
	}
	tr := trace(-1.5,
		pt{20, 20, 0, 0}, pt{20, 20, 40, 330}, // warm-up: not counted
		pt{20, 20, 0, 0}, pt{20, 20, 40, 324}, // 0 s: not counted (the measured part begins after it)
		pt{20, 20, 0, 0}, pt{20, 20, 40, 327}, // counted: +0, 1.09 (20 since -0.5 s)
		pt{20, 20, 0, 0}, pt{20, 10, 40, 400}, // the capacity changed within the window: not counted
		pt{20, 10, 0, 0}, pt{12, 10, 40, 400}, // the limit moved: not counted
		pt{12, 10, 0, 0}, pt{12, 10, 40, 360}, // 12 since 3 s, the window from 2.5 s: not counted
		pt{12, 10, 0, 0}, pt{12, 10, 10, 390}, // too few calls: not counted
		pt{12.4, 10, 0, 0}, pt{12, 10, 40, 366}, // 12.4 rounds to 12: counted, +2, 1.22
		pt{12, 10, 0, 0}, pt{12, 10, 40, 360}, // counted: +2, 1.20
	)
	// The same period read twice is counted once.
	tr = append(tr, sample{T: tr[len(tr)-1].T + 500*time.Millisecond, Limit: 12, Capacity: 10, Reading: tr[len(tr)-1].Reading})
	// A second run whose trace begins after its first reading's window.
	tr2 := trace(0.5, pt{9, 10, 40, 318}, pt{9, 10, 0, 0}, pt{9, 10, 0, 0}, pt{9, 10, 40, 318})
	rows := baselineTable([][]sample{tr, tr2})
	want := []baselineRow{
		{Offset: -1, Periods: 1, Q1: 1.06, Median: 1.06, Q3: 1.06},
		{Offset: 0, Periods: 1, Q1: 1.09, Median: 1.09, Q3: 1.09},
		{Offset: 2, Periods: 2, Q1: 1.205, Median: 1.21, Q3: 1.215},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v, want %+v", rows, want)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for i, r := range rows {
		w := want[i]
		if r.Offset != w.Offset || r.Periods != w.Periods || !near(r.Median, w.Median) || !near(r.Q1, w.Q1) || !near(r.Q3, w.Q3) {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
	if got := baselineText(rows); !strings.Contains(got, "| +2 | 2 | 1.210 | 1.205–1.215 |") || !strings.Contains(got, "| -1 | 1 | 1.060 |") {
		t.Errorf("baselineText:\n%s", got)
	}
	if got := baselineText(nil); !strings.Contains(got, "no period of 20 calls") {
		t.Errorf("baselineText(nil) = %q", got)
	}
	// Strategies without a limit (NaN) are never counted.
	if rows := baselineTable([][]sample{trace(0.5, pt{math.NaN(), 10, 0, 0}, pt{math.NaN(), 10, 0, 0}, pt{math.NaN(), 10, 0, 0}, pt{math.NaN(), 10, 40, 300})}); len(rows) != 0 {
		t.Errorf("rows for a strategy without a limit: %+v", rows)
	}
}
