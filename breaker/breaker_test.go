package breaker

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func period(i int, calls int64, failure float64, atFloor bool) Period {
	return Period{Now: t0.Add(time.Duration(i) * time.Second), Calls: calls, FailureRate: failure, AtFloor: atFloor}
}

// run steps the machine through periods and returns the state after each.
func run(m Machine, c Config, ps []Period) (Machine, []State, []*Transition) {
	var states []State
	var trs []*Transition
	for _, p := range ps {
		var tr *Transition
		m, tr = m.Step(p, c)
		states = append(states, m.Effective())
		if tr != nil {
			trs = append(trs, tr)
		}
	}
	return m, states, trs
}

func TestTransitions(t *testing.T) {
	c := DefaultConfig()
	c.CoolDown = 5 * time.Second
	tests := []struct {
		name  string
		start State
		ps    func() []Period
		want  []State
	}{
		{"failures above the floor only shrink the pool", Closed, func() []Period {
			return []Period{period(0, 10, 0.9, false), period(1, 10, 0.9, false), period(2, 10, 0.9, false), period(3, 10, 0.9, false)}
		}, []State{Closed, Closed, Closed, Closed}},
		{"failing at the floor for 3 periods goes half open", Closed, func() []Period {
			return []Period{period(0, 10, 0.9, true), period(1, 10, 0.9, true), period(2, 10, 0.9, true)}
		}, []State{Closed, Closed, HalfOpen}},
		{"a healthy period resets the count", Closed, func() []Period {
			return []Period{period(0, 10, 0.9, true), period(1, 10, 0.9, true), period(2, 10, 0.0, true), period(3, 10, 0.9, true), period(4, 10, 0.9, true)}
		}, []State{Closed, Closed, Closed, Closed, Closed}},
		{"too few calls is no evidence yet", Closed, func() []Period {
			return []Period{period(0, 2, 1, true), period(1, 0, 0, true), period(2, 0, 0, true), period(3, 0, 0, true)}
		}, []State{Closed, Closed, Closed, Closed}},
		{"a trickle through a pool at its floor adds up to verdicts", Closed, func() []Period {
			var ps []Period
			for i := 0; i < 9; i++ {
				ps = append(ps, period(i, 1, 1, true)) // one failing call a period; MinCalls 3
			}
			return ps
		}, []State{Closed, Closed, Closed, Closed, Closed, Closed, Closed, Closed, HalfOpen}},
		{"half open still failing opens", HalfOpen, func() []Period {
			return []Period{period(0, 5, 0.8, true), period(1, 5, 0.8, true), period(2, 5, 0.8, true)}
		}, []State{HalfOpen, HalfOpen, Open}},
		{"half open recovering closes", HalfOpen, func() []Period {
			return []Period{period(0, 5, 0, true), period(1, 5, 0.01, true), period(2, 5, 0, true)}
		}, []State{HalfOpen, HalfOpen, Closed}},
		{"a mediocre period while half open resets the recovery streak", HalfOpen, func() []Period {
			// 40% failures is neither failing (> 50%) nor healthy (>= 95%
			// success): the two healthy periods around it are not consecutive.
			return []Period{period(0, 5, 0, true), period(1, 5, 0.4, true), period(2, 5, 0, true), period(3, 5, 0, true)}
		}, []State{HalfOpen, HalfOpen, HalfOpen, HalfOpen}},
		{"a mediocre period while half open resets the failing streak", HalfOpen, func() []Period {
			return []Period{period(0, 5, 0.8, true), period(1, 5, 0.8, true), period(2, 5, 0.4, true), period(3, 5, 0.8, true)}
		}, []State{HalfOpen, HalfOpen, HalfOpen, HalfOpen}},
		{"open probes again after the cool-down", Open, func() []Period {
			return []Period{period(1, 0, 0, true), period(4, 0, 0, true), period(5, 0, 0, true)}
		}, []State{Open, Open, HalfOpen}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(t0)
			m.State = tc.start
			_, got, _ := run(m, c, tc.ps())
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("states %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// A full incident: failing → half open → open → cool-down → half open →
// recovered → closed, with one transition reported per move.
func TestIncidentAndFlappingProtection(t *testing.T) {
	c := DefaultConfig()
	c.CoolDown = 10 * time.Second
	var ps []Period
	for i := 0; i < 6; i++ {
		ps = append(ps, period(i, 10, 1, true))
	}
	// Open at i=5; cool-down until 15.
	for i := 6; i <= 15; i++ {
		ps = append(ps, period(i, 0, 0, true))
	}
	for i := 16; i <= 18; i++ {
		ps = append(ps, period(i, 4, 0, true))
	}
	m, _, trs := run(NewMachine(t0), c, ps)
	want := []State{HalfOpen, Open, HalfOpen, Closed}
	if len(trs) != len(want) {
		t.Fatalf("%d transitions %+v, want %v", len(trs), trs, want)
	}
	for i, tr := range trs {
		if tr.To != want[i] || tr.Reason == "" {
			t.Fatalf("transition %d = %+v, want to %s with a reason", i, tr, want[i])
		}
	}
	// Just closed: one failing period must not reopen it.
	m, tr := m.Step(period(19, 10, 1, true), c)
	if tr != nil || m.State != Closed {
		t.Fatalf("reopened on the first failure after closing: %+v", tr)
	}
}

func TestOverrideWins(t *testing.T) {
	c := DefaultConfig()
	m := NewMachine(t0)
	m.Override = &Override{State: Open, Reason: "maintenance window", Since: t0}
	m, tr := m.Step(period(0, 10, 0, true), c)
	if m.Effective() != Open || tr != nil {
		t.Fatalf("override not honoured: %s %+v", m.Effective(), tr)
	}
	m.Override = nil
	if m.Effective() != Closed {
		t.Fatalf("after auto, effective = %s, want the machine's own closed", m.Effective())
	}
}

func TestUsesProbeIsDeterministicAndProportional(t *testing.T) {
	n, hits := 20000, 0
	for i := 0; i < n; i++ {
		id := "app-" + time.Duration(i).String()
		if first, again := UsesProbe(id, 0.1), UsesProbe(id, 0.1); first != again {
			t.Fatal("not deterministic")
		}
		if UsesProbe(id, 0.1) {
			hits++
		}
	}
	if frac := float64(hits) / float64(n); frac < 0.08 || frac > 0.12 {
		t.Fatalf("probe fraction %.3f, want about 0.10", frac)
	}
	if UsesProbe("x", 0) || !UsesProbe("x", 1) {
		t.Fatal("fractions 0 and 1 must be none and all")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.ProbeFraction = 1.5
	if err := c.Validate(); err == nil {
		t.Fatal("probe fraction 1.5 accepted")
	}
}
