package workflows

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/loan"
)

// queueTimeout is what the workflow sees when an agency call's budget ended
// while it was still in the agency's queue.
func queueTimeout() error {
	return temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil)
}

// notes records NoteProgress calls made under a harness.
func notes(h *harness) *[]activities.NoteProgressInput {
	var la *activities.LoanActivities
	var got []activities.NoteProgressInput
	h.env.OnActivity(la.NoteProgress, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NoteProgressInput) error {
		got = append(got, in)
		return nil
	}).Maybe()
	return &got
}

// A backlog longer than a call's budget is not a failure: the call is
// scheduled again, the application says why it waits, and it completes.
func TestQueueExpiryReschedulesInsteadOfFailing(t *testing.T) {
	fa := goodCustomer()
	fa.scores[agency.KCB] = 100 // rejected on score: no disbursement needed
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var la *activities.LoanActivities
	var aa *activities.AgencyActivities
	var ba *activities.BreakerActivities
	env.RegisterActivity(la)
	env.RegisterActivity(aa)
	env.RegisterActivity(ba)
	env.OnActivity(ba.ReadBreakers, mock.Anything).Return(fa.readBreakers)
	env.OnActivity(la.SaveApplication, mock.Anything, mock.Anything).Return(nil)
	var outcomes []loan.Result
	env.OnActivity(la.SaveOutcome, mock.Anything, mock.Anything).Return(func(_ context.Context, r loan.Result) error {
		outcomes = append(outcomes, r)
		return nil
	})
	var got []activities.NoteProgressInput
	env.OnActivity(la.NoteProgress, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NoteProgressInput) error {
		got = append(got, in)
		return nil
	})
	var kcbCalls atomic.Int32
	env.OnActivity(aa.FetchCreditScore, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, req activities.AgencyRequest) (loan.CreditScore, error) {
			if req.Agency == agency.KCB && kcbCalls.Add(1) <= 3 {
				return loan.CreditScore{}, queueTimeout()
			}
			return fa.score(ctx, req)
		})
	env.OnActivity(aa.FetchFinancials, mock.Anything, mock.Anything).Return(fa.financials)
	var during loan.Result
	env.RegisterDelayedCallback(func() {
		if v, err := env.QueryWorkflow(StatusQuery); err == nil {
			_ = v.Get(&during)
		}
	}, 1500*time.Millisecond)
	env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp})
	var res loan.Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Status != loan.StatusRejected || res.Reason() != loan.ReasonScoreTooLow {
		t.Fatalf("got %s/%s (%s), want the customer's own outcome (REJECTED/SCORE_TOO_LOW) after the backlog", res.Status, res.Reason(), res.Error)
	}
	if last := outcomes[len(outcomes)-1]; last.StatusReason != "" || last.StatusDetail != "" {
		t.Fatalf("final outcome still says %s %q", last.StatusReason, last.StatusDetail)
	}
	if during.StatusReason != loan.ReasonWaitingForAgency {
		t.Fatalf("while waiting the status query said %q, want %s", during.StatusReason, loan.ReasonWaitingForAgency)
	}
	if len(got) != 2 || got[0].Reason != loan.ReasonWaitingForAgency || got[1].Reason != "" {
		t.Fatalf("notes in Postgres %+v, want WAITING_FOR_AGENCY then cleared", got)
	}
	if n := kcbCalls.Load(); n != 4 {
		t.Fatalf("kcb called %d times, want 4 (3 budgets ended in the queue)", n)
	}
}

// The wait is bounded: a backlog that outlasts it fails the application
// with its own reason code, in Postgres too.
func TestQueueExpiryBoundedWaitFailsWithReason(t *testing.T) {
	fa := goodCustomer()
	fa.failKCB = queueTimeout()
	h := newHarness(t, fa)
	got := notes(h)
	h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp, Options: Options{AgencyQueueWait: time.Minute}})
	var res loan.Result
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	last := h.outcomes[len(h.outcomes)-1]
	if last.Status != loan.StatusFailed || last.StatusReason != loan.ReasonAgencyBacklog {
		t.Fatalf("persisted %s with status reason %q, want FAILED/%s", last.Status, last.StatusReason, loan.ReasonAgencyBacklog)
	}
	if len(*got) == 0 || (*got)[0].Reason != loan.ReasonWaitingForAgency {
		t.Fatalf("notes %+v, want the wait noted", *got)
	}
}

