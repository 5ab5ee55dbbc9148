package main

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"loanflow/agency"
	"loanflow/config"
	"loanflow/dev/devstack"
	"loanflow/flowcontrol"
	"loanflow/internal/testenv"
	"loanflow/workflows"
)

var quiet = log.NewStructuredLogger(slog.New(slog.DiscardHandler))

const (
	ceilingTPS   = 5
	ceilingCalls = 30
)

// fanOut schedules n no-op activities on the agency's queue at once.
func fanOut(ctx workflow.Context, queue string, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: queue, StartToCloseTimeout: time.Minute})
	fs := make([]workflow.Future, n)
	for i := range fs {
		fs[i] = workflow.ExecuteActivity(ctx, "noop")
	}
	for _, f := range fs {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// stubController answers breaker status's query as a controller would,
// with scraping on a period of its own.
func stubController(ctx workflow.Context) error {
	cfg := flowcontrol.DefaultConfig("kcb", "nice", "mydata", "scraping")
	sc := cfg.Agencies["scraping"]
	sc.Period = 3 * time.Second
	cfg.Agencies["scraping"] = sc
	st := workflows.FlowControllerStatus{Config: cfg, Limits: map[string]int{"kcb": 16, "nice": 16, "mydata": 16, "scraping": 8}}
	if err := workflow.SetQueryHandler(ctx, workflows.FlowStateQuery, func() (workflows.FlowControllerStatus, error) { return st, nil }); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return false })
}

