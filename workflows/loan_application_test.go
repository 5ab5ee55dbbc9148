package workflows

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/internal/testenv"
	"loanflow/ledger"
	"loanflow/loan"
	"loanflow/migrations"
	"loanflow/store"
)

var validApp = loan.Application{ApplicationID: "app-1", CustomerID: "C00012345", Amount: 30_000_000, TermMonths: 36}

// fakeAgencies answers agency activities from fixed data and records calls.
type fakeAgencies struct {
	scores  map[agency.Name]int
	fin     loan.Financials
	failKCB error
	// failKCBOnce is kcb's answer to its first call only.
	failKCBOnce error
	kcbOnce     atomic.Bool
	calls       atomic.Int32
	finSource   atomic.Value
	// kcbDown and mydataDown make those agencies answer overloaded
	// (retryably) and their breakers read open.
	kcbDown, mydataDown atomic.Bool
	// breakers overrides the breaker states read by workflows.
	breakers map[string]breaker.Status
	// downUnseenAtEntry keeps the first breaker read (the entry check)
	// closed, as if the agency went down right after it.
	downUnseenAtEntry bool
	reads             atomic.Int32
}

// readBreakers answers ReadBreakers: the fixed states, with a down agency open.
func (f *fakeAgencies) readBreakers(context.Context) (map[string]breaker.Status, error) {
	out := map[string]breaker.Status{}
	for k, v := range f.breakers {
		out[k] = v
	}
	if f.reads.Add(1) == 1 && f.downUnseenAtEntry {
		return out, nil
	}
	if f.kcbDown.Load() {
		out[string(agency.KCB)] = breaker.Status{Name: "kcb", State: breaker.Open}
	}
	if f.mydataDown.Load() {
		out[string(agency.MyData)] = breaker.Status{Name: "mydata", State: breaker.Open}
	}
	return out, nil
}

func (f *fakeAgencies) score(_ context.Context, req activities.AgencyRequest) (loan.CreditScore, error) {
	f.calls.Add(1)
	if req.Agency == agency.KCB && f.failKCB != nil {
		return loan.CreditScore{}, f.failKCB
	}
	if req.Agency == agency.KCB && f.failKCBOnce != nil && f.kcbOnce.CompareAndSwap(false, true) {
		return loan.CreditScore{}, f.failKCBOnce
	}
	if req.Agency == agency.KCB && f.kcbDown.Load() {
		return loan.CreditScore{}, temporal.NewApplicationError("agency kcb: overload: http 503", "overload")
	}
	return loan.CreditScore{Agency: string(req.Agency), Score: f.scores[req.Agency], ReportID: "r-" + string(req.Agency)}, nil
}

func (f *fakeAgencies) financials(_ context.Context, req activities.AgencyRequest) (loan.Financials, error) {
	f.calls.Add(1)
	if req.Agency == agency.MyData && f.mydataDown.Load() {
		return loan.Financials{}, temporal.NewApplicationError("agency mydata: overload: http 503", "overload")
	}
	f.finSource.Store(req.Agency)
	out := f.fin
	out.Source = string(req.Agency)
	return out, nil
}

type harness struct {
	env       *testsuite.TestWorkflowEnvironment
	saved     atomic.Int32
	outcomes  []loan.Result
	disbursed []activities.DisburseInput
	// disburse answers Disburse; the default disburses the loan.
	disburse func(activities.DisburseInput) (activities.DisburseResult, error)
	// saveOutcome, if set, answers SaveOutcome after it is recorded.
	saveOutcome func(loan.Result) error
}

// delays hold mocked activities for a while on the workflow clock, so a
// signal can arrive while they run.
type delays struct {
	agency, saveOutcome, disburse time.Duration
}

func newHarness(t *testing.T, fa *fakeAgencies) *harness { return newDelayedHarness(t, fa, delays{}) }

