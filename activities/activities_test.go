package activities

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"loanflow/agency"
	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/migrations"
	"loanflow/store"
)

// agencyServer answers like an agency would: status and body per path.
func agencyServer(t *testing.T, status int, body any) *agency.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get(agency.ParamCustomerID) == "" {
			t.Errorf("request without customer id: %s", r.URL)
		}
		w.Header().Set("Content-Type", "application/json")
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "2")
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	c, err := agency.NewClient(agency.ClientConfig{URLs: agency.URLsFromBase(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func agencyEnv(c *agency.Client) (*testsuite.TestActivityEnvironment, *AgencyActivities) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &AgencyActivities{Agencies: c}
	env.RegisterActivity(acts)
	return env, acts
}

var req = AgencyRequest{Agency: agency.KCB, CustomerID: "C00012345", ApplicationID: "app-1"}

func TestFetchCreditScore(t *testing.T) {
	env, acts := agencyEnv(agencyServer(t, 200, agency.ScoreResponse{CustomerID: "C00012345", Score: 777, ReportID: "kcb-1"}))
	v, err := env.ExecuteActivity(acts.FetchCreditScore, req)
	if err != nil {
		t.Fatal(err)
	}
	var s loan.CreditScore
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	if s.Score != 777 || s.Agency != "kcb" || s.ReportID != "kcb-1" {
		t.Fatalf("got %+v", s)
	}
}

func TestFetchFinancials(t *testing.T) {
	env, acts := agencyEnv(agencyServer(t, 200, agency.FinancialsResponse{CustomerID: "C00012345", AnnualIncome: 50_000_000, TotalDebt: 10_000_000, AnnualDebtService: 3_000_000, ReportID: "md-1"}))
	r := req
	r.Agency = agency.MyData
	v, err := env.ExecuteActivity(acts.FetchFinancials, r)
	if err != nil {
		t.Fatal(err)
	}
	var f loan.Financials
	if err := v.Get(&f); err != nil {
		t.Fatal(err)
	}
	if f.AnnualIncome != 50_000_000 || f.AnnualDebtService != 3_000_000 || f.Source != "mydata" {
		t.Fatalf("got %+v", f)
	}
}

// A client error or bad data is final; overload and agency failures are retried.
func TestAgencyFailuresRetryability(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         any
		nonRetryable bool
	}{
		{"client error", 400, agency.ErrorResponse{Error: "bad customer id"}, true},
		{"score out of range", 200, agency.ScoreResponse{CustomerID: "C00012345", Score: 5000}, true},
		{"overload", 503, agency.ErrorResponse{Error: "busy"}, false},
		{"agency error", 500, agency.ErrorResponse{Error: "boom"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, acts := agencyEnv(agencyServer(t, tc.status, tc.body))
			_, err := env.ExecuteActivity(acts.FetchCreditScore, req)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("want an application error, got %v", err)
			}
			if appErr.NonRetryable() != tc.nonRetryable {
				t.Fatalf("non-retryable = %v, want %v (%v)", appErr.NonRetryable(), tc.nonRetryable, err)
			}
			if tc.status == 503 && appErr.NextRetryDelay() <= 0 {
				t.Fatalf("overload should carry the agency's Retry-After as the next retry delay")
			}
		})
	}
}

func openStore(t *testing.T) *store.Store {
	testenv.Short(t)
	url := testenv.Postgres(t)
	ctx := context.Background()
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSaveApplicationAndOutcomeAgainstPostgres(t *testing.T) {
	st := openStore(t)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &LoanActivities{Store: st}
	env.RegisterActivity(acts)
	app := loan.Application{ApplicationID: "app-pg-1", CustomerID: "C00000042", Amount: 20_000_000, TermMonths: 24}
	in := SaveApplicationInput{Application: app, WorkflowID: "loan-app-pg-1"}
	for i := 0; i < 2; i++ { // a retry is harmless
		if _, err := env.ExecuteActivity(acts.SaveApplication, in); err != nil {
			t.Fatalf("save #%d: %v", i+1, err)
		}
	}
	conflicting := in
	conflicting.Application.Amount = 90_000_000
	_, err := env.ExecuteActivity(acts.SaveApplication, conflicting)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != ErrTypeApplicationConflict {
		t.Fatalf("conflicting duplicate: want non-retryable %s, got %v", ErrTypeApplicationConflict, err)
	}

	res := loan.Result{
		ApplicationID: app.ApplicationID, Status: loan.StatusApproved, CreditPath: "MYDATA",
		Scores:     []loan.CreditScore{{Agency: "kcb", Score: 800, ReportID: "k"}, {Agency: "nice", Score: 820, ReportID: "n"}},
		Financials: &loan.Financials{Source: "mydata", AnnualIncome: 60_000_000, TotalDebt: 1, AnnualDebtService: 2, ReportID: "m"},
		Decision:   &loan.Decision{Approved: true, Reason: loan.ReasonApproved, CombinedScore: 810, ApprovedAmount: 20_000_000, MonthlyPayment: 880_000, RateBasisPoints: 550, DSRBasisPoints: 1800},
	}
	for i := 0; i < 2; i++ {
		if _, err := env.ExecuteActivity(acts.SaveOutcome, res); err != nil {
			t.Fatalf("save outcome #%d: %v", i+1, err)
		}
	}
	rec, err := st.GetApplication(context.Background(), app.ApplicationID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != loan.StatusApproved || rec.Decision == nil || rec.Decision.ApprovedAmount != 20_000_000 || len(rec.Reports) != 3 || rec.Amount != 20_000_000 {
		t.Fatalf("stored record does not match: %+v", rec)
	}

	selfContradicting := res
	selfContradicting.Status = loan.StatusRejected
	_, err = env.ExecuteActivity(acts.SaveOutcome, selfContradicting)
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != ErrTypeInvalidInput {
		t.Fatalf("REJECTED with an approving decision: want non-retryable %s, got %v", ErrTypeInvalidInput, err)
	}
	contradicting := res
	contradicting.Status = loan.StatusRejected
	contradicting.Decision = &loan.Decision{Reason: loan.ReasonScoreTooLow, CombinedScore: 810}
	_, err = env.ExecuteActivity(acts.SaveOutcome, contradicting)
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != ErrTypeTerminalConflict {
		t.Fatalf("contradicting outcome: want non-retryable %s, got %v", ErrTypeTerminalConflict, err)
	}
}
