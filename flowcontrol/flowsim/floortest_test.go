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
// LawBeforeRefusedLatencyCut's change 0.69 and 0.89, 28% and 6.9%).
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
	const warmup = 5 * time.Second
	n := 0
	for _, off := range []time.Duration{0, 500 * time.Millisecond} {
		for seed := uint64(1); seed <= 6; seed++ {
			sc := scorecardScenario(incident, sh, seed, off, warmup)
			oracle := run(t, sc, Policy{Name: "oracle", Oracle: true, Workers: sh.workers})
			p := shapeController(sh)
			p.Law = law
			ctl := run(t, sc, p)
			ph := ctl.Phases[2]
			goodput += ph.Goodput / oracle.Phases[2].Goodput
			if c := ph.OK + ph.Errors; c > 0 {
				errs += float64(ph.Errors) / float64(c)
			}
			n++
		}
	}
	return goodput / float64(n), errs / float64(n)
}
