package callstats

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	commonpb "go.temporal.io/api/common/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"loanflow/agency"
)

// TestActivityEnvironment always runs activities on its own default task
// queue, so agency queues are exercised through a workflow environment, whose
// activities run on the queue their options name, as on a real worker.

// fakeActivities are agency activities whose outcome the test sets.
type fakeActivities struct {
	calls   atomic.Int64
	release chan struct{} // when set, Block waits for it
	entered chan struct{}
}

func (f *fakeActivities) Succeed(ctx context.Context) (string, error) {
	f.calls.Add(1)
	time.Sleep(2 * time.Millisecond)
	return "ok", nil
}

func (f *fakeActivities) Overload(ctx context.Context) error {
	f.calls.Add(1)
	return &agency.CallError{Agency: agency.KCB, Class: agency.ClassOverload, StatusCode: 503, Err: errors.New("queue full")}
}

// OverloadThenSucceed fails its first attempt with an overload.
func (f *fakeActivities) OverloadThenSucceed(ctx context.Context) error {
	f.calls.Add(1)
	if activity.GetInfo(ctx).Attempt == 1 {
		return &agency.CallError{Agency: agency.KCB, Class: agency.ClassOverload, StatusCode: 429}
	}
	return nil
}

func (f *fakeActivities) Block(ctx context.Context) error {
	f.entered <- struct{}{}
	<-f.release
	return nil
}

// runOnQueue runs the named activities one after another on taskQueue from a
// workflow, with at most maxAttempts attempts each, and returns each one's
// error as the workflow saw it.
func runOnQueue(t *testing.T, rec *Recorder, acts any, taskQueue string, maxAttempts int32, names ...string) []error {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{NewInterceptor(rec)}})
	env.RegisterActivity(acts)
	wf := func(ctx workflow.Context) ([]string, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:           taskQueue,
			StartToCloseTimeout: 10 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: maxAttempts, InitialInterval: time.Millisecond},
		})
		errs := make([]string, len(names))
		for i, n := range names {
			if err := workflow.ExecuteActivity(ctx, n).Get(ctx, nil); err != nil {
				var appErr *temporal.ApplicationError
				if errors.As(err, &appErr) {
					errs[i] = appErr.Type()
				} else {
					errs[i] = err.Error()
				}
			}
		}
		return errs, nil
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "calls"})
	env.ExecuteWorkflow("calls")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var types []string
	if err := env.GetWorkflowResult(&types); err != nil {
		t.Fatal(err)
	}
	out := make([]error, len(types))
	for i, ty := range types {
		if ty != "" {
			out[i] = errors.New(ty)
		}
	}
	return out
}

// aroundNow is a window that holds every call of the last few seconds.
func aroundNow(t *testing.T, rec *Recorder, agencyName string) Window {
	t.Helper()
	now := time.Now()
	w, err := rec.Window(context.Background(), agencyName, now.Add(-10*time.Second), now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestInterceptorRecordsAgencyCalls(t *testing.T) {
	rec, _ := newTestRecorder(t)
	acts := &fakeActivities{}
	errs := runOnQueue(t, rec, acts, agency.KCB.TaskQueue(), 1, "Succeed", "Overload")
	if errs[0] != nil || errs[1] == nil || errs[1].Error() != "CallError" {
		t.Fatalf("activity errors as the workflow saw them: %v", errs)
	}
	w := aroundNow(t, rec, "kcb")
	if w.Calls != 2 || w.Count(agency.ClassOK) != 1 || w.Count(agency.ClassOverload) != 1 {
		t.Fatalf("window: %d calls, by class %v; want ok=1 overload=1", w.Calls, w.ByClass)
	}
	if w.Latency.Count() != 1 || w.QueueWait.Count() != 2 {
		t.Fatalf("latency count %d, queue-wait count %d; want 1 (the successful call) and 2", w.Latency.Count(), w.QueueWait.Count())
	}
	if p := w.Latency.Quantile(1); p < time.Millisecond || p > time.Second {
		t.Errorf("slowest latency %s; Succeed sleeps 2ms", p)
	}
	if rec.InFlight("kcb") != 0 || rec.Dropped() != 0 {
		t.Errorf("in flight %d, dropped %d after the calls", rec.InFlight("kcb"), rec.Dropped())
	}
}

// A retry counts as a second call; its queue wait is unknown without the
// poll interceptor and is left out rather than measured from the first attempt.
func TestInterceptorRecordsEachAttempt(t *testing.T) {
	rec, _ := newTestRecorder(t)
	acts := &fakeActivities{}
	if errs := runOnQueue(t, rec, acts, agency.NICE.TaskQueue(), 2, "OverloadThenSucceed"); errs[0] != nil {
		t.Fatalf("activity failed: %v", errs[0])
	}
	w := aroundNow(t, rec, "nice")
	if w.Calls != 2 || w.Count(agency.ClassOK) != 1 || w.Count(agency.ClassOverload) != 1 {
		t.Fatalf("window: %d calls, by class %v; want ok=1 overload=1", w.Calls, w.ByClass)
	}
	if w.QueueWait.Count() != 1 {
		t.Fatalf("queue-wait count %d, want 1 (the first attempt only)", w.QueueWait.Count())
	}
}

// Activities off the agency queues are not measured. TestActivityEnvironment
// runs on its default queue, which is one of those.
func TestInterceptorIgnoresOtherQueues(t *testing.T) {
	rec, rdb := newTestRecorder(t)
	hook := &countHook{}
	rdb.AddHook(hook)
	acts := &fakeActivities{}
	runOnQueue(t, rec, acts, "loan", 1, "Succeed", "Overload")

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{NewInterceptor(rec)}})
	env.RegisterActivity(acts)
	if _, err := env.ExecuteActivity(acts.Succeed); err != nil {
		t.Fatal(err)
	}
	if acts.calls.Load() != 3 {
		t.Fatalf("%d activity calls, want 3", acts.calls.Load())
	}
	if n := hook.pipelines.Load() + hook.process.Load(); n != 0 {
		t.Fatalf("%d Redis calls for activities off the agency queues", n)
	}
}

