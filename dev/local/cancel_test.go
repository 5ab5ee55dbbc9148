package local_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"loanflow/agency"
	"loanflow/dev/agencysim"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/dlock"
	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/workflows"
)

// waitStatus polls the status query until the application reaches want.
func waitStatus(ctx context.Context, t *testing.T, c client.Client, workflowID string, want loan.Status) {
	t.Helper()
	for {
		if v, err := c.QueryWorkflow(ctx, workflowID, "", workflows.StatusQuery); err == nil {
			var res loan.Result
			if v.Get(&res) == nil && res.Status == want {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %s", workflowID, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Cancelling the workflow through Temporal (as the Web UI or CLI do) during
// the credit check ends it cancelled, and Postgres says CANCELLED.
func TestTemporalCancelDuringCreditCheckEndToEnd(t *testing.T) {
	env := startDevWith(t, func(c *local.Config) {
		c.AgencySim = map[agency.Name]agencysim.Config{agency.KCB: {MedianServiceTime: 2 * time.Second, Jitter: -1}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	approved, _ := customersByOutcome(t)
	app := loan.Application{ApplicationID: "tc-" + testenv.ID(), CustomerID: approved, Amount: 5_000_000, TermMonths: 24}
	run, err := loadgen.Start(ctx, env.Client, app, workflows.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, env.Client, run.GetID(), loan.StatusCheckingCredit)
	if err := env.Client.CancelWorkflow(ctx, run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	var ce *temporal.CanceledError
	if err := run.Get(ctx, nil); !errors.As(err, &ce) {
		t.Fatalf("workflow ended with %v, want cancelled", err)
	}
	rec, err := env.Store.GetApplication(ctx, app.ApplicationID)
	if err != nil || rec.Status != loan.StatusCancelled || rec.StatusReason != loan.ReasonCancelled {
		t.Fatalf("postgres has %s/%s, %v; want CANCELLED", rec.Status, rec.StatusReason, err)
	}
}

// Cancelling through Temporal while Disburse waits for the customer's lock:
// the workflow waits for the attempt, which books once the lock is free, and
// reports DISBURSED; Postgres agrees, and the loan exists once.
func TestTemporalCancelDuringDisbursementEndToEnd(t *testing.T) {
	env := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	approved, _ := customersByOutcome(t)
	locker, err := dlock.New(env.Redis, dlock.Options{Prefix: env.Config.RedisPrefix})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := locker.Acquire(ctx, env.Config.LedgerOptions().LockKey(approved))
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			_ = lk.Release(context.Background())
		}
	}()
	app := loan.Application{ApplicationID: "td-" + testenv.ID(), CustomerID: approved, Amount: 5_000_000, TermMonths: 24}
	run, err := loadgen.Start(ctx, env.Client, app, workflows.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, env.Client, run.GetID(), loan.StatusApproved)
	time.Sleep(300 * time.Millisecond) // Disburse is waiting for the lock
	if err := env.Client.CancelWorkflow(ctx, run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}
	released = true
	var res loan.Result
	err = run.Get(ctx, &res)
	rec, gerr := env.Store.GetApplication(ctx, app.ApplicationID)
	if gerr != nil {
		t.Fatal(gerr)
	}
	var loans int
	if err := env.Store.Pool().QueryRow(ctx, `SELECT count(*) FROM loans WHERE application_id = $1`, app.ApplicationID).Scan(&loans); err != nil {
		t.Fatal(err)
	}
	switch {
	case loans == 1 && (err != nil || res.Status != loan.StatusDisbursed || rec.Status != loan.StatusDisbursed):
		t.Fatalf("a loan was booked, but the workflow ended %s (%v) and postgres says %s", res.Status, err, rec.Status)
	case loans == 0 && rec.Status != loan.StatusCancelled:
		t.Fatalf("no loan, but postgres says %s (workflow %v)", rec.Status, err)
	case loans > 1:
		t.Fatalf("%d loans for one application", loans)
	}
	t.Logf("cancel during disbursement: %d loan(s), workflow %s (%v), postgres %s", loans, res.Status, err, rec.Status)
}
