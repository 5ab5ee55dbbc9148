package breaker

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"loanflow/agency"
)

// Event is one breaker transition or operator action, as breaker_events
// records it.
type Event struct {
	Breaker string    `json:"breaker"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source"` // SourceController or SourceOperator
	At      time.Time `json:"at"`
}

// The sources of events, and the reason prefix of an override handed back,
// which a rebuilt board tells from a forced state.
const (
	SourceController = "controller"
	SourceOperator   = "operator"
	AutoReasonPrefix = "operator: back to auto: "
)

// Auto in a ManualOverride hands the breaker back to the controller.
const Auto = "auto"

// ManualOverride is an operator's order for one agency's breaker: a state
// (open, half_open, closed) or Auto, with the reason. It has been checked
// by the caller.
type ManualOverride struct {
	Agency string
	State  string
	Reason string
}

// Observed is what one control period saw of an agency: its calls by
// outcome and the pool limit the controller chose, against its floor.
type Observed struct {
	Calls, Overload, AgencyErrors, Timeouts int64
	Limit, MinLimit                         int
}

// period turns an observation into a breaker period. Shrinking the pool is
// the first answer to failures; it is exhausted at the floor, or when the
// failures are not the agency's overload (shrinking cannot help).
func (o Observed) period(now time.Time) Period {
	failures := o.Overload + o.AgencyErrors + o.Timeouts
	rate := 0.0
	if o.Calls > 0 {
		rate = float64(failures) / float64(o.Calls)
	}
	atFloor := o.Limit <= o.MinLimit || o.AgencyErrors+o.Timeouts > o.Overload
	return Period{Now: now, Calls: o.Calls, FailureRate: rate, AtFloor: atFloor}
}

// Board is the controller's breakers: one machine per agency plus the loan
// product's entry breaker, derived from the mandatory bureaus.
type Board struct {
	Machines map[string]Machine `json:"machines"`
	Entry    Machine            `json:"entry"`
}

// Step advances every agency's breaker by one period after applying the
// operators' overrides, then derives the entry breaker: it is open while a
// mandatory bureau is not closed (no substitute exists, and a half-open
// bureau is judged by the controller's probes, not by reopened traffic).
// It returns the statuses to publish and the events to record; names are
// the agencies under control, config each one's breaker settings.
func (b *Board) Step(now time.Time, names []string, obs map[string]Observed, config func(string) Config,
	overrides []ManualOverride) (statuses []Status, events []Event) {
	if b.Machines == nil {
		b.Machines = map[string]Machine{}
	}
	if b.Entry.State == "" {
		b.Entry = NewMachine(now)
	}
	for i, o := range overrides {
		// breaker_events is keyed by (breaker, at, to_state): overrides
		// applied in one period are kept apart, in order, a microsecond each.
		at := now.Add(time.Duration(i) * time.Microsecond)
		m, ok := b.Machines[o.Agency]
		if !ok {
			m = NewMachine(now)
		}
		from := m.Effective()
		reason := "operator: " + o.Reason
		if o.State == Auto {
			m.Override = nil
			reason = AutoReasonPrefix + o.Reason
		} else {
			m.Override = &Override{State: State(o.State), Reason: o.Reason, Since: at}
		}
		b.Machines[o.Agency] = m
		// Every operator action is audited, a no-op one too: a rebuilt
		// board finds overrides from the latest operator event.
		events = append(events, Event{Breaker: o.Agency, From: string(from), To: string(m.Effective()), Reason: reason, Source: SourceOperator, At: at})
	}
	names = slices.Sorted(slices.Values(names))
	for _, a := range names {
		m, ok := b.Machines[a]
		if !ok {
			m = NewMachine(now)
		}
		bc := config(a)
		next, tr := m.Step(obs[a].period(now), bc)
		b.Machines[a] = next
		if tr != nil {
			events = append(events, Event{Breaker: a, From: string(tr.From), To: string(tr.To), Reason: tr.Reason, Source: SourceController, At: now})
		}
		statuses = append(statuses, StatusOf(a, next, bc.ProbeFraction))
	}
	var down []string
	for _, a := range names {
		if n, err := agency.Parse(a); err == nil && n.Mandatory() && b.Machines[a].Effective() != Closed {
			down = append(down, a+" "+string(b.Machines[a].Effective()))
		}
	}
	want, reason := Closed, "mandatory bureaus closed"
	if len(down) > 0 {
		want, reason = Open, fmt.Sprintf("mandatory bureau not closed: %v", down)
	}
	if b.Entry.State != want {
		events = append(events, Event{Breaker: Entry, From: string(b.Entry.State), To: string(want), Reason: reason, Source: SourceController, At: now})
		b.Entry = Machine{State: want, Since: now, Reason: reason}
	}
	statuses = append(statuses, StatusOf(Entry, b.Entry, 0))
	return statuses, events
}

// Probes lists the mandatory bureaus to probe this period, once per probe
// call: those under control (in names) and half open, which no application
// reaches while the entry is closed. The order is agency.All's.
func (b Board) Probes(names []string, config func(string) Config) []agency.Name {
	var out []agency.Name
	for _, n := range agency.All {
		if !n.Mandatory() || !slices.Contains(names, string(n)) {
			continue
		}
		if b.Machines[string(n)].Effective() == HalfOpen {
			for range config(string(n)).Probes() {
				out = append(out, n)
			}
		}
	}
	return out
}

// Rebuild is a fresh controller's board: each breaker from its live record,
// else from its latest recorded event, else closed because it never
// tripped. Overrides come back from either source.
func Rebuild(names []string, live map[string]Status, last map[string]Event) Board {
	b := Board{Machines: map[string]Machine{}}
	machine := func(name string) (Machine, bool) {
		if st, ok := live[name]; ok && st.Machine != "" {
			since := st.MachineSince
			if since.IsZero() {
				since = st.Since
			}
			m := Machine{State: st.Machine, Since: since, Reason: st.Reason, Override: st.Override}
			if st.Override != nil {
				m.Reason = "rebuilt from the published record"
			}
			return m, true
		}
		e, ok := last[name]
		if !ok {
			return Machine{}, false
		}
		if e.Source == SourceOperator && !strings.HasPrefix(e.Reason, AutoReasonPrefix) {
			// Forced by an operator: the machine resumes where it was.
			from := State(e.From)
			if _, err := Parse(e.From); err != nil {
				from = Closed
			}
			return Machine{State: from, Since: e.At, Reason: "rebuilt from breaker_events",
				Override: &Override{State: State(e.To), Reason: strings.TrimPrefix(e.Reason, "operator: "), Since: e.At}}, true
		}
		return Machine{State: State(e.To), Since: e.At, Reason: e.Reason}, true
	}
	for _, n := range names {
		if m, ok := machine(n); ok {
			b.Machines[n] = m
		}
	}
	if m, ok := machine(Entry); ok {
		m.Override = nil
		b.Entry = m
	}
	return b
}