// With Redis down the activity's result is untouched and the sample is
// counted as dropped.
func TestInterceptorWithRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: closedAddr(t)})
	defer func() { _ = rdb.Close() }()
	rec, err := NewRecorder(rdb, RecorderOptions{Prefix: "x:"})
	if err != nil {
		t.Fatal(err)
	}
	acts := &fakeActivities{}
	start := time.Now()
	errs := runOnQueue(t, rec, acts, agency.KCB.TaskQueue(), 1, "Succeed", "Overload", "Succeed")
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("activity errors: %v", errs)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("three activities took %s with Redis down", took)
	}
	if rec.Dropped() != 3 || rec.InFlight("kcb") != 0 {
		t.Fatalf("dropped %d, in flight %d; want 3 and 0", rec.Dropped(), rec.InFlight("kcb"))
	}
}

func TestInFlight(t *testing.T) {
	rec, _ := newTestRecorder(t)
	acts := &fakeActivities{entered: make(chan struct{}), release: make(chan struct{})}
	checked := make(chan [2]float64, 1)
	go func() {
		<-acts.entered
		checked <- [2]float64{float64(rec.InFlight("scraping")), testutil.ToFloat64(inFlightCollector{rec})}
		close(acts.release)
	}()
	runOnQueue(t, rec, acts, agency.Scraping.TaskQueue(), 1, "Block")
	if n := <-checked; n != [2]float64{1, 1} {
		t.Fatalf("in flight during the call: %v and gauge %v, want 1", n[0], n[1])
	}
	if n, g := rec.InFlight("scraping"), testutil.ToFloat64(inFlightCollector{rec}); n != 0 || g != 0 {
		t.Fatalf("in flight after the call: %d and gauge %v, want 0", n, g)
	}
}

func TestAttemptScheduled(t *testing.T) {
	first := time.Unix(100, 0)
	polled := time.Unix(160, 0)
	tests := []struct {
		name       string
		attempt    int32
		havePolled bool
		want       time.Time
	}{
		{"first attempt", 1, false, first},
		{"first attempt, polled", 1, true, polled},
		{"retry, polled", 3, true, polled},
		{"retry, unknown", 3, false, time.Time{}},
	}
	for _, tc := range tests {
		info := activity.Info{Attempt: tc.attempt, ScheduledTime: first}
		var p time.Time
		if tc.havePolled {
			p = polled
		}
		if got := attemptScheduled(info, p, tc.havePolled); !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestPollInterceptorNotesAgencyTasks(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: closedAddr(t)})
	defer func() { _ = rdb.Close() }()
	rec, err := NewRecorder(rdb, RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_800_000_000, 0)
	poll := func(queue string, token []byte) {
		req := &workflowservice.PollActivityTaskQueueRequest{TaskQueue: &taskqueuepb.TaskQueue{Name: queue}}
		reply := &workflowservice.PollActivityTaskQueueResponse{}
		invoker := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
			r := reply.(*workflowservice.PollActivityTaskQueueResponse)
			r.TaskToken = token
			r.ActivityType = &commonpb.ActivityType{Name: "FetchCreditScore"}
			r.ScheduledTime = timestamppb.New(at.Add(-time.Minute))
			r.CurrentAttemptScheduledTime = timestamppb.New(at)
			return nil
		}
		if err := rec.PollInterceptor()(context.Background(), "/temporal.api.workflowservice.v1.WorkflowService/PollActivityTaskQueue", req, reply, nil, invoker); err != nil {
			t.Fatal(err)
		}
	}
	poll("agency.kcb", []byte("t1"))
	poll("loan", []byte("t2"))
	poll("agency.nice", nil) // an empty poll
	if got, ok := rec.polls.take([]byte("t1")); !ok || !got.Equal(at) {
		t.Fatalf("agency task: %s %v, want %s", got, ok, at)
	}
	if _, ok := rec.polls.take([]byte("t1")); ok {
		t.Fatal("a task's time should be taken once")
	}
	if _, ok := rec.polls.take([]byte("t2")); ok {
		t.Fatal("a task off the agency queues should not be noted")
	}
	if len(rec.polls.m) != 0 {
		t.Fatalf("%d tasks left noted", len(rec.polls.m))
	}
}
