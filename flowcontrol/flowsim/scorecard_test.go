package flowsim

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"loanflow/flowcontrol"
)

var scorecard = flag.Bool("scorecard", false, "run TestScorecard: every shape's incident, capacity step, slowdown and queue-less capacity step against the issue's per-phase targets")

// A scorecard kind is one change of the agency, applied to every shape from
// 30 s to 50 s after a load step at 0 s.
type kind struct {
	name string
	// lasting: the change stays to the run's end (lastingKinds); it has no
	// recovery, and its second score is whether the limit settled.
	lasting bool
	// scenario returns the shape's run of this kind, its change and
	// recovery off later than 30 s and 50 s.
	scenario func(sh shape, seed uint64, off time.Duration) Scenario
}

// kinds are the four the scorecard runs on every shape: the shape's own
// incident (capacity drop and slowdown together), its capacity halved alone,
// its service time slowed alone by as much as keeps the calls within the
// client's timeout (slowFactor), and its capacity halved at an agency with
// no queue, which refuses at once beyond its capacity (refusingAgency).
var kinds = []kind{
	{name: "incident", scenario: func(sh shape, seed uint64, off time.Duration) Scenario { return recoveryIncidentAt(sh, seed, off) }},
	{name: "capacity ½", scenario: func(sh shape, seed uint64, off time.Duration) Scenario {
		sh.dropTo, sh.slowdown = max(sh.capacity/2, 1), 1
		return recoveryIncidentAt(sh, seed, off)
	}},
	{name: "slowdown", scenario: func(sh shape, seed uint64, off time.Duration) Scenario {
		sh.dropTo, sh.slowdown = sh.capacity, slowFactor(sh)
		return recoveryIncidentAt(sh, seed, off)
	}},
	{name: "no queue ½", scenario: func(sh shape, seed uint64, off time.Duration) Scenario {
		sh.dropTo, sh.slowdown = max(sh.capacity/2, 1), 1
		return refusingAgency(recoveryIncidentAt(sh, seed, off))
	}},
}

// lastingKinds are the scorecard's with SCORECARD_LASTING=1, instead of
// kinds: the shape's capacity taken to 70% at 30 s for good, at its own
// agency and at one with no queue. No capacity comes back, so a law tuned
// on kinds alone, where every regrow toward the old capacity is right in
// the end, shows here what its probes and regrows cost; each run scores its
// phases and whether the limit settled (within ±max(10%, 1 call) of the
// capacity left, for good, within 5 s of the loss).
var lastingKinds = []kind{
	{name: "lost 70%", scenario: func(sh shape, seed uint64, off time.Duration) Scenario {
		return lostForGood(sh, seed, off)
	}, lasting: true},
	{name: "no queue lost 70%", scenario: func(sh shape, seed uint64, off time.Duration) Scenario {
		return refusingAgency(lostForGood(sh, seed, off))
	}, lasting: true},
}

// lostForGood is the shape's run with its capacity taken to 70% at 30 s
// (off later) for good.
func lostForGood(sh shape, seed uint64, off time.Duration) Scenario {
	sh.dropTo, sh.slowdown = max(sh.capacity*7/10, 1), 1
	sc := recoveryIncidentAt(sh, seed, off)
	sc.Capacity = func(t time.Duration) int {
		if t >= 30*time.Second+off {
			return sh.dropTo
		}
		return sh.capacity
	}
	return sc
}

// slowFactor is the slowdown the scorecard applies to a shape: ×2, or less
// where a call's p99 (1.8× its median at the simulator's jitter of 0.25)
// would pass the client's timeout, so every strategy can still serve the
// calls and the phase is scored.
func slowFactor(sh shape) float64 {
	return min(2, float64(sh.clientTimeout)/(1.8*float64(sh.service)))
}

// scorecardScenario is the kind's run measured from the start: the load
// step at 0 s (from the shape's initial limit), the change at 30 s and the
// recovery at 50 s (each off later), each phase scored from PhaseSettle
// after its step.
//
// With a warm-up w (SCORECARD_WARMUP), the run starts with w at half the
// agency's nominal rate, as the real-stack benchmark does, and everything
// after it (the load step, the change and the recovery) comes w later: the
// first baseline is then learnt before the demand comes, as on the real
// stack, instead of under demand from the start.
func scorecardScenario(k kind, sh shape, seed uint64, off, warmup time.Duration) Scenario {
	sc := k.scenario(sh, seed, off+warmup)
	sc.Name = sh.name + " / " + k.name
	sc.MeasureFrom = PhaseSettle
	sc.Steps = []time.Duration{0, 30*time.Second + off, 50*time.Second + off}
	if k.lasting {
		sc.Steps = sc.Steps[:2]
	}
	if warmup > 0 {
		full, half := sc.Load, sc.Agency.NominalRate()/2
		sc.Load = func(t time.Duration) float64 {
			if t < warmup {
				return half
			}
			return full(t)
		}
		sc.Duration += warmup
		sc.MeasureFrom = 0
		for i := range sc.Steps {
			sc.Steps[i] += warmup
		}
	}
	return sc
}

