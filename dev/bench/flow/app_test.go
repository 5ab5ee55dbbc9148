package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/loan"
)

// runApplication runs ApplicationWorkflow for one application of k calls,
// each call's attempt answered by answer(n), n counting every attempt from
// 1; it returns the attempts made and the application's failure cause as
// reported to its run's log ("" when it succeeded).
func runApplication(t *testing.T, k int, answer func(n int64) error) (attempts int64, cause string) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	fin := &finisher{}
	log := &runLog{}
	seq := log.add(time.Now())
	fin.runs.Store("run", log)
	env.RegisterActivity(&agencyCall{})
	env.RegisterActivity(fin)
	const tq = "agency.kcb-test"
	var n atomic.Int64
	env.OnActivity("FetchCreditScore", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in appInput) (loan.CreditScore, error) {
			if got := activity.GetInfo(ctx).TaskQueue; got != tq {
				t.Errorf("call on task queue %q, want the agency's %q", got, tq)
			}
			if err := answer(n.Add(1)); err != nil {
				return loan.CreditScore{}, err
			}
			return loan.CreditScore{Score: 700}, nil
		})
	env.ExecuteWorkflow(ApplicationWorkflow, appInput{Run: "run", Seq: seq, AgencyTQ: tq, Calls: k, CallBudget: 3 * time.Second,
		Request: activities.AgencyRequest{Agency: agency.KCB, CustomerID: "C00000001", ApplicationID: "A-1"}})
	if !env.IsWorkflowCompleted() {
		t.Fatal("the application did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.done != 1 {
		t.Fatalf("the application was reported ended %d times, want once", log.done)
	}
	return n.Load(), log.cause[seq]
}

func TestApplicationCalls(t *testing.T) {
	ok := func(int64) error { return nil }
	// failAt answers attempt n with err, every other attempt ok.
	failAt := func(n int64, err error) func(int64) error {
		return func(i int64) error {
			if i == n {
				return err
			}
			return nil
		}
	}
	expired := temporal.NewNonRetryableApplicationError("budget spent in the queue", string(agency.ClassExpired), nil)
	overloaded := temporal.NewApplicationError("agency overloaded", string(agency.ClassOverload))
	for _, tc := range []struct {
		name     string
		k        int
		answer   func(n int64) error
		attempts int64
		cause    string // "": the application succeeded
	}{
		{"one call", 1, ok, 1, ""},
		{"K=3: three calls", 3, ok, 3, ""},
		{"K=8: eight calls", 8, ok, 8, ""},
		// An input without Calls is one call, as before K existed.
		{"no K: one call", 0, ok, 1, ""},
		// A call refused as expired (its budget ended in the queue) is
		// scheduled again, and the application goes on to its other calls.
		{"a queued-out call re-scheduled", 3, failAt(2, expired), 4, ""},
		// A retryable failure is retried by the call's retry policy.
		{"a failed attempt retried", 3, failAt(3, overloaded), 4, ""},
		// A call that fails for good fails the application; the calls
		// after it are not made. The cause is the failure's class.
		{"a call failed for good", 5, failAt(2, temporal.NewNonRetryableApplicationError("rejected", activities.ErrTypeAgencyRejected, errors.New("400"))), 2, activities.ErrTypeAgencyRejected},
		// Refused on every attempt: the retries run out, and the
		// application failed by the agency's refusals.
		{"refused until the retries ran out", 2, func(int64) error { return overloaded }, int64(retryPolicy.MaximumAttempts), string(agency.ClassOverload)},
		// A call still queued out after maxReschedules re-schedules fails
		// the application, by the queue alone.
		{"re-scheduled too often", 2, func(int64) error { return expired }, maxReschedules + 1, causeQueue},
	} {
		attempts, cause := runApplication(t, tc.k, tc.answer)
		if attempts != tc.attempts || cause != tc.cause {
			t.Errorf("%s: %d attempts, failure cause %q; want %d attempts, cause %q", tc.name, attempts, cause, tc.attempts, tc.cause)
		}
	}
}

// failCause reads a call's final error as the report counts it: the queue
// alone, an attempt that outlived its start-to-close, a budget that ended
// during the retries (the last attempt's class), or the class itself.
func TestFailCause(t *testing.T) {
	overloaded := temporal.NewApplicationError("agency overloaded", string(agency.ClassOverload))
	for _, tc := range []struct {
		name   string
		err    error
		queued bool
		want   string
	}{
		{"succeeded", nil, false, ""},
		{"the queue alone", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil), true, causeQueue},
		{"retries ran out", overloaded, false, string(agency.ClassOverload)},
		{"the budget ended during the retries", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, overloaded), false, string(agency.ClassOverload)},
		{"an attempt outlived its start-to-close", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil), false, causeAttemptTimeout},
		{"the budget ended behind a hung attempt", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE,
			temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil)), false, causeAttemptTimeout},
		{"a bare schedule-to-close not read as queued", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil), false, "schedule-to-close timeout"},
		{"anything else", errors.New("workflow broke"), false, causeOther},
	} {
		if got := failCause(tc.err, tc.queued); got != tc.want {
			t.Errorf("%s: cause %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A run's CPU profile covers its measured window and is written under the
// run's name, readable by pprof's parser.
func TestProfileWindowWritesTheRunsProfile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profiles")
	start := time.Now().Add(20 * time.Millisecond)
	if err := profileWindow(context.Background(), dir, "r01-surge-oracle", start, start.Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "r01-surge-oracle.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	// A profile is gzipped protocol buffers, with at least its sample
	// types and period in it.
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("the profile is not gzipped: %v", err)
	}
	body, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("the profile does not decompress: %v", err)
	}
	if len(body) == 0 || !bytes.Contains(body, []byte("nanoseconds")) {
		t.Errorf("the profile holds %d bytes without its CPU sample type", len(body))
	}
}

// A run cancelled before its window opens writes no profile.
func TestProfileWindowCancelledBeforeItsStart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := profileWindow(ctx, dir, "r01", time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "r01.pprof")); !os.IsNotExist(err) {
		t.Errorf("a profile was written for a run cancelled before its window: %v", err)
	}
}
