// Package workflows holds loanflow's Temporal workflows. Workflow code here is
// deterministic: no I/O, clocks, goroutines or randomness of its own.
package workflows

import (
	"errors"
	"fmt"
	"strings"
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

// ApplicationQuery is the query that returns the loan.Application the
// workflow was started with, so a duplicate start can be compared with it.
const ApplicationQuery = "application"

// CancelSignal is the signal that cancels an application, with a
// CancelRequest. It is honoured until the disbursement starts: the
// application then ends CANCELLED and no money moves. A cancel that arrives
// later (or after a rejection) is logged and ignored.
const CancelSignal = "cancel"

// MaxCancelReason bounds the reason kept from a cancel, in bytes.
const MaxCancelReason = 500

// CancelRequest is the payload of CancelSignal.
type CancelRequest struct {
	Reason string `json:"reason"` // free text, kept as the application's status detail
}

// Credit paths: where the customer's debts and income came from.
const (
	CreditPathMyData   = "MYDATA"
	CreditPathScraping = "SCRAPING"
)

// Search attributes shown and filterable in the Web UI (see also search.go).
// CustomerIDKey and RequestedAmountKey are only replayed from runs recorded
// before they were replaced by CustomerRefKey and AmountBandKey.
var (
	CustomerIDKey      = temporal.NewSearchAttributeKeyKeyword("CustomerId")
	LoanStatusKey      = temporal.NewSearchAttributeKeyKeyword("LoanStatus")
	CreditPathKey      = temporal.NewSearchAttributeKeyKeyword("CreditPath")
	RequestedAmountKey = temporal.NewSearchAttributeKeyInt64("RequestedAmount")
)

// WorkflowID is the id of an application's workflow. One application id is
// one workflow, which makes duplicate starts harmless.
func WorkflowID(applicationID string) string { return workflowIDPrefix + applicationID }

// workflowIDPrefix starts every loan workflow id; WorkflowID and
// ApplicationID are the only places that know it.
const workflowIDPrefix = "loan-"

// ApplicationID is the application id of a loan workflow id; false when id
// is not one.
func ApplicationID(workflowID string) (string, bool) {
	app, ok := strings.CutPrefix(workflowID, workflowIDPrefix)
	return app, ok && app != ""
}

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

// Bounds of Options, checked by Validate (zero always means the default).
const (
	MinAgencyScheduleToClose = time.Second
	MaxAgencyScheduleToClose = time.Hour
	MinBureauWait            = time.Second
	MaxBureauWait            = time.Hour
	MinBreakerPoll           = 100 * time.Millisecond
	MaxBreakerPoll           = time.Minute
	// MaxPollsPerWait bounds BureauWait / BreakerPoll. Each poll adds a few
	// events (a timer and a local activity) to the history, so 240 polls per
	// bureau keep a whole application far below Temporal's history limits
	// (a warning at 10,240 events, termination at 51,200).
	MaxPollsPerWait    = 240
	MinAgencyQueueWait = time.Second
	MaxAgencyQueueWait = 24 * time.Hour
)

// Validate checks the options against their documented bounds and returns
// an error naming the field, the value and the accepted range.
func (o Options) Validate() error {
	check := func(field string, v, lo, hi time.Duration) error {
		if v != 0 && (v < lo || v > hi) {
			return fmt.Errorf("invalid option %s %v: accepted 0 (the default) or %v to %v", field, v, lo, hi)
		}
		return nil
	}
	if err := check("agency_schedule_to_close", o.AgencyScheduleToClose, MinAgencyScheduleToClose, MaxAgencyScheduleToClose); err != nil {
		return err
	}
	if err := check("bureau_wait", o.BureauWait, MinBureauWait, MaxBureauWait); err != nil {
		return err
	}
	if err := check("breaker_poll", o.BreakerPoll, MinBreakerPoll, MaxBreakerPoll); err != nil {
		return err
	}
	if err := check("agency_queue_wait", o.AgencyQueueWait, MinAgencyQueueWait, MaxAgencyQueueWait); err != nil {
		return err
	}
	wait, poll := o.BureauWait, o.BreakerPoll
	if wait == 0 {
		wait = defaultBureauWait
	}
	if poll == 0 {
		poll = defaultBreakerPoll
	}
	if polls := wait / poll; polls > MaxPollsPerWait {
		return fmt.Errorf("invalid options bureau_wait %v with breaker_poll %v: %d polls per wait; accepted at most %d (raise breaker_poll to at least %v)",
			wait, poll, polls, MaxPollsPerWait, (wait+MaxPollsPerWait-1)/MaxPollsPerWait)
	}
	return nil
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
	// disburseHeartbeat is how soon a Disburse attempt that stopped
	// heartbeating (a dead worker) is given up and retried, and how a
	// cancel reaches a running attempt.
	disburseHeartbeat = 10 * time.Second
	// persistTimeout bounds the retries of one Postgres write, Postgres
	// outages included; past it the application fails (FAILED, with
	// PERSISTENCE_FAILED when that can still be stored).
	persistTimeout = time.Hour
	// maxErrorText bounds the error text kept in a result and in Postgres.
	maxErrorText = 2000
)

// Workflow versions (workflow.GetVersion): a change to the commands a
// workflow issues gets a change id and a version, so workflows started by
// an earlier build replay on their old path. See README "Workflow evolution".
const (
	finalRowsChange  = "final-rows"
	finalRowsVersion = 1
	// localSavesChange version 1 writes the application and its outcomes
	// to Postgres through local activities (no activity task, no trip
	// through the task queue: the write runs inside the workflow task) and
	// upserts the status and the credit path together, once per step.
	localSavesChange  = "local-saves"
	localSavesVersion = 1
)

// TemporalCancelReason is the status detail of an application cancelled
// through Temporal (client CancelWorkflow, CLI or Web UI) rather than by the
// cancel signal, which carries its own reason.
const TemporalCancelReason = "cancelled through Temporal"

// LoanApplicationWorkflow runs one application: validate, persist, ask the
// bureaus and MyData in parallel on their own task queues, underwrite,
// persist the decision and, when approved and not cancelled, disburse the
// loan.
func LoanApplicationWorkflow(ctx workflow.Context, in Input) (loan.Result, error) {
	r := &loanRun{ctx: ctx, in: in, app: in.Application, logger: workflow.GetLogger(ctx)}
	if err := r.checkInput(); err != nil {
		return loan.Result{}, err
	}
	if err := r.start(); err != nil {
		return r.res, err
	}
	brk, end := r.enter()
	if end != nil {
		return end.result()
	}
	scores, fin, end := r.runCreditCheck(brk)
	if end != nil {
		return end.result()
	}
	d, end := r.underwrite(scores, fin)
	if end != nil {
		return end.result()
	}
	if end := r.approve(); end != nil {
		return end.result()
	}
	return r.disburse(d).result()
}

// loanRun is one run of LoanApplicationWorkflow: what its steps share.
type loanRun struct {
	ctx    workflow.Context
	in     Input
	app    loan.Application
	logger log.Logger
	// final (finalRowsVersion) and local (localSavesVersion) are the
	// versions this run follows.
	final, local bool
	// res is the application's current outcome, as the status query
	// returns it.
	res    loan.Result
	cancel *cancellation
	dbOpts workflow.ActivityOptions
	// saveCtx writes to Postgres whatever happens to the workflow: a
	// Temporal cancel must not cut the write of the row that records it.
	saveCtx workflow.Context
}

// ending is what a run that has ended returns; a step returns nil to let
// the run go on.
type ending struct {
	res loan.Result
	err error
}

func (e *ending) result() (loan.Result, error) { return e.res, e.err }

// checkInput refuses bad input before anything is written, and reads the
// versions this run follows.
func (r *loanRun) checkInput() error {
	if err := r.app.Validate(); err != nil {
		// Nothing has been written: bad input fails at once and is not retried.
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalidInput, err)
	}
	// Version 1 (finalRowsVersion) makes every path end in a final row and
	// handles Temporal's own cancel; histories of earlier builds replay on
	// the paths they took.
	r.final = workflow.GetVersion(r.ctx, finalRowsChange, workflow.DefaultVersion, finalRowsVersion) >= finalRowsVersion
	if r.final {
		if err := r.in.Options.Validate(); err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalidInput, err)
		}
	}
	r.local = r.final && workflow.GetVersion(r.ctx, localSavesChange, workflow.DefaultVersion, localSavesVersion) >= localSavesVersion
	return nil
}

