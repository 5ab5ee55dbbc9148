package workflows

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/loan"
)

var validApp = loan.Application{ApplicationID: "app-1", CustomerID: "C00012345", Amount: 30_000_000, TermMonths: 36}

// fakeAgencies answers agency activities from fixed data and records calls.
type fakeAgencies struct {
	scores    map[agency.Name]int
	fin       loan.Financials
	failKCB   error
	calls     atomic.Int32
	finSource atomic.Value
}

func (f *fakeAgencies) score(_ context.Context, req activities.AgencyRequest) (loan.CreditScore, error) {
	f.calls.Add(1)
	if req.Agency == agency.KCB && f.failKCB != nil {
		return loan.CreditScore{}, f.failKCB
	}
	return loan.CreditScore{Agency: string(req.Agency), Score: f.scores[req.Agency], ReportID: "r-" + string(req.Agency)}, nil
}

func (f *fakeAgencies) financials(_ context.Context, req activities.AgencyRequest) (loan.Financials, error) {
	f.calls.Add(1)
	f.finSource.Store(req.Agency)
	out := f.fin
	out.Source = string(req.Agency)
	return out, nil
}

type harness struct {
	env      *testsuite.TestWorkflowEnvironment
	saved    atomic.Int32
	outcomes []loan.Result
}

func newHarness(t *testing.T, fa *fakeAgencies) *harness {
	var s testsuite.WorkflowTestSuite
	h := &harness{env: s.NewTestWorkflowEnvironment()}
	var la *activities.LoanActivities
	var aa *activities.AgencyActivities
	h.env.RegisterActivity(la)
	h.env.RegisterActivity(aa)
	h.env.OnActivity(la.SaveApplication, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SaveApplicationInput) error {
		h.saved.Add(1)
		if in.WorkflowID == "" {
			return errors.New("workflow id missing")
		}
		return nil
	})
	h.env.OnActivity(la.SaveOutcome, mock.Anything, mock.Anything).Return(func(_ context.Context, r loan.Result) error {
		h.outcomes = append(h.outcomes, r)
		return nil
	})
	h.env.OnActivity(aa.FetchCreditScore, mock.Anything, mock.Anything).Return(fa.score)
	h.env.OnActivity(aa.FetchFinancials, mock.Anything, mock.Anything).Return(fa.financials)
	t.Cleanup(func() { h.env.AssertExpectations(t) })
	return h
}

func (h *harness) run(t *testing.T, app loan.Application) loan.Result {
	t.Helper()
	h.env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: app})
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var res loan.Result
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(h.outcomes) != 1 {
		t.Fatalf("SaveOutcome called %d times, want 1", len(h.outcomes))
	}
	if h.outcomes[0].Status != res.Status || h.outcomes[0].Reason() != res.Reason() {
		t.Fatalf("persisted %s/%s but returned %s/%s", h.outcomes[0].Status, h.outcomes[0].Reason(), res.Status, res.Reason())
	}
	return res
}

func goodCustomer() *fakeAgencies {
	return &fakeAgencies{
		scores: map[agency.Name]int{agency.KCB: 850, agency.NICE: 830},
		fin:    loan.Financials{AnnualIncome: 70_000_000, TotalDebt: 20_000_000, AnnualDebtService: 5_000_000},
	}
}

func TestApprove(t *testing.T) {
	fa := goodCustomer()
	h := newHarness(t, fa)
	res := h.run(t, validApp)
	if res.Status != loan.StatusApproved || res.Decision.Reason != loan.ReasonApproved {
		t.Fatalf("got %s/%s, want APPROVED", res.Status, res.Reason())
	}
	if res.Decision.ApprovedAmount != validApp.Amount || res.Decision.CombinedScore != 840 {
		t.Fatalf("unexpected decision %+v", res.Decision)
	}
	if res.CreditPath != CreditPathMyData || fa.finSource.Load() != agency.MyData {
		t.Fatalf("credit path %s / source %v, want MyData", res.CreditPath, fa.finSource.Load())
	}
	if len(res.Scores) != 2 || res.Financials == nil {
		t.Fatalf("result lacks reports: %+v", res)
	}
	if got := fa.calls.Load(); got != 3 {
		t.Fatalf("%d agency calls, want 3", got)
	}
}

