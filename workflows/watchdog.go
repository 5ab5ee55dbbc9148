package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
)

// WatchdogScheduleID names the Temporal Schedule that runs
// ControllerWatchdogWorkflow every few seconds.
const WatchdogScheduleID = "loanflow-controller-watchdog"

// ControllerWatchdogWorkflow is one round of the controller's watchdog, run
// by a Temporal Schedule: it makes sure the flow controller runs and ticks,
// starting it when it is gone and replacing it when it has stopped ticking
// (a stuck workflow task still counts as running). Being scheduled by the
// server, the watchdog itself needs no process to stay alive.
func ControllerWatchdogWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	var wa *activities.WatchdogActivities
	return workflow.ExecuteActivity(ctx, wa.EnsureController).Get(ctx, nil)
}