// start makes the application visible (its queries and entry search
// attributes) and prepares its cancellation and its Postgres writes.
func (r *loanRun) start() error {
	r.res = loan.Result{ApplicationID: r.app.ApplicationID, Status: loan.StatusReceived}
	if err := workflow.SetQueryHandler(r.ctx, StatusQuery, func() (loan.Result, error) { return r.res, nil }); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(r.ctx, ApplicationQuery, func() (loan.Application, error) { return r.app, nil }); err != nil {
		return err
	}
	if err := upsertEntrySearchAttributes(r.ctx, r.app); err != nil {
		r.logger.Warn("upsert search attributes failed", "error", err)
	}
	r.cancel = newCancellation(r.ctx)
	r.dbOpts = dbOptions(r.final)
	r.saveCtx = workflow.WithActivityOptions(r.ctx, r.dbOpts)
	if r.final {
		disconnected, _ := workflow.NewDisconnectedContext(r.ctx)
		r.saveCtx = workflow.WithActivityOptions(disconnected, r.dbOpts)
	}
	return nil
}

// dbOptions are the options of a Postgres write.
func dbOptions(final bool) workflow.ActivityOptions {
	dbOpts := workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    500 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			// Postgres outages are waited out; conflicts and data errors
			// are final (non-retryable).
		},
	}
	if final {
		// Waited out, but not forever: past persistTimeout the application
		// takes its failure path (one more bounded try to store FAILED).
		dbOpts.ScheduleToCloseTimeout = persistTimeout
	}
	return dbOpts
}

