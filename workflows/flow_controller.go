package workflows

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
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

// backgroundLawVersion marks the controller whose control law tells an
// agency's background failures from its capacity (flowcontrol.AgencyState
// Levels). Runs recorded before it keep the earlier law to their end
// (flowcontrol.LawBeforeBackground): replayed under the new one, their
// limits, and the breaker transitions and probes that follow from them,
// would differ from their history.
const backgroundLawVersion = "background-law"

// probeBoundLawVersion marks the controller whose control law bounds the
// back-off of probes beyond a confirmed capacity at 64 periods. Runs
// recorded before it keep the earlier law to their end
// (flowcontrol.LawBeforeProbeBound), for the same reason.
const probeBoundLawVersion = "probe-bound-law"

// warmCheckLawVersion marks the controller whose control law checks a
// first baseline learnt with the limit filled by a dip (flowcontrol
// AgencyState.WarmCheck). Runs recorded before it keep the earlier law to
// their end (flowcontrol.LawBeforeWarmCheck), for the same reason.
const warmCheckLawVersion = "warm-check-law"

// failCheckLawVersion marks the controller whose control law checks a
// failure cut made with the agency's background rates unknown against
// them once they are read, and undoes it where they account for its
// failures (flowcontrol AgencyState.FailCheck). Runs recorded before it
// keep the earlier law to their end (flowcontrol.LawBeforeFailCheck), for
// the same reason.
const failCheckLawVersion = "fail-check-law"

// fastBaselineLawVersion marks the controller whose control law keeps the
// baseline a slower agency had before rule 2 found it slower, and takes it
// back once the agency reads at that speed again (flowcontrol
// AgencyState.FastBaseline). Runs recorded before it keep the earlier law
// to their end (flowcontrol.LawBeforeFastBaseline), for the same reason.
const fastBaselineLawVersion = "fast-baseline-law"

// loneWarmRefusalLawVersion marks the controller whose control law does not
// arm the warm-up's check on a lone refusal (flowcontrol
// LawBeforeLoneWarmRefusal). Runs recorded before it keep the earlier law to
// their end, for the same reason.
const loneWarmRefusalLawVersion = "lone-warm-refusal-law"

// servedFloorLawVersion marks the controller whose control law keeps, in a
// failure cut of an agency in trouble that still answers, at most what the
// agency served at once (flowcontrol LawBeforeServedFloor). Runs recorded
// before it keep the earlier law to their end, for the same reason.
const servedFloorLawVersion = "served-floor-law"

// drainedCheckLawVersion marks the controller whose control law checks a
// latency cut on a period whose calls were sent after the cut (flowcontrol
// LawBeforeDrainedCheck). Runs recorded before it keep the earlier law to
// their end, for the same reason.
const drainedCheckLawVersion = "drained-check-law"

// failureCutShownLawVersion marks the controller whose control law holds a
// latency cut until a failure cut has shown (flowcontrol
// LawBeforeFailureCutShown). Runs recorded before it keep the earlier law
// to their end, for the same reason.
const failureCutShownLawVersion = "failure-cut-shown-law"

// baselineNoiseLawVersion marks the controller whose control law reads the
// climb from the warm-up within the warm-up baseline's own noise
// (flowcontrol LawBeforeBaselineNoise). Runs recorded before it keep the
// earlier law to their end, for the same reason.
const baselineNoiseLawVersion = "baseline-noise-law"

// settledFailuresLawVersion marks the controller whose control law holds
// refusals and errors after a cut only for SettlePeriods after the limit
// moved (flowcontrol LawBeforeSettledFailures). Runs recorded before it keep the
// earlier law to their end, for the same reason.
const settledFailuresLawVersion = "settled-failures-law"

// lostAtLawVersion marks the controller whose control law remembers the
// limit of a probe refuted below the ceiling and goes back toward the
// ceiling once that limit reads healthy (flowcontrol LawBeforeLostAt).
// Runs recorded before it keep the earlier law to their end, for the same
// reason.
const lostAtLawVersion = "lost-at-law"

