package flowsim

import (
	"testing"
	"time"

	"loanflow/flowcontrol"
)

// TestIncidentWithinTimeoutFloorTested runs two incidents the scorecard's
// shapes do not have: a capacity lost together with a slowdown that leaves
// the calls within the client's timeout (C25 × 250 ms to 8 and ×2, 500 ms
// against a timeout of 800 ms, one worker, load 1.5×; C40 × 150 ms to 16
// and ×2, 300 ms against 500 ms, three workers, load 2×), the scorecard's
// incident otherwise (30 s after the load step for 20 s, 5 s warm-up),
// seeds 1–6 at both offsets. It holds the incident's phase to its goodput
// ÷ the oracle's.
//
// The first cuts are rule 1's for an agency in trouble: most failures are
// timeouts, so the limit keeps half the Ceiling. Here the timeouts are our
// own queue's, the overload inflating the slowed calls past the timeout:
// under LawBeforeFloorTest the limit held half the Ceiling (13 and 20) for
// the whole incident: the phase served 0.36 and 0.72 × the oracle, 60% and
// 25% of the calls failing. Now the floor is tested once it has held two
// cuts in a row with calls succeeding: the failures fall with the limit,
// and rule 1 cuts on (0.65 and 0.88, 28% and 6.5%; since
// LawBeforeRefusedLatencyCut's change 0.69 and 0.89, 28% and 6.9%;
// since LawBeforeFloorTestRead's 0.71 and 0.92, 28.9% and 6.9%).
func TestIncidentWithinTimeoutFloorTested(t *testing.T) {
	shapes := []shape{
		{"C25 250ms 1w 1.5x, slowed within timeout", 25, 250 * time.Millisecond, 800 * time.Millisecond, 1, 1.5, 25, 8, 2},
		{"C40 150ms 3w 2x, slowed within timeout", 40, 150 * time.Millisecond, 500 * time.Millisecond, 3, 2, 20, 16, 2},
	}
	want := map[string]float64{shapes[0].name: 0.55, shapes[1].name: 0.8}
	for _, sh := range shapes {
		phase := func(law int) (goodput, errs float64) { return incidentPhase(t, sh, law) }
		before, beforeErrs := phase(flowcontrol.LawBeforeFloorTest)
		now, nowErrs := phase(0)
		t.Logf("%s: the incident's phase %.2f × the oracle, %.1f%% errors (%.2f, %.1f%% under LawBeforeFloorTest)",
			sh.name, now, 100*nowErrs, before, 100*beforeErrs)
		if now < want[sh.name] || nowErrs >= beforeErrs {
			t.Errorf("%s: the incident's phase %.2f × the oracle, %.1f%% errors; want ≥ %.2f and fewer errors than %.1f%% (LawBeforeFloorTest: %.2f)",
				sh.name, now, 100*nowErrs, want[sh.name], 100*beforeErrs, before)
		}
	}
}

// incidentPhase runs the scorecard's incident of the shape (5 s warm-up)
// on seeds 1–6 at both offsets under law, and returns its incident's phase
// (from 5 s after the change) as the mean of the goodput ÷ the oracle's and
// of the share of the calls the agency failed.
func incidentPhase(t *testing.T, sh shape, law int) (goodput, errs float64) {
	t.Helper()
	incident := kinds[0]
	if incident.name != "incident" {
		t.Fatalf("kind %q, want the incident", incident.name)
	}
	return kindPhase(t, incident, sh, 2, law)
}

// TestFloorTestReadsTheSlowerAgency: a capacity lost with the calls slowed
// within the client's timeout, at a few slow calls a second. Under
// LawBeforeFloorTestRead the floor's test decided on one period (13 calls
// at the real stack's incident shape, C25 × 250 ms to 9 and ×3: 38%
// failing against 69% at the floor read as the agency's own, and the limit
// went back to the floor of 13 at a capacity of 9), and failures found ours
// were followed by latency cuts against the old baseline, which the
// slowed calls below the floor exceeded 2.6–3.3×: to 4–5 of 9. Now the
// test reads 20 calls, and relearns the baseline from them when they are
// still slow. Seeds 1–6 at both offsets, 5 s warm-up: 0.65 → 0.74 and
// 0.81 → 0.89 × the oracle in the incident's phase.
func TestFloorTestReadsTheSlowerAgency(t *testing.T) {
	ms := time.Millisecond
	shapes := []shape{
		{"C25 250ms 2w 4x, to 9 and ×3 (the real stack's)", 25, 250 * ms, time.Second, 2, 4, 12, 9, 3},
		{"C60 150ms 3w 2x, to 24 and ×2.5", 60, 150 * ms, 500 * ms, 3, 2, 30, 24, 2.5},
	}
	for _, sh := range shapes {
		before, beforeErrs := incidentPhase(t, sh, flowcontrol.LawBeforeFloorTestRead)
		now, nowErrs := incidentPhase(t, sh, 0)
		t.Logf("%s: the incident's phase %.2f × the oracle, %.1f%% errors (%.2f, %.1f%% under LawBeforeFloorTestRead)",
			sh.name, now, 100*nowErrs, before, 100*beforeErrs)
		if now < before+0.05 || nowErrs > beforeErrs {
			t.Errorf("%s: the incident's phase %.2f × the oracle, %.1f%% errors; want 0.05 above LawBeforeFloorTestRead's %.2f, errors no more than its %.1f%%",
				sh.name, now, 100*nowErrs, before, 100*beforeErrs)
		}
	}
}
