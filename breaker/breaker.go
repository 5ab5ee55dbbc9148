// Package breaker holds the per-agency circuit breaker: its states, the pure
// state machine the flow controller steps once per control period, and the
// routing rules workflows apply to the state they read.
//
// The controller's first answer to a failing agency is a smaller pool; the
// breaker acts only when that is not enough:
//
//   - closed → half_open: the failure rate stays above FailureThreshold for
//     FloorPeriods consecutive verdicts while the pool is already at its
//     floor. A verdict needs MinCalls calls: with a busy agency that is every
//     period; a pool at its floor lets few calls through, so its periods add
//     up until there are enough;
//   - half_open → open: failures go on for OpenAfterPeriods more periods;
//   - open → half_open: after CoolDown, to probe with a little traffic;
//   - half_open → closed: the success rate reaches RecoverySuccessRate for
//     RecoveryPeriods consecutive verdicts (half open, every probe call is
//     evidence: one call makes a verdict); a verdict short of it, failing or
//     not, starts the count again.
//
// Requiring consecutive bad periods is the flapping protection: a breaker
// that has just closed does not reopen on its first failure.
//
// Defaults (DefaultConfig): FailureThreshold 0.5, FloorPeriods 3,
// OpenAfterPeriods 3, CoolDown 30 s, RecoverySuccessRate 0.95,
// RecoveryPeriods 3, MinCalls 3, ProbeFraction 0.10, ProbeCalls 1.
package breaker

import (
	"fmt"
	"hash/fnv"
	"time"
)

// State is a breaker's position.
type State string

// The three breaker states.
const (
	Closed   State = "closed"
	HalfOpen State = "half_open"
	Open     State = "open"
)

// Parse checks a state name.
func Parse(s string) (State, error) {
	switch State(s) {
	case Closed, HalfOpen, Open:
		return State(s), nil
	}
	return "", fmt.Errorf("invalid breaker state %q: accepted closed, half_open or open", s)
}

// Config tunes one agency's breaker.
type Config struct {
	FailureThreshold    float64       `json:"failure_threshold"`
	FloorPeriods        int           `json:"floor_periods"`
	OpenAfterPeriods    int           `json:"open_after_periods"`
	CoolDown            time.Duration `json:"cool_down"`
	RecoverySuccessRate float64       `json:"recovery_success_rate"`
	RecoveryPeriods     int           `json:"recovery_periods"`
	MinCalls            int64         `json:"min_calls"`
	ProbeFraction       float64       `json:"probe_fraction"`
	// ProbeCalls is how many synthetic calls the controller sends a half-open
	// mandatory bureau each period (0 means 1): the bounded trickle that
	// judges it while the loan entry stays closed.
	ProbeCalls int `json:"probe_calls,omitempty"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		FailureThreshold:    0.5,
		FloorPeriods:        3,
		OpenAfterPeriods:    3,
		CoolDown:            30 * time.Second,
		RecoverySuccessRate: 0.95,
		RecoveryPeriods:     3,
		MinCalls:            3,
		ProbeFraction:       0.10,
	}
}

// Validate names the first field out of range.
func (c Config) Validate() error {
	switch {
	case c.FailureThreshold <= 0 || c.FailureThreshold > 1:
		return fmt.Errorf("breaker failure_threshold %g: accepted more than 0 and at most 1", c.FailureThreshold)
	case c.FloorPeriods < 1:
		return fmt.Errorf("breaker floor_periods %d: accepted 1 or more", c.FloorPeriods)
	case c.OpenAfterPeriods < 1:
		return fmt.Errorf("breaker open_after_periods %d: accepted 1 or more", c.OpenAfterPeriods)
	case c.CoolDown <= 0:
		return fmt.Errorf("breaker cool_down %s: accepted more than 0", c.CoolDown)
	case c.RecoverySuccessRate <= 0 || c.RecoverySuccessRate > 1:
		return fmt.Errorf("breaker recovery_success_rate %g: accepted more than 0 and at most 1", c.RecoverySuccessRate)
	case c.RecoveryPeriods < 1:
		return fmt.Errorf("breaker recovery_periods %d: accepted 1 or more", c.RecoveryPeriods)
	case c.MinCalls < 1:
		return fmt.Errorf("breaker min_calls %d: accepted 1 or more", c.MinCalls)
	case c.ProbeFraction < 0 || c.ProbeFraction > 1:
		return fmt.Errorf("breaker probe_fraction %g: accepted 0 to 1", c.ProbeFraction)
	case c.ProbeCalls < 0 || c.ProbeCalls > 10:
		return fmt.Errorf("breaker probe_calls %d: accepted 0 (meaning 1) to 10", c.ProbeCalls)
	}
	return nil
}

// Machine is one agency's breaker between control periods.
type Machine struct {
	State  State     `json:"state"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
	// Override, when set, is an operator's forced state; the machine keeps
	// counting but does not move until the override is cleared.
	Override *Override `json:"override,omitempty"`
	// Consecutive failing and healthy verdicts counted toward the next move.
	Bad  int `json:"bad_periods"`
	Good int `json:"good_periods"`
	// Evidence gathered toward the next verdict: a pool at its floor lets
	// only a trickle of calls through, so periods add up until MinCalls.
	Calls    int64   `json:"calls"`
	Failures float64 `json:"failures"`
}

