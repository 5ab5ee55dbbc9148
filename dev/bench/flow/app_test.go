package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
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
// 1; it returns the attempts made and whether the application ended ok.
func runApplication(t *testing.T, k int, answer func(n int64) error) (attempts int64, ok bool) {
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
	return n.Load(), log.ok[seq]
}

func TestApplicationMakesKCalls(t *testing.T) {
	for _, k := range []int{1, 3, 8} {
		attempts, ok := runApplication(t, k, func(int64) error { return nil })
		if attempts != int64(k) || !ok {
			t.Errorf("K=%d: %d calls, ok %v; want %d calls and the application ok", k, attempts, ok, k)
		}
	}
}

// An input without Calls (0) is one call, as before K existed.
func TestApplicationWithoutCallsMakesOne(t *testing.T) {
	attempts, ok := runApplication(t, 0, func(int64) error { return nil })
	if attempts != 1 || !ok {
		t.Errorf("%d calls, ok %v; want 1 call and the application ok", attempts, ok)
	}
}

// A call refused as expired (its budget ended in the queue) is scheduled
// again and the application goes on to its remaining calls.
func TestApplicationReschedulesAQueuedOutCall(t *testing.T) {
	attempts, ok := runApplication(t, 3, func(n int64) error {
		if n == 2 {
			return temporal.NewNonRetryableApplicationError("budget spent in the queue", string(agency.ClassExpired), nil)
		}
		return nil
	})
	if attempts != 4 || !ok {
		t.Errorf("%d attempts, ok %v; want 4 (the second call re-scheduled once) and the application ok", attempts, ok)
	}
}

// A retryable failure is retried by the call's retry policy, within the call.
func TestApplicationRetriesAFailedAttempt(t *testing.T) {
	attempts, ok := runApplication(t, 3, func(n int64) error {
		if n == 3 {
			return temporal.NewApplicationError("agency overloaded", string(agency.ClassOverload))
		}
		return nil
	})
	if attempts != 4 || !ok {
		t.Errorf("%d attempts, ok %v; want 4 (the third call retried once) and the application ok", attempts, ok)
	}
}

// A call that fails for good fails the application, and the calls after it
// are not made.
func TestApplicationFailsWithOneCall(t *testing.T) {
	attempts, ok := runApplication(t, 5, func(n int64) error {
		if n == 2 {
			return temporal.NewNonRetryableApplicationError("rejected", activities.ErrTypeAgencyRejected, errors.New("400"))
		}
		return nil
	})
	if attempts != 2 || ok {
		t.Errorf("%d calls, ok %v; want 2 calls and the application failed", attempts, ok)
	}
}

// A call re-scheduled maxReschedules times and still queued out fails the
// application.
func TestApplicationGivesUpAfterMaxReschedules(t *testing.T) {
	attempts, ok := runApplication(t, 2, func(int64) error {
		return temporal.NewNonRetryableApplicationError("budget spent in the queue", string(agency.ClassExpired), nil)
	})
	if attempts != maxReschedules+1 || ok {
		t.Errorf("%d attempts, ok %v; want %d (the first call and its re-schedules) and the application failed", attempts, ok, maxReschedules+1)
	}
}
