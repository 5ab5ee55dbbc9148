// Package workflows holds loanflow's Temporal workflows. Workflow code here is
// deterministic: no I/O, clocks, goroutines or randomness of its own.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/loan"
	"loanflow/underwriting"
)

// TaskQueue is the queue of loan workflows and their internal activities.
const TaskQueue = "loan"

// StatusQuery is the query that returns an application's current loan.Result.
const StatusQuery = "status"

// CancelSignal is the signal that cancels an application, with a
// CancelRequest. It is honoured until the disbursement starts: the
// application then ends CANCELLED and no money moves. A cancel that arrives
// later (or after a rejection) is logged and ignored.
const CancelSignal = "cancel"

// CancelRequest is the payload of CancelSignal.
type CancelRequest struct {
	Reason string `json:"reason"` // free text, kept as the application's status detail
}

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
	// BureauWait bounds how long an application waits for a mandatory
	// bureau whose breaker opened mid-flight (default 10 minutes).
	BureauWait time.Duration `json:"bureau_wait,omitempty"`
	// BreakerPoll is how often a waiting application re-reads the breaker
	// (default 5 s).
	BreakerPoll time.Duration `json:"breaker_poll,omitempty"`
	// AgencyQueueWait bounds how long one agency call is scheduled again
	// while its budget keeps ending in the agency's queue (a backlog, not
	// a failure; default 30 minutes); then the application fails with
	// AGENCY_BACKLOG.
	AgencyQueueWait time.Duration `json:"agency_queue_wait,omitempty"`
}

// Input is LoanApplicationWorkflow's argument.
type Input struct {
	Application loan.Application `json:"application"`
	Options     Options          `json:"options"`
}

const (
	defaultAgencyScheduleToClose = 2 * time.Minute
	agencyStartToClose           = 10 * time.Second
	// disburseStartToClose covers the customer lock's wait (5 s by default)
	// and a few booking transactions, with room to spare.
	disburseStartToClose = 30 * time.Second
)

// LoanApplicationWorkflow runs one application: validate, persist, ask the
// bureaus and MyData in parallel on their own task queues, underwrite,
// persist the decision and, when approved and not cancelled, disburse the
// loan.
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

	cancel := newCancellation(ctx)
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
	// finish persists res as the final outcome. A cancel arriving from here
	// on is too late.
	finish := func() (loan.Result, error) {
		cancel.close(string(res.Status))
		if err := workflow.ExecuteActivity(dbCtx, la.SaveOutcome, res).Get(ctx, nil); err != nil {
			return res, fmt.Errorf("save outcome of %s: %w", app.ApplicationID, err)
		}
		setStatus(res.Status)
		logger.Info("application finished", "application_id", app.ApplicationID, "status", res.Status, "reason", res.Reason())
		cancel.poll() // logs any that arrived while saving
		return res, nil
	}
	cancelled := func() (loan.Result, error) {
		res.Status, res.StatusReason, res.StatusDetail = loan.StatusCancelled, loan.ReasonCancelled, cancel.req.Reason
		logger.Info("application cancelled", "application_id", app.ApplicationID, "reason", cancel.req.Reason)
		return finish()
	}

	// The entry check: one read of every breaker, recorded in history.
	brk := readBreakers(ctx)
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	if err := workflow.ExecuteActivity(dbCtx, la.SaveApplication, activities.SaveApplicationInput{Application: app, WorkflowID: wfID}).Get(ctx, nil); err != nil {
		return res, fmt.Errorf("save application %s: %w", app.ApplicationID, err)
	}
	if cancel.poll() {
		return cancelled()
	}
	if brk.state(breaker.Entry) == breaker.Open {
		res.Status, res.StatusReason = loan.StatusRejected, loan.ReasonLoanProductUnavailable
		res.StatusDetail = brk[breaker.Entry].Reason
		return finish()
	}

	setStatus(loan.StatusCheckingCredit)
	setPath := func(p string) {
		res.CreditPath = p
		if err := workflow.UpsertTypedSearchAttributes(ctx, CreditPathKey.ValueSet(p)); err != nil {
			logger.Warn("upsert CreditPath failed", "error", err)
		}
	}
	setPath(creditPath(brk, app.ApplicationID))
	scores, fin, path, err := checkCredit(withWaiting(ctx, &res), in, res.CreditPath, cancel)
	if path != res.CreditPath {
		setPath(path)
	}
	if cancel.poll() {
		return cancelled()
	}
	if err != nil {
		logger.Error("credit check failed for good", "application_id", app.ApplicationID, "error", err)
		res.Status = loan.StatusFailed
		res.Error = err.Error()
		res.StatusReason, res.StatusDetail = failureReason(err), ""
		return finish()
	}
	res.Scores, res.Financials = scores, &fin
	setStatus(loan.StatusUnderwriting)
	d, err := underwriting.Decide(app, scores, fin, underwriting.DefaultPolicy())
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), "UnderwritingError", err)
	}
	res.Decision = &d
	if !d.Approved {
		res.Status = loan.StatusRejected
		return finish()
	}

	// Approved: stored as APPROVED first, so the database never holds a loan
	// for an application it does not know was approved.
	res.Status = loan.StatusApproved
	if err := workflow.ExecuteActivity(dbCtx, la.SaveOutcome, res).Get(ctx, nil); err != nil {
		return res, fmt.Errorf("save approval of %s: %w", app.ApplicationID, err)
	}
	setStatus(loan.StatusApproved)
	// The last moment a cancel is honoured: once Disburse is scheduled, the
	// money may move at any instant and nothing can call it back.
	if cancel.poll() {
		return cancelled()
	}
	cancel.close("disbursement started")

	var da *activities.DisburseActivities
	disburseCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: disburseStartToClose,
		// No ScheduleToClose: Disburse is idempotent, and an approved loan
		// must reach a definite outcome, so it is retried until it has one.
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    500 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			// Lock not acquired or lost, a stale fence and exhausted
			// version conflicts are retried; these are not.
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalidInput, activities.ErrTypeLoanConflict},
		},
	})
	var dr activities.DisburseResult
	err = workflow.ExecuteActivity(disburseCtx, da.Disburse, activities.DisburseInput{
		ApplicationID: app.ApplicationID, CustomerID: app.CustomerID, Amount: d.ApprovedAmount,
		RateBasisPoints: d.RateBasisPoints, TermMonths: app.TermMonths, MonthlyPayment: d.MonthlyPayment,
	}).Get(ctx, &dr)
	if err != nil {
		logger.Error("disbursement failed for good", "application_id", app.ApplicationID, "error", err)
		return res, fmt.Errorf("disburse %s: %w", app.ApplicationID, err)
	}
	if dr.Disbursement != nil {
		res.Status, res.Disbursement = loan.StatusDisbursed, dr.Disbursement
	} else {
		res.Status, res.StatusReason, res.StatusDetail = loan.StatusRejected, dr.RefusedReason, dr.Detail
	}
	return finish()
}

