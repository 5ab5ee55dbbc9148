// Package workflows holds loanflow's Temporal workflows. Workflow code here is
// deterministic: no I/O, clocks, goroutines or randomness of its own.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/loan"
	"loanflow/underwriting"
)

// TaskQueue is the queue of loan workflows and their internal activities.
const TaskQueue = "loan"

// StatusQuery is the query that returns an application's current loan.Result.
const StatusQuery = "status"

// Credit paths: where the customer's debts and income came from.
const (
	CreditPathMyData   = "MYDATA"
	CreditPathScraping = "SCRAPING"
)

// Search attributes shown and filterable in the Web UI.
var (
	CustomerIDKey      = temporal.NewSearchAttributeKeyKeyword("CustomerId")
	LoanStatusKey      = temporal.NewSearchAttributeKeyKeyword("LoanStatus")
	CreditPathKey      = temporal.NewSearchAttributeKeyKeyword("CreditPath")
	RequestedAmountKey = temporal.NewSearchAttributeKeyInt64("RequestedAmount")
)

// WorkflowID is the id of an application's workflow. One application id is
// one workflow, which makes duplicate starts harmless.
func WorkflowID(applicationID string) string { return "loan-" + applicationID }

// Options tunes LoanApplicationWorkflow's activity timeouts; the zero value
// means the defaults.
type Options struct {
	// AgencyScheduleToClose bounds one agency call, including time waiting
	// in the agency's queue and all retries.
	AgencyScheduleToClose time.Duration `json:"agency_schedule_to_close,omitempty"`
}

// Input is LoanApplicationWorkflow's argument.
type Input struct {
	Application loan.Application `json:"application"`
	Options     Options          `json:"options"`
}

const (
	defaultAgencyScheduleToClose = 2 * time.Minute
	agencyStartToClose           = 10 * time.Second
)

// LoanApplicationWorkflow runs one application: validate, persist, ask the
// bureaus and MyData in parallel on their own task queues, underwrite, and
// persist the decision.
func LoanApplicationWorkflow(ctx workflow.Context, in Input) (loan.Result, error) {
	app := in.Application
	logger := workflow.GetLogger(ctx)
	if err := app.Validate(); err != nil {
		// Nothing has been written: bad input fails at once and is not retried.
		return loan.Result{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalidInput, err)
	}
	res := loan.Result{ApplicationID: app.ApplicationID, Status: loan.StatusReceived}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (loan.Result, error) { return res, nil }); err != nil {
		return res, err
	}
	setStatus := func(s loan.Status) {
		res.Status = s
		if err := workflow.UpsertTypedSearchAttributes(ctx, LoanStatusKey.ValueSet(string(s))); err != nil {
			logger.Warn("upsert LoanStatus failed", "error", err)
		}
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		CustomerIDKey.ValueSet(app.CustomerID),
		RequestedAmountKey.ValueSet(app.Amount),
		LoanStatusKey.ValueSet(string(loan.StatusReceived)),
	); err != nil {
		logger.Warn("upsert search attributes failed", "error", err)
	}

	var la *activities.LoanActivities
	dbCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    500 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			// Postgres outages are waited out; conflicts are final (non-retryable).
		},
	})
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	if err := workflow.ExecuteActivity(dbCtx, la.SaveApplication, activities.SaveApplicationInput{Application: app, WorkflowID: wfID}).Get(ctx, nil); err != nil {
		return res, fmt.Errorf("save application %s: %w", app.ApplicationID, err)
	}

	setStatus(loan.StatusCheckingCredit)
	res.CreditPath = CreditPathMyData
	if err := workflow.UpsertTypedSearchAttributes(ctx, CreditPathKey.ValueSet(res.CreditPath)); err != nil {
		logger.Warn("upsert CreditPath failed", "error", err)
	}
	scores, fin, err := checkCredit(ctx, in, res.CreditPath)
	if err != nil {
		logger.Error("credit check failed for good", "application_id", app.ApplicationID, "error", err)
		res.Status = loan.StatusFailed
		res.Error = err.Error()
	} else {
		res.Scores, res.Financials = scores, &fin
		setStatus(loan.StatusUnderwriting)
		d, err := underwriting.Decide(app, scores, fin, underwriting.DefaultPolicy())
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(err.Error(), "UnderwritingError", err)
		}
		res.Decision = &d
		res.Status = loan.StatusRejected
		if d.Approved {
			res.Status = loan.StatusApproved
		}
	}
	if err := workflow.ExecuteActivity(dbCtx, la.SaveOutcome, res).Get(ctx, nil); err != nil {
		return res, fmt.Errorf("save outcome of %s: %w", app.ApplicationID, err)
	}
	setStatus(res.Status)
	logger.Info("application finished", "application_id", app.ApplicationID, "status", res.Status, "reason", res.Reason())
	return res, nil
}

// checkCredit asks both bureaus and the financials source in parallel, each
// on its agency's task queue, and waits for all three.
func checkCredit(ctx workflow.Context, in Input, creditPath string) ([]loan.CreditScore, loan.Financials, error) {
	app := in.Application
	var aa *activities.AgencyActivities
	req := func(n agency.Name) activities.AgencyRequest {
		return activities.AgencyRequest{Agency: n, CustomerID: app.CustomerID, ApplicationID: app.ApplicationID}
	}
	finSource := agency.MyData
	if creditPath == CreditPathScraping {
		finSource = agency.Scraping
	}
	kcb := workflow.ExecuteActivity(agencyCtx(ctx, agency.KCB, in.Options), aa.FetchCreditScore, req(agency.KCB))
	nice := workflow.ExecuteActivity(agencyCtx(ctx, agency.NICE, in.Options), aa.FetchCreditScore, req(agency.NICE))
	fin := workflow.ExecuteActivity(agencyCtx(ctx, finSource, in.Options), aa.FetchFinancials, req(finSource))

	var ks, ns loan.CreditScore
	var f loan.Financials
	// Wait for all three even when one fails, so no call is left running
	// unobserved; report every failure.
	errs := errors.Join(
		labelled("kcb", kcb.Get(ctx, &ks)),
		labelled("nice", nice.Get(ctx, &ns)),
		labelled(string(finSource), fin.Get(ctx, &f)),
	)
	if errs != nil {
		return nil, loan.Financials{}, errs
	}
	return []loan.CreditScore{ks, ns}, f, nil
}

func labelled(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

func agencyCtx(ctx workflow.Context, n agency.Name, o Options) workflow.Context {
	s2c := o.AgencyScheduleToClose
	if s2c <= 0 {
		s2c = defaultAgencyScheduleToClose
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              n.TaskQueue(),
		ScheduleToCloseTimeout: s2c,
		StartToCloseTimeout:    agencyStartToClose,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrTypeAgencyRejected},
		},
	})
}