// Override is an operator's forced state with the reason given.
type Override struct {
	State  State     `json:"state"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Period is what the controller saw of an agency during one control period.
type Period struct {
	Now         time.Time
	Calls       int64
	FailureRate float64 // agency failures / calls
	// AtFloor: shrinking the pool cannot help any more, because it is at
	// its minimum limit or because the failures are not caused by load.
	AtFloor bool
}

// Transition records a state change.
type Transition struct {
	From, To State
	Reason   string
	At       time.Time
}

// NewMachine returns a closed breaker.
func NewMachine(now time.Time) Machine {
	return Machine{State: Closed, Since: now, Reason: "initial"}
}

// Effective is the state workflows should act on: the override if any.
func (m Machine) Effective() State {
	if m.Override != nil {
		return m.Override.State
	}
	return m.State
}

// Step advances the breaker by one control period and reports a transition
// of the effective state, if any.
func (m Machine) Step(p Period, c Config) (Machine, *Transition) {
	if m.State == "" {
		m = NewMachine(p.Now)
	}
	m.Calls += p.Calls
	m.Failures += p.FailureRate * float64(p.Calls)
	need := c.MinCalls
	if m.State == HalfOpen {
		// Half open, only the probe fraction reaches the agency: every
		// call is evidence.
		need = 1
	}
	// A verdict needs enough calls; until then the periods add up.
	verdict := m.State != Open && m.Calls >= need
	var rate float64
	if verdict {
		rate = m.Failures / float64(m.Calls)
		m.Calls, m.Failures = 0, 0
	}
	failing := verdict && rate > c.FailureThreshold
	healthy := verdict && 1-rate >= c.RecoverySuccessRate
	p.FailureRate = rate
	from := m.State
	switch m.State {
	case Closed:
		if !verdict {
			break
		}
		if failing && p.AtFloor {
			m.Bad++
		} else {
			m.Bad = 0
		}
		if m.Bad >= c.FloorPeriods {
			m = m.moveTo(HalfOpen, p.Now, fmt.Sprintf("failure rate %.0f%% > %.0f%% for %d periods with the pool at its floor", 100*p.FailureRate, 100*c.FailureThreshold, m.Bad))
		}
	case HalfOpen:
		// Streaks are consecutive verdicts: a verdict that is neither
		// failing nor healthy (say 40% failures) breaks both.
		switch {
		case failing:
			m.Bad++
			m.Good = 0
		case healthy:
			m.Good++
			m.Bad = 0
		case verdict:
			m.Good, m.Bad = 0, 0
		}
		if m.Bad >= c.OpenAfterPeriods {
			m = m.moveTo(Open, p.Now, fmt.Sprintf("still failing (%.0f%%) for %d periods while half open", 100*p.FailureRate, m.Bad))
		} else if m.Good >= c.RecoveryPeriods {
			m = m.moveTo(Closed, p.Now, fmt.Sprintf("success rate %.0f%% >= %.0f%% for %d periods", 100*(1-p.FailureRate), 100*c.RecoverySuccessRate, m.Good))
		}
	case Open:
		if p.Now.Sub(m.Since) >= c.CoolDown {
			m = m.moveTo(HalfOpen, p.Now, fmt.Sprintf("cool-down of %s over: probing", c.CoolDown))
		}
	}
	if m.State == from || m.Override != nil {
		return m, nil
	}
	return m, &Transition{From: from, To: m.State, Reason: m.Reason, At: p.Now}
}

func (m Machine) moveTo(s State, now time.Time, reason string) Machine {
	m.State, m.Since, m.Reason, m.Bad, m.Good, m.Calls, m.Failures = s, now, reason, 0, 0, 0, 0
	return m
}

// Probes is the number of synthetic probe calls per half-open period.
func (c Config) Probes() int { return max(c.ProbeCalls, 1) }

// UsesProbe tells whether an application takes the guarded path while the
// breaker is half open: a deterministic fraction keyed by application id, so
// the choice is the same on every replay and retry.
func UsesProbe(applicationID string, fraction float64) bool {
	if fraction <= 0 {
		return false
	}
	if fraction >= 1 {
		return true
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(applicationID))
	return float64(h.Sum64()%10_000) < fraction*10_000
}
