package workflows

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/flowcontrol"
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

// ControllerTaskQueue is the controller's own task queue: a surge of loan
// tasks on TaskQueue cannot delay its ticks.
const ControllerTaskQueue = "loanflow-control"

// ConfigUpdate is the Update that hands a running controller a new
// configuration; it is recorded in the controller's history.
const ConfigUpdate = "update_config"

// defaultLeasePeriods is how many periods a published breaker record lives
// without being published again.
const defaultLeasePeriods = 5

// maxPending bounds the transitions kept for an audit that keeps failing.
const maxPending = 1000

// FlowControllerInput configures the controller. State is nil on a fresh
// start: the controller then resumes from the limits persisted in Redis.
type FlowControllerInput struct {
	Config        flowcontrol.Config `json:"config"`
	State         *flowcontrol.State `json:"state,omitempty"`
	PeriodsPerRun int                `json:"periods_per_run,omitempty"`
	// Breakers tunes each agency's circuit breaker (default breaker.DefaultConfig).
	Breakers map[string]breaker.Config `json:"breakers,omitempty"`
	// LeasePeriods is the life of a published breaker record in periods
	// (default 5).
	LeasePeriods int `json:"lease_periods,omitempty"`
	// Board carries the breakers across continue-as-new; nil on a fresh
	// start, which rebuilds them from Redis and breaker_events.
	Board *BreakerBoard `json:"board,omitempty"`
	// Pending are transitions not yet audited, Overrides the operator
	// signals that arrived after the last period, and ObservedThrough the
	// end of the statistics already observed: all carried across
	// continue-as-new.
	Pending         []breaker.Event   `json:"pending,omitempty"`
	Overrides       []BreakerOverride `json:"overrides,omitempty"`
	ObservedThrough time.Time         `json:"observed_through,omitzero"`
	// Cursors are each agency's end of the statistics already observed,
	// where agencies are stepped at periods of their own; an agency without
	// one starts from ObservedThrough.
	Cursors map[string]time.Time `json:"cursors,omitempty"`
}

// agencyPeriodsVersion marks the controller that steps each agency at its
// own period (flowcontrol.AgencyConfig.Period). Runs started before it keep
// stepping every agency every period until they continue as new.
const agencyPeriodsVersion = "agency-periods"

// alignedTicksVersion marks the controller whose ticks fall just after the
// statistics' one-second buckets end (nextTickDelay), so that each tick
// reads the freshest complete bucket. Earlier runs sleep one period.
const alignedTicksVersion = "aligned-ticks"

// ControllerSettings is a configuration change sent through ConfigUpdate.
type ControllerSettings struct {
	Config   flowcontrol.Config        `json:"config"`
	Breakers map[string]breaker.Config `json:"breakers,omitempty"`
	// LeasePeriods 0 keeps the current one.
	LeasePeriods int `json:"lease_periods,omitempty"`
}

// Validate checks the settings as a fresh start would.
func (c ControllerSettings) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	names := make([]string, 0, len(c.Breakers))
	for a := range c.Breakers {
		names = append(names, a)
	}
	slices.Sort(names)
	for _, a := range names {
		if _, err := agency.Parse(a); err != nil || strings.ToLower(a) != a {
			return fmt.Errorf("breakers: agency %q: accepted %v", a, agency.All)
		}
		if err := c.Breakers[a].Validate(); err != nil {
			return fmt.Errorf("agency %s: %w", a, err)
		}
	}
	if c.LeasePeriods < 0 {
		return fmt.Errorf("lease_periods %d: accepted 0 (keep) or more", c.LeasePeriods)
	}
	return nil
}