// Targets of the scorecard, per phase from PhaseSettle after each step.
const (
	targetGoodput = 0.9  // × the oracle's
	targetErrors  = 0.02 // agency errors over the calls the agency ended
)

// TestScorecard runs every shape's incident, capacity step, slowdown and
// capacity step at an agency with no queue (kinds) from the start on seeds 1–6 (or SCORECARD_SEEDS) and holds each phase
// to the targets: goodput ≥ 0.9 × the oracle's and agency errors ≤ 2% from
// 5 s after each step (a phase whose service time exceeds the client's
// timeout is not scored),
// and the limit back at 90% of the capacity within 5 s of the recovery. It
// is the lab's record of where the law stands against those targets, not a
// gate: it runs only with -scorecard, and lists every miss and a count per
// kind. SCORECARD_SEEDS=<from>-<to> runs other seeds than 1–6 (the
// misses move by a few between neighbouring settings of the law: a change
// is worth keeping when it holds on a second set of seeds);
// SCORECARD_SHAPE=<shape prefix> runs only the shapes it names;
// SCORECARD_TRACE=<shape prefix>, SCORECARD_KIND=<kind> and
// SCORECARD_SEED=<n> add that run's trace. SCORECARD_OFFSET=<duration>
// (less than a period, e.g. 500ms) moves the change and the recovery that
// much later: the controller's periods end on whole seconds, so at 0 both
// fall on a period's edge, where on the real stack they fall inside one
// (the period then reads the change in part). SCORECARD_WARMUP=<duration>
// (e.g. 5s) runs that long at half the nominal rate before the load step,
// as the real-stack benchmark does. SCORECARD_LASTING=1 runs lastingKinds
// instead: the capacity lost for good, each run scored on its two phases and
// on the limit settled at the capacity left within 5 s (its "back" column
// then gives the seconds to settle). SCORECARD_SET=a, b or c runs the held-out
// shapes (heldOutA, heldOutB, heldOutC) instead of the tuned ones; SCORECARD_JITTER=<σ>
// spreads every shape's calls by that lognormal σ instead of 0.25;
// SCORECARD_LAW=<n> runs the law as flowcontrol.State.Law pins it (e.g. 28,
// flowcontrol.LawBeforeWellReadLevel), so two laws are compared from one
// build. `make scorecard` (dev/bench/scorecard) runs every set on two
// ranges of seeds and sums the misses.
//
//	go test ./flowcontrol/flowsim -run TestScorecard -v -args -scorecard
func TestScorecard(t *testing.T) {
	if !*scorecard {
		t.Skip("the lab's scorecard: run with -scorecard")
	}
	seeds := scorecardSeeds(t)
	off := scorecardOffset(t)
	warmup := scorecardWarmup(t)
	shapes := scorecardShapes(t)
	jitter := scorecardJitter(t)
	law := scorecardLaw(t)
	var lines []string
	misses, unconverged, runs := map[string]int{}, map[string]int{}, map[string]int{}
	// causes tallies, per kind and step, what kept the limit out of the
	// band after the steps it did not converge on within 5 s.
	causes := map[string]causeCounts{}
	table := []string{
		"| change | shape | phase 1 ÷ oracle | phase 2 ÷ oracle | phase 3 ÷ oracle | errors (worst phase) | back at 90% (s, per seed) | misses | not converged in 5 s |",
		"|---|---|---:|---:|---:|---:|---|---:|---:|",
	}
	set := kinds
	if os.Getenv("SCORECARD_LASTING") == "1" {
		set = lastingKinds
	}
	for _, k := range set {
		for _, sh := range shapes {
			if want := os.Getenv("SCORECARD_SHAPE"); want != "" && !strings.HasPrefix(sh.name, want) {
				continue
			}
			var sum [4]float64
			var worst float64
			var backs []string
			shapeMisses, shapeUnconverged := 0, 0
			scored2 := true
			for _, seed := range seeds {
				sc := scorecardScenario(k, sh, seed, off, warmup)
				if jitter > 0 {
					sc.Agency.Jitter = jitter
				}
				runs[k.name]++
				// Read in the middle of the change, which the warm-up moves later.
				unservable := time.Duration(sc.ServiceFactor(40*time.Second+off+warmup)*float64(sh.service)) > sh.clientTimeout
				oracle := run(t, sc, Policy{Name: "oracle", Oracle: true, Workers: sh.workers})
				p := shapeController(sh)
				p.Law = law
				ctl := run(t, sc, p)
				var b strings.Builder
				fmt.Fprintf(&b, "%-10s %-34s s%d", k.name, sh.name, seed)
				for i, ph := range ctl.Phases {
					if i == 0 {
						continue // before the load step: empty
					}
					// A phase in which the oracle served nothing (C2's
					// slowed calls, 10 s each in a 15 s phase) holds
					// nothing to compare with.
					ratio := 1.0
					if og := oracle.Phases[i].Goodput; og > 0 {
						ratio = ph.Goodput / og
					}
					errs := 0.0
					if n := ph.OK + ph.Errors; n > 0 {
						errs = float64(ph.Errors) / float64(n)
					}
					fmt.Fprintf(&b, " | p%d %.2f err %4.1f%% limit %4.1f/%2.0f", i, ratio, 100*errs, ph.MeanLimit, ph.MeanCapacity)
					if i == 2 && unservable {
						b.WriteString(" (not scored)")
						scored2 = false
						continue
					}
					sum[i] += ratio
					worst = max(worst, errs)
					if ratio < targetGoodput || errs > targetErrors {
						misses[k.name]++
						shapeMisses++
						t.Errorf("%s, %s seed %d phase %d: goodput %.2f × oracle, errors %.1f%%; want ≥ %.2f and ≤ %.0f%%",
							k.name, sh.name, seed, i, ratio, 100*errs, targetGoodput, 100*targetErrors)
					}
				}
				// Convergence (within ±max(10%, 1 call) of the capacity for
				// good, until the next step) within 5 s of each step is
				// counted apart, not in the misses: the miss counts stay
				// comparable with the lab's earlier ones.
				for i, c := range ctl.Convergence {
					if i == 1 && unservable {
						continue
					}
					if c < 0 || c > recoverWithin {
						unconverged[fmt.Sprint(k.name, i)]++
						shapeUnconverged++
						to := sc.Duration
						if i+1 < len(sc.Steps) {
							to = sc.Steps[i+1]
						}
						key := fmt.Sprint(k.name, i)
						if causes[key] == nil {
							causes[key] = causeCounts{}
						}
						causes[key][excursionCause(ctl.Trace, sc.Steps[i], to)]++
					}
				}
				// The second score: the limit back at 90% of the capacity
				// within 5 s of its recovery, or for a lasting kind, which
				// has none, settled at the capacity left within 5 s of the
				// loss.
				at := reachedFraction(ctl.Trace, 50*time.Second+off+warmup, 0.9)
				fmt.Fprintf(&b, " | converged %s", convergenceString(ctl.Convergence))
				if k.lasting {
					at = ctl.Convergence[1]
				} else {
					fmt.Fprintf(&b, " | back %s", convergenceString([]time.Duration{at}))
				}
				backs = append(backs, strings.TrimSuffix(convergenceString([]time.Duration{at}), "s"))
				if at < 0 || at > recoverWithin {
					misses[k.name+" recovery"]++
					shapeMisses++
					what := "back at 90%% of the capacity %s after the recovery"
					if k.lasting {
						what = "settled at the capacity left %s after the loss"
					}
					t.Errorf("%s, %s seed %d: limit "+what+", want ≤ %s", k.name, sh.name, seed, convergenceString([]time.Duration{at}), recoverWithin)
				}
				lines = append(lines, b.String())
				if want := os.Getenv("SCORECARD_TRACE"); want != "" && strings.HasPrefix(sh.name, want) &&
					os.Getenv("SCORECARD_SEED") == fmt.Sprint(seed) && os.Getenv("SCORECARD_KIND") == k.name {
					for _, s := range ctl.Trace {
						lines = append(lines, fmt.Sprintf("  t=%4.0fs cap=%2d limit=%3d in-flight=%3d ok=%4d err=%3d exp=%3d latency=%6.1fms  %s",
							s.T.Seconds(), s.Capacity, s.Limit, s.InFlight, s.OK, s.Errors, s.Expired, s.LatencyMs, s.Reason))
					}
				}
			}
			n := float64(len(seeds))
			p2, p3 := fmt.Sprintf("%.2f", sum[2]/n), fmt.Sprintf("%.2f", sum[3]/n)
			if !scored2 {
				p2 = "not scored"
			}
			if k.lasting {
				p3 = "–"
			}
			table = append(table, fmt.Sprintf("| %s | %s | %.2f | %s | %s | %.1f%% | %s | %d | %d |",
				k.name, sh.name, sum[1]/n, p2, p3, 100*worst, strings.Join(backs, " "), shapeMisses, shapeUnconverged))
		}
	}
	for _, k := range set {
		if k.lasting {
			lines = append(lines, fmt.Sprintf("misses %-10s: %d phases, %d unsettled (not converged within 5 s: %d after the load step, of %d runs)",
				k.name, misses[k.name], misses[k.name+" recovery"], unconverged[k.name+"0"], runs[k.name]))
			continue
		}
		lines = append(lines, fmt.Sprintf("misses %-10s: %d phases, %d recoveries (not converged within 5 s: %d after the load step, %d after the change, %d after the recovery, of %d runs)",
			k.name, misses[k.name], misses[k.name+" recovery"], unconverged[k.name+"0"], unconverged[k.name+"1"], unconverged[k.name+"2"], runs[k.name]))
	}
	lines = append(lines, "", "What kept the limit out of the band after the steps it did not converge on within 5 s: the last decision other than a hold before its last excursion (figures as N), at most 6 per step:")
	steps := []string{"the load step", "the change", "the recovery"}
	for _, k := range set {
		for i, step := range steps {
			if c := causes[fmt.Sprint(k.name, i)]; len(c) > 0 {
				lines = append(lines, fmt.Sprintf("  %s, after %s:", k.name, step))
				lines = append(lines, c.lines(6)...)
			}
		}
	}
	lines = append(lines, "", "Mean over the seeds (phases from 5 s after their step; misses: phases below 0.9 × oracle or above 2% errors, and recoveries over 5 s; not converged: steps after which the limit was not within ±max(10%, 1 call) of the capacity for good within 5 s, the unscored incident phase left out):", "")
	lines = append(lines, table...)
	t.Log("\n" + strings.Join(lines, "\n"))
}

