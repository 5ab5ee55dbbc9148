package flowsim

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// outOfBand reports whether a sample's limit is outside the band the
// convergence is measured in (outsideBand).
func outOfBand(x Sample) bool { return outsideBand(float64(x.Limit), float64(x.Capacity)) }

// numbers are a reason's figures, dropped so that one rule's decisions
// read alike whatever their values.
var numbers = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

// excursionCause names what kept the limit out of the band after the step
// at from, until the next step at to: the decision that took it out for
// the last time (the last decision other than a hold before the last
// excursion's first sample, its figures dropped and a background note left
// out), with "above" or "below" the band, or "never in the band" when the
// limit was out of it from the step to the excursion's end. It is empty
// when the limit was within the band from 5 s after the step on (converged
// in time).
func excursionCause(trace []Sample, from, to time.Duration) string {
	last := -1
	for i, x := range trace {
		if x.T > from && x.T <= to && outOfBand(x) {
			last = i
		}
	}
	// As Convergence counts it: the limit entered the band for good at
	// the sample after the last one out of it.
	if last < 0 || last+1 < len(trace) && trace[last+1].T <= to && trace[last+1].T-from <= recoverWithin {
		return ""
	}
	first := last
	for first > 0 && trace[first-1].T > from && outOfBand(trace[first-1]) {
		first--
	}
	side := "below"
	if trace[first].Limit > trace[first].Capacity {
		side = "above"
	}
	if first == 0 || trace[first-1].T <= from {
		return side + ", never in the band after the step"
	}
	// The limit moved out of the band, so a decision that was not a hold
	// moved it: the last one before the excursion (a new limit takes
	// effect a period or so after its decision, at each worker's delay).
	reason := ""
	for j := first - 1; j >= 0 && trace[j].T > from && reason == ""; j-- {
		if r := decisionOf(trace[j].Reason); !strings.HasPrefix(r, "hold") {
			reason = r
		}
	}
	if reason == "" {
		reason = decisionOf(trace[first-1].Reason)
	}
	reason = numbers.ReplaceAllString(reason, "N")
	if r := []rune(reason); len(r) > 60 {
		reason = string(r[:60]) + "…"
	}
	return side + " after " + reason
}

// decisionOf is a reason without the background's note before it.
func decisionOf(reason string) string {
	if i := strings.LastIndex(reason, "left out; "); i >= 0 {
		return reason[i+len("left out; "):]
	}
	return reason
}

// causeCounts tallies the excursion causes of unconverged steps.
type causeCounts map[string]int

// lines lists the causes, most frequent first (then by name), at most n.
func (c causeCounts) lines(n int) []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, 0, min(n, len(keys)))
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, fmt.Sprintf("%4d  %s", c[k], k))
	}
	return out
}

func TestExcursionCause(t *testing.T) {
	s := func(sec, limit, capacity int, reason string) Sample {
		return Sample{T: time.Duration(sec) * time.Second, Limit: limit, Capacity: capacity, Reason: reason}
	}
	steps := []struct {
		name  string
		trace []Sample
		want  string
	}{
		{"converged at once", []Sample{s(1, 10, 10, "hold"), s(2, 11, 10, "hold"), s(3, 10, 10, "hold")}, ""},
		{"back in the band within 5 s", []Sample{s(1, 20, 10, "cut"), s(2, 15, 10, "cut"), s(5, 11, 10, "hold"), s(9, 11, 10, "hold")}, ""},
		{"back in the band after 6 s", []Sample{s(1, 11, 10, "hold"), s(4, 11, 10, "healthy, backlog: +1.0"), s(5, 12, 10, "cut"), s(6, 11, 10, "hold")},
			"above after healthy, backlog: +N"},
		{"a probe late in the phase", []Sample{s(1, 11, 10, "hold"), s(7, 11, 10, "healthy, backlog: +1.0"), s(8, 12, 10, "latency 1.29× baseline: cut"), s(9, 11, 10, "hold")},
			"above after healthy, backlog: +N"},
		{"a background note left out", []Sample{s(1, 11, 10, "hold"), s(7, 11, 10, "background: 1 of 2 refused, 0 of 0 errors left out; healthy, backlog: +2.0"), s(8, 13, 10, "cut"), s(9, 11, 10, "hold")},
			"above after healthy, backlog: +N"},
		{"a cut below the band", []Sample{s(1, 10, 10, "hold"), s(7, 10, 10, "overload 3.0% > 1.0%: cut"), s(8, 8, 10, "hold"), s(9, 10, 10, "hold")},
			"below after overload N% > N%: cut"},
		{"a step that took effect a period later", []Sample{s(1, 11, 10, "hold"), s(6, 11, 10, "healthy, backlog: +1.0"), s(7, 11, 10, "hold: waiting for the last increase to show"), s(8, 12, 10, "hold: at capacity"), s(9, 11, 10, "hold")},
			"above after healthy, backlog: +N"},
		{"held out of the band by holds alone", []Sample{s(1, 11, 10, "hold"), s(6, 11, 10, "hold: at capacity"), s(7, 12, 10, "hold: at capacity"), s(9, 11, 10, "hold")},
			"above after hold: at capacity"},
		{"never in the band", []Sample{s(1, 20, 10, "hold"), s(4, 20, 10, "hold"), s(8, 19, 10, "hold"), s(9, 10, 10, "hold")},
			"above, never in the band after the step"},
	}
	for _, c := range steps {
		if got := excursionCause(c.trace, 0, 10*time.Second); got != c.want {
			t.Errorf("%s: excursionCause = %q, want %q", c.name, got, c.want)
		}
		// A cause exactly where the convergence the scorecard counts is
		// later than 5 s, or never.
		conv := convergence(c.trace, Scenario{Steps: []time.Duration{0}, Duration: 10 * time.Second})[0]
		if late := conv < 0 || conv > recoverWithin; late != (c.want != "") {
			t.Errorf("%s: converged %s, but the cause is %q", c.name, conv, c.want)
		}
	}
	// Only the step's own phase counts: an excursion after the next step
	// belongs to that one.
	tr := []Sample{s(1, 10, 10, "hold"), s(9, 10, 10, "healthy"), s(10, 14, 10, "hold"), s(11, 10, 10, "hold")}
	if got := excursionCause(tr, 0, 9*time.Second); got != "" {
		t.Errorf("an excursion after the phase's end: excursionCause = %q, want none", got)
	}
	counts := causeCounts{"b": 2, "a": 2, "c": 5}
	if got, want := strings.Join(counts.lines(2), "|"), "   5  c|   2  a"; got != want {
		t.Errorf("lines(2) = %q, want %q", got, want)
	}
}
