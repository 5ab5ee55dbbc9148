package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"loanflow/dlock"
	"loanflow/ledger"
	"loanflow/loan"
)

// Error types of Disburse failures, as seen by the workflow. LoanConflict is
// non-retryable; the others mean nothing was written and a retry may succeed.
const (
	ErrTypeLoanConflict    = "LoanConflict"
	ErrTypeLockNotAcquired = "LockNotAcquired"
	ErrTypeLockLost        = "LockLost"
	ErrTypeVersionConflict = "VersionConflict"
	ErrTypeStaleFence      = "StaleFence"
)

// DisburseActivities execute approved loans. They run on the "loan" task
// queue.
type DisburseActivities struct {
	Ledger *ledger.Ledger
}

// DisburseInput is the approved loan to book and disburse.
type DisburseInput struct {
	ApplicationID   string `json:"application_id"`
	CustomerID      string `json:"customer_id"`
	Amount          int64  `json:"amount"` // approved principal, won
	RateBasisPoints int    `json:"rate_bp"`
	TermMonths      int    `json:"term_months"`
	MonthlyPayment  int64  `json:"monthly_payment"` // won
}

// DisburseResult is either the disbursement or, when the customer's exposure
// limit has no room for the loan, the refusal: a business outcome, returned
// as a value rather than an error so it is neither retried nor shown as a
// failed activity.
type DisburseResult struct {
	Disbursement *loan.Disbursement `json:"disbursement,omitempty"`
	// RefusedReason is loan.ReasonExposureLimitExceeded when refused.
	RefusedReason string `json:"refused_reason,omitempty"`
	// Detail gives the exposure, limit and amount of a refusal.
	Detail string `json:"detail,omitempty"`
}

// Disburse books the approved loan against the customer's exposure under the
// customer's Redis lock and optimistic locking, and records it as disbursed.
// It is idempotent by application id: a retry, including one after a crash
// that followed the commit, returns the loan already booked.
//
// Lock not acquired, lock lost, a stale fencing token and exhausted version
// conflicts are retryable failures with their own error types; a loan booked
// earlier with other terms, and invalid input, are not retryable.
func (a *DisburseActivities) Disburse(ctx context.Context, in DisburseInput) (DisburseResult, error) {
	log := activity.GetLogger(ctx)
	b, err := a.Ledger.Book(ctx, ledger.Request{
		ApplicationID: in.ApplicationID, CustomerID: in.CustomerID, Principal: in.Amount,
		RateBasisPoints: in.RateBasisPoints, TermMonths: in.TermMonths, MonthlyPayment: in.MonthlyPayment,
	})
	var limit *ledger.LimitError
	switch {
	case err == nil:
		// Logs carry ids, never a customer's id, amounts or exposure (personal data).
		log.Info("loan disbursed", "application_id", in.ApplicationID,
			"loan_id", b.Loan.ID, "already_booked", b.Existing,
			"attempts", b.Attempts, "lock_wait", b.LockWait, "elapsed", b.Elapsed)
		return DisburseResult{Disbursement: &loan.Disbursement{
			LoanID: b.Loan.ID, Amount: b.Loan.Principal, MonthlyPayment: b.Loan.MonthlyPayment, DisbursedAt: b.Loan.DisbursedAt,
		}}, nil
	case errors.As(err, &limit):
		log.Info("disbursement refused: exposure limit", "application_id", in.ApplicationID)
		return DisburseResult{RefusedReason: loan.ReasonExposureLimitExceeded, Detail: limit.Error()}, nil
	case errors.Is(err, ledger.ErrInvalidRequest):
		return DisburseResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, nil)
	case errors.Is(err, ledger.ErrLoanConflict):
		return DisburseResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeLoanConflict, nil)
	}
	log.Warn("disbursement failed; will retry", "application_id", in.ApplicationID,
		"attempts", b.Attempts, "conflicts", b.Conflicts, "error", err)
	for _, c := range []struct {
		kind error
		typ  string
	}{
		{ledger.ErrStaleFence, ErrTypeStaleFence},
		{dlock.ErrNotAcquired, ErrTypeLockNotAcquired},
		{dlock.ErrLockLost, ErrTypeLockLost},
		{ledger.ErrVersionConflict, ErrTypeVersionConflict},
	} {
		if errors.Is(err, c.kind) {
			return DisburseResult{}, temporal.NewApplicationError(err.Error(), c.typ)
		}
	}
	return DisburseResult{}, err
}
