package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/callstats"
	"loanflow/flowcontrol"
	"loanflow/store"
)

// ControllerActivities are the flow controller's reads and writes: call
// statistics and live in-flight counts in, concurrency limits out. They run
// as local activities of FlowControllerWorkflow.
type ControllerActivities struct {
	Stats    *callstats.Recorder
	Redis    redis.UniversalClient
	Prefix   string // Redis key prefix shared with the workers
	Breakers *breaker.Store
	Events   *store.Store // breaker_events; nil skips recording
}

// ObserveInput names the agencies to observe and the control period.
type ObserveInput struct {
	Agencies []string      `json:"agencies"`
	Period   time.Duration `json:"period"`
}

// ApplyLimitsInput carries the decisions whose limits are written; the
// reasons are kept in the workflow history as the audit trail.
type ApplyLimitsInput struct {
	Decisions []flowcontrol.Decision `json:"decisions"`
}

// ReadLimits returns the limits persisted by an earlier controller run.
func (a *ControllerActivities) ReadLimits(ctx context.Context, agencies []string) (map[string]int, error) {
	return flowcontrol.ReadLimits(ctx, a.Redis, a.Prefix, agencies)
}

// ApplyLimits writes the decided limits to Redis, where every worker's
// membership loop reads its share.
func (a *ControllerActivities) ApplyLimits(ctx context.Context, in ApplyLimitsInput) error {
	limits := make(map[string]int, len(in.Decisions))
	for _, d := range in.Decisions {
		limits[d.Agency] = d.Limit
	}
	return flowcontrol.WriteLimits(ctx, a.Redis, a.Prefix, limits)
}

// Observe reads the last whole control period of every agency's statistics
// and the calls now in flight.
func (a *ControllerActivities) Observe(ctx context.Context, in ObserveInput) (map[string]flowcontrol.Observation, error) {
	period := in.Period.Truncate(time.Second)
	if period < time.Second {
		period = time.Second // buckets are per second
	}
	now := time.Now()
	to := now.Truncate(time.Second)
	from := to.Add(-period)
	windows, err := a.Stats.Windows(ctx, in.Agencies, from, to)
	if err != nil {
		return nil, fmt.Errorf("read call statistics: %w", err)
	}
	obs := make(map[string]flowcontrol.Observation, len(windows))
	for _, w := range windows {
		inFlight, err := flowcontrol.ReadInFlight(ctx, a.Redis, a.Prefix, w.Agency)
		if err != nil {
			return nil, fmt.Errorf("read in-flight calls of %s: %w", w.Agency, err)
		}
		obs[w.Agency] = Observation(w, inFlight, now)
	}
	return obs, nil
}

// Observation converts a statistics window into the control law's input.
// Client errors, invalid data, cancelled and expired calls say nothing about
// the agency's condition and are left out of Calls (expired ones are shown
// apart).
func Observation(w callstats.Window, inFlight int, now time.Time) flowcontrol.Observation {
	o := flowcontrol.Observation{
		OK:           w.Count(agency.ClassOK),
		Overload:     w.Count(agency.ClassOverload),
		AgencyErrors: w.Count(agency.ClassAgencyError) + w.Count(agency.ClassTransport),
		Timeouts:     w.Count(agency.ClassTimeout),
		Expired:      w.Count(agency.ClassExpired),
		LatencyP50:   w.Latency.Quantile(0.5),
		LatencyP90:   w.Latency.Quantile(0.9),
		LatencyP99:   w.Latency.Quantile(0.99),
		LatencyMean:  w.Latency.Mean(),
		QueueWaitP90: w.QueueWait.Quantile(0.9),
		InFlight:     inFlight,
		Period:       w.Duration(),
		Now:          now,
	}
	o.Calls = o.OK + o.Overload + o.AgencyErrors + o.Timeouts
	return o
}

// ApplyBreakersInput carries the breaker states to publish and the
// transitions to record.
type ApplyBreakersInput struct {
	Statuses []breaker.Status     `json:"statuses"`
	Events   []store.BreakerEvent `json:"events,omitempty"`
}

// ApplyBreakers records the transitions in Postgres (breaker_events) and then
// publishes the states in Redis, where workflows read them.
func (a *ControllerActivities) ApplyBreakers(ctx context.Context, in ApplyBreakersInput) error {
	if a.Events != nil {
		if err := a.Events.RecordBreakerEvents(ctx, in.Events); err != nil {
			return err
		}
	}
	return a.Breakers.Write(ctx, in.Statuses)
}

// BreakerActivities let workflows read breaker states as a local activity,
// so the routing each application took is recorded in its history.
type BreakerActivities struct {
	Breakers *breaker.Store
}

// ReadBreakers returns every agency's breaker and the loan product's entry breaker.
func (a *BreakerActivities) ReadBreakers(ctx context.Context) (map[string]breaker.Status, error) {
	names := []string{breaker.Entry}
	for _, n := range agency.All {
		names = append(names, string(n))
	}
	return a.Breakers.Read(ctx, names)
}