func TestRejectOnScore(t *testing.T) {
	fa := goodCustomer()
	fa.scores[agency.NICE] = 420
	res := newHarness(t, fa).run(t, validApp)
	if res.Status != loan.StatusRejected || res.Reason() != loan.ReasonScoreTooLow {
		t.Fatalf("got %s/%s, want REJECTED/SCORE_TOO_LOW", res.Status, res.Reason())
	}
	if res.Decision.ApprovedAmount != 0 {
		t.Fatalf("rejected with an amount: %+v", res.Decision)
	}
}

func TestRejectOnDSR(t *testing.T) {
	fa := goodCustomer()
	fa.fin = loan.Financials{AnnualIncome: 30_000_000, TotalDebt: 80_000_000, AnnualDebtService: 12_500_000}
	res := newHarness(t, fa).run(t, validApp)
	if res.Status != loan.StatusRejected || res.Reason() != loan.ReasonDSRTooHigh {
		t.Fatalf("got %s/%s, want REJECTED/DSR_TOO_HIGH", res.Status, res.Reason())
	}
}

func TestInvalidInputFailsAtOnceAndWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		field string
		app   loan.Application
	}{
		{"amount", loan.Application{ApplicationID: "a", CustomerID: "C00012345", Amount: -1, TermMonths: 12}},
		{"amount", loan.Application{ApplicationID: "a", CustomerID: "C00012345", Amount: loan.MaxAmount + 1, TermMonths: 12}},
		{"term_months", loan.Application{ApplicationID: "a", CustomerID: "C00012345", Amount: 5_000_000, TermMonths: 200}},
		{"customer_id", loan.Application{ApplicationID: "a", CustomerID: "bob", Amount: 5_000_000, TermMonths: 12}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			fa := goodCustomer()
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			var la *activities.LoanActivities
			var aa *activities.AgencyActivities
			env.RegisterActivity(la)
			env.RegisterActivity(aa)
			var saved atomic.Int32
			env.OnActivity(la.SaveApplication, mock.Anything, mock.Anything).Return(func(context.Context, activities.SaveApplicationInput) error {
				saved.Add(1)
				return nil
			}).Maybe()
			env.OnActivity(aa.FetchCreditScore, mock.Anything, mock.Anything).Return(fa.score).Maybe()
			env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: tc.app})
			err := env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("want an application error, got %v", err)
			}
			if !appErr.NonRetryable() || appErr.Type() != activities.ErrTypeInvalidInput {
				t.Fatalf("want non-retryable %s, got type %s non-retryable=%v", activities.ErrTypeInvalidInput, appErr.Type(), appErr.NonRetryable())
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name the field %s", err, tc.field)
			}
			if saved.Load() != 0 || fa.calls.Load() != 0 {
				t.Fatalf("invalid input reached activities: %d saves, %d agency calls", saved.Load(), fa.calls.Load())
			}
		})
	}
}

func TestAgencyFailingForGood(t *testing.T) {
	fa := goodCustomer()
	fa.failKCB = temporal.NewNonRetryableApplicationError("kcb rejected the inquiry: 400", activities.ErrTypeAgencyRejected, nil)
	h := newHarness(t, fa)
	res := h.run(t, validApp)
	if res.Status != loan.StatusFailed || res.Reason() != loan.ReasonAgencyFailed {
		t.Fatalf("got %s/%s, want FAILED/AGENCY_FAILED", res.Status, res.Reason())
	}
	if res.Decision != nil || !strings.Contains(res.Error, "kcb") {
		t.Fatalf("failed result should carry the agency error and no decision: %+v", res)
	}
	// NICE and MyData still ran: the workflow waits for every call it started.
	if got := fa.calls.Load(); got != 3 {
		t.Fatalf("%d agency calls, want 3", got)
	}
}

func TestStatusQueryAfterCompletion(t *testing.T) {
	h := newHarness(t, goodCustomer())
	h.run(t, validApp)
	v, err := h.env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var res loan.Result
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Status != loan.StatusApproved {
		t.Fatalf("query says %s, want APPROVED", res.Status)
	}
}
