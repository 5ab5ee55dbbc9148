package flowsim

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// steadyBand is one steady run's reading: the periods from 30 s on, those
// with the limit within ±max(10%, 1 call) of the capacity, and the times
// the limit left that band (excursions), above the capacity or below it.
type steadyBand struct {
	periods, in, above, below int
}

func (b *steadyBand) add(o steadyBand) {
	b.periods += o.periods
	b.in += o.in
	b.above += o.above
	b.below += o.below
}

func (b steadyBand) share() float64 {
	if b.periods == 0 {
		return 0
	}
	return float64(b.in) / float64(b.periods)
}

// readSteadyBand reads a run's trace from `from` on. An excursion is
// counted when the limit leaves the band, so a limit held out of it for
// many periods counts once.
func readSteadyBand(trace []Sample, from time.Duration) steadyBand {
	var b steadyBand
	was := true
	for _, s := range trace {
		if s.T < from {
			continue
		}
		b.periods++
		ok := withinBand(s)
		switch {
		case ok:
			b.in++
		case was && s.Limit > s.Capacity:
			b.above++
		case was:
			b.below++
		}
		was = ok
	}
	return b
}

// Bounds of TestSteadyBandEveryShape over the 25 shapes × seeds 1–3. Law
// 27 stands at 0.916 of the periods within the band and 207 excursions
// above the capacity. Pinned to the law before change 1 or change 5
// (SCORECARD_LAW=1, 5), the shapes read 0.83 within the band, which fails
// the share; before change 10, 0.913.
const (
	steadyBandShare = 0.90
	steadyAboveMost = 230
)

// TestSteadyBandEveryShape runs every shape of the scorecard (the tuned
// ones and held-out sets A, B and C) at its load against a capacity that
// never changes, for 300 s from its initial limit, seeds 1–3, and reads how
// much of the time from 30 s on the limit stayed within ±max(10%, 1 call)
// of the capacity, and how often it left that band: the cost of probing a
// capacity the controller has confirmed, and of readings too noisy to tell
// a call or two too many. The scorecard's phases (20 and 30 s) hold one
// probe at most; this shows what the probes' cadence costs over minutes.
//
// Law 27, seeds 1–3: 0.916 of the periods within the band. Most of the
// time out of it is at calls of a second or more (A2 C6 × 2 s at 0.59, A4
// C10 × 1 s at 0.79, C2 C2 × 5 s at 0.53, C5 C7 × 3 s at 0.78):
// ten calls a period read the latency within ±8%, as far as one call too
// many moves it, and the limit wanders a call or two about the capacity.
// STEADY_TRACE=<shape name>/<seed> logs that run's trace; SCORECARD_LAW
// pins an earlier law, as for the scorecard.
func TestSteadyBandEveryShape(t *testing.T) {
	sets := []struct {
		name   string
		shapes []shape
	}{{"tuned", shapes}, {"A", heldOutA}, {"B", heldOutB}, {"C", heldOutC}}
	law := scorecardLaw(t)
	var total steadyBand
	for _, set := range sets {
		for _, sh := range set.shapes {
			var b steadyBand
			for seed := uint64(1); seed <= 3; seed++ {
				sc := recoveryIncident(sh, seed)
				sc.Name = sh.name + " / steady"
				sc.Duration = 300 * time.Second
				sc.Capacity = func(time.Duration) int { return sh.capacity }
				sc.ServiceFactor = nil
				sc.Steps = []time.Duration{0}
				p := shapeController(sh)
				p.Law = law
				ctl := run(t, sc, p)
				if os.Getenv("STEADY_TRACE") == fmt.Sprintf("%s/%d", sh.name, seed) {
					for _, x := range ctl.Trace {
						t.Logf("  t=%5.1fs cap=%3d limit=%3d in-flight=%3d ok=%4d err=%3d latency=%7.1fms  %s",
							x.T.Seconds(), x.Capacity, x.Limit, x.InFlight, x.OK, x.Errors, x.LatencyMs, x.Reason)
					}
				}
				b.add(readSteadyBand(ctl.Trace, 30*time.Second))
			}
			t.Logf("%-5s %-42s within the band %.3f of the periods; left it %d times above the capacity, %d below",
				set.name, sh.name, b.share(), b.above, b.below)
			total.add(b)
		}
	}
	t.Logf("every shape, seeds 1–3: within the band %.3f of the periods; left it %d times above the capacity, %d below",
		total.share(), total.above, total.below)
	if total.share() < steadyBandShare {
		t.Errorf("within the band %.3f of the periods, want ≥ %.2f", total.share(), steadyBandShare)
	}
	if total.above > steadyAboveMost {
		t.Errorf("left the band %d times above the capacity, want at most %d", total.above, steadyAboveMost)
	}
}