func newDelayedHarness(t *testing.T, fa *fakeAgencies, d delays) *harness {
	var s testsuite.WorkflowTestSuite
	h := &harness{env: s.NewTestWorkflowEnvironment()}
	h.disburse = func(in activities.DisburseInput) (activities.DisburseResult, error) {
		return activities.DisburseResult{Disbursement: &loan.Disbursement{LoanID: 42, Amount: in.Amount,
			MonthlyPayment: in.MonthlyPayment, DisbursedAt: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}}, nil
	}
	var la *activities.LoanActivities
	var aa *activities.AgencyActivities
	var da *activities.DisburseActivities
	h.env.RegisterActivity(la)
	h.env.RegisterActivity(aa)
	h.env.RegisterActivity(da)
	var ba *activities.BreakerActivities
	h.env.RegisterActivity(ba)
	h.env.OnActivity(ba.ReadBreakers, mock.Anything).Return(fa.readBreakers).Maybe()
	h.env.OnActivity(la.SaveApplication, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SaveApplicationInput) error {
		h.saved.Add(1)
		if in.WorkflowID == "" {
			return errors.New("workflow id missing")
		}
		return nil
	}).Maybe()
	h.env.OnActivity(la.SaveOutcome, mock.Anything, mock.Anything).Return(func(_ context.Context, r loan.Result) error {
		h.outcomes = append(h.outcomes, r)
		if h.saveOutcome != nil {
			return h.saveOutcome(r)
		}
		return nil
	}).After(d.saveOutcome).Maybe()
	h.env.OnActivity(aa.FetchCreditScore, mock.Anything, mock.Anything).Return(fa.score).After(d.agency).Maybe()
	h.env.OnActivity(aa.FetchFinancials, mock.Anything, mock.Anything).Return(fa.financials).After(d.agency).Maybe()
	h.env.OnActivity(da.Disburse, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DisburseInput) (activities.DisburseResult, error) {
		h.disbursed = append(h.disbursed, in)
		return h.disburse(in)
	}).After(d.disburse).Maybe()
	t.Cleanup(func() { h.env.AssertExpectations(t) })
	return h
}

// cancelAt sends the cancel signal at workflow time at.
func (h *harness) cancelAt(at time.Duration, reason string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(CancelSignal, CancelRequest{Reason: reason})
	}, at)
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
	// An approval is saved, then its final status; anything else once.
	want := 1
	if res.Decision != nil && res.Decision.Approved && len(h.outcomes) > 0 && h.outcomes[0].Status == loan.StatusApproved {
		want = 2
	}
	if len(h.outcomes) != want {
		t.Fatalf("SaveOutcome called %d times (%v), want %d", len(h.outcomes), statuses(h.outcomes), want)
	}
	last := h.outcomes[len(h.outcomes)-1]
	if last.Status != res.Status || last.Reason() != res.Reason() {
		t.Fatalf("persisted %s/%s but returned %s/%s", last.Status, last.Reason(), res.Status, res.Reason())
	}
	return res
}

func statuses(rs []loan.Result) []loan.Status {
	var out []loan.Status
	for _, r := range rs {
		out = append(out, r.Status)
	}
	return out
}

func goodCustomer() *fakeAgencies {
	return &fakeAgencies{
		scores: map[agency.Name]int{agency.KCB: 850, agency.NICE: 830},
		fin:    loan.Financials{AnnualIncome: 70_000_000, TotalDebt: 20_000_000, AnnualDebtService: 5_000_000},
	}
}