// heldOutA, heldOutB and heldOutC are the scorecard's held-out shapes
// (SCORECARD_SET=a, b, c): shapes the law was not tuned on, on which the lab
// checks that a change gains beyond the tuned ones (docs/flow-control-lab.md,
// law 20). Set A is law 19's six; set B spans 5 to 100 calls in service. Set C
// takes the agency past both ends of the others: 2 to 200 calls in service,
// calls of 50 ms to 5 s (longer than the control period), and a load of 6×
// the capacity.
var (
	heldOutA = []shape{
		{"A1 C30 500ms 2w 2x", 30, 500 * time.Millisecond, 1500 * time.Millisecond, 2, 2, 15, 12, 2},
		{"A2 C6 2s 1w 3x", 6, 2 * time.Second, 5 * time.Second, 1, 3, 6, 2, 2},
		{"A3 C40 150ms 3w 2x", 40, 150 * time.Millisecond, 500 * time.Millisecond, 3, 2, 20, 16, 2},
		{"A4 C10 1s 3w 3x", 10, time.Second, 3 * time.Second, 3, 3, 5, 4, 2},
		{"A5 C25 250ms 1w 1.5x", 25, 250 * time.Millisecond, 800 * time.Millisecond, 1, 1.5, 25, 8, 2},
		{"A6 C3 800ms 2w 5x", 3, 800 * time.Millisecond, 2500 * time.Millisecond, 2, 5, 3, 1, 2},
	}
	heldOutB = []shape{
		{"B1 C50 200ms 2w 2x", 50, 200 * time.Millisecond, 700 * time.Millisecond, 2, 2, 25, 20, 2.5},
		{"B2 C8 700ms 2w 3x", 8, 700 * time.Millisecond, 2500 * time.Millisecond, 2, 3, 4, 3, 2.5},
		{"B3 C15 400ms 1w 2x", 15, 400 * time.Millisecond, 1200 * time.Millisecond, 1, 2, 15, 5, 2},
		{"B4 C100 100ms 4w 1.5x", 100, 100 * time.Millisecond, 400 * time.Millisecond, 4, 1.5, 50, 40, 2},
		{"B5 C5 300ms 1w 3x", 5, 300 * time.Millisecond, time.Second, 1, 3, 2, 2, 2},
		{"B6 C20 600ms 2w 2x", 20, 600 * time.Millisecond, 2 * time.Second, 2, 2, 10, 7, 2.5},
	}
	heldOutC = []shape{
		{"C1 C200 50ms 4w 2x", 200, 50 * time.Millisecond, 200 * time.Millisecond, 4, 2, 50, 100, 2},
		{"C2 C2 5s 1w 3x", 2, 5 * time.Second, 12 * time.Second, 1, 3, 2, 1, 2},
		{"C3 C64 1s 3w 2x", 64, time.Second, 3 * time.Second, 3, 2, 10, 30, 2},
		{"C4 C12 150ms 2w 6x", 12, 150 * time.Millisecond, 500 * time.Millisecond, 2, 6, 12, 5, 2},
		{"C5 C7 3s 2w 2x", 7, 3 * time.Second, 8 * time.Second, 2, 2, 7, 3, 2},
	}
)