// A contracted TPS ceiling is enforced by Temporal: with 30 activities
// scheduled at once on the scraping queue held to 5/s, the worker is handed
// them at about 5 a second (against hundreds a second without it), Temporal
// reports the ceiling, applying it again changes nothing, and `breaker
// status` shows it next to the queues that have none.
func TestTPSCeilingHeldByTemporalAndShown(t *testing.T) {
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{UIPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	c, err := client.Dial(client.Options{HostPort: st.Address, Namespace: st.Namespace, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	queue := agency.Scraping.TaskQueue()
	// Temporal's matching service publishes a task queue's configuration to
	// its partitions after the update returns: a read right after a write
	// may still see the old one, so each check waits for the new one.
	settled := func(what string, ok func(flowcontrol.Ceiling) bool) flowcontrol.Ceiling {
		t.Helper()
		var got flowcontrol.Ceiling
		deadline := time.Now().Add(10 * time.Second)
		for {
			var err error
			got, err = flowcontrol.ReadCeiling(ctx, c.WorkflowService(), st.Namespace, queue)
			if err != nil {
				t.Fatal(err)
			}
			if ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("Temporal reports %+v after 10 s; want %s", got, what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	changed, err := flowcontrol.ApplyCeiling(ctx, c.WorkflowService(), st.Namespace, queue, "ceiling-test", ceilingTPS, "scraping contracted at 5 calls/s")
	if err != nil || !changed {
		t.Fatalf("apply the ceiling: changed %v, %v", changed, err)
	}
	settled("the 5/s ceiling with loanflow's reason", func(got flowcontrol.Ceiling) bool {
		return got.Set && got.TPS == ceilingTPS && strings.HasPrefix(got.Reason, flowcontrol.CeilingReasonPrefix)
	})
	if changed, err := flowcontrol.ApplyCeiling(ctx, c.WorkflowService(), st.Namespace, queue, "ceiling-test", ceilingTPS, "again"); err != nil || changed {
		t.Fatalf("applying an equal ceiling again: changed %v, %v; want no change", changed, err)
	}

	var mu sync.Mutex
	var starts []time.Time
	noop := func(context.Context) error {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return nil
	}
	aw := worker.New(c, queue, worker.Options{})
	aw.RegisterActivityWithOptions(noop, activity.RegisterOptions{Name: "noop"})
	ww := worker.New(c, "ceiling-test", worker.Options{})
	ww.RegisterWorkflow(fanOut)
	ww.RegisterWorkflowWithOptions(stubController, workflow.RegisterOptions{Name: "FlowControllerWorkflow"})
	for _, w := range []worker.Worker{aw, ww} {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "fan-out", TaskQueue: "ceiling-test"}, fanOut, queue, ceilingCalls)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	mu.Unlock()
	// Temporal splits a queue's rate over its partitions (4 by default), each
	// a token bucket of 5/4 per second with a burst of 2, and tasks land on
	// them unevenly: the queue is dispatched at or below the ceiling, and no
	// stretch of time holds more than the ceiling allows plus the buckets'
	// bursts. Without it, 30 no-op activities are handed out within a
	// fraction of a second.
	const burst = 4 * 2
	total := starts[len(starts)-1].Sub(starts[0])
	rate := float64(len(starts)-1) / total.Seconds()
	offsets := make([]string, len(starts))
	for i, s := range starts {
		offsets[i] = s.Sub(starts[0]).Round(10 * time.Millisecond).String()
		for j := i + 1; j < len(starts); j++ {
			allowed := ceilingTPS*starts[j].Sub(s).Seconds() + burst
			if n := j - i + 1; float64(n) > allowed+1 {
				t.Errorf("%d activities dispatched within %s, the ceiling allows %.1f", n, starts[j].Sub(s).Round(time.Millisecond), allowed)
			}
		}
	}
	t.Logf("%d activities in %s: %.2f/s; starts at %v", len(starts), total.Round(time.Millisecond), rate, offsets)
	if rate > 1.2*ceilingTPS || rate < 0.4*ceilingTPS {
		t.Fatalf("dispatch rate %.2f/s, want at most the %d/s ceiling and not far below it", rate, ceilingTPS)
	}

	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.FlowControllerID, TaskQueue: "ceiling-test"}, "FlowControllerWorkflow"); err != nil {
		t.Fatal(err)
	}
	dial := func() (client.Client, config.Temporal, error) {
		cc, err := client.Dial(client.Options{HostPort: st.Address, Namespace: st.Namespace, Logger: quiet})
		return cc, config.Temporal{Namespace: st.Namespace}, err
	}
	var out bytes.Buffer
	if err := (cli{dial: dial}).run(ctx, []string{"breaker", "status"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("breaker status: %v\n%s", err, out.String())
	}
	t.Logf("breaker status:\n%s", out.String())
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[0], "PERIOD") || !strings.Contains(lines[0], "TPS") {
		t.Fatalf("header %q, want PERIOD and TPS columns", lines[0])
	}
	row := func(name string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return f
			}
		}
		t.Fatalf("no %s row in\n%s", name, out.String())
		return nil
	}
	// BREAKER STATE SINCE LIMIT PERIOD TPS ...
	if f := row("scraping"); f[4] != "3s" || f[5] != "5/s" {
		t.Fatalf("scraping row %q, want period 3s and TPS 5/s", f)
	}
	if f := row("kcb"); f[4] != "1s" || f[5] != "-" {
		t.Fatalf("kcb row %q, want period 1s and no ceiling (-)", f)
	}

	// A contract without a ceiling removes the one loanflow set, and leaves
	// alone one an operator set by hand.
	if changed, err := flowcontrol.ApplyCeiling(ctx, c.WorkflowService(), st.Namespace, queue, "ceiling-test", 0, "none"); err != nil || !changed {
		t.Fatalf("removing loanflow's ceiling: changed %v, %v", changed, err)
	}
	settled("no ceiling after its removal", func(got flowcontrol.Ceiling) bool { return !got.Set })
	if _, err := c.WorkflowService().UpdateTaskQueueConfig(ctx, &workflowservice.UpdateTaskQueueConfigRequest{
		Namespace: st.Namespace, Identity: "operator", TaskQueue: queue, TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		UpdateQueueRateLimit: &workflowservice.UpdateTaskQueueConfigRequest_RateLimitUpdate{
			RateLimit: &taskqueuepb.RateLimit{RequestsPerSecond: 2}, Reason: "agency incident"},
	}); err != nil {
		t.Fatal(err)
	}
	operator := func(got flowcontrol.Ceiling) bool { return got.Set && got.TPS == 2 }
	settled("the operator's 2/s", operator)
	if changed, err := flowcontrol.ApplyCeiling(ctx, c.WorkflowService(), st.Namespace, queue, "ceiling-test", 0, "none"); err != nil || changed {
		t.Fatalf("an operator's ceiling: changed %v, %v; want it left alone", changed, err)
	}
	settled("the operator's 2/s left alone", operator)
}