// lostAtClearedLawVersion marks the controller whose control law clears that
// limit once the agency takes the ceiling again, and does not read a period
// whose refusals the background accounts for as that limit taken
// (flowcontrol LawBeforeLostAtCleared). Runs recorded before it keep the
// earlier law to their end, for the same reason.
const lostAtClearedLawVersion = "lost-at-cleared-law"

// ceilingStopLawVersion marks the controller whose control law ends slow
// start at the ceiling instead of a step beyond it (flowcontrol
// LawBeforeCeilingStop). Runs recorded before it keep the earlier law to
// their end, for the same reason.
const ceilingStopLawVersion = "ceiling-stop-law"

// heldRecoveryLawVersion marks the controller whose control law slow-starts
// a recovery read at a limit far below the ceiling, back at the baseline
// where the latency was read slow (flowcontrol LawBeforeHeldRecovery). Runs
// recorded before it keep the earlier law to their end, for the same
// reason.
const heldRecoveryLawVersion = "held-recovery-law"

// checkWaitBoundLawVersion marks the controller whose control law holds
// failures for a latency cut's pending check only if the check can tell a
// slower agency from a busier one (flowcontrol LawBeforeCheckWaitBound).
// Runs recorded before it keep the earlier law to their end, for the same
// reason.
const checkWaitBoundLawVersion = "check-wait-bound-law"

// timeoutsCheckedLawVersion marks the controller whose control law checks
// a failure cut on timeouts as a latency cut, and lets a check due read its
// period whatever failed in it (flowcontrol LawBeforeTimeoutsChecked). Runs
// recorded before it keep the earlier law to their end, for the same
// reason.
const timeoutsCheckedLawVersion = "timeouts-checked-law"

// checkEvidenceLawVersion marks the controller whose control law checks a
// latency cut on evidence within half the fall queueing predicts for it
// (flowcontrol LawBeforeCheckEvidence). Runs recorded before it keep the
// earlier law to their end, for the same reason.
const checkEvidenceLawVersion = "check-evidence-law"

// floorTestLawVersion marks the controller whose control law tests the
// trouble floor once it has held a second failure cut (flowcontrol
// LawBeforeFloorTest). Runs recorded before it keep the earlier law to
// their end, for the same reason.
const floorTestLawVersion = "floor-test-law"

// refusedLatencyCutLawVersion marks the controller whose control law cuts
// by at most a quarter on the latency at an agency that refused calls since
// it was last healthy (flowcontrol LawBeforeRefusedLatencyCut). Runs
// recorded before it keep the earlier law to their end, for the same
// reason.
const refusedLatencyCutLawVersion = "refused-latency-cut-law"

// backAtSpeedRecoveryLawVersion marks the controller whose control law
// slow-starts back to the ceiling a slowdown set aside once the agency is
// read back at its old speed far below it (flowcontrol
// LawBeforeBackAtSpeedRecovery). Runs recorded before it keep the earlier
// law to their end, for the same reason.
const backAtSpeedRecoveryLawVersion = "back-at-speed-recovery-law"

// slowStartCapacityLawVersion marks the controller whose control law takes
// the ceiling slow start ended at as the capacity seen, so growth beyond it
// goes a call at a time (flowcontrol LawBeforeSlowStartCapacity). Runs
// recorded before it keep the earlier law to their end, for the same
// reason.
const slowStartCapacityLawVersion = "slow-start-capacity-law"

// floorTestReadLawVersion marks the controller whose control law has the
// trouble floor's test read 20 calls, and relearn the baseline of an agency
// found slower below the floor (flowcontrol LawBeforeFloorTestRead). Runs
// recorded before it keep the earlier law to their end, for the same
// reason.
const floorTestReadLawVersion = "floor-test-read-law"

// probeRefusedLawVersion marks the controller whose control law has a lone
// refusal of a few calls refute a one-call probe at once (flowcontrol
// LawBeforeProbeRefused). Runs recorded before it keep the earlier law to
// their end, for the same reason.
const probeRefusedLawVersion = "probe-refused-law"