// save runs one short Postgres write: a local activity from
// localSavesVersion on, an activity on the loan queue before. Either is
// retried up to persistTimeout and is not cut by a Temporal cancel.
func (r *loanRun) save(activity, arg any) error {
	if !r.local {
		return workflow.ExecuteActivity(r.saveCtx, activity, arg).Get(r.saveCtx, nil)
	}
	disconnected, _ := workflow.NewDisconnectedContext(r.ctx)
	lctx := workflow.WithLocalActivityOptions(disconnected, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: persistTimeout,
		StartToCloseTimeout:    r.dbOpts.StartToCloseTimeout,
		RetryPolicy:            r.dbOpts.RetryPolicy,
	})
	return workflow.ExecuteLocalActivity(lctx, activity, arg).Get(lctx, nil)
}

// setStatus shows status s in the result and the LoanStatus search attribute.
func (r *loanRun) setStatus(s loan.Status) {
	r.res.Status = s
	if err := workflow.UpsertTypedSearchAttributes(r.ctx, LoanStatusKey.ValueSet(string(s))); err != nil {
		r.logger.Warn("upsert LoanStatus failed", "error", err)
	}
}

// setPath shows credit path p in the result and the CreditPath search attribute.
func (r *loanRun) setPath(p string) {
	r.res.CreditPath = p
	if err := workflow.UpsertTypedSearchAttributes(r.ctx, CreditPathKey.ValueSet(p)); err != nil {
		r.logger.Warn("upsert CreditPath failed", "error", err)
	}
}

// cancelledByTemporal reports a cancel requested through Temporal (the
// client's CancelWorkflow, the CLI, the Web UI) rather than the signal.
func (r *loanRun) cancelledByTemporal() bool { return r.final && r.ctx.Err() != nil }

// checkCancelled reports whether the application is cancelled, by the
// signal or through Temporal.
func (r *loanRun) checkCancelled() bool {
	if r.cancelledByTemporal() {
		r.cancel.record(CancelRequest{Reason: TemporalCancelReason})
	}
	return r.cancel.poll()
}

