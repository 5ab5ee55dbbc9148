package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"loanflow/activities"
	"loanflow/workflows"
)

// Defaults of the controller's keeping-alive.
const (
	// DefaultWatchdogEvery is how often the watchdog schedule checks the
	// controller: a terminated controller is back within about this long.
	DefaultWatchdogEvery = 5 * time.Second
	// DefaultStalePeriods is how many control periods without a tick make
	// the controller stale: logged by every worker, and replaced by the
	// watchdog.
	DefaultStalePeriods = 10
)

// tickAge holds the age of the controller's last tick as last read, for the
// loanflow_controller_last_tick_age_seconds gauge.
type tickAge struct{ bits atomic.Uint64 }

func (t *tickAge) set(d time.Duration) { t.bits.Store(math.Float64bits(d.Seconds())) }

// Seconds is the last age read; +Inf before the controller ever ticked.
func (t *tickAge) Seconds() float64 { return math.Float64frombits(t.bits.Load()) }

func (a *App) controllerSettings() workflows.ControllerSettings {
	return workflows.ControllerSettings{Config: a.cfg.Flow, Breakers: a.cfg.Breakers, LeasePeriods: a.cfg.LeasePeriods}
}

// EnsureController starts the flow controller unless it already runs, hands
// a running one this process's configuration (an Update, recorded in its
// history; refused without trace when nothing changed), and makes sure the
// watchdog schedule exists.
func (a *App) EnsureController(ctx context.Context) error {
	started, err := a.startController(ctx)
	if err != nil {
		return err
	}
	if !started {
		uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		h, err := a.client.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
			WorkflowID: workflows.FlowControllerID, UpdateName: workflows.ConfigUpdate,
			Args: []any{a.controllerSettings()}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(uctx, nil)
		}
		switch {
		case err == nil:
			a.log.Info("flow controller configuration updated")
		case workflows.IsConfigUnchanged(err):
		default:
			// The watchdog replaces a controller that does not answer.
			a.log.Warn("could not hand the flow controller this worker's configuration", "error", err)
		}
	}
	return a.ensureWatchdog(ctx)
}

// startController starts the controller; false when it already ran.
func (a *App) startController(ctx context.Context) (bool, error) {
	run, err := a.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.FlowControllerID,
		TaskQueue:                workflows.ControllerTaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.FlowControllerWorkflow, workflows.FlowControllerInput{
		Config: a.cfg.Flow, Breakers: a.cfg.Breakers, LeasePeriods: a.cfg.LeasePeriods,
		PeriodsPerRun: a.cfg.ControllerPeriodsPerRun})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &already):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("start the flow controller: %w", err)
	}
	a.log.Info("flow controller started", "run_id", run.GetRunID(), "task_queue", workflows.ControllerTaskQueue)
	return true, nil
}

// ensureWatchdog creates the schedule that runs ControllerWatchdogWorkflow
// every WatchdogEvery; an existing one is kept.
func (a *App) ensureWatchdog(ctx context.Context) error {
	every := a.cfg.WatchdogEvery
	if every <= 0 {
		every = DefaultWatchdogEvery
	}
	_, err := a.client.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      workflows.WatchdogScheduleID,
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Action: &client.ScheduleWorkflowAction{
			ID:                 workflows.WatchdogScheduleID,
			Workflow:           workflows.ControllerWatchdogWorkflow,
			TaskQueue:          workflows.ControllerTaskQueue,
			WorkflowRunTimeout: time.Minute,
		},
		Memo: map[string]any{"purpose": "restarts the flow controller when it is gone or stopped ticking"},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		var exists *serviceerror.AlreadyExists
		if !errors.As(err, &exists) {
			return fmt.Errorf("create the controller watchdog schedule %s: %w", workflows.WatchdogScheduleID, err)
		}
	}
	return nil
}

// checkController is the watchdog's round: start the controller when no run
// is open; terminate and start again a run that has not ticked for
// StalePeriods periods (a non-determinism error after a deploy, a run left on
// an old task queue) although it has been running that long.
func (a *App) checkController(ctx context.Context) error {
	d, err := a.client.DescribeWorkflowExecution(ctx, workflows.FlowControllerID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return fmt.Errorf("describe the flow controller: %w", err)
	case d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		hb, err := activities.ReadHeartbeat(ctx, a.redis, a.cfg.RedisPrefix)
		if err != nil {
			return err // Redis down: no evidence against the controller
		}
		stale := a.staleAfter()
		running := time.Since(d.GetWorkflowExecutionInfo().GetStartTime().AsTime())
		if running < stale || (hb.Found && hb.Age < stale) {
			return nil
		}
		// A heartbeat lost with Redis's data is written again within a
		// period: look once more before acting.
		time.Sleep(a.cfg.Flow.Period + 500*time.Millisecond)
		if hb, err = activities.ReadHeartbeat(ctx, a.redis, a.cfg.RedisPrefix); err != nil || (hb.Found && hb.Age < stale) {
			return err
		}
		a.log.Error("flow controller is running but not ticking; replacing it", "last_tick_age", hb.Age, "found", hb.Found, "running_for", running.Round(time.Second))
		if err := a.client.TerminateWorkflow(ctx, workflows.FlowControllerID, "", fmt.Sprintf("watchdog: no tick for %s", stale)); err != nil {
			var nf *serviceerror.NotFound
			if !errors.As(err, &nf) {
				return fmt.Errorf("terminate the stuck flow controller: %w", err)
			}
		}
	}
	started, err := a.startController(ctx)
	if started {
		a.log.Warn("watchdog restarted the flow controller")
	}
	return err
}

// staleAfter is how long without a tick makes the controller stale.
func (a *App) staleAfter() time.Duration {
	n := a.cfg.StalePeriods
	if n <= 0 {
		n = DefaultStalePeriods
	}
	return time.Duration(n) * a.cfg.Flow.Period
}

// watchHeartbeat reads the controller's heartbeat every second until ctx
// ends: it feeds the tick-age gauge and logs, once per incident, when the
// controller has missed StalePeriods periods.
func (a *App) watchHeartbeat(ctx context.Context) {
	a.tickAge.bits.Store(math.Float64bits(math.Inf(1)))
	alerted := false
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hb, err := activities.ReadHeartbeat(ctx, a.redis, a.cfg.RedisPrefix)
		if err != nil {
			continue // the statistics and membership loops report Redis
		}
		if !hb.Found {
			continue
		}
		a.tickAge.set(hb.Age)
		switch stale := hb.Age >= a.staleAfter(); {
		case stale && !alerted:
			a.log.Error("flow controller has not ticked", "last_tick_age", hb.Age.Round(time.Millisecond), "missed_periods", hb.MissedPeriods())
			alerted = true
		case !stale && alerted:
			a.log.Info("flow controller ticks again", "last_tick_age", hb.Age.Round(time.Millisecond))
			alerted = false
		}
	}
}

// waitPublished waits, up to within, for the controller's first publication,
// so that the first applications find live breaker records rather than the
// fail-safe states.
func (a *App) waitPublished(ctx context.Context, within time.Duration) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if hb, err := activities.ReadHeartbeat(ctx, a.redis, a.cfg.RedisPrefix); err == nil && hb.Found {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.log.Warn("the flow controller has not published yet; breakers read their fail-safe states until it does", "waited", within)
}