// An agency that refuses for good fails the application with a reason code
// stored in Postgres, not only derived when read.
func TestAgencyFailureStoresReasonCode(t *testing.T) {
	fa := goodCustomer()
	fa.failKCB = temporal.NewNonRetryableApplicationError("kcb rejected the inquiry: 400", activities.ErrTypeAgencyRejected, nil)
	h := newHarness(t, fa)
	h.run(t, validApp)
	if last := h.outcomes[len(h.outcomes)-1]; last.StatusReason != loan.ReasonAgencyFailed {
		t.Fatalf("persisted status reason %q, want %s", last.StatusReason, loan.ReasonAgencyFailed)
	}
}

func TestQueuedOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"schedule-to-close in the queue", queueTimeout(), true},
		{"dropped from the queue (schedule-to-start)", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil), true},
		{"refused by admission", temporal.NewApplicationError("not sent", string(agency.ClassExpired)), true},
		{"budget ended after an agency failure", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE,
			temporal.NewApplicationError("503", string(agency.ClassOverload))), false},
		{"start-to-close", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil), false},
		{"overload", temporal.NewApplicationError("503", string(agency.ClassOverload)), false},
	} {
		if got := QueuedOut(tc.err); got != tc.want {
			t.Errorf("%s: QueuedOut = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// An agency call may wait in the queue only as long as leaves it a full
// attempt: every call dispatched then has the budget admission asks for.
func TestQueueBound(t *testing.T) {
	for _, tc := range []struct{ s2c, s2c2, want time.Duration }{
		{2 * time.Minute, 10 * time.Second, 110 * time.Second},
		{30 * time.Second, 4 * time.Second, 26 * time.Second},
		{3 * time.Second, 10 * time.Second, 0},
		{10 * time.Second, 10 * time.Second, 0},
	} {
		if got := queueBound(tc.s2c, tc.s2c2); got != tc.want {
			t.Errorf("queueBound(%s, %s) = %s, want %s", tc.s2c, tc.s2c2, got, tc.want)
		}
	}
}

// A long wait over short call budgets is bounded in count too: the history
// cannot grow without end however the options are set.
func TestQueueExpiryBoundedInCount(t *testing.T) {
	fa := goodCustomer()
	fa.failKCB = queueTimeout()
	h := newHarness(t, fa)
	h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp, Options: Options{AgencyQueueWait: 24 * time.Hour}})
	var res loan.Result
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.StatusReason != loan.ReasonAgencyBacklog || !strings.Contains(res.Error, fmt.Sprintf("(%d calls)", MaxPollsPerWait+1)) {
		t.Fatalf("got %s/%s %q, want FAILED/%s after %d calls", res.Status, res.StatusReason, res.Error, loan.ReasonAgencyBacklog, MaxPollsPerWait+1)
	}
}

// A call refused once whose retry then waited out its budget in the queue
// (RetryQueuedOut) is the backlog's, not the agency's: scheduled again, the
// application completes with the customer's own outcome. Histories recorded
// before retryQueuedOutChange failed it. (The test environment names no
// started attempt in a mocked failure, as the server does for a retry that
// never started; TestRetryQueuedOutOnTheEmbeddedServer tells the two cases
// apart on the server.)
func TestRetryQueuedOutReschedules(t *testing.T) {
	refusedThenQueued := temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE,
		temporal.NewApplicationError("503: queue full", string(agency.ClassOverload)))
	for _, tc := range []struct {
		name    string
		version workflow.Version
		want    loan.Status
	}{
		{"now", 1, loan.StatusRejected},
		{"recorded before the change", workflow.DefaultVersion, loan.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fa := goodCustomer()
			fa.scores[agency.KCB] = 100 // rejected on score: no disbursement needed
			fa.failKCBOnce = refusedThenQueued
			h := newHarness(t, fa)
			notes(h)
			h.env.OnGetVersion(retryQueuedOutChange, workflow.DefaultVersion, 1).Return(tc.version)
			h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp})
			var res loan.Result
			if err := h.env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.want {
				t.Fatalf("got %s/%s (%s), want %s", res.Status, res.Reason(), res.Error, tc.want)
			}
		})
	}
}
