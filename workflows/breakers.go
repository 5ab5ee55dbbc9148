package workflows

import (
	"fmt"
	"slices"
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
	for _, o := range overrides {
		m, ok := b.Machines[o.Agency]
		if !ok {
			m = breaker.NewMachine(now)
		}
		from := m.Effective()
		if o.State == BreakerAuto {
			m.Override = nil
		} else {
			m.Override = &breaker.Override{State: breaker.State(o.State), Reason: o.Reason, Since: now}
		}
		b.Machines[o.Agency] = m
		if to := m.Effective(); to != from {
			events = append(events, store.BreakerEvent{Breaker: o.Agency, From: string(from), To: string(to), Reason: "operator: " + o.Reason, Source: "operator", At: now})
		}
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
			events = append(events, store.BreakerEvent{Breaker: a, From: string(tr.From), To: string(tr.To), Reason: tr.Reason, Source: "controller", At: now})
		}
		statuses = append(statuses, breaker.StatusOf(a, next, bc.ProbeFraction))
	}
	// The entry closes while a mandatory bureau is open: no substitute exists.
	var down []string
	for _, a := range names {
		if n, err := agency.Parse(a); err == nil && n.Mandatory() && b.Machines[a].Effective() == breaker.Open {
			down = append(down, a)
		}
	}
	want, reason := breaker.Closed, "mandatory bureaus available"
	if len(down) > 0 {
		want, reason = breaker.Open, fmt.Sprintf("mandatory bureau %v open", down)
	}
	if b.Entry.State != want {
		events = append(events, store.BreakerEvent{Breaker: breaker.Entry, From: string(b.Entry.State), To: string(want), Reason: reason, Source: "controller", At: now})
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

// drainOverrides takes every override signal that has arrived.
func drainOverrides(ctx workflow.Context, ch workflow.ReceiveChannel) []BreakerOverride {
	var out []BreakerOverride
	for {
		var o BreakerOverride
		if !ch.ReceiveAsync(&o) {
			return out
		}
		if err := o.Validate(); err != nil {
			workflow.GetLogger(ctx).Warn("breaker override ignored", "override", o, "error", err)
			continue
		}
		out = append(out, o)
	}
}

// publishBreakers writes the breaker states and records the transitions.
func publishBreakers(ctx workflow.Context, statuses []breaker.Status, events []store.BreakerEvent) error {
	var ca *activities.ControllerActivities
	return workflow.ExecuteLocalActivity(ctx, ca.ApplyBreakers, activities.ApplyBreakersInput{Statuses: statuses, Events: events}).Get(ctx, nil)
}
