package activities

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"loanflow/dlock"
	"loanflow/internal/testenv"
	"loanflow/ledger"
)

// holdLock takes the customer's lock as another worker would and returns
// its release.
func holdLock(t *testing.T, ledOpts ledger.Options, customer string) func() {
	t.Helper()
	rdb, _ := testenv.Redis(t)
	holder, err := dlock.New(rdb, dlock.Options{Prefix: ledOpts.Lock.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := holder.Acquire(context.Background(), ledOpts.LockKey(customer))
	if err != nil {
		t.Fatal(err)
	}
	var once atomic.Bool
	release := func() {
		if once.CompareAndSwap(false, true) {
			_ = lk.Release(context.Background())
		}
	}
	t.Cleanup(release)
	return release
}

// A cancel that reaches Disburse while it waits for the customer's lock does
// not cut the booking short: the attempt books and reports the loan, so the
// workflow's final status says what happened to the money. It heartbeats
// meanwhile, which is how the server delivers the cancel.
func TestDisburseCancelledMidwayReportsTheBooking(t *testing.T) {
	env, acts, led, ledOpts := disburseEnv(t, ledger.Options{Lock: dlock.Options{WaitTimeout: 5 * time.Second}})
	const customer = "C00000201"
	release := holdLock(t, ledOpts, customer)
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: bg})
	var beats atomic.Int32
	env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) { beats.Add(1) })
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancel() // the workflow was cancelled
		time.Sleep(1200 * time.Millisecond)
		release() // the other worker finishes
	}()
	res, err := disburse(t, env, acts, disburseInput("app-c1", customer, 10_000_000))
	if err != nil || res.Disbursement == nil {
		t.Fatalf("got %+v, %v; want the booked loan reported", res, err)
	}
	if ln, err := led.Loan(context.Background(), "app-c1"); err != nil || ln.ID != res.Disbursement.LoanID {
		t.Fatalf("ledger has %+v, %v; want the reported loan", ln, err)
	}
	if beats.Load() < 1 {
		t.Fatal("Disburse did not heartbeat")
	}
}

// Cancelled, and the booking could not happen (the lock never came): the
// attempt reports its cancellation, and no loan exists.
func TestDisburseCancelledBeforeBookingReportsCancelled(t *testing.T) {
	env, acts, led, ledOpts := disburseEnv(t, ledger.Options{Lock: dlock.Options{WaitTimeout: 500 * time.Millisecond}})
	const customer = "C00000202"
	holdLock(t, ledOpts, customer)
	bg, cancel := context.WithCancel(context.Background())
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: bg})
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := disburse(t, env, acts, disburseInput("app-c2", customer, 10_000_000))
	// The test environment passes the activity's context error on as it
	// is; a worker reports it to the server as the attempt's cancellation.
	if err == nil || (!temporal.IsCanceledError(err) && !strings.Contains(err.Error(), context.Canceled.Error())) {
		t.Fatalf("got %v, want the attempt's cancellation", err)
	}
	if _, err := led.Loan(context.Background(), "app-c2"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a cancelled attempt left a loan: %v", err)
	}
}

// FindDisbursement tells the workflow whether the ledger holds a loan.
func TestFindDisbursement(t *testing.T) {
	env, acts, _, _ := disburseEnv(t, ledger.Options{})
	if _, err := disburse(t, env, acts, disburseInput("app-c3", "C00000203", 10_000_000)); err != nil {
		t.Fatal(err)
	}
	for app, want := range map[string]bool{"app-c3": true, "app-none": false} {
		v, err := env.ExecuteActivity(acts.FindDisbursement, app)
		if err != nil {
			t.Fatal(err)
		}
		var r DisburseResult
		if err := v.Get(&r); err != nil {
			t.Fatal(err)
		}
		if (r.Disbursement != nil) != want {
			t.Fatalf("%s: found %+v, want found=%v", app, r.Disbursement, want)
		}
	}
}
