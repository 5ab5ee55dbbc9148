package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/loan"
)

const (
	defaultBureauWait  = 10 * time.Minute
	defaultBreakerPoll = 5 * time.Second
)

// errBureauUnavailable marks a mandatory bureau that stayed unavailable past
// the bounded wait.
var errBureauUnavailable = errors.New(loan.ReasonCreditBureauUnavailable)

// breakers is what one read of the breaker states returned.
type breakers map[string]breaker.Status

// state of a breaker; one never written, or unreadable, is closed.
func (b breakers) state(name string) breaker.State {
	if s, ok := b[name]; ok && s.State != "" {
		return s.State
	}
	return breaker.Closed
}

// readBreakers reads every breaker through a local activity, so the value
// is recorded in history and replay routes the same way. When the read
// fails the breakers count as closed: routing fails open, money never does.
func readBreakers(ctx workflow.Context) breakers {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 2 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 3},
	})
	var ba *activities.BreakerActivities
	var out map[string]breaker.Status
	if err := workflow.ExecuteLocalActivity(lctx, ba.ReadBreakers).Get(ctx, &out); err != nil {
		if ctx.Err() == nil {
			workflow.GetLogger(ctx).Warn("breaker states unreadable; routing as if closed", "error", err)
		}
		return breakers{}
	}
	return out
}

// creditPath chooses MyData or app scraping from MyData's breaker: closed
// sends everyone to MyData; half open only a deterministic probe fraction
// keyed by application id; open sends everyone to scraping.
func creditPath(b breakers, applicationID string) string {
	switch b.state(string(agency.MyData)) {
	case breaker.Open:
		return CreditPathScraping
	case breaker.HalfOpen:
		frac := breaker.DefaultConfig().ProbeFraction
		if s, ok := b[string(agency.MyData)]; ok {
			frac = s.ProbeFraction
		}
		if breaker.UsesProbe(applicationID, frac) {
			return CreditPathMyData
		}
		return CreditPathScraping
	}
	return CreditPathMyData
}

// waitable tells whether an agency failure may be an outage worth waiting
// out: not the agency's final refusal, and not our own cancellation.
func waitable(ctx workflow.Context, err error) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeAgencyRejected {
		return false
	}
	return ctx.Err() == nil && !temporal.IsCanceledError(err)
}

// bureauScore asks a mandatory bureau for a score. There is no substitute,
// so when the call fails while the bureau's breaker is open the application
// waits, durably and up to Options.BureauWait, for the bureau to recover
// and then asks again.
func bureauScore(ctx workflow.Context, in Input, n agency.Name) (loan.CreditScore, error) {
	var aa *activities.AgencyActivities
	req := activities.AgencyRequest{Agency: n, CustomerID: in.Application.CustomerID, ApplicationID: in.Application.ApplicationID}
	wait := in.Options.BureauWait
	if wait <= 0 {
		wait = defaultBureauWait
	}
	poll := in.Options.BreakerPoll
	if poll <= 0 {
		poll = defaultBreakerPoll
	}
	var deadline time.Time
	for {
		var s loan.CreditScore
		err := callAgency(ctx, in, n, aa.FetchCreditScore, req, &s)
		if err == nil || !waitable(ctx, err) {
			return s, err
		}
		st := readBreakers(ctx).state(string(n))
		if st == breaker.Closed {
			return s, err // the bureau is not out: the failure stands
		}
		if deadline.IsZero() {
			deadline = workflow.Now(ctx).Add(wait)
			workflow.GetLogger(ctx).Warn("bureau unavailable; waiting for it to recover", "agency", n, "breaker", st, "until", deadline)
		}
		for st == breaker.Open {
			left := deadline.Sub(workflow.Now(ctx))
			if left <= 0 {
				break
			}
			if err := workflow.Sleep(ctx, min(poll, left)); err != nil {
				return s, err
			}
			st = readBreakers(ctx).state(string(n))
		}
		if !workflow.Now(ctx).Before(deadline) {
			return s, fmt.Errorf("%w: %s not back within %s: %v", errBureauUnavailable, n, wait, err)
		}
	}
}

// financials asks the credit path's source for the customer's debts and
// income. A MyData call that fails while MyData's breaker has left closed
// is answered by app scraping instead; the path taken is returned.
func financials(ctx workflow.Context, in Input, path string) (loan.Financials, string, error) {
	var aa *activities.AgencyActivities
	call := func(n agency.Name) (loan.Financials, error) {
		var f loan.Financials
		req := activities.AgencyRequest{Agency: n, CustomerID: in.Application.CustomerID, ApplicationID: in.Application.ApplicationID}
		return f, callAgency(ctx, in, n, aa.FetchFinancials, req, &f)
	}
	if path == CreditPathScraping {
		f, err := call(agency.Scraping)
		return f, path, err
	}
	f, err := call(agency.MyData)
	if err != nil && waitable(ctx, err) && readBreakers(ctx).state(string(agency.MyData)) != breaker.Closed {
		workflow.GetLogger(ctx).Warn("mydata failed while its breaker is not closed; using app scraping", "error", err)
		f, err = call(agency.Scraping)
		return f, CreditPathScraping, err
	}
	return f, path, err
}