// refusedHeldLawVersion marks the controller whose control law has a limit
// held with a few refusals, too few to cut, count the limit a call below
// it as seen healthy (flowcontrol LawBeforeRefusedHeld). Runs recorded
// before it keep the earlier law to their end, for the same reason.
const refusedHeldLawVersion = "refused-held-law"

// stepRefusedLawVersion marks the controller whose control law has a lone
// refusal of a few calls at a step of several calls beyond Good take the
// limit back one call at once (flowcontrol LawBeforeStepRefused). Runs
// recorded before it keep the earlier law to their end, for the same
// reason.
const stepRefusedLawVersion = "step-refused-law"

// probeTakenLawVersion marks the controller whose control law regrows the
// limit at once from a period with nothing refused at the limit of a probe
// an agency with no queue refused at once lately (flowcontrol
// LawBeforeProbeTaken). Runs recorded before it keep the earlier law to
// their end, for the same reason.
const probeTakenLawVersion = "probe-taken-law"

// wellReadLevelLawVersion marks the controller whose control law tests a
// level read over more calls than the pool below it against the pool's
// counts, not its rate, before it stops the pool of the background rates
// (flowcontrol LawBeforeWellReadLevel). Runs recorded before it keep the
// earlier law to their end, for the same reason.
const wellReadLevelLawVersion = "well-read-level-law"

// backgroundTailLawVersion marks the controller whose control law reads the
// background's allowance off the Poisson tail and fades the rates' prior
// with the failures read (flowcontrol LawBeforeBackgroundTail). Runs
// recorded before it keep the earlier law to their end, for the same
// reason.
const backgroundTailLawVersion = "background-tail-law"

// freshEvidenceLawVersion marks the controller whose control law reads
// evidence gathered over several periods without its earlier ones once the
// last reads faster than they do beyond the noise of both (flowcontrol
// LawBeforeFreshEvidence). Runs recorded before it keep the earlier law to
// their end, for the same reason.
const freshEvidenceLawVersion = "fresh-evidence-law"