func TestApproveThenDisburse(t *testing.T) {
	fa := goodCustomer()
	h := newHarness(t, fa)
	res := h.run(t, validApp)
	if res.Status != loan.StatusDisbursed || res.Decision.Reason != loan.ReasonApproved || res.Reason() != loan.ReasonApproved {
		t.Fatalf("got %s/%s, want DISBURSED/APPROVED", res.Status, res.Reason())
	}
	if got := statuses(h.outcomes); got[0] != loan.StatusApproved {
		t.Fatalf("outcomes saved %v, want APPROVED before DISBURSED", got)
	}
	if len(h.disbursed) != 1 {
		t.Fatalf("Disburse called %d times, want 1", len(h.disbursed))
	}
	want := activities.DisburseInput{ApplicationID: validApp.ApplicationID, CustomerID: validApp.CustomerID,
		Amount: res.Decision.ApprovedAmount, RateBasisPoints: res.Decision.RateBasisPoints,
		TermMonths: validApp.TermMonths, MonthlyPayment: res.Decision.MonthlyPayment}
	if h.disbursed[0] != want {
		t.Fatalf("Disburse got %+v, want %+v", h.disbursed[0], want)
	}
	if d := res.Disbursement; d == nil || d.LoanID != 42 || d.Amount != validApp.Amount {
		t.Fatalf("result disbursement %+v", res.Disbursement)
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
	h := newHarness(t, fa)
	res := h.run(t, validApp)
	if res.Status != loan.StatusRejected || res.Reason() != loan.ReasonScoreTooLow {
		t.Fatalf("got %s/%s, want REJECTED/SCORE_TOO_LOW", res.Status, res.Reason())
	}
	if len(h.disbursed) != 0 {
		t.Fatal("a rejected application was disbursed")
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
	if res.Status != loan.StatusDisbursed || res.Disbursement == nil {
		t.Fatalf("query says %s (disbursement %+v), want DISBURSED", res.Status, res.Disbursement)
	}
}

// A cancel that arrives at once stops the application before any agency is
// asked.
func TestCancelAtOnce(t *testing.T) {
	fa := goodCustomer()
	h := newHarness(t, fa)
	h.cancelAt(0, "submitted by mistake")
	res := h.run(t, validApp)
	if res.Status != loan.StatusCancelled || res.Reason() != loan.ReasonCancelled || res.StatusDetail != "submitted by mistake" {
		t.Fatalf("got %s/%s/%q, want CANCELLED with the caller's reason", res.Status, res.Reason(), res.StatusDetail)
	}
	if fa.calls.Load() != 0 || len(h.disbursed) != 0 || h.saved.Load() != 1 {
		t.Fatalf("%d agency calls, %d disbursements, %d saves; want 0, 0, 1", fa.calls.Load(), len(h.disbursed), h.saved.Load())
	}
}

// A cancel sent without a payload (e.g. from the CLI with no input) still cancels.
func TestCancelWithoutPayload(t *testing.T) {
	h := newHarness(t, goodCustomer())
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(CancelSignal, nil) }, 0)
	res := h.run(t, validApp)
	if res.Status != loan.StatusCancelled || res.StatusDetail != "" {
		t.Fatalf("got %s/%q, want CANCELLED with no detail", res.Status, res.StatusDetail)
	}
}

// A cancel during the credit check cancels the agency calls and ends the
// application at once, without a decision.
func TestCancelDuringCreditCheck(t *testing.T) {
	fa := goodCustomer()
	h := newDelayedHarness(t, fa, delays{agency: time.Hour})
	h.cancelAt(time.Second, "customer withdrew")
	start := h.env.Now()
	res := h.run(t, validApp)
	if res.Status != loan.StatusCancelled || res.Decision != nil || res.Scores != nil {
		t.Fatalf("got %s with decision %+v, want CANCELLED without one", res.Status, res.Decision)
	}
	if took := h.env.Now().Sub(start); took >= time.Hour {
		t.Fatalf("the workflow waited %v for the agencies instead of cancelling their calls", took)
	}
	if len(h.disbursed) != 0 || fa.calls.Load() != 0 {
		t.Fatalf("%d disbursements and %d agency answers used after a cancel", len(h.disbursed), fa.calls.Load())
	}
}

// Approved, and the cancel arrives while the approval is being saved: it is
// still before disbursement, so the application ends CANCELLED and Disburse
// is never called.
func TestCancelAfterApprovalBeforeDisbursement(t *testing.T) {
	h := newDelayedHarness(t, goodCustomer(), delays{saveOutcome: 10 * time.Second})
	h.cancelAt(5*time.Second, "found a better rate")
	res := h.run(t, validApp)
	if res.Status != loan.StatusCancelled || res.StatusDetail != "found a better rate" {
		t.Fatalf("got %s/%q, want CANCELLED", res.Status, res.StatusDetail)
	}
	if got := statuses(h.outcomes); len(got) != 2 || got[0] != loan.StatusApproved {
		t.Fatalf("outcomes saved %v, want APPROVED then CANCELLED", got)
	}
	if res.Decision == nil || !res.Decision.Approved {
		t.Fatalf("the approval should stay on record: %+v", res.Decision)
	}
	if len(h.disbursed) != 0 {
		t.Fatalf("Disburse called %d times after a cancel", len(h.disbursed))
	}
}

// Once Disburse is scheduled a cancel is too late: it is logged and ignored.
func TestCancelAfterDisbursementIgnored(t *testing.T) {
	h := newDelayedHarness(t, goodCustomer(), delays{disburse: 10 * time.Second})
	h.cancelAt(5*time.Second, "too late")
	res := h.run(t, validApp)
	if res.Status != loan.StatusDisbursed || res.Disbursement == nil || res.StatusReason != "" {
		t.Fatalf("got %s/%s, want DISBURSED", res.Status, res.Reason())
	}
	if len(h.disbursed) != 1 {
		t.Fatalf("Disburse called %d times, want 1", len(h.disbursed))
	}
}

