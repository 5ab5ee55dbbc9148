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

// RefusalPace tells how long an agency's served calls take now, e.g. its
// recent median latency (callstats.Recorder.AgencyMedianLatency); false when
// unknown.
type RefusalPace interface {
	AgencyMedianLatency(agencyName string) (time.Duration, bool)
}

// admit decides whether a call is worth sending: not when the activity's
// remaining budget (its deadline, the earlier of ScheduleToClose and
// StartToClose) is below what the agency needs now: its recent p90 latency,
// and at least the client's own timeout. Such a call could only be cut by
// our own deadline after occupying one of the agency's slots; it ends at
// once as ClassExpired, which counts against neither the agency's limit nor
// its breaker.
//
// The client's timeout is part of the need because a call cut by our budget
// before it is tells nothing either way: counted as the agency's failure it
// poisons the controller with stale work, left out it hides an agency slowed
// by our own load (the simulator shows both). Sent only with the full
// timeout ahead, every cut of a sent call is the agency's.
func (a *AgencyActivities) admit(ctx context.Context, req AgencyRequest) (release func(), err error) {
	var timeout, p90 time.Duration
	if a.Agencies != nil {
		timeout = a.Agencies.Timeout()
	}
	if a.Latency != nil {
		if d, ok := a.Latency.AgencyLatency(string(req.Agency)); ok {
			p90 = d
		}
	}
	info := activity.GetInfo(ctx)
	need := admissionNeed(timeout, p90, info.Deadline.Sub(info.ScheduledTime))
	release = func() {}
	if a.Gate != nil {
		// Wait for a call slot no longer than the budget allows: a call
		// that could not be sent with need left ends as expired now.
		var notAfter time.Time
		if !info.Deadline.IsZero() {
			notAfter = info.Deadline.Add(-need)
		}
		release, err = a.Gate.Enter(ctx, string(req.Agency), notAfter)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, &agency.CallError{Agency: req.Agency, Class: agency.ClassExpired,
				Err: fmt.Errorf("not sent: no call slot free before the %s the agency needs now was all the budget left: %w",
					need.Round(time.Millisecond), err)}
		}
	}
	if err := admission(req.Agency, info.Deadline, time.Now(), need); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// AgencyGate holds a call until the agency has a free call slot in this
// worker: flowcontrol.Gates over the agency workers' slot suppliers. It gives
// up once notAfter has passed (zero: no bound) or ctx ends; release lets the
// next call in.
type AgencyGate interface {
	Enter(ctx context.Context, agencyName string, notAfter time.Time) (release func(), err error)
}

// admissionNeed is what a call must have left of its budget to be sent: the
// agency's p90, and the client's timeout too when the call's whole budget
// (deadline − scheduled) exceeds it. A workflow that gives its agency calls
// no more than the client's timeout (a short AgencyScheduleToClose) could
// otherwise never send one: then only the p90 is asked, and a cut by that
// short budget is ours (expired), never the agency's.
func admissionNeed(timeout, p90, budget time.Duration) time.Duration {
	if budget > timeout {
		return max(p90, timeout)
	}
	return p90
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

// free gives a call's slot back (release, from admit). A refusal (the
// agency overloaded) keeps it until the agency's median latency has passed
// since the call was sent, and a refusal that came sooner than that, at
// the agency's door, until its control period (RefusalPeriod) has passed
// too. An agency that refuses at once (a rate limit, no queue) answers in a
// round trip: a slot beyond its capacity would turn over a refusal per
// round trip, hundreds a second, where a served call holds its slot for
// the agency's latency. Paced, the limit bounds the refusals as it bounds
// the calls: a call beyond the capacity is refused about once a period,
// the rate at which the controller reads and answers, so a probe of one
// call costs a refusal or two and the controller reads a failure rate it
// can act on rather than one that swamps every period. A refusal that
// came after a wait in the agency's queue (its queue timeout) has held its
// slot for that wait already, and the queue bounds such refusals: held
// longer, the slots sat idle while the agency's capacity was being found
// (in the simulator, the capacity halving of C=20 × 300 ms fell below 0.9
// × the oracle's goodput in 18 of 144 runs, against 4 held no longer).
// The refusal itself is returned, counted and retried at once; only the
// slot waits.
func (a *AgencyActivities) free(n agency.Name, sent time.Time, err error, release func()) {
	if a.Pace == nil || agency.Classify(err) != agency.ClassOverload {
		release()
		return
	}
	p50, known := a.Pace.AgencyMedianLatency(string(n))
	hold := p50
	if a.RefusalPeriod != nil && (!known || time.Since(sent) < p50) {
		hold = max(hold, a.RefusalPeriod(string(n)))
	}
	wait := time.Until(sent.Add(hold))
	if wait <= 0 {
		release()
		return
	}
	time.AfterFunc(wait, release)
}
