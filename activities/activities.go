// Package activities holds loanflow's Temporal activities. LoanActivities run
// on the "loan" task queue and touch Postgres; AgencyActivities run on each
// agency's own task queue and call that agency over HTTP.
package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"loanflow/agency"
	"loanflow/loan"
	"loanflow/store"
)

// Error types of non-retryable activity failures, as seen by the workflow.
const (
	ErrTypeApplicationConflict = "ApplicationConflict"
	ErrTypeTerminalConflict    = "TerminalConflict"
	ErrTypeAgencyRejected      = "AgencyRejected"
	ErrTypeInvalidInput        = "InvalidInput"
)

// AgencyClassInvalidData is the detail of an ErrTypeAgencyRejected failure
// whose answer was well-formed but implausible (agency.ClassInvalidData).
const AgencyClassInvalidData = string(agency.ClassInvalidData)

// LoanActivities persist applications and their outcomes.
type LoanActivities struct {
	Store *store.Store
}

// SaveApplicationInput is the input of SaveApplication.
type SaveApplicationInput struct {
	Application loan.Application `json:"application"`
	WorkflowID  string           `json:"workflow_id"`
}

// SaveApplication records the application, idempotently by application id.
// The same id with different content is a non-retryable conflict.
func (a *LoanActivities) SaveApplication(ctx context.Context, in SaveApplicationInput) error {
	if err := in.Application.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	err := a.Store.SaveApplication(ctx, in.Application, in.WorkflowID)
	switch {
	case errors.Is(err, store.ErrApplicationConflict):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeApplicationConflict, err)
	case errors.Is(err, store.ErrInvalidResult):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	return err
}

// SaveOutcome records the credit reports, the decision and the final status
// in one transaction. Repeating it is harmless; contradicting a stored
// terminal status is a non-retryable conflict, and so is a value Postgres
// refuses as data (retrying the same value cannot help).
func (a *LoanActivities) SaveOutcome(ctx context.Context, res loan.Result) error {
	err := a.Store.SaveOutcome(ctx, res)
	switch {
	case errors.Is(err, store.ErrTerminalConflict):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTerminalConflict, err)
	case errors.Is(err, store.ErrInvalidResult):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	return err
}

// AgencyRequest asks one agency about one customer.
type AgencyRequest struct {
	Agency        agency.Name `json:"agency"`
	CustomerID    string      `json:"customer_id"`
	ApplicationID string      `json:"application_id"`
}

// AgencyActivities call the external agencies. Each agency's worker runs them
// on that agency's task queue, so the queue is the agency's pipeline.
type AgencyActivities struct {
	Agencies *agency.Client
	// Latency, when set, lets admission refuse a call whose remaining budget
	// is below the agency's current latency (see admit).
	Latency AgencyLatency
	// Gate, when set, holds each call until the agency has a free call
	// slot in this worker (see AgencyGate).
	Gate AgencyGate
	// Pace, when set with Gate, keeps a refused call's slot for as long as
	// the agency's served calls take now (see RefusalPace).
	Pace RefusalPace
	// RefusalPeriod, when set with Pace, is the agency's control period
	// (flowcontrol.Config.PeriodOf): a refused call keeps its slot at
	// least that long (see free).
	RefusalPeriod func(agencyName string) time.Duration
}

// FetchCreditScore asks a credit bureau (KCB or NICE) for the customer's score.
func (a *AgencyActivities) FetchCreditScore(ctx context.Context, req AgencyRequest) (loan.CreditScore, error) {
	release, err := a.admit(ctx, req)
	if err != nil {
		return loan.CreditScore{}, activityError(ctx, req, err)
	}
	sent := time.Now()
	defer func() { a.free(req.Agency, sent, err, release) }()
	s, err := a.Agencies.CreditScore(ctx, req.Agency, req.CustomerID, req.ApplicationID)
	if err != nil {
		return loan.CreditScore{}, activityError(ctx, req, err)
	}
	return s, nil
}

// FetchFinancials asks MyData or app scraping for the customer's debts and income.
func (a *AgencyActivities) FetchFinancials(ctx context.Context, req AgencyRequest) (loan.Financials, error) {
	release, err := a.admit(ctx, req)
	if err != nil {
		return loan.Financials{}, activityError(ctx, req, err)
	}
	sent := time.Now()
	defer func() { a.free(req.Agency, sent, err, release) }()
	f, err := a.Agencies.Financials(ctx, req.Agency, req.CustomerID, req.ApplicationID)
	if err != nil {
		return loan.Financials{}, activityError(ctx, req, err)
	}
	return f, nil
}

// activityError turns an agency failure into what Temporal should do with it:
// client errors and invalid data are final; overload honours Retry-After.
//
// The statistics interceptor classes each call with agency.Classify on the
// error returned here, so the class must survive the conversion: a retryable
// failure's type is the class name itself (e.g. "overload"); a final one keeps
// the type ErrTypeAgencyRejected, which the workflow's retry policy knows, and
// carries the *agency.CallError as its cause.
func activityError(ctx context.Context, req AgencyRequest, err error) error {
	var ce *agency.CallError
	if !errors.As(err, &ce) {
		return err
	}
	if !ce.Retryable() {
		// The cause holds the story; the message only adds the application.
		// The class goes in the details, so the workflow can tell invalid
		// data (AGENCY_INVALID_DATA) from a refused request.
		return temporal.NewNonRetryableApplicationError("application "+req.ApplicationID, ErrTypeAgencyRejected, err, string(ce.Class))
	}
	if ce.Class == agency.ClassExpired {
		// The call's own budget is spent: a retry within it could only
		// expire again, and would queue behind the backlog meanwhile. The
		// workflow decides (it schedules the call again with a new budget).
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("application %s: %v", req.ApplicationID, err), string(ce.Class), nil)
	}
	// One line a second per agency and class, with the count of those left
	// out since the last one (see retryLogEvery).
	if ok, dropped := retryLogs.allow(string(req.Agency)+"/"+string(ce.Class), time.Now()); ok {
		activity.GetLogger(ctx).Warn("agency call failed; will retry", "agency", req.Agency, "class", string(ce.Class), "error", err,
			"left_out", dropped)
	}
	// The message carries the whole story; a cause would repeat it in
	// every nested failure shown in the Web UI.
	msg := fmt.Sprintf("application %s: %v", req.ApplicationID, err)
	return temporal.NewApplicationErrorWithOptions(msg, string(ce.Class), temporal.ApplicationErrorOptions{
		NextRetryDelay: ce.RetryAfter,
	})
}