// A cancel after a rejection changes nothing.
func TestCancelAfterRejectionIgnored(t *testing.T) {
	fa := goodCustomer()
	fa.scores[agency.KCB] = 300
	h := newDelayedHarness(t, fa, delays{saveOutcome: 10 * time.Second})
	h.cancelAt(5*time.Second, "never mind")
	res := h.run(t, validApp)
	if res.Status != loan.StatusRejected || res.Reason() != loan.ReasonScoreTooLow {
		t.Fatalf("got %s/%s, want REJECTED/SCORE_TOO_LOW", res.Status, res.Reason())
	}
}

func TestExposureLimitRejects(t *testing.T) {
	h := newHarness(t, goodCustomer())
	h.disburse = func(activities.DisburseInput) (activities.DisburseResult, error) {
		return activities.DisburseResult{RefusedReason: loan.ReasonExposureLimitExceeded,
			Detail: "customer C00012345: exposure 130000000 + principal 30000000 = 160000000 won would exceed the limit of 150000000 won"}, nil
	}
	res := h.run(t, validApp)
	if res.Status != loan.StatusRejected || res.Reason() != loan.ReasonExposureLimitExceeded {
		t.Fatalf("got %s/%s, want REJECTED/%s", res.Status, res.Reason(), loan.ReasonExposureLimitExceeded)
	}
	if res.Disbursement != nil || !strings.Contains(res.StatusDetail, "150000000") {
		t.Fatalf("result %+v", res)
	}
	if got := statuses(h.outcomes); got[0] != loan.StatusApproved {
		t.Fatalf("outcomes saved %v, want APPROVED then REJECTED", got)
	}
}

// Lock trouble is retried until the loan is booked.
func TestDisburseRetriedOnLockTrouble(t *testing.T) {
	h := newHarness(t, goodCustomer())
	calls := 0
	h.disburse = func(in activities.DisburseInput) (activities.DisburseResult, error) {
		calls++
		switch calls {
		case 1:
			return activities.DisburseResult{}, temporal.NewApplicationError("lock not acquired", activities.ErrTypeLockNotAcquired)
		case 2:
			return activities.DisburseResult{}, temporal.NewApplicationError("stale fence", activities.ErrTypeStaleFence)
		}
		return activities.DisburseResult{Disbursement: &loan.Disbursement{LoanID: 9, Amount: in.Amount}}, nil
	}
	res := h.run(t, validApp)
	if res.Status != loan.StatusDisbursed || calls != 3 {
		t.Fatalf("got %s after %d calls, want DISBURSED after 3", res.Status, calls)
	}
}

// realBackends gives a test its own Postgres database and Redis prefix, with
// the store and ledger the loan worker would use.
func realBackends(t *testing.T, o ledger.Options) (*store.Store, *ledger.Ledger) {
	t.Helper()
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := testenv.Postgres(t)
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	rdb, prefix := testenv.Redis(t)
	o.Lock.Prefix = prefix + "loanflow:"
	led, err := ledger.New(st.Pool(), rdb, o)
	if err != nil {
		t.Fatal(err)
	}
	return st, led
}

// runReal runs the workflow with the real loan activities (Postgres, Redis)
// and fake agencies. wrap, if set, stands in for Disburse and may call the
// real one.
func runReal(t *testing.T, st *store.Store, led *ledger.Ledger, app loan.Application,
	wrap func(context.Context, activities.DisburseInput) (activities.DisburseResult, error)) loan.Result {
	t.Helper()
	return runRealWith(t, st, led, app, goodCustomer(), wrap)
}

