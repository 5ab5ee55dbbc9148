package main

import (
	"context"
	"time"

	"go.temporal.io/sdk/workflow"
)

// rawQueue carries the raw peer's workflows and sequential activities, as
// the loan queue does; rawAgencyQueues stand for the three agency queues.
const rawQueue = "bench.raw"

var rawAgencyQueues = []string{"bench.raw.a", "bench.raw.b", "bench.raw.c"}

// rawActivities do nothing: the raw peer measures Temporal alone.
type rawActivities struct{}

// Noop returns at once.
func (*rawActivities) Noop(context.Context) error { return nil }

// RawWorkflow has the command sequence of an approved loan application with
// no work in it: a local activity (the breaker read), an activity (saving the
// application), three activities in parallel on three other queues (the
// agency calls), then three in sequence (saving the approval, disbursing,
// saving the outcome).
func RawWorkflow(ctx workflow.Context) error {
	var a *rawActivities
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 2 * time.Second})
	if err := workflow.ExecuteLocalActivity(lctx, a.Noop).Get(ctx, nil); err != nil {
		return err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	if err := workflow.ExecuteActivity(actx, a.Noop).Get(ctx, nil); err != nil {
		return err
	}
	futures := make([]workflow.Future, 0, len(rawAgencyQueues))
	for _, q := range rawAgencyQueues {
		qctx := workflow.WithTaskQueue(actx, q)
		futures = append(futures, workflow.ExecuteActivity(qctx, a.Noop))
	}
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	for range 3 {
		if err := workflow.ExecuteActivity(actx, a.Noop).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}
