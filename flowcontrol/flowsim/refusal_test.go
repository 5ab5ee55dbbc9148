package flowsim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// refusingAgency makes the shape's agency one with no queue: a call beyond
// its capacity is refused at once, in a round trip of a few milliseconds,
// as a rate-limited API answers 429 or 503. Its latency never rises with
// our load, so only the refusals show its capacity.
func refusingAgency(sc Scenario) Scenario {
	sc.Agency.QueueLimit, sc.Agency.RefusalTime = 0, 2*time.Millisecond
	return sc
}

// TestRefusingAgency runs every shape's capacity halving (30 s to 50 s) at
// an agency that refuses at once beyond its capacity, on seeds 1–3. Two
// defects showed there, and neither in the shapes whose agency queues:
//
//   - A cut for refusals did not record the capacity when none had been
//     seen yet (the limit had never held "at capacity", which only a
//     queue's latency shows), so growth went on searching ×1.5 beyond it
//     every few seconds: 20 → 30 → 21 → 28 → 20 → 31 at a capacity of 20,
//     each search hundreds of refusals.
//   - A refused call freed its slot as soon as the refusal came back, so a
//     slot beyond the capacity turned over a refusal per round trip:
//     80–97% of the calls the agency saw were refused in every phase.
//
// Now the limit stays within a call or two of the capacity once it has
// been refused, and a refused call keeps its slot for the agency's median
// latency, one refused at once for a control period (the pool's pacing, as
// the agency activities do): the errors fall to a few percent, the probes' and the
// steps' own. A third defect showed once paced: a probe one call beyond
// the capacity was refused about once a period, never the two failures a
// rate needs, so the limit sat there refused every period; a lone refusal
// is now read with the next period.
func TestRefusingAgency(t *testing.T) {
	for _, sh := range shapes {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/seed %d", sh.name, seed), func(t *testing.T) {
				halved := sh
				halved.dropTo, halved.slowdown = max(sh.capacity/2, 1), 1
				sc := refusingAgency(recoveryIncident(halved, seed))
				ctl := run(t, sc, shapeController(sh))
				unpaced := shapeController(sh)
				unpaced.NoPacing = true
				free := run(t, sc, unpaced)
				t.Logf("errors %.1f%% paced, %.1f%% with a refused call's slot freed at once; convergence %s",
					100*ctl.ErrorRate, 100*free.ErrorRate, convergenceString(ctl.Convergence))

				// Refused once, the limit no longer searches beyond the
				// capacity (×1.5 a step, as while none has been seen).
				refused := false
				for _, s := range ctl.Trace {
					if refused && strings.Contains(s.Reason, "capacity not yet seen") {
						t.Fatalf("t=%s: %q after the agency had refused calls at a capacity of %d (limit %d)", s.T, s.Reason, s.Capacity, s.Limit)
					}
					if strings.HasPrefix(s.Reason, "overload") {
						refused = true
					}
				}
				if ctl.ErrorRate > free.ErrorRate/4 {
					t.Errorf("errors %.1f%% paced against %.1f%% unpaced; want a quarter or less", 100*ctl.ErrorRate, 100*free.ErrorRate)
				}
				// Where the halved capacity still serves 20 calls a
				// second or more, a probe's refusals (about one a
				// period, read over two) are a small share of the calls.
				if rate := float64(halved.dropTo) / sh.service.Seconds(); rate >= 20 && ctl.ErrorRate > 0.03 {
					t.Errorf("errors %.1f%% at %.0f calls/s in the halved phase; want 3%% or less", 100*ctl.ErrorRate, rate)
				}
			})
		}
	}
}