// cancellation follows CancelSignal. It is read only at the workflow's
// blocking points, in the main coroutine (and by checkCredit's selector), so
// every signal delivered before a check is seen by that check.
type cancellation struct {
	ch     workflow.ReceiveChannel
	req    *CancelRequest // the first cancel honoured; nil if none
	closed string         // what made later cancels too late; "" while open
	logger log.Logger
}

func newCancellation(ctx workflow.Context) *cancellation {
	return &cancellation{ch: workflow.GetSignalChannel(ctx, CancelSignal), logger: workflow.GetLogger(ctx)}
}

// record honours r, or logs why it is ignored.
func (c *cancellation) record(r CancelRequest) {
	switch {
	case c.closed != "":
		c.logger.Info("cancel ignored: too late", "after", c.closed, "reason", r.Reason)
	case c.req != nil:
		c.logger.Info("cancel ignored: already cancelled", "reason", r.Reason)
	default:
		c.req = &r
	}
}

// poll reads every cancel delivered so far and reports whether the
// application is cancelled.
func (c *cancellation) poll() bool {
	var r CancelRequest
	for c.ch.ReceiveAsync(&r) {
		c.record(r)
		r = CancelRequest{}
	}
	return c.req != nil
}

// close makes every later cancel too late (logged and ignored), and logs
// those already delivered.
func (c *cancellation) close(why string) {
	if c.closed == "" {
		c.closed = why
	}
	c.poll()
}

// checkCredit asks both bureaus and the financials source in parallel, each
// on its agency's task queue, and waits for all three; it returns the credit
// path finally taken. A cancel arriving meanwhile cancels the calls (and any
// wait for a bureau), so a cancelled application stops costing the agencies
// capacity at once.
func checkCredit(ctx workflow.Context, in Input, creditPath string, cancel *cancellation) ([]loan.CreditScore, loan.Financials, string, error) {
	callCtx, stop := workflow.WithCancel(ctx)
	defer stop()
	var ks, ns loan.CreditScore
	var f loan.Financials
	var kErr, nErr, fErr error
	path := creditPath
	pending := 3
	done := workflow.NewChannel(ctx)
	workflow.Go(callCtx, func(c workflow.Context) { ks, kErr = bureauScore(c, in, agency.KCB); done.Send(c, true) })
	workflow.Go(callCtx, func(c workflow.Context) { ns, nErr = bureauScore(c, in, agency.NICE); done.Send(c, true) })
	workflow.Go(callCtx, func(c workflow.Context) { f, path, fErr = financials(c, in, creditPath); done.Send(c, true) })
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(done, func(ch workflow.ReceiveChannel, _ bool) { ch.Receive(ctx, nil); pending-- })
	sel.AddReceive(cancel.ch, func(workflow.ReceiveChannel, bool) {
		if cancel.poll() {
			stop()
		}
	})
	// Wait for all three even when one fails or the application is
	// cancelled, so no call is left running unobserved; report every failure.
	for pending > 0 {
		sel.Select(ctx)
	}
	finSource := agency.MyData
	if path == CreditPathScraping {
		finSource = agency.Scraping
	}
	errs := errors.Join(labelled("kcb", kErr), labelled("nice", nErr), labelled(string(finSource), fErr))
	if errs != nil {
		return nil, loan.Financials{}, path, errs
	}
	return []loan.CreditScore{ks, ns}, f, path, nil
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
