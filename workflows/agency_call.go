package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/loan"
)

// A call whose ScheduleToClose budget ends in the agency's queue, or that
// admission refused for the budget it had left (class expired), has not
// failed at the agency: there is a backlog. Such a call is scheduled again
// with a fresh budget, after requeueDelay, for up to Options.AgencyQueueWait
// in total (default 30 minutes) per call; only then does the application
// fail, with reason AGENCY_BACKLOG. Meanwhile the application's status
// reason is WAITING_FOR_AGENCY, in its status query, its LoanStatus search
// attribute and Postgres.
const (
	defaultAgencyQueueWait = 30 * time.Minute
	requeueDelay           = time.Second
	// queueRescheduleChange guards the re-scheduling: histories recorded
	// before it failed such a call instead.
	queueRescheduleChange = "agency-queue-reschedule"
	// queueStartBoundChange guards the bound on a call's wait in the
	// queue (see queueBound): histories recorded before it scheduled the
	// call without one.
	queueStartBoundChange = "agency-queue-start-bound"
	// retryQueuedOutChange guards the re-scheduling of a call whose retry
	// waited out its budget in the queue (RetryQueuedOut): histories
	// recorded before it failed such a call instead.
	retryQueuedOutChange = "agency-retry-queued-out"
)

// queueBound is how long an agency call may wait in the agency's task queue
// before the server drops it (its ScheduleToStart timeout): its whole
// budget (ScheduleToClose) less one full attempt (StartToClose), 0 (no
// bound) when the budget is not longer than an attempt. A call dispatched
// within the bound has a full attempt's budget left, so admission sends it;
// without the bound a backlog as old as the budget hands the workers only
// calls that admission must refuse, and the agency sits idle behind a full
// queue. A call the server drops is scheduled again, at the end of the
// queue, like one that ran out of budget there.
func queueBound(scheduleToClose, startToClose time.Duration) time.Duration {
	return max(scheduleToClose-startToClose, 0)
}

// errAgencyBacklog marks an agency call whose backlog outlasted the wait.
var errAgencyBacklog = errors.New(loan.ReasonAgencyBacklog)

// waitingKey finds the application's waiting tracker in a workflow context.
type waitingKey struct{}

// waiting tracks the agency calls of one application that wait for a
// backlog, so the application says why it waits while any does.
type waiting struct {
	res     *loan.Result
	appID   string
	waiters map[agency.Name]bool
}

// withWaiting makes res say when agency calls made under the returned
// context wait for a backlog.
func withWaiting(ctx workflow.Context, res *loan.Result) workflow.Context {
	return workflow.WithValue(ctx, waitingKey{}, &waiting{res: res, appID: res.ApplicationID, waiters: map[agency.Name]bool{}})
}

// note records that agency n waits (or no longer does) in the result, the
// LoanStatus search attribute and Postgres. A note that cannot be written
// is logged: it must not fail the application.
func (w *waiting) note(ctx workflow.Context, n agency.Name, waits bool, detail string) {
	if w == nil || w.waiters[n] == waits {
		return
	}
	if waits {
		w.waiters[n] = true
	} else {
		delete(w.waiters, n)
	}
	in := activities.NoteProgressInput{ApplicationID: w.appID}
	switch {
	case waits:
		w.res.StatusReason, w.res.StatusDetail = loan.ReasonWaitingForAgency, detail
		in.Reason, in.Detail = loan.ReasonWaitingForAgency, detail
		w.upsert(ctx, loan.ReasonWaitingForAgency)
	case len(w.waiters) == 0:
		w.res.StatusReason, w.res.StatusDetail = "", ""
		w.upsert(ctx, string(w.res.Status))
	default:
		return // another agency still waits: its note stands
	}
	var la *activities.LoanActivities
	nctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, MaximumAttempts: 5},
	})
	if err := workflow.ExecuteActivity(nctx, la.NoteProgress, in).Get(ctx, nil); err != nil && ctx.Err() == nil {
		workflow.GetLogger(ctx).Warn("could not note the wait for an agency in Postgres", "agency", n, "error", err)
	}
}

func (w *waiting) upsert(ctx workflow.Context, status string) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, LoanStatusKey.ValueSet(status)); err != nil {
		workflow.GetLogger(ctx).Warn("upsert LoanStatus failed", "error", err)
	}
}

