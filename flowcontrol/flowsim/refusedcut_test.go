package flowsim

import (
	"testing"

	"loanflow/flowcontrol"
)

// TestLatencyCutAtARefusingAgency runs the scorecard's incident (capacity
// lost and calls slowed together, 30 s after the load step for 20 s, 5 s
// warm-up) of two shapes whose slowed calls stay within the client's
// timeout, C16 × 200 ms (to 6, ×2) and bench large (C20 × 300 ms to 10,
// ×2), seeds 1–6 at both offsets, and holds the incident's phase to its
// goodput ÷ the oracle's.
//
// The agency refuses calls as the capacity goes, and the failure cuts bring
// the limit to about what it serves; then the calls read slower than the
// tolerance, the slowdown's as much as a queue's. Under
// LawBeforeRefusedLatencyCut rule 3 cut by half on them, below the capacity
// left, and the check took seconds at an incident's few calls to find the
// agency slower. A cut by a quarter at an agency that refused since it was
// last healthy costs less when the latency is the agency's own, and is cut
// again when it is a queue.
func TestLatencyCutAtARefusingAgency(t *testing.T) {
	// The phase wanted: under LawBeforeRefusedLatencyCut 0.83 and 0.85.
	want := map[string]float64{"C16 200ms 2w 3x, slower within timeout": 0.9, "bench large: C20 300ms 1w 2x": 0.87}
	for _, name := range []string{"C16 200ms 2w 3x, slower within timeout", "bench large: C20 300ms 1w 2x"} {
		sh := shapeNamed(t, name)
		phase := func(law int) float64 {
			goodput, _ := incidentPhase(t, sh, law)
			return goodput
		}
		before, now := phase(flowcontrol.LawBeforeRefusedLatencyCut), phase(0)
		t.Logf("%s: the incident's phase %.2f × the oracle (%.2f under LawBeforeRefusedLatencyCut)", sh.name, now, before)
		if now < want[sh.name] || now <= before {
			t.Errorf("%s: the incident's phase %.2f × the oracle, want ≥ %.2f and more than LawBeforeRefusedLatencyCut's %.2f", sh.name, now, want[sh.name], before)
		}
	}
}