// runRealWith is runReal with the agencies' answers given.
func runRealWith(t *testing.T, st *store.Store, led *ledger.Ledger, app loan.Application, fa *fakeAgencies,
	wrap func(context.Context, activities.DisburseInput) (activities.DisburseResult, error)) loan.Result {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.LoanActivities{Store: st})
	env.RegisterActivity(&activities.DisburseActivities{Ledger: led})
	var aa *activities.AgencyActivities
	env.RegisterActivity(aa)
	env.OnActivity(aa.FetchCreditScore, mock.Anything, mock.Anything).Return(fa.score)
	env.OnActivity(aa.FetchFinancials, mock.Anything, mock.Anything).Return(fa.financials)
	// Every breaker closed: an unreadable board would fail safe (entry shut).
	var ba *activities.BreakerActivities
	env.RegisterActivity(ba)
	env.OnActivity(ba.ReadBreakers, mock.Anything).Return(fa.readBreakers)
	if wrap != nil {
		var da *activities.DisburseActivities
		env.OnActivity(da.Disburse, mock.Anything, mock.Anything).Return(wrap)
	}
	env.ExecuteWorkflow(LoanApplicationWorkflow, Input{Application: app})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var res loan.Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func loanCount(t *testing.T, st *store.Store, applicationID string) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM loans WHERE application_id = $1`, applicationID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The same workflow input started twice (a second run of the application)
// finds the loan the first run booked: one loan, the same result.
func TestDuplicateRunsDisburseOnce(t *testing.T) {
	st, led := realBackends(t, ledger.Options{})
	app := validApp
	first := runReal(t, st, led, app, nil)
	second := runReal(t, st, led, app, nil)
	if first.Status != loan.StatusDisbursed || second.Status != loan.StatusDisbursed {
		t.Fatalf("runs ended %s and %s, want DISBURSED twice", first.Status, second.Status)
	}
	if *first.Disbursement != *second.Disbursement {
		t.Fatalf("second run reports %+v, first %+v", second.Disbursement, first.Disbursement)
	}
	if n := loanCount(t, st, app.ApplicationID); n != 1 {
		t.Fatalf("%d loans for one application, want 1", n)
	}
	rec, err := st.GetApplication(context.Background(), app.ApplicationID)
	if err != nil || rec.Status != loan.StatusDisbursed {
		t.Fatalf("stored %s, %v; want DISBURSED", rec.Status, err)
	}
	c, err := led.Customer(context.Background(), app.CustomerID)
	if err != nil || c.Exposure != app.Amount {
		t.Fatalf("customer %+v, %v: want exposure %d counted once", c, err, app.Amount)
	}
}

// The worker crashes after the booking committed and before the activity
// completed: Temporal retries it, and the retry finds the loan.
func TestDisburseRetriedAfterCrashAfterCommit(t *testing.T) {
	st, led := realBackends(t, ledger.Options{})
	real := &activities.DisburseActivities{Ledger: led}
	var calls atomic.Int32
	res := runReal(t, st, led, validApp, func(ctx context.Context, in activities.DisburseInput) (activities.DisburseResult, error) {
		r, err := real.Disburse(ctx, in)
		if calls.Add(1) == 1 && err == nil {
			return activities.DisburseResult{}, errors.New("worker lost before reporting the completion")
		}
		return r, err
	})
	if res.Status != loan.StatusDisbursed || calls.Load() != 2 {
		t.Fatalf("got %s after %d Disburse attempts, want DISBURSED after 2", res.Status, calls.Load())
	}
	if n := loanCount(t, st, validApp.ApplicationID); n != 1 {
		t.Fatalf("%d loans, want 1", n)
	}
	if s := led.Stats(); s.Booked != 1 || s.Existing != 1 {
		t.Fatalf("ledger stats %+v, want one booking and one found on retry", s)
	}
}

// The second approved loan does not fit under the customer's limit: it ends
// REJECTED for the exposure limit, in the result and in Postgres.
func TestExposureLimitEndToEnd(t *testing.T) {
	st, led := realBackends(t, ledger.Options{DefaultLimit: 40_000_000})
	a1 := validApp
	a2 := validApp
	a2.ApplicationID = "app-2"
	if r := runReal(t, st, led, a1, nil); r.Status != loan.StatusDisbursed {
		t.Fatalf("first application: %s, want DISBURSED", r.Status)
	}
	r := runReal(t, st, led, a2, nil)
	if r.Status != loan.StatusRejected || r.Reason() != loan.ReasonExposureLimitExceeded {
		t.Fatalf("second application: %s/%s, want REJECTED/%s", r.Status, r.Reason(), loan.ReasonExposureLimitExceeded)
	}
	rec, err := st.GetApplication(context.Background(), a2.ApplicationID)
	if err != nil || rec.Status != loan.StatusRejected || rec.StatusReason != loan.ReasonExposureLimitExceeded || rec.StatusDetail == "" {
		t.Fatalf("stored %+v, %v", rec, err)
	}
	if n := loanCount(t, st, a2.ApplicationID); n != 0 {
		t.Fatalf("%d loans for a refused application", n)
	}
}