// QueuedOut reports whether an agency call's failure is its budget running
// out before the agency had a say: a ScheduleToStart timeout (the server
// dropped it from the queue, see queueBound), a ScheduleToClose timeout
// with no failure of an attempt behind it (the call never left the queue),
// or the last attempt refused by admission (class expired).
func QueuedOut(err error) bool {
	var te *temporal.TimeoutError
	if errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START {
		return true
	}
	if errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE {
		cause := te.Unwrap()
		if cause == nil {
			return true
		}
		err = cause
	}
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == string(agency.ClassExpired)
}

// RetryQueuedOut reports whether an agency call's budget ended while its
// last attempt had not started: an earlier attempt failed, and the retry the
// server scheduled waited out the rest of the budget in the agency's queue
// (or in its back-off), behind the backlog. The agency did not fail the call
// for good: it had a retry left and never saw it. (A ScheduleToClose timeout
// of an attempt that had started names that attempt's started event; one
// that came while the attempt waited names none.) Failed instead, a few
// refusals at an incident's onset failed applications by the dozen: in
// bench-flow's incident at C=10 × 200 ms (a backlog up to 27 s deep against
// the calls' 30 s budget, 0.3–1% of the calls refused) 9 of 27 and 20 of 37
// applications ended failed in two runs, the oracle's none; scheduled
// again, none of 24 in the next.
func RetryQueuedOut(err error) bool {
	var ae *temporal.ActivityError
	var te *temporal.TimeoutError
	return errors.As(err, &ae) && ae.StartedEventID() <= 0 &&
		errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE && te.Unwrap() != nil
}

// callAgency runs one agency activity on the agency's queue into out, and
// schedules it again while it only ran out of budget in a backlog (see
// defaultAgencyQueueWait).
func callAgency(ctx workflow.Context, in Input, n agency.Name, activity any, req activities.AgencyRequest, out any) error {
	wait := in.Options.AgencyQueueWait
	if wait <= 0 {
		wait = defaultAgencyQueueWait
	}
	w, _ := ctx.Value(waitingKey{}).(*waiting)
	var until time.Time
	actx := agencyCtx(ctx, n, in.Options)
	if workflow.GetVersion(ctx, queueStartBoundChange, workflow.DefaultVersion, 1) >= 1 {
		o := workflow.GetActivityOptions(actx)
		if b := queueBound(o.ScheduleToCloseTimeout, o.StartToCloseTimeout); b > 0 {
			actx = workflow.WithScheduleToStartTimeout(actx, b)
		}
	}
	// The re-scheduling is bounded in count as well as in time, so a short
	// call budget under a long wait cannot grow the history without end.
	for scheduled := 0; ; scheduled++ {
		err := workflow.ExecuteActivity(actx, activity, req).Get(ctx, out)
		queued := err != nil && ctx.Err() == nil && (QueuedOut(err) ||
			RetryQueuedOut(err) && workflow.GetVersion(ctx, retryQueuedOutChange, workflow.DefaultVersion, 1) >= 1)
		if err == nil || ctx.Err() != nil || !queued {
			w.note(ctx, n, false, "")
			return err
		}
		if workflow.GetVersion(ctx, queueRescheduleChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			return err
		}
		now := workflow.Now(ctx)
		if until.IsZero() {
			until = now.Add(wait)
		}
		if !now.Before(until) || scheduled >= MaxPollsPerWait {
			w.note(ctx, n, false, "")
			return fmt.Errorf("%w: %s: the call's budget kept ending in the agency's queue for %s (%d calls): %v",
				errAgencyBacklog, n, now.Sub(until.Add(-wait)).Round(time.Second), scheduled+1, err)
		}
		detail := fmt.Sprintf("%s: backlog longer than the call's budget; scheduled again, waiting until %s at most",
			n, until.UTC().Format(time.RFC3339))
		if !w.waits(n) {
			workflow.GetLogger(ctx).Warn("agency call ran out of budget in the queue; scheduling it again", "agency", n, "until", until)
		}
		w.note(ctx, n, true, detail)
		if err := workflow.Sleep(ctx, requeueDelay); err != nil {
			return err
		}
	}
}

func (w *waiting) waits(n agency.Name) bool { return w != nil && w.waiters[n] }

// failureReason is the reason code of an application that failed its
// credit check: every final failure has one in Postgres.
func failureReason(err error) string {
	switch {
	case errors.Is(err, errBureauUnavailable):
		return loan.ReasonCreditBureauUnavailable
	case errors.Is(err, errAgencyBacklog):
		return loan.ReasonAgencyBacklog
	}
	return loan.ReasonAgencyFailed
}
