package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"loanflow/agency"
)

// AgencyLatency tells how long an agency needs now to answer, e.g. its
// recent p90 latency (callstats.Recorder.AgencyLatency); false when unknown.
type AgencyLatency interface {
	AgencyLatency(agencyName string) (time.Duration, bool)
}

// admit decides whether a call is worth sending: not when the activity's
// remaining budget (its deadline, the earlier of ScheduleToClose and
// StartToClose) is below what the agency needs now. Such a call could only
// be cut by our own deadline after occupying one of the agency's slots; it
// ends at once as ClassExpired, which counts against neither the agency's
// limit nor its breaker. Without a latency estimate every call is sent.
func (a *AgencyActivities) admit(ctx context.Context, req AgencyRequest) error {
	if a.Latency == nil {
		return nil
	}
	need, ok := a.Latency.AgencyLatency(string(req.Agency))
	if !ok {
		return nil
	}
	return admission(req.Agency, activity.GetInfo(ctx).Deadline, time.Now(), need)
}

// admission is admit's rule: a call whose deadline leaves less than need is
// refused as ClassExpired. A zero deadline is no deadline.
func admission(n agency.Name, deadline, now time.Time, need time.Duration) error {
	if deadline.IsZero() {
		return nil
	}
	if left := deadline.Sub(now); left < need {
		return &agency.CallError{Agency: n, Class: agency.ClassExpired,
			Err: fmt.Errorf("not sent: %s left of the call's budget, below the %s the agency needs now (p90)",
				max(left, 0).Round(time.Millisecond), need.Round(time.Millisecond))}
	}
	return nil
}