// lawChanges are the control law's changes, each marker with the law
// before it, in the order they were made: a run without a change's marker
// predates it and every later one.
var lawChanges = []struct {
	marker string
	before int
}{
	{backgroundLawVersion, flowcontrol.LawBeforeBackground},
	{probeBoundLawVersion, flowcontrol.LawBeforeProbeBound},
	{warmCheckLawVersion, flowcontrol.LawBeforeWarmCheck},
	{failCheckLawVersion, flowcontrol.LawBeforeFailCheck},
	{fastBaselineLawVersion, flowcontrol.LawBeforeFastBaseline},
	{loneWarmRefusalLawVersion, flowcontrol.LawBeforeLoneWarmRefusal},
	{servedFloorLawVersion, flowcontrol.LawBeforeServedFloor},
	{drainedCheckLawVersion, flowcontrol.LawBeforeDrainedCheck},
	{failureCutShownLawVersion, flowcontrol.LawBeforeFailureCutShown},
	{baselineNoiseLawVersion, flowcontrol.LawBeforeBaselineNoise},
	{settledFailuresLawVersion, flowcontrol.LawBeforeSettledFailures},
	{lostAtLawVersion, flowcontrol.LawBeforeLostAt},
	{lostAtClearedLawVersion, flowcontrol.LawBeforeLostAtCleared},
	{ceilingStopLawVersion, flowcontrol.LawBeforeCeilingStop},
	{heldRecoveryLawVersion, flowcontrol.LawBeforeHeldRecovery},
	{checkWaitBoundLawVersion, flowcontrol.LawBeforeCheckWaitBound},
	{timeoutsCheckedLawVersion, flowcontrol.LawBeforeTimeoutsChecked},
	{checkEvidenceLawVersion, flowcontrol.LawBeforeCheckEvidence},
	{floorTestLawVersion, flowcontrol.LawBeforeFloorTest},
	{refusedLatencyCutLawVersion, flowcontrol.LawBeforeRefusedLatencyCut},
	{backAtSpeedRecoveryLawVersion, flowcontrol.LawBeforeBackAtSpeedRecovery},
	{slowStartCapacityLawVersion, flowcontrol.LawBeforeSlowStartCapacity},
	{floorTestReadLawVersion, flowcontrol.LawBeforeFloorTestRead},
	{probeRefusedLawVersion, flowcontrol.LawBeforeProbeRefused},
	{refusedHeldLawVersion, flowcontrol.LawBeforeRefusedHeld},
	{stepRefusedLawVersion, flowcontrol.LawBeforeStepRefused},
	{probeTakenLawVersion, flowcontrol.LawBeforeProbeTaken},
	{wellReadLevelLawVersion, flowcontrol.LawBeforeWellReadLevel},
	{backgroundTailLawVersion, flowcontrol.LawBeforeBackgroundTail},
	{freshEvidenceLawVersion, flowcontrol.LawBeforeFreshEvidence},
}

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
	r, err := newControllerRun(ctx, in)
	if err != nil {
		return err
	}
	if err := r.setHandlers(); err != nil {
		return err
	}
	r.resumeState()
	if err := r.resumeBoard(); err != nil {
		return err
	}
	r.overrideCh = workflow.GetSignalChannel(ctx, BreakerOverrideSignal)
	r.carried = r.in.Overrides
	r.initLimits()

	// Earlier runs observed and stepped every agency every period.
	r.ownPeriods = workflow.GetVersion(ctx, agencyPeriodsVersion, workflow.DefaultVersion, 1) >= 1
	// Earlier runs slept one period from wherever a tick ended.
	r.aligned = workflow.GetVersion(ctx, alignedTicksVersion, workflow.DefaultVersion, 1) >= 1
	// Each run follows the law it was recorded under; a run continued as
	// new takes the current one.
	r.status.State.Law = 0
	for _, l := range lawChanges {
		if workflow.GetVersion(ctx, l.marker, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			r.status.State.Law = l.before
			break
		}
	}
	for i := 0; i < r.periods; i++ {
		if err := r.tick(i); err != nil {
			return err
		}
	}
	return r.continueAsNew()
}

// controllerRun is one run of FlowControllerWorkflow: what its steps, its
// query and its update share.
type controllerRun struct {
	ctx    workflow.Context
	logger log.Logger
	// in is the run's input, kept current: the configuration in force, and
	// what continue-as-new carries.
	in       FlowControllerInput
	periods  int      // ticks in this run
	agencies []string // sorted
	lctx     workflow.Context
	status   FlowControllerStatus
	// overrideCh receives BreakerOverrideSignal; carried are the overrides
	// the previous run handed over, applied at the first tick.
	overrideCh workflow.ReceiveChannel
	carried    []BreakerOverride
	// ownPeriods (agencyPeriodsVersion) and aligned (alignedTicksVersion)
	// are the versions this run follows.
	ownPeriods, aligned bool
}

// newControllerRun checks the input and fills in its defaults; bad input
// fails at once and is not retried.
func newControllerRun(ctx workflow.Context, in FlowControllerInput) (*controllerRun, error) {
	logger := workflow.GetLogger(ctx)
	if in.Config.Period <= 0 {
		in.Config.Period = time.Second
	}
	settings := ControllerSettings{Config: in.Config, Breakers: in.Breakers, LeasePeriods: in.LeasePeriods}
	// Validates agencies and breakers in name order.
	//workflowcheck:ignore
	if err := settings.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalidInput, err)
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
	return &controllerRun{
		ctx: ctx, logger: logger, in: in, periods: periods, agencies: agencies, lctx: lctx,
		status: FlowControllerStatus{Limits: map[string]int{}, Config: in.Config, Breakers: in.Breakers},
	}, nil
}