// cancelled ends the application CANCELLED, with the reason of the cancel
// honoured.
func (r *loanRun) cancelled() *ending {
	r.res.Status, r.res.StatusReason, r.res.StatusDetail = loan.StatusCancelled, loan.ReasonCancelled, r.cancel.req.Reason
	r.logger.Info("application cancelled", "application_id", r.app.ApplicationID, "reason", r.cancel.req.Reason)
	return r.finish()
}

// finish persists res as the final outcome. A cancel arriving from here
// on is too late.
func (r *loanRun) finish() *ending {
	var la *activities.LoanActivities
	r.cancel.close(string(r.res.Status))
	if err := r.save(la.SaveOutcome, r.res); err != nil {
		return &ending{r.res, fmt.Errorf("save outcome of %s: %w", r.app.ApplicationID, err)}
	}
	r.setStatus(r.res.Status)
	r.logger.Info("application finished", "application_id", r.app.ApplicationID, "status", r.res.Status, "reason", r.res.Reason())
	r.cancel.poll() // logs any that arrived while saving
	if r.res.Status == loan.StatusCancelled && r.ctx.Err() != nil {
		// The workflow ends cancelled, as Temporal was asked; the
		// outcome is stored and readable through the status query.
		return &ending{r.res, temporal.NewCanceledError(r.res.StatusDetail)}
	}
	return &ending{r.res, nil}
}

// fail stores a final FAILED row explaining err before the workflow
// fails with it, so Postgres never keeps a status that is still in
// progress (or APPROVED) for a workflow that has ended.
func (r *loanRun) fail(reason string, err error) *ending {
	if !r.final {
		return &ending{r.res, err}
	}
	var la *activities.LoanActivities
	r.logger.Error("application failed", "application_id", r.app.ApplicationID, "reason", reason, "error", err)
	r.res.Status, r.res.StatusReason, r.res.StatusDetail = loan.StatusFailed, reason, ""
	r.res.Error = loan.CleanText(err.Error(), maxErrorText)
	r.cancel.close("failed")
	if serr := r.save(la.SaveOutcome, r.res); serr != nil {
		// The stored row is already final (a contradicting run), or
		// Postgres stayed out past persistTimeout: the workflow's error
		// says both.
		return &ending{r.res, fmt.Errorf("%w (and storing FAILED %s failed too: %v)", err, reason, serr)}
	}
	r.setStatus(r.res.Status)
	return &ending{r.res, err}
}

// enter stores the application, and ends it at once when it is already
// cancelled or the loan product is closed (the entry breaker open); the
// breakers it read also choose the credit path.
func (r *loanRun) enter() (breakers, *ending) {
	var la *activities.LoanActivities
	// The entry check: one read of every breaker, recorded in history.
	brk := readBreakers(r.ctx)
	wfID := workflow.GetInfo(r.ctx).WorkflowExecution.ID
	if err := r.save(la.SaveApplication, activities.SaveApplicationInput{Application: r.app, WorkflowID: wfID}); err != nil {
		// Nothing was stored (or another application holds the id): there
		// is no row of this workflow's to finish.
		return brk, &ending{r.res, fmt.Errorf("save application %s: %w", r.app.ApplicationID, err)}
	}
	if r.checkCancelled() {
		return brk, r.cancelled()
	}
	if brk.state(breaker.Entry) == breaker.Open {
		r.res.Status, r.res.StatusReason = loan.StatusRejected, loan.ReasonLoanProductUnavailable
		r.res.StatusDetail = brk[breaker.Entry].Reason
		return brk, r.finish()
	}
	return brk, nil
}

// runCreditCheck asks the bureaus and the financials source (checkCredit)
// on the credit path brk chooses, and ends the application if it is
// cancelled meanwhile or the check fails for good.
func (r *loanRun) runCreditCheck(brk breakers) ([]loan.CreditScore, loan.Financials, *ending) {
	r.showCheckingCredit(brk)
	scores, fin, path, err := checkCredit(withWaiting(r.ctx, &r.res), r.in, r.res.CreditPath, r.cancel)
	if path != r.res.CreditPath {
		r.setPath(path)
	}
	if r.checkCancelled() {
		return scores, fin, r.cancelled()
	}
	if err != nil {
		return scores, fin, r.creditFailed(err)
	}
	return scores, fin, nil
}

