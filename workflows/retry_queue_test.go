package workflows

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"loanflow/agency"
	"loanflow/dev/devstack"
	"loanflow/internal/testenv"
)

// retryProbe is what retryProbeWorkflow read off its activity's failure.
type retryProbe struct {
	Err            string
	Timeout        enumspb.TimeoutType
	Queued         bool
	RetryQueued    bool
	StartedEventID int64
}

// retryProbeWorkflow runs one activity with a budget of budget, retried
// after retryAfter, and reports how its failure reads.
func retryProbeWorkflow(ctx workflow.Context, budget, retryAfter time.Duration) (retryProbe, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: budget,
		StartToCloseTimeout:    budget,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: retryAfter, BackoffCoefficient: 1, MaximumAttempts: 5},
	})
	err := workflow.ExecuteActivity(ctx, "RetryProbeActivity").Get(ctx, nil)
	if err == nil {
		return retryProbe{}, errors.New("the activity succeeded; the probe wants its budget to end")
	}
	p := retryProbe{Err: err.Error(), Queued: QueuedOut(err), RetryQueued: RetryQueuedOut(err)}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		p.Timeout = te.TimeoutType()
	}
	var ae *temporal.ActivityError
	if errors.As(err, &ae) {
		p.StartedEventID = ae.StartedEventID()
	}
	return p, nil
}

// The embedded Temporal server tells a call whose retry waited out its
// budget in the queue from one whose last attempt ran it out at the agency.
// Both fail their first attempt with a 503 (retryable); then:
//   - queued: the agency worker is gone when the retry is due, so the retry
//     waits in the task queue, as behind a backlog, until the budget ends:
//     the agency never saw it, and RetryQueuedOut says so;
//   - started: the retry is taken and hangs at the agency until the budget
//     ends: the agency's to answer for, not the queue's.
func TestRetryQueuedOutOnTheEmbeddedServer(t *testing.T) {
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{UIPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	quiet := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	c, err := client.Dial(client.Options{HostPort: st.Address, Namespace: st.Namespace, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	for _, tc := range []struct {
		name        string
		hang        bool // the retry hangs at the agency (else the worker stops before it)
		retryQueued bool
	}{
		{"queued", false, true},
		{"started", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			queue := "retry-probe-" + hex.EncodeToString(b)
			// The workflow's tasks run on a worker that takes no activity
			// task; the agency's on one that stops, in the queued case,
			// once the first attempt has failed.
			ww := worker.New(c, queue, worker.Options{LocalActivityWorkerOnly: true})
			ww.RegisterWorkflow(retryProbeWorkflow)
			if err := ww.Start(); err != nil {
				t.Fatal(err)
			}
			defer ww.Stop()
			failed := make(chan struct{}, 1)
			aw := worker.New(c, queue, worker.Options{DisableWorkflowWorker: true})
			aw.RegisterActivityWithOptions(func(ctx context.Context) error {
				if activity.GetInfo(ctx).Attempt == 1 {
					failed <- struct{}{}
					return temporal.NewApplicationError("503: queue full", string(agency.ClassOverload))
				}
				<-ctx.Done() // the retry hangs at the agency until the budget ends
				return ctx.Err()
			}, activity.RegisterOptions{Name: "RetryProbeActivity"})
			if err := aw.Start(); err != nil {
				t.Fatal(err)
			}
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					aw.Stop()
				}
			}
			defer stop()
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, retryProbeWorkflow, 4*time.Second, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-failed:
			case <-ctx.Done():
				t.Fatal("the first attempt never ran")
			}
			if !tc.hang {
				// Nothing takes the queue's activity tasks when the retry
				// is due (2 s later): it waits there until the budget ends.
				stop()
			}
			var got retryProbe
			if err := run.Get(ctx, &got); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %+v", tc.name, got)
			if got.Timeout != enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE {
				t.Fatalf("%s: the call ended on %v (%s), want its ScheduleToClose budget", tc.name, got.Timeout, got.Err)
			}
			if got.Queued {
				t.Errorf("%s: QueuedOut = true for a call whose first attempt the agency refused", tc.name)
			}
			if got.RetryQueued != tc.retryQueued {
				t.Errorf("%s: RetryQueuedOut = %v (started event %d), want %v", tc.name, got.RetryQueued, got.StartedEventID, tc.retryQueued)
			}
		})
	}
}
