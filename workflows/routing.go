package workflows

import (
	"errors"
	"fmt"
	"hash/fnv"
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

// state of a breaker. The read returns every breaker, a missing record
// already answered by the staleness rule; one absent all the same is closed.
func (b breakers) state(name string) breaker.State {
	if s, ok := b[name]; ok && s.State != "" {
		return s.State
	}
	return breaker.Closed
}

// failSafe is every breaker in its fail-safe state (breaker.FailSafe).
func failSafe() breakers {
	out := breakers{}
	for _, n := range append([]string{breaker.Entry}, agencyNames()...) {
		s := breaker.FailSafe(n)
		out[n] = breaker.Status{Name: n, State: s, Machine: s, Reason: "breaker states unreadable: fail-safe state", Held: "fail-safe"}
	}
	return out
}

func agencyNames() []string {
	out := make([]string, len(agency.All))
	for i, n := range agency.All {
		out[i] = string(n)
	}
	return out
}

// readBreakers reads every breaker through a local activity, so the value
// is recorded in history and replay routes the same way. The activity
// applies the staleness rule itself; should it fail all the same, every
// breaker is in its fail-safe state.
func readBreakers(ctx workflow.Context) breakers {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 2 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 3},
	})
	var ba *activities.BreakerActivities
	var out map[string]breaker.Status
	if err := workflow.ExecuteLocalActivity(lctx, ba.ReadBreakers).Get(ctx, &out); err != nil {
		if ctx.Err() == nil {
			workflow.GetLogger(ctx).Warn("breaker states unreadable; routing by the fail-safe states", "error", err)
		}
		return failSafe()
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
// so when the call fails while the bureau's breaker is not closed the
// application waits, durably and up to Options.BureauWait, for the breaker to
// close, and then asks again. While the bureau is half open the controller's
// probes judge it; waiting applications do not. When it closes they are
// released spread over releaseSpread, each at an offset fixed by its
// application id, so they do not all call the bureau in the same instant.
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
		// Version 1 waits for closed, not merely for "not open", and
		// releases jittered.
		v := workflow.GetVersion(ctx, "bureau-wait-closed", workflow.DefaultVersion, 1)
		waiting := func(st breaker.State) bool {
			if v == workflow.DefaultVersion {
				return st == breaker.Open
			}
			return st != breaker.Closed
		}
		for waiting(st) {
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
		if v != workflow.DefaultVersion {
			if d := min(releaseDelay(in.Application.ApplicationID, poll), deadline.Sub(workflow.Now(ctx))); d > 0 {
				if err := workflow.Sleep(ctx, d); err != nil {
					return s, err
				}
			}
		}
	}
}

// releaseDelay is an application's offset in [0, 2×poll) after a bureau's
// breaker closes, taken from a hash of its id: deterministic on replay, and
// spread evenly over the applications that were waiting.
func releaseDelay(applicationID string, poll time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(applicationID))
	return time.Duration(h.Sum64() % uint64(2*poll))
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
