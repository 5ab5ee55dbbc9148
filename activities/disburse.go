package activities

import (
	"context"
	"errors"
	"time"

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
//
// Cancellation: the attempt heartbeats, so a cancel of the workflow reaches
// it (the workflow waits for its answer), but the booking itself is never
// interrupted: a commit cut halfway would leave the outcome unknown. A loan
// booked despite the cancel is reported as booked; a cancel that arrives
// while nothing was booked returns the activity's cancellation, after the
// ledger has confirmed there is no loan.
func (a *DisburseActivities) Disburse(ctx context.Context, in DisburseInput) (DisburseResult, error) {
	log := activity.GetLogger(ctx)
	stop := keepHeartbeating(ctx)
	defer stop()
	bookCtx, cancel := uncancelled(ctx)
	defer cancel()
	b, err := a.Ledger.Book(bookCtx, ledger.Request{
		ApplicationID: in.ApplicationID, CustomerID: in.CustomerID, Principal: in.Amount,
		RateBasisPoints: in.RateBasisPoints, TermMonths: in.TermMonths, MonthlyPayment: in.MonthlyPayment,
	})
	if err != nil && ctx.Err() != nil {
		// Cancelled (or out of time) and the booking failed: the failure
		// may have been a commit whose answer was lost, so look.
		if found, ferr := a.find(bookCtx, in.ApplicationID); ferr == nil && found.Disbursement != nil {
			log.Info("loan found booked after a failed attempt", "application_id", in.ApplicationID, "error", err)
			return found, nil
		}
		log.Info("disbursement cancelled before any booking", "application_id", in.ApplicationID, "error", err)
		return DisburseResult{}, ctx.Err()
	}
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

// FindDisbursement returns the loan booked for an application, if any: the
// workflow asks it after a cancelled Disburse, so its final status says
// what really happened to the money.
func (a *DisburseActivities) FindDisbursement(ctx context.Context, applicationID string) (DisburseResult, error) {
	return a.find(ctx, applicationID)
}

func (a *DisburseActivities) find(ctx context.Context, applicationID string) (DisburseResult, error) {
	ln, err := a.Ledger.Loan(ctx, applicationID)
	if errors.Is(err, ledger.ErrNotFound) {
		return DisburseResult{}, nil
	}
	if err != nil {
		return DisburseResult{}, err
	}
	return DisburseResult{Disbursement: &loan.Disbursement{
		LoanID: ln.ID, Amount: ln.Principal, MonthlyPayment: ln.MonthlyPayment, DisbursedAt: ln.DisbursedAt,
	}}, nil
}

// heartbeatEvery is how often Disburse heartbeats; the SDK throttles the
// calls to what the heartbeat timeout needs.
const heartbeatEvery = time.Second

// keepHeartbeating heartbeats until stop is called, so the server knows the
// attempt is alive and can deliver a cancel to it.
func keepHeartbeating(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	activity.RecordHeartbeat(ctx)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// uncancelled is ctx without its cancellation but with its deadline: the
// booking runs to its end, within the attempt's time.
func uncancelled(ctx context.Context) (context.Context, context.CancelFunc) {
	c := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(c, dl)
	}
	return context.WithCancel(c)
}
