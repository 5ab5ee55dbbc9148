package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/flowcontrol"
	"loanflow/store"
)

// BreakerOverrideSignal carries an operator's BreakerOverride to the controller.
const BreakerOverrideSignal = "breaker_override"

// BreakerAuto in an override hands the breaker back to the controller.
const BreakerAuto = "auto"

// BreakerOverride forces an agency's breaker (open, half_open, closed) or
// hands it back (auto). Reason is required and kept with the state.
type BreakerOverride struct {
	Agency string `json:"agency"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// Normalize returns the override with its agency's canonical name ("KCB "
// becomes "kcb"), or the error naming the bad field. Every entry point (the
// starter, the controller's signal handler) goes through it, so no breaker
// is created under a name workflows never read.
func (o BreakerOverride) Normalize() (BreakerOverride, error) {
	n, err := agency.Parse(o.Agency)
	if err != nil {
		return o, err
	}
	o.Agency = string(n)
	return o, o.Validate()
}

// Validate names the bad field.
func (o BreakerOverride) Validate() error {
	if _, err := agency.Parse(o.Agency); err != nil {
		return err
	}
	if o.State != BreakerAuto {
		if _, err := breaker.Parse(o.State); err != nil {
			return fmt.Errorf("%w, or auto", err)
		}
	}
	if o.Reason == "" {
		return fmt.Errorf("invalid reason \"\": a reason is required")
	}
	return nil
}

// BreakerBoard is the controller's breakers: one machine per agency plus the
// loan product's entry breaker, derived from the mandatory bureaus.
type BreakerBoard struct {
	Machines map[string]breaker.Machine `json:"machines"`
	Entry    breaker.Machine            `json:"entry"`
}

// step advances every breaker by one period and returns the statuses to
// publish and the transitions to record; changed is false when nothing moved.
func (b *BreakerBoard) step(now time.Time, obs map[string]flowcontrol.Observation, decisions []flowcontrol.Decision,
	cfg FlowControllerInput, overrides []BreakerOverride) (statuses []breaker.Status, events []store.BreakerEvent) {
	if b.Machines == nil {
		b.Machines = map[string]breaker.Machine{}
	}
	if b.Entry.State == "" {
		b.Entry = breaker.NewMachine(now)
	}
	limits := map[string]int{}
	for _, d := range decisions {
		limits[d.Agency] = d.Limit
	}
	for i, o := range overrides {
		// breaker_events is keyed by (breaker, at, to_state): overrides
		// applied in one period are kept apart, in order, a microsecond each.
		at := now.Add(time.Duration(i) * time.Microsecond)
		m, ok := b.Machines[o.Agency]
		if !ok {
			m = breaker.NewMachine(now)
		}
		from := m.Effective()
		reason := "operator: " + o.Reason
		if o.State == BreakerAuto {
			m.Override = nil
			reason = autoReasonPrefix + o.Reason
		} else {
			m.Override = &breaker.Override{State: breaker.State(o.State), Reason: o.Reason, Since: at}
		}
		b.Machines[o.Agency] = m
		// Every operator action is audited, a no-op one too: a restarted
		// controller rebuilds overrides from the latest operator event.
		events = append(events, store.BreakerEvent{Breaker: o.Agency, From: string(from), To: string(m.Effective()), Reason: reason, Source: sourceOperator, At: at})
	}
	names := make([]string, 0, len(cfg.Config.Agencies))
	// The names are sorted below.
	//workflowcheck:ignore
	for a := range cfg.Config.Agencies {
		names = append(names, a)
	}
	slices.Sort(names)
	for _, a := range names {
		m, ok := b.Machines[a]
		if !ok {
			m = breaker.NewMachine(now)
		}
		bc := cfg.breakerConfig(a)
		o := obs[a]
		failures := o.Overload + o.AgencyErrors + o.Timeouts
		rate := 0.0
		if o.Calls > 0 {
			rate = float64(failures) / float64(o.Calls)
		}
		// Shrinking the pool is the first answer; it is exhausted at the
		// floor, or when the failures are not the agency's overload.
		atFloor := limits[a] <= cfg.Config.Agencies[a].MinLimit || o.AgencyErrors+o.Timeouts > o.Overload
		next, tr := m.Step(breaker.Period{Now: now, Calls: o.Calls, FailureRate: rate, AtFloor: atFloor}, bc)
		b.Machines[a] = next
		if tr != nil {
			events = append(events, store.BreakerEvent{Breaker: a, From: string(tr.From), To: string(tr.To), Reason: tr.Reason, Source: sourceController, At: now})
		}
		statuses = append(statuses, breaker.StatusOf(a, next, bc.ProbeFraction))
	}
	// The entry stays closed to new applications (its breaker open) while
	// a mandatory bureau is not closed: no substitute exists, and a half-open
	// bureau is judged by the controller's probes, not by reopened traffic.
	var down []string
	for _, a := range names {
		if n, err := agency.Parse(a); err == nil && n.Mandatory() && b.Machines[a].Effective() != breaker.Closed {
			down = append(down, a+" "+string(b.Machines[a].Effective()))
		}
	}
	want, reason := breaker.Closed, "mandatory bureaus closed"
	if len(down) > 0 {
		want, reason = breaker.Open, fmt.Sprintf("mandatory bureau not closed: %v", down)
	}
	if b.Entry.State != want {
		events = append(events, store.BreakerEvent{Breaker: breaker.Entry, From: string(b.Entry.State), To: string(want), Reason: reason, Source: sourceController, At: now})
		b.Entry = breaker.Machine{State: want, Since: now, Reason: reason}
	}
	statuses = append(statuses, breaker.StatusOf(breaker.Entry, b.Entry, 0))
	return statuses, events
}

func (in FlowControllerInput) breakerConfig(a string) breaker.Config {
	if c, ok := in.Breakers[a]; ok {
		return c
	}
	return breaker.DefaultConfig()
}

// The sources of breaker_events rows, and the reason prefix of an override
// handed back, which a restarted controller tells from a forced state.
const (
	sourceController = "controller"
	sourceOperator   = "operator"
	autoReasonPrefix = "operator: back to auto: "
)

// probes lists the mandatory bureaus the controller probes this period: those
// half open, which no application reaches while the entry is closed.
func (b *BreakerBoard) probes(cfg FlowControllerInput) []agency.Name {
	var out []agency.Name
	for _, n := range agency.All {
		if !n.Mandatory() {
			continue
		}
		if _, ok := cfg.Config.Agencies[string(n)]; !ok {
			continue
		}
		if b.Machines[string(n)].Effective() == breaker.HalfOpen {
			for range cfg.breakerConfig(string(n)).Probes() {
				out = append(out, n)
			}
		}
	}
	return out
}

// rebuildBoard is a fresh controller's board: each breaker from its live
// record in Redis, else from its latest audited transition, else closed
// because it never tripped. Overrides come back from either source.
func rebuildBoard(now time.Time, names []string, pb activities.PublishedBoard) BreakerBoard {
	b := BreakerBoard{Machines: map[string]breaker.Machine{}}
	machine := func(name string) (breaker.Machine, bool) {
		if st, ok := pb.Live[name]; ok && st.Machine != "" {
			since := st.MachineSince
			if since.IsZero() {
				since = st.Since
			}
			m := breaker.Machine{State: st.Machine, Since: since, Reason: st.Reason, Override: st.Override}
			if st.Override != nil {
				m.Reason = "rebuilt from the published record"
			}
			return m, true
		}
		e, ok := pb.Last[name]
		if !ok {
			return breaker.Machine{}, false
		}
		if e.Source == sourceOperator && !strings.HasPrefix(e.Reason, autoReasonPrefix) {
			// Forced by an operator: the machine resumes where it was.
			from := breaker.State(e.From)
			if _, err := breaker.Parse(e.From); err != nil {
				from = breaker.Closed
			}
			return breaker.Machine{State: from, Since: e.At, Reason: "rebuilt from breaker_events",
				Override: &breaker.Override{State: breaker.State(e.To), Reason: strings.TrimPrefix(e.Reason, "operator: "), Since: e.At}}, true
		}
		return breaker.Machine{State: breaker.State(e.To), Since: e.At, Reason: e.Reason}, true
	}
	for _, n := range names {
		if m, ok := machine(n); ok {
			b.Machines[n] = m
		}
	}
	if m, ok := machine(breaker.Entry); ok {
		m.Override = nil
		b.Entry = m
	}
	return b
}

// drainOverrides takes every override signal that has arrived, each agency
// name normalised; an invalid one is logged and dropped.
func drainOverrides(ctx workflow.Context, ch workflow.ReceiveChannel) []BreakerOverride {
	var out []BreakerOverride
	for {
		var o BreakerOverride
		if !ch.ReceiveAsync(&o) {
			return out
		}
		n, err := o.Normalize()
		if err != nil {
			workflow.GetLogger(ctx).Warn("breaker override ignored", "override", o, "error", err)
			continue
		}
		out = append(out, n)
	}
}
