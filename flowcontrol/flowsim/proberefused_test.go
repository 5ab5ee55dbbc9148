package flowsim

import (
	"testing"
	"time"

	"loanflow/flowcontrol"
)

// TestProbeRefusedAtOnce halves the capacity of an agency with no queue,
// which refuses at once beyond its capacity (the scorecard's "no queue ½",
// 5 s warm-up, seeds 1–6 at both offsets), on the shape, the flow
// benchmark's small agency and a shape the law was not tuned on, and holds
// the loss's phase to its refusals.
//
// Held at the capacity left, the limit probes a call beyond it toward the
// capacity the agency had before: only such a probe finds the capacity
// come back, as nothing else changes at an agency that never queues. Under
// LawBeforeProbeRefused the probe's lone refusal was read with the next
// period, as any lone refusal is, so each probe stood two or three periods
// and was refused in each. Now one refusal in a period of a few calls
// refutes a one-call probe at once: 13.2% → 9.9%, 11.5% → 6.2% and
// 8.7% → 5.2% of the phase's calls refused, goodput unchanged. Still above
// the 2% target: a probe every few seconds at a few calls a second is
// refused once each time (see the lab notes).
func TestProbeRefusedAtOnce(t *testing.T) {
	ms := time.Millisecond
	shapes := []shape{
		{"issue, from C: C8 1.34s 2w 4x", 8, 1340 * ms, 3 * time.Second, 2, 4, 8, 3, 3},
		{"C5 300ms 1w 3x", 5, 300 * ms, time.Second, 1, 3, 2, 2, 2},
		{"bench small: C4 600ms 2w 4x", 4, 600 * ms, 2 * time.Second, 2, 4, 4, 2, 3},
	}
	noQueue := kinds[3]
	if noQueue.name != "no queue ½" {
		t.Fatalf("kind %q, want the capacity halved at an agency with no queue", noQueue.name)
	}
	for _, sh := range shapes {
		before, beforeErrs := kindPhase(t, noQueue, sh, 2, flowcontrol.LawBeforeProbeRefused)
		now, nowErrs := kindPhase(t, noQueue, sh, 2, 0)
		t.Logf("%s: the loss's phase %.2f × the oracle, %.1f%% refused (%.2f, %.1f%% under LawBeforeProbeRefused)",
			sh.name, now, 100*nowErrs, before, 100*beforeErrs)
		if nowErrs > 0.8*beforeErrs || now < before-0.02 {
			t.Errorf("%s: the loss's phase %.2f × the oracle, %.1f%% refused; want at most 0.8 ×  LawBeforeProbeRefused's %.1f%%, goodput no more than 0.02 below its %.2f",
				sh.name, now, 100*nowErrs, 100*beforeErrs, before)
		}
	}
}

// kindPhase runs the scorecard's kind on the shape (5 s warm-up) on seeds
// 1–6 at both offsets under law, and returns the phase's (from 5 s after
// its step) mean goodput ÷ the oracle's and mean share of calls failed.
func kindPhase(t *testing.T, k kind, sh shape, phase int, law int) (goodput, errs float64) {
	t.Helper()
	const warmup = 5 * time.Second
	n := 0
	for _, off := range []time.Duration{0, 500 * time.Millisecond} {
		for seed := uint64(1); seed <= 6; seed++ {
			sc := scorecardScenario(k, sh, seed, off, warmup)
			oracle := run(t, sc, Policy{Name: "oracle", Oracle: true, Workers: sh.workers})
			p := shapeController(sh)
			p.Law = law
			ctl := run(t, sc, p)
			ph := ctl.Phases[phase]
			goodput += ph.Goodput / oracle.Phases[phase].Goodput
			if c := ph.OK + ph.Errors; c > 0 {
				errs += float64(ph.Errors) / float64(c)
			}
			n++
		}
	}
	return goodput / float64(n), errs / float64(n)
}
