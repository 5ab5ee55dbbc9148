package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/breaker"
	"loanflow/flowcontrol"
	"loanflow/store"
)

// FlowControllerID is the fixed workflow id of the flow controller: Temporal
// refuses a second running workflow with the same id, which makes the
// controller a singleton however many worker processes try to start it.
const FlowControllerID = "loanflow-flow-controller"

// FlowStateQuery returns the controller's current FlowControllerStatus.
const FlowStateQuery = "flow_state"

// defaultPeriodsPerRun bounds one run's history; the controller then
// continues as new, carrying its state.
const defaultPeriodsPerRun = 600

// FlowControllerInput configures the controller. State is nil on a fresh
// start: the controller then resumes from the limits persisted in Redis.
type FlowControllerInput struct {
	Config        flowcontrol.Config `json:"config"`
	State         *flowcontrol.State `json:"state,omitempty"`
	PeriodsPerRun int                `json:"periods_per_run,omitempty"`
	// Breakers tunes each agency's circuit breaker (default breaker.DefaultConfig).
	Breakers map[string]breaker.Config `json:"breakers,omitempty"`
	// Board carries the breakers across continue-as-new.
	Board *BreakerBoard `json:"board,omitempty"`
}

// FlowControllerStatus is what FlowStateQuery returns.
type FlowControllerStatus struct {
	State     flowcontrol.State      `json:"state"`
	Decisions []flowcontrol.Decision `json:"decisions"`
	Limits    map[string]int         `json:"limits"`
	// The breakers and the last period's observations, for operators.
	Board        BreakerBoard                       `json:"board"`
	Observations map[string]flowcontrol.Observation `json:"observations"`
}

// FlowControllerWorkflow retunes every agency's concurrency limit once per
// control period: it reads the agencies' call statistics (a local activity),
// applies the pure control law flowcontrol.Step, and writes changed limits to
// Redis, where every worker's slot supplier picks up its share. Each
// observation and each change of limit is recorded in this workflow's
// history, which is the audit trail of the controller's decisions.
func FlowControllerWorkflow(ctx workflow.Context, in FlowControllerInput) error {
	logger := workflow.GetLogger(ctx)
	if in.Config.Period <= 0 {
		in.Config.Period = time.Second
	}
	// Validates agencies in name order.
	//workflowcheck:ignore
	if err := in.Config.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalidInput, err)
	}
	periods := in.PeriodsPerRun
	if periods <= 0 {
		periods = defaultPeriodsPerRun
	}
	agencies := make([]string, 0, len(in.Config.Agencies))
	// The names are sorted below.
	//workflowcheck:ignore
	for a := range in.Config.Agencies {
		agencies = append(agencies, a)
	}
	slices.Sort(agencies)

	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 2 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond,
			MaximumAttempts: 3,
		},
	})
	var ca *activities.ControllerActivities

	status := FlowControllerStatus{Limits: map[string]int{}}
	if err := workflow.SetQueryHandler(ctx, FlowStateQuery, func() (FlowControllerStatus, error) { return status, nil }); err != nil {
		return err
	}
	if in.State != nil {
		status.State = *in.State
	} else {
		var limits map[string]int
		if err := workflow.ExecuteLocalActivity(lctx, ca.ReadLimits, agencies).Get(ctx, &limits); err != nil {
			logger.Warn("could not read persisted limits; starting from the initial limits", "error", err)
		}
		// Fills a map: order does not matter.
		//workflowcheck:ignore
		status.State = flowcontrol.Resume(limits, in.Config)
		logger.Info("flow controller resumed", "limits", limits)
	}
	if in.Board != nil {
		status.Board = *in.Board
	}
	// Name order, so the first error reported is the same on replay.
	bnames := make([]string, 0, len(in.Breakers))
	//workflowcheck:ignore
	for a := range in.Breakers {
		bnames = append(bnames, a)
	}
	slices.Sort(bnames)
	for _, a := range bnames {
		c := in.Breakers[a]
		if err := c.Validate(); err != nil {
			return temporal.NewNonRetryableApplicationError("agency "+a+": "+err.Error(), activities.ErrTypeInvalidInput, err)
		}
	}
	overrideCh := workflow.GetSignalChannel(ctx, BreakerOverrideSignal)
	breakersPublished := false
	var pending []store.BreakerEvent
	// Fills a map: order does not matter.
	//workflowcheck:ignore
	for a, s := range status.State.Agencies {
		status.Limits[a] = int(s.Limit + 0.5)
	}

	for i := 0; i < periods; i++ {
		var obs map[string]flowcontrol.Observation
		err := workflow.ExecuteLocalActivity(lctx, ca.Observe, activities.ObserveInput{Agencies: agencies, Period: in.Config.Period}).Get(ctx, &obs)
		if err != nil {
			// Without statistics the limits stay where they are; the
			// workers keep running on them.
			logger.Warn("observe agencies failed; holding limits", "error", err)
			status.Observations, status.Decisions = nil, nil
		} else {
			var decisions []flowcontrol.Decision
			// Step visits agencies in name order.
			//workflowcheck:ignore
			status.State, decisions = flowcontrol.Step(status.State, obs, in.Config)
			status.Decisions = decisions
			status.Observations = obs
			// status.Limits holds what Redis has: a failed write is
			// retried next period because the limits still differ.
			changed := i == 0 && in.State == nil
			for _, d := range decisions {
				if applied, ok := status.Limits[d.Agency]; !ok || applied != d.Limit {
					changed = true
				}
			}
			if changed {
				if err := workflow.ExecuteLocalActivity(lctx, ca.ApplyLimits, activities.ApplyLimitsInput{Decisions: decisions}).Get(ctx, nil); err != nil {
					logger.Warn("writing limits failed; will retry next period", "error", err)
				} else {
					for _, d := range decisions {
						status.Limits[d.Agency] = d.Limit
					}
				}
			}
		}
		// Breakers step after the limits: shrinking the pool comes first.
		// Visits agencies in name order.
		//workflowcheck:ignore
		statuses, events := status.Board.step(
			workflow.Now(ctx), status.Observations, status.Decisions, in, drainOverrides(ctx, overrideCh))
		for _, e := range events {
			logger.Info("breaker transition", "breaker", e.Breaker, "from", e.From, "to", e.To, "reason", e.Reason, "source", e.Source)
		}
		pending = append(pending, events...)
		if len(pending) > 0 || !breakersPublished {
			if err := publishBreakers(lctx, statuses, pending); err != nil {
				// Published again, with every transition since, next period.
				logger.Warn("publishing breaker states failed; will retry next period", "error", err)
				breakersPublished = false
			} else {
				pending, breakersPublished = nil, true
			}
		}
		if err := workflow.Sleep(ctx, in.Config.Period); err != nil {
			return err
		}
	}
	st := status.State
	return workflow.NewContinueAsNewError(ctx, FlowControllerWorkflow, FlowControllerInput{
		Config: in.Config, State: &st, PeriodsPerRun: in.PeriodsPerRun, Breakers: in.Breakers, Board: &status.Board,
	})
}
