package flowcontrol

import (
	"fmt"
	"math"
	"time"
)

// LawBeforeFloorTest pins the control law as it was before the trouble
// floor was tested (AgencyState.FloorTest).
//
// Rule 1 keeps half the Ceiling when the agency is in trouble (most
// failures are calls slower than the client's timeout): a service time
// past the timeout is the breakers' case, not a capacity of ours to learn.
// But a capacity lost together with a slowdown that leaves the calls
// within the timeout looks the same from the limit: our own queue at the
// agency, inflated by the overload, takes the calls past the timeout. Held
// at half the Ceiling, the limit kept that queue for as long as the
// incident lasted. bench-flow's incident at C25 × 250 ms (capacity to 9,
// calls three times slower, 750 ms against a 1 s timeout) held 13 calls at
// the agency: 66% of the calls failed and the phase served 0.40 × the
// oracle (the oracle's own errors 10.6%, the slowed calls' tail; two more
// rounds 0.22 and 0.25). Now 0.65–0.73 over four rounds, 13–31% failing
// (the oracle's 11–14%). In
// flowsim, C25 × 250 ms to 8 and C40 × 150 ms to 16, each slowed ×2 within
// the timeout, served 0.36 and 0.72 × the oracle with 60% and 25% errors
// (TestIncidentWithinTimeoutFloorTested).
//
// Now the floor, once it has held two failure cuts in a row with calls
// succeeding, is tested: the limit goes a quarter below it, and the first
// period whose calls were all sent under the test's limit tells the two
// apart. Failures that fell beyond their noise were ours: the floor is
// lifted until the agency is next seen healthy, and rule 1 cuts on them as
// on a capacity lost. Failures that did not fall are the agency's: the
// limit goes back to the floor and keeps it, untested again, until the
// agency is healthy. Those two flowsim incidents now serve 0.65 and 0.88 ×
// the oracle with 28% and 6.5% errors; the scorecard's shapes read as
// before (2,497 misses and 2,091 steps not converged within 5 s on seeds
// 1–36 at both offsets, against 2,498 and 2,091).
const LawBeforeFloorTest = 19

// Constants of the trouble floor's test.
const (
	// floorTestAfter is how many failure cuts the floor holds before it
	// is tested: the first one it holds may read the calls the cut to it
	// left queued, which drain without a test.
	floorTestAfter = 1
	// floorTestCut is the test's limit, as a share of the floor: deep
	// enough for a queue of ours to drain, shallow enough to cost little
	// where the agency's own trouble makes the test fail. (Half the floor
	// undershot a capacity lost to about the floor: C8 × 1.34 s halved to
	// 4, where half the Ceiling is 4, went to 2 and climbed back a call
	// at a time.)
	floorTestCut = 0.75
	// floorTestWait bounds the periods the test waits, beyond
	// SettlePeriods, for a period whose calls were sent under its limit;
	// then it decides on the period it has.
	floorTestWait = 4
)

// FloorTest is the trouble floor under test: a failure cut held at the
// floor (half the Ceiling) a second time in a row with calls succeeding
// went below it, From → To, at the failure rate FailRate.
type FloorTest struct {
	From     float64 `json:"from"`
	To       float64 `json:"to"`
	FailRate float64 `json:"fail_rate"`
	Age      int     `json:"age"`
}

// testFloor is called when rule 1's floor for an agency in trouble holds a
// failure cut at limit (the floor binds): it counts the cuts held in a row
// with calls still succeeding and, at the second, starts the floor's test
// and returns its limit. ok is false when the floor holds as before.
func (s *AgencyState) testFloor(limit, floor, failRate float64, o Observation, law int) (next float64, ok bool) {
	if !lawHas(law, LawBeforeFloorTest) || limit > floor+0.5 {
		return 0, false
	}
	if o.OK == 0 {
		// Nothing succeeds: an outage, the floor's own case. The first
		// success after one is the agency's recovery, not a test's cue.
		s.FloorHeld = 0
		return 0, false
	}
	s.FloorHeld++
	next = max(limit*floorTestCut, 1)
	if roundLimit(next) >= roundLimit(limit) || s.FloorTested || s.FloorTest != nil || s.FloorHeld <= floorTestAfter {
		// A test that leaves the calls at the agency as they were (a
		// floor of 2, a quarter below it 1.5) would read the floor's
		// own noise.
		return 0, false
	}
	s.FloorTest = &FloorTest{From: limit, To: next, FailRate: failRate}
	return next, true
}

// floorLifted reports whether the floor's test found the failures ours:
// rule 1 then cuts on them with no floor.
func (s AgencyState) floorLifted(law int) bool {
	return s.FloorOurs && lawHas(law, LawBeforeFloorTest)
}

// checkFloorTest reads the floor's test, if one is under way: until a
// period's calls were all sent under the test's limit (SettlePeriods, and
// one and a half latencies of the calls that succeed: a timeout shows a
// client's timeout after the call was sent), every rule holds; then the
// failure rate read is compared with the one at the floor. held is false
// when the rules read on (no test, or failures that fell: ours); note then
// says what the test found, if anything.
func (s *AgencyState) checkFloorTest(sig signals, o Observation, c AgencyConfig, period time.Duration) (note string, held bool) {
	t := s.FloorTest
	if t == nil {
		return "", false
	}
	lat := sig.lat
	due := t.Age >= c.SettlePeriods && (lat <= 0 || time.Duration(t.Age-1)*period >= lat+lat/2) && o.InFlight <= roundLimit(t.To)+1
	if !due && t.Age <= c.SettlePeriods+floorTestWait {
		s.Streak, s.Rule = 0, ruleWaitCut
		return fmt.Sprintf("hold: failures %.0f%%, testing the trouble floor %.1f at %.1f", 100*sig.failRate, t.From, t.To), true
	}
	s.FloorTest, s.FloorTested = nil, true
	// Fell beyond the noise of the rate read at the floor, over this
	// period's calls (noiseSigmas standard errors).
	p := t.FailRate
	fell := o.Calls > 0 && o.OK > 0 && sig.failRate < p-noiseSigmas*math.Sqrt(p*(1-p)/float64(o.Calls))
	if fell {
		s.FloorOurs, s.Cooldown = true, 0
		return fmt.Sprintf("trouble floor tested: failures %.0f%% at %.1f against %.0f%% at %.1f, ours: no floor; ",
			100*sig.failRate, t.To, 100*p, t.From), false
	}
	s.Limit, s.Floor, s.Cooldown, s.Streak, s.Rule = max(sig.limit, t.From), t.From, c.SettlePeriods, 0, ruleCutFailure
	return fmt.Sprintf("trouble floor tested: failures %.0f%% at %.1f against %.0f%% at %.1f, the agency's own: back to %.1f",
		100*sig.failRate, t.To, 100*p, t.From, s.Limit), true
}