// scorecardShapes returns the shapes SCORECARD_SET names: the tuned ones
// (shapes) by default, or a held-out set.
func scorecardShapes(t *testing.T) []shape {
	switch v := os.Getenv("SCORECARD_SET"); v {
	case "", "tuned":
		return shapes
	case "a":
		return heldOutA
	case "b":
		return heldOutB
	case "c":
		return heldOutC
	default:
		t.Fatalf("SCORECARD_SET %q: accepted tuned (the default), a, b or c", v)
		return nil
	}
}

// scorecardJitter returns the lognormal σ SCORECARD_JITTER names, 0 (each
// shape's own, 0.25) by default.
func scorecardJitter(t *testing.T) float64 {
	v := os.Getenv("SCORECARD_JITTER")
	if v == "" {
		return 0
	}
	j, err := strconv.ParseFloat(v, 64)
	if err != nil || !(j > 0 && j <= 2) {
		t.Fatalf("SCORECARD_JITTER %q: accepted a lognormal σ above 0 and at most 2, e.g. 0.12", v)
	}
	return j
}

// scorecardLaw returns the law SCORECARD_LAW pins, 0 (the current law) by
// default.
func scorecardLaw(t *testing.T) int {
	v := os.Getenv("SCORECARD_LAW")
	if v == "" {
		return 0
	}
	law, err := strconv.Atoi(v)
	if err != nil || law < 0 || law > flowcontrol.LastLaw {
		t.Fatalf("SCORECARD_LAW %q: accepted 0 (the current law) or a law flowcontrol pins, up to %d (flowcontrol.LastLaw)", v, flowcontrol.LastLaw)
	}
	return law
}

