package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"loanflow/dlock"
	"loanflow/internal/testenv"
	"loanflow/ledger"
	"loanflow/loan"
)

// disburseEnv runs Disburse in a test activity environment over this test's
// own Postgres database and Redis prefix; the options returned are the
// ledger's, prefix included.
func disburseEnv(t *testing.T, o ledger.Options) (*testsuite.TestActivityEnvironment, *DisburseActivities, *ledger.Ledger, ledger.Options) {
	t.Helper()
	st := openStore(t)
	rdb, prefix := testenv.Redis(t)
	o.Lock.Prefix = prefix + "loanflow:"
	led, err := ledger.New(st.Pool(), rdb, o)
	if err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &DisburseActivities{Ledger: led}
	env.RegisterActivity(acts)
	return env, acts, led, o
}

func disburseInput(app, customer string, amount int64) DisburseInput {
	return DisburseInput{ApplicationID: app, CustomerID: customer, Amount: amount, RateBasisPoints: 590, TermMonths: 24, MonthlyPayment: amount / 22}
}

func disburse(t *testing.T, env *testsuite.TestActivityEnvironment, acts *DisburseActivities, in DisburseInput) (DisburseResult, error) {
	t.Helper()
	v, err := env.ExecuteActivity(acts.Disburse, in)
	if err != nil {
		return DisburseResult{}, err
	}
	var r DisburseResult
	if err := v.Get(&r); err != nil {
		t.Fatal(err)
	}
	return r, nil
}

// The activity is retried after its first execution committed (a worker
// crash before completing it): the retry returns the same loan.
func TestDisburseIsIdempotent(t *testing.T) {
	env, acts, led, _ := disburseEnv(t, ledger.Options{})
	in := disburseInput("app-d1", "C00000101", 25_000_000)
	first, err := disburse(t, env, acts, in)
	if err != nil {
		t.Fatal(err)
	}
	d := first.Disbursement
	if d == nil || d.LoanID == 0 || d.Amount != in.Amount || d.MonthlyPayment != in.MonthlyPayment || d.DisbursedAt.IsZero() {
		t.Fatalf("first execution returned %+v", first)
	}
	retry, err := disburse(t, env, acts, in)
	if err != nil {
		t.Fatal(err)
	}
	if retry.Disbursement == nil || *retry.Disbursement != *d {
		t.Fatalf("retry returned %+v, want the same disbursement %+v", retry.Disbursement, d)
	}
	c, err := led.Customer(context.Background(), in.CustomerID)
	if err != nil || c.Exposure != in.Amount {
		t.Fatalf("customer %+v, %v: want exposure %d counted once", c, err, in.Amount)
	}
	if s := led.Stats(); s.Booked != 1 || s.Existing != 1 {
		t.Fatalf("stats %+v, want one booking and one found", s)
	}
}

func TestDisburseRefusedByExposureLimit(t *testing.T) {
	env, acts, led, _ := disburseEnv(t, ledger.Options{DefaultLimit: 40_000_000})
	if _, err := disburse(t, env, acts, disburseInput("app-e1", "C00000102", 30_000_000)); err != nil {
		t.Fatal(err)
	}
	r, err := disburse(t, env, acts, disburseInput("app-e2", "C00000102", 20_000_000))
	if err != nil {
		t.Fatalf("a refusal is a result, not an error: %v", err)
	}
	if r.Disbursement != nil || r.RefusedReason != loan.ReasonExposureLimitExceeded || r.Detail == "" {
		t.Fatalf("got %+v, want a refusal for %s with its figures", r, loan.ReasonExposureLimitExceeded)
	}
	if c, _ := led.Customer(context.Background(), "C00000102"); c.Exposure != 30_000_000 {
		t.Fatalf("exposure %d after a refusal, want 30,000,000", c.Exposure)
	}
}

func TestDisburseFailureRetryability(t *testing.T) {
	env, acts, _, ledOpts := disburseEnv(t, ledger.Options{Lock: dlock.Options{WaitTimeout: 100 * time.Millisecond}})
	if _, err := disburse(t, env, acts, disburseInput("app-f1", "C00000103", 10_000_000)); err != nil {
		t.Fatal(err)
	}

	other := disburseInput("app-f1", "C00000103", 11_000_000)
	_, err := disburse(t, env, acts, other)
	assertAppError(t, err, ErrTypeLoanConflict, true)

	bad := disburseInput("app-f2", "C00000103", 0)
	_, err = disburse(t, env, acts, bad)
	assertAppError(t, err, ErrTypeInvalidInput, true)

	// Another worker holds the customer's lock for longer than the wait.
	rdb, _ := testenv.Redis(t)
	holder, err := dlock.New(rdb, dlock.Options{Prefix: ledOpts.Lock.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := holder.Acquire(context.Background(), ledOpts.LockKey("C00000104"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lk.Release(context.Background()) }()
	_, err = disburse(t, env, acts, disburseInput("app-f3", "C00000104", 10_000_000))
	assertAppError(t, err, ErrTypeLockNotAcquired, false)
}

func assertAppError(t *testing.T, err error, typ string, nonRetryable bool) {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("want an application error of type %s, got %v", typ, err)
	}
	if appErr.Type() != typ || appErr.NonRetryable() != nonRetryable {
		t.Fatalf("got type %s non-retryable=%v, want %s non-retryable=%v (%v)", appErr.Type(), appErr.NonRetryable(), typ, nonRetryable, err)
	}
}
