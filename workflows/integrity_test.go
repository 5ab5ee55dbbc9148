package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/ledger"
	"loanflow/loan"
)

// findDisbursement mocks FindDisbursement with what the ledger holds.
func (h *harness) findDisbursement(booked *loan.Disbursement) {
	var da *activities.DisburseActivities
	h.env.OnActivity(da.FindDisbursement, mock.Anything, mock.Anything).Return(
		func(context.Context, string) (activities.DisburseResult, error) {
			return activities.DisburseResult{Disbursement: booked}, nil
		}).Maybe()
}

// cancelWorkflowAt cancels the workflow through Temporal (as the client's
// CancelWorkflow, the CLI or the Web UI do) at workflow time at.
func (h *harness) cancelWorkflowAt(at time.Duration) {
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, at)
}

// lastOutcome is the final row the workflow stored.
func (h *harness) lastOutcome(t *testing.T) loan.Result {
	t.Helper()
	if len(h.outcomes) == 0 {
		t.Fatal("no outcome stored")
	}
	return h.outcomes[len(h.outcomes)-1]
}

// A Temporal cancel during the credit check ends the workflow cancelled,
// and Postgres says CANCELLED.
func TestTemporalCancelDuringCreditCheck(t *testing.T) {
	fa := goodCustomer()
	h := newDelayedHarness(t, fa, delays{agency: time.Hour})
	h.findDisbursement(nil)
	h.cancelWorkflowAt(time.Second)
	h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp})
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := h.env.GetWorkflowError()
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("workflow ended with %v, want cancelled", err)
	}
	last := h.lastOutcome(t)
	if last.Status != loan.StatusCancelled || last.Reason() != loan.ReasonCancelled || last.StatusDetail == "" {
		t.Fatalf("stored %s/%s/%q, want CANCELLED with a detail", last.Status, last.Reason(), last.StatusDetail)
	}
	if len(h.disbursed) != 0 {
		t.Fatal("disbursed after a cancel")
	}
}

// The Disburse attempt heard the cancel before booking and reports its
// cancellation; the ledger confirms no loan: CANCELLED everywhere.
func TestTemporalCancelDuringDisbursementBeforeBooking(t *testing.T) {
	h := newDelayedHarness(t, goodCustomer(), delays{disburse: 10 * time.Second})
	h.disburse = func(activities.DisburseInput) (activities.DisburseResult, error) {
		return activities.DisburseResult{}, temporal.NewCanceledError()
	}
	h.findDisbursement(nil)
	h.cancelWorkflowAt(5 * time.Second)
	h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp})
	var ce *temporal.CanceledError
	if err := h.env.GetWorkflowError(); !errors.As(err, &ce) {
		t.Fatalf("workflow ended with %v, want cancelled", err)
	}
	if last := h.lastOutcome(t); last.Status != loan.StatusCancelled || last.Decision == nil {
		t.Fatalf("stored %s (decision %+v), want CANCELLED with the approval on record", last.Status, last.Decision)
	}
}

// The cancel reached Disburse while it was between attempts, but an earlier
// attempt had booked the loan and died before reporting: the ledger has it,
// so the application is DISBURSED, not CANCELLED.
func TestTemporalCancelFindsLoanBookedByEarlierAttempt(t *testing.T) {
	h := newDelayedHarness(t, goodCustomer(), delays{disburse: 10 * time.Second})
	h.disburse = func(activities.DisburseInput) (activities.DisburseResult, error) {
		return activities.DisburseResult{}, temporal.NewCanceledError()
	}
	h.findDisbursement(&loan.Disbursement{LoanID: 77, Amount: validApp.Amount})
	h.cancelWorkflowAt(5 * time.Second)
	h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp})
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if last := h.lastOutcome(t); last.Status != loan.StatusDisbursed || last.Disbursement == nil || last.Disbursement.LoanID != 77 {
		t.Fatalf("stored %s (%+v), want DISBURSED with the ledger's loan", last.Status, last.Disbursement)
	}
}

// A non-retryable Disburse failure stores a final FAILED row with its
// reason before the workflow fails.
func TestDisburseFailureStoresFailed(t *testing.T) {
	h := newHarness(t, goodCustomer())
	h.findDisbursement(nil)
	h.disburse = func(activities.DisburseInput) (activities.DisburseResult, error) {
		return activities.DisburseResult{}, temporal.NewNonRetryableApplicationError("booked with other terms", activities.ErrTypeLoanConflict, nil)
	}
	h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp})
	err := h.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), activities.ErrTypeLoanConflict) {
		t.Fatalf("want the workflow to fail with %s, got %v", activities.ErrTypeLoanConflict, err)
	}
	last := h.lastOutcome(t)
	if last.Status != loan.StatusFailed || last.Reason() != loan.ReasonDisbursementFailed || !strings.Contains(last.Error, "other terms") {
		t.Fatalf("stored %s/%s/%q, want FAILED/%s with the error", last.Status, last.Reason(), last.Error, loan.ReasonDisbursementFailed)
	}
}

