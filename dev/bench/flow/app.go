package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/loan"
	"loanflow/workflows"
)

// benchQueue is the task queue of the application workflows. The
// controller workflows run on workflows.ControllerTaskQueue, with a worker
// of their own, as in production: a backlog of application tasks must not
// delay the controller's ticks.
const benchQueue = "bench.flow"

// appInput is one application: Calls agency calls, one after another, on
// the run's agency queue.
type appInput struct {
	Run        string                   `json:"run"`
	Seq        int                      `json:"seq"`
	AgencyTQ   string                   `json:"agency_tq"`
	Request    activities.AgencyRequest `json:"request"`
	CallBudget time.Duration            `json:"call_budget"`
	// Calls is how many agency calls the application makes (K); 0 is one.
	Calls int `json:"calls,omitempty"`
}

// retryPolicy is the same for every strategy: a realistic backoff, so that
// an unbounded design's retries add to the load it causes.
var retryPolicy = temporal.RetryPolicy{
	InitialInterval:    500 * time.Millisecond,
	BackoffCoefficient: 2,
	MaximumInterval:    5 * time.Second,
	MaximumAttempts:    5,
}

// callScheduleToClose is each agency call's budget in the queue, at the
// agency and in retries. maxReschedules bounds how often a call whose budget
// ended in the queue is scheduled again, requeueDelay after: as the loan
// workflow does (workflows.callAgency), a backlog alone does not fail the
// application, but the benchmark's run is short.
const (
	callScheduleToClose = 30 * time.Second
	maxReschedules      = 20
	requeueDelay        = time.Second
)

// ApplicationWorkflow makes the application's agency calls through the
// agency's task queue, one after another, as a loan application asks
// several endpoints of its agencies in turn, and reports its end through a
// local activity, which runs in the workflow task that completes the
// workflow; that is when the application ends. It succeeds when every call
// succeeded and stops at the first that failed for good: the application
// has failed. Each call has its own budget, retry policy and re-scheduling:
// a call whose budget ended in the queue (a ScheduleToClose timeout with no
// attempt's failure behind it, or refused by admission as expired) is
// scheduled again with a fresh budget, at most maxReschedules times; so is
// one the server dropped from the queue after it waited so long that less
// than a full attempt's budget was left (its ScheduleToStart timeout), and
// one whose retry waited out the budget there (workflows.RetryQueuedOut).
func ApplicationWorkflow(ctx workflow.Context, in appInput) error {
	rp := retryPolicy
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              in.AgencyTQ,
		StartToCloseTimeout:    in.CallBudget,
		ScheduleToCloseTimeout: callScheduleToClose,
		// As the loan workflow bounds its agency calls' queue wait: a
		// call dispatched has a full attempt's budget left.
		ScheduleToStartTimeout: max(callScheduleToClose-in.CallBudget, 0),
		RetryPolicy:            &rp,
	})
	var err error
	queued := false
	for range max(in.Calls, 1) {
		if queued, err = callOnce(ctx, in); err != nil {
			break
		}
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 5 * time.Second})
	var f *finisher
	_ = workflow.ExecuteLocalActivity(lctx, f.Finish, in.Run, in.Seq, failCause(err, queued)).Get(ctx, nil)
	return nil
}

// callOnce makes one agency call, scheduling it again while it only ran out
// of budget in the queue; queued says the call failed that way
// maxReschedules times over.
func callOnce(ctx workflow.Context, in appInput) (queued bool, _ error) {
	var c *agencyCall
	var score loan.CreditScore
	for n := 0; ; n++ {
		err := workflow.ExecuteActivity(ctx, c.FetchCreditScore, in).Get(ctx, &score)
		queued = err != nil && (workflows.QueuedOut(err) || workflows.RetryQueuedOut(err))
		if !queued || n >= maxReschedules {
			return queued, err
		}
		if err := workflow.Sleep(ctx, requeueDelay); err != nil {
			return false, err
		}
	}
}

// Failure causes of an application, as the report counts them.
const (
	// causeQueue: a call's budget kept ending in the agency's queue,
	// maxReschedules times over: the backlog alone failed the application
	// (the loan workflow's AGENCY_BACKLOG), which issue 13 counts apart.
	causeQueue = "queue"
	// causeAttemptTimeout: an attempt outlived its start-to-close (the
	// client's timeout + 1 s), so the worker never reported it.
	causeAttemptTimeout = "attempt timeout"
	// causeNotStarted: Temporal refused the workflow's start.
	causeNotStarted = "not started"
	// causeOther: anything else, e.g. the workflow's own failure.
	causeOther = "other"
)

