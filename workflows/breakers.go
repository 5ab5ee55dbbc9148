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
)

// BreakerOverrideSignal carries an operator's BreakerOverride to the controller.
const BreakerOverrideSignal = "breaker_override"

// BreakerAuto in an override hands the breaker back to the controller.
const BreakerAuto = breaker.Auto

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

// BreakerBoard is the controller's breakers (breaker.Board); its JSON is
// carried across continue-as-new.
type BreakerBoard = breaker.Board

// stepBoard advances the board by one period: the pure rule is
// breaker.Board.Step; this maps the controller's observations and
// decisions onto it.
func stepBoard(b *BreakerBoard, now time.Time, obs map[string]flowcontrol.Observation, decisions []flowcontrol.Decision,
	cfg FlowControllerInput, overrides []BreakerOverride) (statuses []breaker.Status, events []breaker.Event) {
	limits, floors := map[string]int{}, map[string]int{}
	for _, d := range decisions {
		limits[d.Agency], floors[d.Agency] = d.Limit, d.Floor
	}
	names := cfg.agencyNames()
	observed := make(map[string]breaker.Observed, len(names))
	for _, a := range names {
		o := obs[a]
		// The pool's floor is where the law stops shrinking it: MinLimit,
		// or the half of its ceiling the law keeps for an agency in
		// trouble (an agency down answering 503s to everything would
		// otherwise never find its pool at the floor, and its breaker
		// would never open).
		observed[a] = breaker.Observed{Calls: o.Calls, Overload: o.Overload, AgencyErrors: o.AgencyErrors, Timeouts: o.Timeouts,
			Limit: limits[a], MinLimit: max(cfg.Config.Agencies[a].MinLimit, floors[a])}
	}
	manual := make([]breaker.ManualOverride, len(overrides))
	for i, o := range overrides {
		manual[i] = breaker.ManualOverride{Agency: o.Agency, State: o.State, Reason: o.Reason}
	}
	return b.Step(now, names, observed, cfg.breakerConfig, manual)
}

// agencyNames are the agencies under control, sorted.
func (in FlowControllerInput) agencyNames() []string {
	names := make([]string, 0, len(in.Config.Agencies))
	// The names are sorted below.
	//workflowcheck:ignore
	for a := range in.Config.Agencies {
		names = append(names, a)
	}
	slices.Sort(names)
	return names
}

func (in FlowControllerInput) breakerConfig(a string) breaker.Config {
	if c, ok := in.Breakers[a]; ok {
		return c
	}
	return breaker.DefaultConfig()
}

// probes lists the mandatory bureaus the controller probes this period.
func probes(b BreakerBoard, cfg FlowControllerInput) []agency.Name {
	return b.Probes(cfg.agencyNames(), cfg.breakerConfig)
}

// rebuildBoard is a fresh controller's board, from what was published and
// audited (breaker.Rebuild).
func rebuildBoard(names []string, pb activities.PublishedBoard) BreakerBoard {
	return breaker.Rebuild(names, pb.Live, pb.Last)
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