// A SaveOutcome conflict on the approval (another run decided otherwise)
// also ends in a stored FAILED row.
func TestApprovalConflictStoresFailed(t *testing.T) {
	var s = newHarness(t, goodCustomer())
	s.findDisbursement(nil)
	s.saveOutcome = func(r loan.Result) error {
		if r.Status == loan.StatusApproved {
			return temporal.NewNonRetryableApplicationError("stored decision differs", activities.ErrTypeTerminalConflict, nil)
		}
		return nil
	}
	s.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp})
	if err := s.env.GetWorkflowError(); err == nil {
		t.Fatal("workflow succeeded after its approval could not be stored")
	}
	if last := s.lastOutcome(t); last.Status != loan.StatusFailed || last.Reason() != loan.ReasonPersistenceFailed {
		t.Fatalf("stored %s/%s, want FAILED/%s", last.Status, last.Reason(), loan.ReasonPersistenceFailed)
	}
	if len(s.disbursed) != 0 {
		t.Fatal("disbursed an approval that was never stored")
	}
}

// An agency's implausible answer ends the application FAILED with
// AGENCY_INVALID_DATA and a detail naming the field, after one call.
func TestInvalidAgencyDataIsFinalAndExplained(t *testing.T) {
	fa := goodCustomer()
	fa.failKCB = temporal.NewNonRetryableApplicationError("application app-1", activities.ErrTypeAgencyRejected,
		&agency.CallError{Agency: agency.KCB, Class: agency.ClassInvalidData, StatusCode: 200, Err: errors.New("score 5000 out of range 1..1000")},
		activities.AgencyClassInvalidData)
	h := newHarness(t, fa)
	res := h.run(t, validApp)
	if res.Status != loan.StatusFailed || res.Reason() != loan.ReasonAgencyInvalidData || !strings.Contains(res.StatusDetail, "score 5000") {
		t.Fatalf("got %s/%s/%q, want FAILED/%s naming the score", res.Status, res.Reason(), res.StatusDetail, loan.ReasonAgencyInvalidData)
	}
}

// A cancel reason is free text: bounded and stripped of control characters
// before it is stored.
func TestCancelReasonSanitised(t *testing.T) {
	h := newHarness(t, goodCustomer())
	h.cancelAt(0, "\x1b[2Jwithdrew\r\nFAKE LOG LINE"+strings.Repeat("x", 10_000))
	res := h.run(t, validApp)
	if strings.ContainsAny(res.StatusDetail, "\x1b\r\n") || len(res.StatusDetail) > MaxCancelReason {
		t.Fatalf("stored reason %q (%d bytes)", res.StatusDetail[:40], len(res.StatusDetail))
	}
	if !strings.Contains(res.StatusDetail, "withdrew") {
		t.Fatalf("reason lost its words: %q", res.StatusDetail[:40])
	}
}

// Options out of their bounds fail the workflow at once, naming the field,
// before anything is written.
func TestOptionsValidated(t *testing.T) {
	for _, tc := range []struct {
		o       Options
		mention string
	}{
		{Options{BreakerPoll: 10 * time.Millisecond}, "breaker_poll 10ms"},
		{Options{BureauWait: 100 * 365 * 24 * time.Hour}, "bureau_wait"},
		{Options{AgencyScheduleToClose: -time.Second}, "agency_schedule_to_close -1s"},
		{Options{BureauWait: time.Hour, BreakerPoll: time.Second}, "3600 polls"},
		{Options{AgencyQueueWait: 48 * time.Hour}, "agency_queue_wait 48h0m0s"},
	} {
		t.Run(tc.mention, func(t *testing.T) {
			h := newHarness(t, goodCustomer())
			h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: validApp, Options: tc.o})
			err := h.env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.NonRetryable() == false || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v, want a non-retryable error naming %s", err, tc.mention)
			}
			if h.saved.Load() != 0 {
				t.Fatal("bad options reached Postgres")
			}
		})
	}
	if err := (Options{BureauWait: 10 * time.Minute, BreakerPoll: 5 * time.Second}).Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
}

// annual_income = 1 once gave a DSR that did not fit decisions.dsr_bp: the
// save failed with a retryable error and the workflow retried for ever. Now
// the DSR saturates and the application ends REJECTED, stored, at once.
func TestIncomeOfOneWonEndsStored(t *testing.T) {
	st, led := realBackends(t, ledger.Options{})
	fa := goodCustomer()
	fa.fin = loan.Financials{AnnualIncome: 1, TotalDebt: 20_000_000, AnnualDebtService: 5_000_000}
	res := runRealWith(t, st, led, validApp, fa, nil)
	if res.Status != loan.StatusRejected || res.Reason() != loan.ReasonDSRTooHigh {
		t.Fatalf("got %s/%s, want REJECTED/%s", res.Status, res.Reason(), loan.ReasonDSRTooHigh)
	}
	rec, err := st.GetApplication(context.Background(), validApp.ApplicationID)
	if err != nil || rec.Status != loan.StatusRejected || rec.Decision == nil || rec.Decision.DSRBasisPoints != res.Decision.DSRBasisPoints {
		t.Fatalf("stored %+v, %v; want the REJECTED decision", rec, err)
	}
}