// failCause names what failed an application, "" when it succeeded: the
// queue alone (causeQueue), or the last attempt's failure as the agency
// client classed it (agency.Class: overload, agency_error, timeout,
// transport, expired…), whether the retries ran out or the call's
// schedule-to-close budget ended during them.
func failCause(err error, queued bool) string {
	if err == nil {
		return ""
	}
	if queued {
		return causeQueue
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		if te.TimeoutType() == enumspb.TIMEOUT_TYPE_START_TO_CLOSE {
			return causeAttemptTimeout
		}
		if te.Unwrap() == nil {
			switch te.TimeoutType() {
			case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
				return "schedule-to-close timeout"
			case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START:
				return "schedule-to-start timeout"
			}
			return causeOther
		}
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() != "" {
		return appErr.Type()
	}
	if errors.As(err, &te) {
		// A schedule-to-close timeout behind an attempt that itself timed out.
		if errors.As(te.Unwrap(), &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_START_TO_CLOSE {
			return causeAttemptTimeout
		}
	}
	return causeOther
}

// finisher records when each application ended, in the benchmark process.
type finisher struct {
	runs sync.Map // run id → *runLog
}

// Finish notes that application seq of run ended: successfully when cause
// is empty, otherwise failed by cause (see failCause).
func (f *finisher) Finish(_ context.Context, run string, seq int, cause string) error {
	if r, found := f.runs.Load(run); found {
		r.(*runLog).finish(seq, cause, time.Now())
	}
	return nil
}

// agencyCall is the agency activity of one worker in one run: loanflow's
// own FetchCreditScore, optionally behind failsafe-go's adaptive limiter,
// and refused without calling once the run is over so that its leftovers
// drain fast instead of loading the next run.
type agencyCall struct {
	acts    *activities.AgencyActivities
	limiter adaptivelimiter.AdaptiveLimiter[loan.CreditScore] // nil: no limiter
	// gated: the worker's slots follow the limiter's limit, so the call
	// waits for a permit (only right after a cut) instead of being
	// rejected, and its time is recorded unless its context ended first,
	// as failsafe-go's executor does.
	gated    bool
	deadline time.Time
	log      *runLog
}

// FetchCreditScore calls the agency once.
func (a *agencyCall) FetchCreditScore(ctx context.Context, in appInput) (loan.CreditScore, error) {
	now := time.Now()
	if now.After(a.deadline) {
		return loan.CreditScore{}, temporal.NewNonRetryableApplicationError("run over", "bench_over", nil)
	}
	a.log.attempts.Add(1)
	if activity.GetInfo(ctx).Attempt == 1 {
		a.log.firstCall(in.Seq, now)
	}
	call := func() (loan.CreditScore, error) { return a.acts.FetchCreditScore(ctx, in.Request) }
	var s loan.CreditScore
	var err error
	switch {
	case a.limiter == nil:
		s, err = call()
	case a.gated:
		p, perr := a.limiter.AcquirePermit(ctx)
		if perr != nil {
			return loan.CreditScore{}, perr
		}
		s, err = call()
		if ctx.Err() != nil {
			p.Drop()
		} else {
			p.Record()
		}
	default:
		s, err = failsafe.With[loan.CreditScore](a.limiter).WithContext(ctx).Get(call)
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == string(agency.ClassExpired) {
		a.log.expired.Add(1)
	}
	return s, err
}

// runLog holds the applications of one run: when each started, first
// reached a worker, and ended.
type runLog struct {
	// expired counts the attempts admission refused for the budget left;
	// attempts every attempt that reached a worker.
	expired, attempts atomic.Int64
	mu                sync.Mutex
	start             []time.Time
	first             []time.Time
	end               []time.Time
	cause             []string // why each ended application failed, "" if it succeeded
	done              int
}

func (r *runLog) add(t time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start = append(r.start, t)
	r.first = append(r.first, time.Time{})
	r.end = append(r.end, time.Time{})
	r.cause = append(r.cause, "")
	return len(r.start) - 1
}

func (r *runLog) firstCall(seq int, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < len(r.first) && r.first[seq].IsZero() {
		r.first[seq] = t
	}
}

func (r *runLog) finish(seq int, cause string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < len(r.end) && r.end[seq].IsZero() {
		r.end[seq], r.cause[seq] = t, cause
		r.done++
	}
}

// count is the number of applications started.
func (r *runLog) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.start)
}

// outstanding is the number of applications started and not yet ended.
func (r *runLog) outstanding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.start) - r.done
}

// appStats are the applications that ended in [from, to).
type appStats struct {
	ok, failed int
	// failedBy counts the failed applications by cause (see failCause).
	failedBy           map[string]int
	p50, p99           time.Duration
	firstP50, firstP99 time.Duration // start → first call reaching a worker, apps started in the window
	started            int           // applications started in the window
}

func (r *runLog) stats(from, to time.Time) appStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var st appStats
	var lat, first []time.Duration
	for i := range r.start {
		if e := r.end[i]; !e.IsZero() && !e.Before(from) && e.Before(to) {
			lat = append(lat, e.Sub(r.start[i]))
			if c := r.cause[i]; c == "" {
				st.ok++
			} else {
				st.failed++
				if st.failedBy == nil {
					st.failedBy = map[string]int{}
				}
				st.failedBy[c]++
			}
		}
		if s := r.start[i]; !s.Before(from) && s.Before(to) {
			st.started++
			if !r.first[i].IsZero() {
				first = append(first, r.first[i].Sub(s))
			}
		}
	}
	st.p50, st.p99 = quantile(lat, 0.5), quantile(lat, 0.99)
	st.firstP50, st.firstP99 = quantile(first, 0.5), quantile(first, 0.99)
	return st
}