// FlowControllerStatus is what FlowStateQuery returns.
type FlowControllerStatus struct {
	State     flowcontrol.State      `json:"state"`
	Decisions []flowcontrol.Decision `json:"decisions"`
	Limits    map[string]int         `json:"limits"`
	// The breakers and each agency's last observation, for operators.
	Board        BreakerBoard                       `json:"board"`
	Observations map[string]flowcontrol.Observation `json:"observations"`
	// Config is the configuration in force; Pending counts transitions
	// published but not yet audited.
	Config   flowcontrol.Config        `json:"config"`
	Breakers map[string]breaker.Config `json:"breakers,omitempty"`
	Pending  int                       `json:"pending"`
}

// FlowControllerWorkflow retunes every agency's concurrency limit once per
// control period, the agency's own (AgencyConfig.Period) or the
// controller's: it ticks at the controller's period, and steps an agency on
// the ticks at which a whole period of its own has been observed. It reads
// the agencies' call statistics (a local activity), applies the pure
// control law (flowcontrol.StepDue, i.e. Step), steps the breakers, and
// publishes limits, breaker states and its heartbeat to Redis every period:
// a published breaker record is a lease that dies unless renewed, and Redis
// emptied is repaired within a period. Transitions are audited in Postgres
// after they are published. Each observation, change of limit and
// configuration update is recorded in this workflow's history.
func FlowControllerWorkflow(ctx workflow.Context, in FlowControllerInput) error {
	logger := workflow.GetLogger(ctx)
	if in.Config.Period <= 0 {
		in.Config.Period = time.Second
	}
	settings := ControllerSettings{Config: in.Config, Breakers: in.Breakers, LeasePeriods: in.LeasePeriods}
	// Validates agencies and breakers in name order.
	//workflowcheck:ignore
	if err := settings.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalidInput, err)
	}
	periods := in.PeriodsPerRun
	if periods <= 0 {
		periods = defaultPeriodsPerRun
	}
	// The names are sorted.
	//workflowcheck:ignore
	agencies := sortedAgencies(in.Config)

	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 2 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond,
			MaximumAttempts: 3,
		},
	})
	var ca *activities.ControllerActivities

	status := FlowControllerStatus{Limits: map[string]int{}, Config: in.Config, Breakers: in.Breakers}
	if err := workflow.SetQueryHandler(ctx, FlowStateQuery, func() (FlowControllerStatus, error) {
		st := status
		st.Pending = len(in.Pending)
		return st, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ConfigUpdate, func(ctx workflow.Context, c ControllerSettings) error {
		if c.Config.Period <= 0 {
			c.Config.Period = time.Second
		}
		in.Config, in.Breakers = c.Config, c.Breakers
		if c.LeasePeriods > 0 {
			in.LeasePeriods = c.LeasePeriods
		}
		// The names are sorted.
		//workflowcheck:ignore
		agencies = sortedAgencies(in.Config)
		status.Config, status.Breakers = in.Config, in.Breakers
		logger.Info("controller configuration updated", "agencies", agencies, "period", in.Config.Period)
		return nil
	}, workflow.UpdateHandlerOptions{Validator: func(c ControllerSettings) error {
		if c.Config.Period <= 0 {
			c.Config.Period = time.Second
		}
		// An unchanged configuration is refused, so it leaves no trace in
		// history: every worker start offers its configuration.
		// DeepEqual's answer does not depend on map iteration order.
		//workflowcheck:ignore
		same := reflect.DeepEqual(c.Config, in.Config) && reflect.DeepEqual(c.Breakers, in.Breakers)
		if same && (c.LeasePeriods == 0 || c.LeasePeriods == in.LeasePeriods) {
			return errConfigUnchanged
		}
		// Validates in name order.
		//workflowcheck:ignore
		return c.Validate()
	}}); err != nil {
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
	} else {
		// Never from nothing: a blank board would publish every breaker
		// closed, wiping open bureaus and operator overrides.
		for {
			var pb activities.PublishedBoard
			err := workflow.ExecuteLocalActivity(lctx, ca.ReadBoard, agencies).Get(ctx, &pb)
			if err == nil {
				status.Board = rebuildBoard(agencies, pb)
				logger.Info("breakers rebuilt from published state", "live", len(pb.Live), "audited", len(pb.Last))
				break
			}
			logger.Warn("cannot read the published breakers; waiting before publishing anything", "error", err)
			if err := workflow.Sleep(ctx, in.Config.Period); err != nil {
				return err
			}
		}
	}
	overrideCh := workflow.GetSignalChannel(ctx, BreakerOverrideSignal)
	carried := in.Overrides
	// Fills a map: order does not matter.
	//workflowcheck:ignore
	for a, s := range status.State.Agencies {
		status.Limits[a] = int(s.Limit + 0.5)
	}

	// Earlier runs observed and stepped every agency every period.
	ownPeriods := workflow.GetVersion(ctx, agencyPeriodsVersion, workflow.DefaultVersion, 1) >= 1
	// Earlier runs slept one period from wherever a tick ended.
	aligned := workflow.GetVersion(ctx, alignedTicksVersion, workflow.DefaultVersion, 1) >= 1
	for i := 0; i < periods; i++ {
		var obs map[string]flowcontrol.Observation
		var decisions []flowcontrol.Decision
		oin := activities.ObserveInput{Agencies: agencies, Period: in.Config.Period, After: in.ObservedThrough}
		if ownPeriods {
			// Fills maps: order does not matter.
			//workflowcheck:ignore
			oin.Periods, oin.Cursors = agencyPeriods(in.Config), in.Cursors
		}
		err := workflow.ExecuteLocalActivity(lctx, ca.Observe, oin).Get(ctx, &obs)
		status.Decisions = nil
		switch {
		case err != nil:
			// Without statistics the limits stay where they are; the
			// workers keep running on them.
			logger.Warn("observe agencies failed; holding limits", "error", err)
			obs = nil
		case len(obs) == 0:
			// No agency has a new period to judge.
		case ownPeriods:
			// Only the agencies observed are due: the others keep their
			// state until a whole period of their own has completed.
			due := make([]string, 0, len(obs))
			for _, a := range agencies {
				if _, ok := obs[a]; ok {
					due = append(due, a)
				}
			}
			// StepDue visits agencies in name order.
			//workflowcheck:ignore
			status.State, decisions = flowcontrol.StepDue(status.State, obs, in.Config, due)
		default:
			// Step visits agencies in name order.
			//workflowcheck:ignore
			status.State, decisions = flowcontrol.Step(status.State, obs, in.Config)
		}
		if len(obs) > 0 {
			status.Decisions = decisions
			if status.Observations == nil {
				status.Observations = map[string]flowcontrol.Observation{}
			}
			for _, a := range agencies {
				o, ok := obs[a]
				if !ok {
					continue
				}
				status.Observations[a] = o
				if o.Now.After(in.ObservedThrough) {
					in.ObservedThrough = o.Now
				}
				if ownPeriods {
					if in.Cursors == nil {
						in.Cursors = map[string]time.Time{}
					}
					in.Cursors[a] = o.Now
				}
			}
		}
		changed := false
		for _, d := range decisions {
			if applied, ok := status.Limits[d.Agency]; !ok || applied != d.Limit {
				changed = true
			}
			status.Limits[d.Agency] = d.Limit
		}
		// Breakers step after the limits: shrinking the pool comes first.
		overrides := append(carried, drainOverrides(ctx, overrideCh)...)
		carried = nil
		// The breakers step every tick, their timers running on time, but judge
		// an agency only from its new observation: at its own period.
		// Visits agencies in name order.
		//workflowcheck:ignore
		statuses, events := stepBoard(&status.Board, workflow.Now(ctx), obs, decisions, in, overrides)
		for _, e := range events {
			logger.Info("breaker transition", "breaker", e.Breaker, "from", e.From, "to", e.To, "reason", e.Reason, "source", e.Source)
		}
		in.Pending = append(in.Pending, events...)
		if n := len(in.Pending) - maxPending; n > 0 {
			logger.Error("breaker audit keeps failing; dropping the oldest transitions", "dropped", n)
			in.Pending = in.Pending[n:]
		}
		// Publish every period, before the audit: a lease renewed, Redis
		// repaired, and a Postgres outage cannot hold the breakers back.
		now := workflow.Now(ctx)
		for j := range statuses {
			statuses[j].Published, statuses[j].Expires = now, now.Add(in.lease())
		}
		pub := activities.PublishInput{Limits: status.Limits, Statuses: statuses, Lease: in.lease(), Period: in.Config.Period}
		if changed {
			pub.Decisions = decisions
		}
		if err := workflow.ExecuteLocalActivity(lctx, ca.Publish, pub).Get(ctx, nil); err != nil {
			logger.Warn("publishing limits and breakers failed; publishing again next period", "error", err)
		}
		if len(in.Pending) > 0 {
			if err := workflow.ExecuteLocalActivity(lctx, ca.RecordBreakerEvents, in.Pending).Get(ctx, nil); err != nil {
				logger.Warn("auditing breaker transitions failed; kept for next period", "error", err, "pending", len(in.Pending))
			} else {
				in.Pending = nil
			}
		}
		probe(ctx, probes(status.Board, in), in.Config.Period, workflow.GetInfo(ctx).WorkflowExecution.RunID, i)
		wait := in.Config.Period
		if aligned {
			wait = nextTickDelay(workflow.Now(ctx), in.Config.Period)
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	// Nothing signalled or updated during the last period may be lost.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	st := status.State
	return workflow.NewContinueAsNewError(ctx, FlowControllerWorkflow, FlowControllerInput{
		Config: in.Config, State: &st, PeriodsPerRun: in.PeriodsPerRun, Breakers: in.Breakers, LeasePeriods: in.LeasePeriods,
		Board: &status.Board, Pending: in.Pending, Overrides: drainOverrides(ctx, overrideCh), ObservedThrough: in.ObservedThrough,
		Cursors: in.Cursors,
	})
}

var errConfigUnchanged = errors.New("configuration unchanged")

// IsConfigUnchanged tells a ConfigUpdate refused because nothing changed.
func IsConfigUnchanged(err error) bool {
	return err != nil && strings.Contains(err.Error(), errConfigUnchanged.Error())
}

func (in FlowControllerInput) lease() time.Duration {
	n := in.LeasePeriods
	if n <= 0 {
		n = defaultLeasePeriods
	}
	return time.Duration(n) * in.Config.Period
}

// agencyPeriods are the agencies' own periods, nil when none has one.
func agencyPeriods(c flowcontrol.Config) map[string]time.Duration {
	var out map[string]time.Duration
	for a, ac := range c.Agencies {
		if ac.Period > 0 && ac.Period != c.Period {
			if out == nil {
				out = map[string]time.Duration{}
			}
			out[a] = ac.Period
		}
	}
	return out
}

func sortedAgencies(c flowcontrol.Config) []string {
	out := make([]string, 0, len(c.Agencies))
	for a := range c.Agencies {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// probeCustomer is the synthetic customer of the controller's probe calls.
const probeCustomer = "C00000000"

// probe sends each listed bureau one synthetic credit-score call through its
// own task queue, so the call is bounded by the bureau's pool and measured
// like any other; the breaker judges the bureau from it next period. The
// result is not awaited: a slow bureau must not stall the tick.
func probe(ctx workflow.Context, bureaus []agency.Name, period time.Duration, runID string, tick int) {
	var aa *activities.AgencyActivities
	for i, n := range bureaus {
		pctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:              n.TaskQueue(),
			ScheduleToCloseTimeout: max(5*period, 5*time.Second),
			RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		req := activities.AgencyRequest{Agency: n, CustomerID: probeCustomer, ApplicationID: fmt.Sprintf("probe-%s-%d-%d", runID, tick, i)}
		workflow.ExecuteActivity(pctx, aa.FetchCreditScore, req)
	}
}