// setHandlers registers FlowStateQuery and ConfigUpdate.
func (r *controllerRun) setHandlers() error {
	if err := workflow.SetQueryHandler(r.ctx, FlowStateQuery, func() (FlowControllerStatus, error) {
		st := r.status
		st.Pending = len(r.in.Pending)
		return st, nil
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(r.ctx, ConfigUpdate, r.updateConfig,
		workflow.UpdateHandlerOptions{Validator: r.validateConfig})
}

// updateConfig is ConfigUpdate's handler: the new configuration is in
// force from the next tick.
func (r *controllerRun) updateConfig(_ workflow.Context, c ControllerSettings) error {
	if c.Config.Period <= 0 {
		c.Config.Period = time.Second
	}
	r.in.Config, r.in.Breakers = c.Config, c.Breakers
	if c.LeasePeriods > 0 {
		r.in.LeasePeriods = c.LeasePeriods
	}
	// The names are sorted.
	//workflowcheck:ignore
	r.agencies = sortedAgencies(r.in.Config)
	r.status.Config, r.status.Breakers = r.in.Config, r.in.Breakers
	r.logger.Info("controller configuration updated", "agencies", r.agencies, "period", r.in.Config.Period)
	return nil
}

// validateConfig is ConfigUpdate's validator: it refuses a configuration
// that is invalid or unchanged.
func (r *controllerRun) validateConfig(c ControllerSettings) error {
	if c.Config.Period <= 0 {
		c.Config.Period = time.Second
	}
	// An unchanged configuration is refused, so it leaves no trace in
	// history: every worker start offers its configuration.
	// DeepEqual's answer does not depend on map iteration order.
	//workflowcheck:ignore
	same := reflect.DeepEqual(c.Config, r.in.Config) && reflect.DeepEqual(c.Breakers, r.in.Breakers)
	if same && (c.LeasePeriods == 0 || c.LeasePeriods == r.in.LeasePeriods) {
		return errConfigUnchanged
	}
	// Validates in name order.
	//workflowcheck:ignore
	return c.Validate()
}

// resumeState takes the control state carried across continue-as-new, or
// on a fresh start resumes from the limits persisted in Redis.
func (r *controllerRun) resumeState() {
	if r.in.State != nil {
		r.status.State = *r.in.State
		return
	}
	var ca *activities.ControllerActivities
	var limits map[string]int
	if err := workflow.ExecuteLocalActivity(r.lctx, ca.ReadLimits, r.agencies).Get(r.ctx, &limits); err != nil {
		r.logger.Warn("could not read persisted limits; starting from the initial limits", "error", err)
	}
	// Fills a map: order does not matter.
	//workflowcheck:ignore
	r.status.State = flowcontrol.Resume(limits, r.in.Config)
	r.logger.Info("flow controller resumed", "limits", limits)
}

// resumeBoard takes the breakers carried across continue-as-new, or on a
// fresh start rebuilds them from what was published, waiting until it can
// be read.
func (r *controllerRun) resumeBoard() error {
	if r.in.Board != nil {
		r.status.Board = *r.in.Board
		return nil
	}
	var ca *activities.ControllerActivities
	// Never from nothing: a blank board would publish every breaker
	// closed, wiping open bureaus and operator overrides.
	for {
		var pb activities.PublishedBoard
		err := workflow.ExecuteLocalActivity(r.lctx, ca.ReadBoard, r.agencies).Get(r.ctx, &pb)
		if err == nil {
			r.status.Board = rebuildBoard(r.agencies, pb)
			r.logger.Info("breakers rebuilt from published state", "live", len(pb.Live), "audited", len(pb.Last))
			return nil
		}
		r.logger.Warn("cannot read the published breakers; waiting before publishing anything", "error", err)
		if err := workflow.Sleep(r.ctx, r.in.Config.Period); err != nil {
			return err
		}
	}
}

// initLimits starts the applied limits from the control state, rounded to
// whole calls.
func (r *controllerRun) initLimits() {
	// Fills a map: order does not matter.
	//workflowcheck:ignore
	for a, s := range r.status.State.Agencies {
		r.status.Limits[a] = int(s.Limit + 0.5)
	}
}

// tick is one control period: observe the agencies, step their limits and
// breakers, publish, audit, probe, and sleep until the next tick.
func (r *controllerRun) tick(i int) error {
	obs, err := r.observe()
	obs, decisions := r.stepLimits(obs, err)
	r.recordObservations(obs, decisions)
	changed := r.applyLimits(decisions)
	statuses := r.stepBreakers(obs, decisions)
	r.publish(statuses, decisions, changed)
	r.audit()
	probe(r.ctx, probes(r.status.Board, r.in), r.in.Config.Period, workflow.GetInfo(r.ctx).WorkflowExecution.RunID, i)
	return r.sleepUntilNextTick()
}

// observe reads the agencies' call statistics since the last observation
// (a local activity, so the reading is recorded in history).
func (r *controllerRun) observe() (map[string]flowcontrol.Observation, error) {
	var ca *activities.ControllerActivities
	var obs map[string]flowcontrol.Observation
	oin := activities.ObserveInput{Agencies: r.agencies, Period: r.in.Config.Period, After: r.in.ObservedThrough}
	if r.ownPeriods {
		// Fills maps: order does not matter.
		//workflowcheck:ignore
		oin.Periods, oin.Cursors = agencyPeriods(r.in.Config), r.in.Cursors
	}
	err := workflow.ExecuteLocalActivity(r.lctx, ca.Observe, oin).Get(r.ctx, &obs)
	return obs, err
}

// stepLimits applies the control law to the agencies observed; it returns
// the observations it judged (none when the observation failed) and the
// decisions.
func (r *controllerRun) stepLimits(obs map[string]flowcontrol.Observation, err error) (map[string]flowcontrol.Observation, []flowcontrol.Decision) {
	var decisions []flowcontrol.Decision
	r.status.Decisions = nil
	switch {
	case err != nil:
		// Without statistics the limits stay where they are; the
		// workers keep running on them.
		r.logger.Warn("observe agencies failed; holding limits", "error", err)
		obs = nil
	case len(obs) == 0:
		// No agency has a new period to judge.
	case r.ownPeriods:
		// Only the agencies observed are due: the others keep their
		// state until a whole period of their own has completed.
		due := make([]string, 0, len(obs))
		for _, a := range r.agencies {
			if _, ok := obs[a]; ok {
				due = append(due, a)
			}
		}
		// StepDue visits agencies in name order.
		//workflowcheck:ignore
		r.status.State, decisions = flowcontrol.StepDue(r.status.State, obs, r.in.Config, due)
	default:
		// Step visits agencies in name order.
		//workflowcheck:ignore
		r.status.State, decisions = flowcontrol.Step(r.status.State, obs, r.in.Config)
	}
	return obs, decisions
}

// recordObservations keeps the observations and decisions for the status
// query, and advances the statistics already observed.
func (r *controllerRun) recordObservations(obs map[string]flowcontrol.Observation, decisions []flowcontrol.Decision) {
	if len(obs) == 0 {
		return
	}
	r.status.Decisions = decisions
	if r.status.Observations == nil {
		r.status.Observations = map[string]flowcontrol.Observation{}
	}
	for _, a := range r.agencies {
		o, ok := obs[a]
		if !ok {
			continue
		}
		r.status.Observations[a] = o
		if o.Now.After(r.in.ObservedThrough) {
			r.in.ObservedThrough = o.Now
		}
		if r.ownPeriods {
			if r.in.Cursors == nil {
				r.in.Cursors = map[string]time.Time{}
			}
			r.in.Cursors[a] = o.Now
		}
	}
}

// applyLimits takes the decided limits and reports whether any differs
// from the one applied.
func (r *controllerRun) applyLimits(decisions []flowcontrol.Decision) bool {
	changed := false
	for _, d := range decisions {
		if applied, ok := r.status.Limits[d.Agency]; !ok || applied != d.Limit {
			changed = true
		}
		r.status.Limits[d.Agency] = d.Limit
	}
	return changed
}

// stepBreakers steps the breakers with the operators' overrides and queues
// their transitions for the audit; it returns the breakers to publish.
func (r *controllerRun) stepBreakers(obs map[string]flowcontrol.Observation, decisions []flowcontrol.Decision) []breaker.Status {
	// Breakers step after the limits: shrinking the pool comes first.
	overrides := append(r.carried, drainOverrides(r.ctx, r.overrideCh)...)
	r.carried = nil
	// The breakers step every tick, their timers running on time, but judge
	// an agency only from its new observation: at its own period.
	// Visits agencies in name order.
	//workflowcheck:ignore
	statuses, events := stepBoard(&r.status.Board, workflow.Now(r.ctx), obs, decisions, r.in, overrides)
	for _, e := range events {
		r.logger.Info("breaker transition", "breaker", e.Breaker, "from", e.From, "to", e.To, "reason", e.Reason, "source", e.Source)
	}
	r.in.Pending = append(r.in.Pending, events...)
	if n := len(r.in.Pending) - maxPending; n > 0 {
		r.logger.Error("breaker audit keeps failing; dropping the oldest transitions", "dropped", n)
		r.in.Pending = r.in.Pending[n:]
	}
	return statuses
}

// publish writes the limits (and the decisions, when a limit changed) and
// the breakers, each a lease renewed, to Redis.
func (r *controllerRun) publish(statuses []breaker.Status, decisions []flowcontrol.Decision, changed bool) {
	var ca *activities.ControllerActivities
	// Publish every period, before the audit: a lease renewed, Redis
	// repaired, and a Postgres outage cannot hold the breakers back.
	now := workflow.Now(r.ctx)
	for j := range statuses {
		statuses[j].Published, statuses[j].Expires = now, now.Add(r.in.lease())
	}
	pub := activities.PublishInput{Limits: r.status.Limits, Statuses: statuses, Lease: r.in.lease(), Period: r.in.Config.Period}
	if changed {
		pub.Decisions = decisions
	}
	if err := workflow.ExecuteLocalActivity(r.lctx, ca.Publish, pub).Get(r.ctx, nil); err != nil {
		r.logger.Warn("publishing limits and breakers failed; publishing again next period", "error", err)
	}
}

// audit records the pending breaker transitions in Postgres; those it
// cannot record are kept for the next period.
func (r *controllerRun) audit() {
	if len(r.in.Pending) == 0 {
		return
	}
	var ca *activities.ControllerActivities
	if err := workflow.ExecuteLocalActivity(r.lctx, ca.RecordBreakerEvents, r.in.Pending).Get(r.ctx, nil); err != nil {
		r.logger.Warn("auditing breaker transitions failed; kept for next period", "error", err, "pending", len(r.in.Pending))
	} else {
		r.in.Pending = nil
	}
}

// sleepUntilNextTick waits for the next tick: just after the statistics'
// current bucket ends (nextTickDelay), or one period on earlier runs.
func (r *controllerRun) sleepUntilNextTick() error {
	wait := r.in.Config.Period
	if r.aligned {
		wait = nextTickDelay(workflow.Now(r.ctx), r.in.Config.Period)
	}
	return workflow.Sleep(r.ctx, wait)
}

// continueAsNew hands the run's state to the next run once every signal and
// update handler has finished.
func (r *controllerRun) continueAsNew() error {
	// Nothing signalled or updated during the last period may be lost.
	if err := workflow.Await(r.ctx, func() bool { return workflow.AllHandlersFinished(r.ctx) }); err != nil {
		return err
	}
	st := r.status.State
	return workflow.NewContinueAsNewError(r.ctx, FlowControllerWorkflow, FlowControllerInput{
		Config: r.in.Config, State: &st, PeriodsPerRun: r.in.PeriodsPerRun, Breakers: r.in.Breakers, LeasePeriods: r.in.LeasePeriods,
		Board: &r.status.Board, Pending: r.in.Pending, Overrides: drainOverrides(r.ctx, r.overrideCh), ObservedThrough: r.in.ObservedThrough,
		Cursors: r.in.Cursors,
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
