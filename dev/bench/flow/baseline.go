package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// baselineMinCalls is the fewest successful calls a period needs to count
// in baselineTable: at the agencies' spread (σ 0.25) a mean of 20 calls is
// within ±6% of the truth at one standard error, a call of queue at a
// capacity of 15.
const baselineMinCalls = 20

// baselineRow is one line of baselineTable: the periods loanflow's
// controller read with its limit Offset calls from the agency's true
// capacity, and their latency ÷ baseline (median and quartiles).
type baselineRow struct {
	Offset     int
	Periods    int
	Q1, Median float64
	Q3         float64
}

// baselineTable reads runs' traces as the controller read the agency: each
// period it observed (a new Reading.Periods) in the measured part, of at
// least baselineMinCalls successful calls, under a limit and a true
// capacity (both rounded) that the trace shows unchanged over the period
// and the second before the reading (the query lags the period's end by up
// to a second). Grouped by the limit's distance from the capacity, its
// mean latency ÷ the baseline the decision read it against shows where the
// baseline sits: at or below the capacity the agency keeps no queue, and
// the ratio is the baseline's own error; a call or two above it, the queue
// the control law is to see.
func baselineTable(traces [][]sample) []baselineRow {
	by := map[int][]float64{}
	for _, tr := range traces {
		var last int64 // the periods of the last reading counted or passed over
		for i := range tr {
			x := &tr[i]
			rd := x.Reading
			if rd == nil || rd.Periods == last {
				continue
			}
			last = rd.Periods
			if x.T <= 0 || rd.OK < baselineMinCalls || rd.Baseline <= 0 || rd.Mean <= 0 || math.IsNaN(x.Limit) {
				continue
			}
			if off, ok := steadyOffset(tr[:i+1], x.T-rd.Period-time.Second); ok {
				by[off] = append(by[off], float64(rd.Mean)/float64(rd.Baseline))
			}
		}
	}
	rows := make([]baselineRow, 0, len(by))
	for off, rs := range by {
		slices.Sort(rs)
		rows = append(rows, baselineRow{Offset: off, Periods: len(rs), Q1: sortedQuantile(rs, 0.25),
			Median: sortedQuantile(rs, 0.5), Q3: sortedQuantile(rs, 0.75)})
	}
	slices.SortFunc(rows, func(a, b baselineRow) int { return a.Offset - b.Offset })
	return rows
}

// steadyOffset is the rounded limit minus the rounded true capacity of the
// trace's last sample, if every sample from the one at or before since
// shows the same (ok false when one differs or the trace begins after
// since).
func steadyOffset(tr []sample, since time.Duration) (int, bool) {
	x := tr[len(tr)-1]
	limit, capacity := math.Round(x.Limit), math.Round(x.Capacity)
	for j := len(tr) - 1; j >= 0; j-- {
		if math.Round(tr[j].Limit) != limit || math.Round(tr[j].Capacity) != capacity {
			return 0, false
		}
		if tr[j].T <= since {
			return int(limit - capacity), true
		}
	}
	return 0, false
}

// sortedQuantile is the q-quantile of sorted values, interpolated between
// the two nearest.
func sortedQuantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// baselineText renders baselineTable's rows as markdown, or says why there
// are none.
func baselineText(rows []baselineRow) string {
	if len(rows) == 0 {
		return fmt.Sprintf("no period of %d calls or more at a steady limit and capacity\n", baselineMinCalls)
	}
	var b strings.Builder
	b.WriteString("| limit − capacity (calls) | periods | latency ÷ baseline, median | quartiles |\n|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %+d | %d | %.3f | %.3f–%.3f |\n", r.Offset, r.Periods, r.Median, r.Q1, r.Q3)
	}
	return b.String()
}