// showCheckingCredit shows the CHECKING_CREDIT status and the credit path
// chosen from brk.
func (r *loanRun) showCheckingCredit(brk breakers) {
	if r.local {
		// One upsert for the status and the path chosen with it.
		r.res.Status, r.res.CreditPath = loan.StatusCheckingCredit, creditPath(brk, r.app.ApplicationID)
		if err := workflow.UpsertTypedSearchAttributes(r.ctx, LoanStatusKey.ValueSet(string(r.res.Status)), CreditPathKey.ValueSet(r.res.CreditPath)); err != nil {
			r.logger.Warn("upsert LoanStatus and CreditPath failed", "error", err)
		}
	} else {
		r.setStatus(loan.StatusCheckingCredit)
		r.setPath(creditPath(brk, r.app.ApplicationID))
	}
}

// creditFailed ends the application FAILED by a credit check that failed
// for good, with the reason err explains.
func (r *loanRun) creditFailed(err error) *ending {
	r.logger.Error("credit check failed for good", "application_id", r.app.ApplicationID, "error", err)
	r.res.Status = loan.StatusFailed
	r.res.Error = err.Error()
	r.res.StatusReason, r.res.StatusDetail = failureReason(err), ""
	if r.final {
		r.res.Error = loan.CleanText(r.res.Error, maxErrorText)
		if detail, ok := invalidAgencyData(err); ok {
			r.res.StatusReason, r.res.StatusDetail = loan.ReasonAgencyInvalidData, loan.CleanText(detail, maxErrorText)
		}
	}
	return r.finish()
}

// underwrite decides the application from its scores and financials; a
// rejection or a failure ends it.
func (r *loanRun) underwrite(scores []loan.CreditScore, fin loan.Financials) (loan.Decision, *ending) {
	r.res.Scores, r.res.Financials = scores, &fin
	if r.local {
		// Underwriting is pure and the outcome's save follows in the same
		// workflow task: the status attribute goes straight to the outcome.
		r.res.Status = loan.StatusUnderwriting
	} else {
		r.setStatus(loan.StatusUnderwriting)
	}
	d, err := underwriting.Decide(r.app, scores, fin, underwriting.DefaultPolicy())
	if err != nil {
		if r.final && errors.Is(err, underwriting.ErrInvalidFinancials) {
			// Out-of-range figures that got past the agency client: the
			// same explained, final outcome as there.
			r.res.Status, r.res.StatusReason, r.res.StatusDetail = loan.StatusFailed, loan.ReasonAgencyInvalidData, loan.CleanText(err.Error(), maxErrorText)
			r.res.Scores, r.res.Financials = nil, nil
			return d, r.finish()
		}
		return d, r.fail(loan.ReasonUnderwritingFailed, temporal.NewNonRetryableApplicationError(err.Error(), "UnderwritingError", err))
	}
	r.res.Decision = &d
	if !d.Approved {
		r.res.Status = loan.StatusRejected
		return d, r.finish()
	}
	return d, nil
}

// approve stores the approval and takes the last cancel honoured: from
// here on the disbursement starts.
func (r *loanRun) approve() *ending {
	var la *activities.LoanActivities
	// Approved: stored as APPROVED first, so the database never holds a loan
	// for an application it does not know was approved.
	r.res.Status = loan.StatusApproved
	if err := r.save(la.SaveOutcome, r.res); err != nil {
		return r.fail(loan.ReasonPersistenceFailed, fmt.Errorf("save approval of %s: %w", r.app.ApplicationID, err))
	}
	r.setStatus(loan.StatusApproved)
	// The last moment a cancel is honoured: once Disburse is scheduled, the
	// money may move at any instant and nothing can call it back.
	if r.checkCancelled() {
		return r.cancelled()
	}
	r.cancel.close("disbursement started")
	return nil
}

