package callstats

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"google.golang.org/grpc"

	"loanflow/agency"
)

// agencyQueuePrefix is what agency.Name.TaskQueue puts before the name.
func agencyQueuePrefix() string { return agency.Name("").TaskQueue() }

// agencyOf returns the agency whose task queue this is, e.g. "kcb" for
// "agency.kcb", and false for other queues.
func agencyOf(taskQueue string) (string, bool) {
	name, ok := strings.CutPrefix(taskQueue, agencyQueuePrefix())
	return name, ok && name != ""
}

// NewInterceptor returns a worker interceptor that records, for every
// activity run on an agency task queue ("agency.<name>"), its queue wait,
// latency and outcome class (agency.Classify of the returned error) into rec,
// and keeps rec's in-flight count for the agency. Activities on other queues
// pass through untouched.
//
// Queue wait is measured from the current attempt's scheduled time. The SDK
// tells activities only the first attempt's, so for retries that time comes
// from rec.PollInterceptor when the worker's client was dialed with it;
// without it a retry's queue wait is left out rather than overstated.
func NewInterceptor(rec *Recorder) interceptor.WorkerInterceptor {
	return &workerInterceptor{rec: rec}
}

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	rec *Recorder
}

// InterceptActivity implements interceptor.WorkerInterceptor.
func (w *workerInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &activityInbound{rec: w.rec}
	i.Next = next
	return i
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	rec *Recorder
}

// ExecuteActivity implements interceptor.ActivityInboundInterceptor.
func (a *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	polled, havePolled := a.rec.polls.take(info.TaskToken)
	name, ok := agencyOf(info.TaskQueue)
	if !ok || info.IsLocalActivity || checkAgency(name) != nil {
		return a.Next.ExecuteActivity(ctx, in)
	}
	t0 := time.Now()
	started := info.StartedTime
	if started.IsZero() {
		started = a.rec.now()
	}
	scheduled := attemptScheduled(info, polled, havePolled)

	st := a.rec.state(name)
	st.inFlight.Add(1)
	ctx, times := agency.WithCallTimes(ctx)
	res, err := func() (any, error) {
		defer st.inFlight.Add(-1) // also when the activity panics
		return a.Next.ExecuteActivity(ctx, in)
	}()
	if errors.Is(err, activity.ErrResultPending) {
		return res, err // completes elsewhere; no outcome to record here
	}
	// The agency's latency runs from the moment the call was sent: a wait
	// for a call slot before it is queue wait (demand), not the agency's.
	// Finished is on the same clock as started (the server's, usually), and
	// both are measured on this process's monotonic clock from there, so
	// clock skew between worker and server shifts neither latency nor
	// queue wait.
	var waited time.Duration
	if !times.Sent.IsZero() {
		waited = max(0, times.Sent.Sub(t0))
	}
	_ = a.rec.Record(ctx, name, Sample{
		Scheduled: scheduled,
		Started:   started.Add(waited),
		Finished:  started.Add(time.Since(t0)),
		Class:     agency.Classify(err),
	})
	return res, err
}

// attemptScheduled picks when the running attempt was scheduled: the polled
// current-attempt time when known, the activity's scheduled time on a first
// attempt (they are the same), and zero (unknown) on a retry otherwise.
func attemptScheduled(info activity.Info, polled time.Time, havePolled bool) time.Time {
	switch {
	case havePolled:
		return polled
	case info.Attempt <= 1:
		return info.ScheduledTime
	default:
		return time.Time{}
	}
}

// PollInterceptor returns a gRPC client interceptor that notes, for each
// activity task polled from an agency task queue, when its current attempt
// was scheduled, so that NewInterceptor can measure a retry's queue wait from
// its own attempt rather than from the first one. Add it when dialing the
// Temporal client the agency workers use:
//
//	client.Options{ConnectionOptions: client.ConnectionOptions{
//		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(rec.PollInterceptor())}}}
func (r *Recorder) PollInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err != nil {
			return err
		}
		// Eager activities run on their workflow's queue, never an agency's,
		// so plain polls are the only source that matters.
		preq, ok := req.(*workflowservice.PollActivityTaskQueueRequest)
		if !ok {
			return nil
		}
		if _, ok := agencyOf(preq.GetTaskQueue().GetName()); !ok {
			return nil
		}
		if resp, ok := reply.(*workflowservice.PollActivityTaskQueueResponse); ok &&
			len(resp.GetTaskToken()) > 0 && resp.GetCurrentAttemptScheduledTime() != nil {
			r.polls.put(resp.GetTaskToken(), resp.GetCurrentAttemptScheduledTime().AsTime())
		}
		return nil
	}
}

// attemptTimes holds polled tasks' current-attempt scheduled times until
// their activity starts, keyed by task token.
type attemptTimes struct {
	mu sync.Mutex
	m  map[string]polledTask
}

type polledTask struct {
	scheduled time.Time
	polledAt  time.Time
}

// Tasks polled but never run (a worker stopping between poll and start) are
// forgotten after pollMaxAge, checked once the map holds pollSweepAt tasks.
const (
	pollSweepAt = 1024
	pollMaxAge  = 10 * time.Minute
)

func (t *attemptTimes) put(token []byte, scheduled time.Time) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= pollSweepAt {
		for k, v := range t.m {
			if now.Sub(v.polledAt) > pollMaxAge {
				delete(t.m, k)
			}
		}
	}
	t.m[string(token)] = polledTask{scheduled: scheduled, polledAt: now}
}

func (t *attemptTimes) take(token []byte) (time.Time, bool) {
	if len(token) == 0 {
		return time.Time{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[string(token)]
	if ok {
		delete(t.m, string(token))
	}
	return p.scheduled, ok
}
