package flowcontrol

import (
	"context"
	"fmt"
	"math"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// CeilingReasonPrefix starts the reason of every TPS ceiling loanflow sets
// on an agency queue: a ceiling without it was set by someone else (an
// operator with the temporal CLI) and is left alone.
const CeilingReasonPrefix = "loanflow contract: "

// Ceiling is an activity task queue's rate limit as Temporal reports it
// (DescribeTaskQueue with its configuration): the dispatch rate, in tasks
// per second, that Temporal's matching service holds the queue to, whatever
// the number of workers polling it.
type Ceiling struct {
	// Set is false when the queue has no rate limit of its own.
	Set    bool
	TPS    float64
	Reason string
}

// String is "5/s", or "-" when no ceiling is set.
func (c Ceiling) String() string {
	if !c.Set {
		return "-"
	}
	return fmt.Sprintf("%g/s", c.TPS)
}

// ReadCeiling returns the rate limit of the activity task queue.
func ReadCeiling(ctx context.Context, svc workflowservice.WorkflowServiceClient, namespace, queue string) (Ceiling, error) {
	resp, err := svc.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		ReportConfig:  true,
	})
	if err != nil {
		return Ceiling{}, fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	rl := resp.GetConfig().GetQueueRateLimit()
	if rl.GetRateLimit() == nil {
		return Ceiling{}, nil
	}
	return Ceiling{Set: true, TPS: float64(rl.GetRateLimit().GetRequestsPerSecond()), Reason: rl.GetMetadata().GetReason()}, nil
}

// ApplyCeiling makes the activity task queue's rate limit tps (0: none),
// through UpdateTaskQueueConfig, and says whether it changed anything. It is
// idempotent: an equal ceiling is left as it is, so every worker of a fleet
// can apply it when it starts. With tps 0 only a ceiling loanflow set
// (CeilingReasonPrefix) is removed; one an operator set stays. why is kept
// in the ceiling's reason.
func ApplyCeiling(ctx context.Context, svc workflowservice.WorkflowServiceClient, namespace, queue, identity string, tps float64, why string) (bool, error) {
	if tps < 0 || math.IsNaN(tps) || math.IsInf(tps, 0) {
		return false, fmt.Errorf("ceiling of task queue %s: tps %v: accepted 0 (none) or more", queue, tps)
	}
	cur, err := ReadCeiling(ctx, svc, namespace, queue)
	if err != nil {
		return false, err
	}
	ours := strings.HasPrefix(cur.Reason, CeilingReasonPrefix)
	update := &workflowservice.UpdateTaskQueueConfigRequest_RateLimitUpdate{Reason: CeilingReasonPrefix + why}
	switch {
	case tps > 0 && cur.Set && float32(cur.TPS) == float32(tps) && ours:
		return false, nil
	case tps > 0:
		update.RateLimit = &taskqueuepb.RateLimit{RequestsPerSecond: float32(tps)}
	case !cur.Set || !ours:
		return false, nil
	}
	_, err = svc.UpdateTaskQueueConfig(ctx, &workflowservice.UpdateTaskQueueConfigRequest{
		Namespace:            namespace,
		Identity:             identity,
		TaskQueue:            queue,
		TaskQueueType:        enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		UpdateQueueRateLimit: update,
	})
	if err != nil {
		return false, fmt.Errorf("set the rate limit of task queue %s to %g/s (UpdateTaskQueueConfig): %w", queue, tps, err)
	}
	return true, nil
}