// disburse books the approved loan d and ends the application with the
// ledger's definite answer.
func (r *loanRun) disburse(d loan.Decision) *ending {
	var da *activities.DisburseActivities
	disburseCtx := workflow.WithActivityOptions(r.ctx, disburseOptions(r.final))
	var dr activities.DisburseResult
	err := workflow.ExecuteActivity(disburseCtx, da.Disburse, activities.DisburseInput{
		ApplicationID: r.app.ApplicationID, CustomerID: r.app.CustomerID, Amount: d.ApprovedAmount,
		RateBasisPoints: d.RateBasisPoints, TermMonths: r.app.TermMonths, MonthlyPayment: d.MonthlyPayment,
	}).Get(r.ctx, &dr)
	if err != nil && r.cancelledByTemporal() && temporal.IsCanceledError(err) {
		found, end := r.bookedBeforeCancel()
		if end != nil {
			return end
		}
		dr, err = found, nil
	}
	if err != nil {
		r.logger.Error("disbursement failed for good", "application_id", r.app.ApplicationID, "error", err)
		return r.fail(loan.ReasonDisbursementFailed, fmt.Errorf("disburse %s: %w", r.app.ApplicationID, err))
	}
	if dr.Disbursement != nil {
		r.res.Status, r.res.Disbursement = loan.StatusDisbursed, dr.Disbursement
	} else {
		r.res.Status, r.res.StatusReason, r.res.StatusDetail = loan.StatusRejected, dr.RefusedReason, dr.Detail
	}
	return r.finish()
}

// disburseOptions are the options of the Disburse activity.
func disburseOptions(final bool) workflow.ActivityOptions {
	disburseOpts := workflow.ActivityOptions{
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
	}
	if final {
		// A Temporal cancel during Disburse must not abandon the attempt
		// while money may move: the attempt hears the cancel through its
		// heartbeat, finishes (or declines to start) its booking, and the
		// workflow waits for that definite answer.
		disburseOpts.WaitForCancellation = true
		disburseOpts.HeartbeatTimeout = disburseHeartbeat
	}
	return disburseOpts
}

// bookedBeforeCancel answers a Disburse cancelled through Temporal: it
// returns the loan booked all the same, or ends the application CANCELLED
// when none was.
func (r *loanRun) bookedBeforeCancel() (activities.DisburseResult, *ending) {
	var da *activities.DisburseActivities
	// Cancelled before a booking: but an earlier attempt may have
	// booked and died before reporting it, so ask the ledger, which
	// knows, rather than assume.
	var found activities.DisburseResult
	if lerr := workflow.ExecuteActivity(r.saveCtx, da.FindDisbursement, r.app.ApplicationID).Get(r.saveCtx, &found); lerr != nil {
		return found, r.fail(loan.ReasonDisbursementFailed, fmt.Errorf("disburse %s: cancelled, and the ledger could not be read to confirm no loan was booked: %w", r.app.ApplicationID, lerr))
	}
	if found.Disbursement == nil {
		r.res.Status, r.res.StatusReason = loan.StatusCancelled, loan.ReasonCancelled
		r.res.StatusDetail = TemporalCancelReason + " during disbursement, before any booking"
		r.logger.Info("application cancelled during disbursement; no loan booked", "application_id", r.app.ApplicationID)
		return found, r.finish()
	}
	r.logger.Info("cancel requested during disbursement, after the loan was booked: the loan stands", "application_id", r.app.ApplicationID)
	return found, nil
}

// invalidAgencyData finds, in a failed credit check, an agency answer
// classed as invalid data, and returns its explanation.
func invalidAgencyData(err error) (string, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeAgencyRejected || !appErr.HasDetails() {
		return "", false
	}
	var class string
	if appErr.Details(&class) != nil || class != activities.AgencyClassInvalidData {
		return "", false
	}
	return err.Error(), true
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

// record honours r, or logs why it is ignored. The reason is free text
// from outside: it is bounded and stripped of control characters before it
// is stored, logged or printed.
func (c *cancellation) record(r CancelRequest) {
	r.Reason = loan.CleanText(r.Reason, MaxCancelReason)
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