// scorecardOffset returns the offset SCORECARD_OFFSET names, 0 by default.
func scorecardOffset(t *testing.T) time.Duration {
	v := os.Getenv("SCORECARD_OFFSET")
	if v == "" {
		return 0
	}
	off, err := time.ParseDuration(v)
	if err != nil || off < 0 || off >= time.Second {
		t.Fatalf("SCORECARD_OFFSET %q: accepted a duration from 0 up to the 1 s period, e.g. 500ms", v)
	}
	return off
}

// scorecardWarmup returns the warm-up SCORECARD_WARMUP names, none by
// default.
func scorecardWarmup(t *testing.T) time.Duration {
	v := os.Getenv("SCORECARD_WARMUP")
	if v == "" {
		return 0
	}
	w, err := time.ParseDuration(v)
	if err != nil || w < 0 || w > time.Minute {
		t.Fatalf("SCORECARD_WARMUP %q: accepted a duration from 0 to 1m, e.g. 5s", v)
	}
	return w
}

// scorecardSeeds returns the seeds SCORECARD_SEEDS names (from-to,
// inclusive), 1–6 by default.
func scorecardSeeds(t *testing.T) []uint64 {
	from, to := uint64(1), uint64(6)
	if v := os.Getenv("SCORECARD_SEEDS"); v != "" {
		if _, err := fmt.Sscanf(v, "%d-%d", &from, &to); err != nil || from < 1 || to < from {
			t.Fatalf("SCORECARD_SEEDS %q: accepted <from>-<to>, 1 ≤ from ≤ to", v)
		}
	}
	seeds := make([]uint64, 0, to-from+1)
	for s := from; s <= to; s++ {
		seeds = append(seeds, s)
	}
	return seeds
}
