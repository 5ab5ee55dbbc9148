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

// ObserveInput names the agencies to observe, the control period, and the
// end of the window observed last time (zero on a fresh start).
type ObserveInput struct {
	Agencies []string      `json:"agencies"`
	Period   time.Duration `json:"period"`
	After    time.Time     `json:"after,omitzero"`
}

// ReadLimits returns the limits persisted by an earlier controller run.
func (a *ControllerActivities) ReadLimits(ctx context.Context, agencies []string) (map[string]int, error) {
	return flowcontrol.ReadLimits(ctx, a.Redis, a.Prefix, agencies)
}

// bucketGrace is how long after a second ends its bucket is taken as
// complete: the calls that finished in it have been recorded by then.
const bucketGrace = 200 * time.Millisecond

// maxCatchUp bounds, in periods, the window read after a gap (a restart, a
// slow tick): older buckets say little about the agency now.
const maxCatchUp = 5

// WindowEnd is the end of the last complete one-second bucket at server
// time now. The controller passes it back as ObserveInput.After, so every
// bucket is observed exactly once however its ticks drift.
func WindowEnd(now time.Time) time.Time { return now.Add(-bucketGrace).Truncate(time.Second) }

// Observe reads every agency's complete buckets since in.After (at most
// maxCatchUp periods of them; the last period on a fresh start) and the calls
// now in flight. Time is Redis's: the buckets are shared by every worker, so
// no process's clock decides which are complete. When no bucket has completed
// since in.After the result is empty: there is nothing new to judge.
func (a *ControllerActivities) Observe(ctx context.Context, in ObserveInput) (map[string]flowcontrol.Observation, error) {
	period := in.Period.Truncate(time.Second)
	if period < time.Second {
		period = time.Second // buckets are per second
	}
	now, err := a.Redis.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("read Redis server time: %w", err)
	}
	to := WindowEnd(now)
	from := to.Add(-period)
	if !in.After.IsZero() {
		from = in.After.Truncate(time.Second)
		if oldest := to.Add(-maxCatchUp * period); from.Before(oldest) {
			from = oldest
		}
	}
	if !from.Before(to) {
		return map[string]flowcontrol.Observation{}, nil
	}
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
		// Now is the window's end, in server time: the controller's cursor.
		obs[w.Agency] = Observation(w, inFlight, to)
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

// PublishInput is everything the controller publishes each period: the
// limits, the breaker states as leases, and its heartbeat.
type PublishInput struct {
	Limits map[string]int `json:"limits"`
	// Decisions, set when a limit changed, keep the reasons in the
	// controller's history: its audit trail of retunes.
	Decisions []flowcontrol.Decision `json:"decisions,omitempty"`
	Statuses  []breaker.Status       `json:"statuses"`
	// Lease is how long the breaker records live without a new publication.
	Lease time.Duration `json:"lease"`
	// Period is the controller's period, kept with its heartbeat so that a
	// watcher knows how many periods it has missed.
	Period time.Duration `json:"period"`
}

// Publish writes the breaker states (each a lease of in.Lease), the limits
// and the controller's heartbeat to Redis. It runs every period, so Redis
// emptied or a key lost is repaired within one period. The limits keep no
// expiry: a worker has no safer value than the last limit decided, and the
// heartbeat tells whether that decision is current.
func (a *ControllerActivities) Publish(ctx context.Context, in PublishInput) error {
	if err := a.Breakers.Write(ctx, in.Statuses, in.Lease); err != nil {
		return err
	}
	if err := flowcontrol.WriteLimits(ctx, a.Redis, a.Prefix, in.Limits); err != nil {
		return err
	}
	return WriteHeartbeat(ctx, a.Redis, a.Prefix, in.Period)
}

// RecordBreakerEvents audits transitions in Postgres (breaker_events). It
// runs after Publish, so a Postgres outage delays the audit, not the
// breakers; the controller keeps the events until they are recorded.
func (a *ControllerActivities) RecordBreakerEvents(ctx context.Context, events []store.BreakerEvent) error {
	if a.Events == nil {
		return nil
	}
	return a.Events.RecordBreakerEvents(ctx, events)
}

// PublishedBoard is what a fresh controller rebuilds its breakers from: the
// live records in Redis and, for breakers without one, the last transition
// audited in Postgres.
type PublishedBoard struct {
	Live map[string]breaker.Status     `json:"live"`
	Last map[string]store.BreakerEvent `json:"last"`
}

// ReadBoard reads the published breakers. It fails when neither Redis nor
// Postgres answers, so that the controller never starts from nothing.
func (a *ControllerActivities) ReadBoard(ctx context.Context, names []string) (PublishedBoard, error) {
	out := PublishedBoard{Live: map[string]breaker.Status{}, Last: map[string]store.BreakerEvent{}}
	live, rerr := a.Breakers.Read(ctx, names)
	if rerr == nil {
		out.Live = live
	}
	var perr error
	if a.Events != nil {
		var last map[string]store.BreakerEvent
		if last, perr = a.Events.LastBreakerEvents(ctx); perr == nil {
			out.Last = last
		}
	}
	// Either source alone rebuilds the board (the audit carries overrides
	// too); with neither the controller must wait, not start blank.
	if rerr != nil && (perr != nil || a.Events == nil) {
		return out, fmt.Errorf("read published breakers: redis: %w; postgres: %v", rerr, perr)
	}
	return out, nil
}

// BreakerActivities let workflows read breaker states as a local activity,
// so the routing each application took is recorded in its history.
type BreakerActivities struct {
	Breakers *breaker.Reader
}

// ReadBreakers returns every agency's breaker and the loan product's entry
// breaker, a missing record answered by the staleness rule (breaker.Reader).
func (a *BreakerActivities) ReadBreakers(ctx context.Context) (map[string]breaker.Status, error) {
	names := []string{breaker.Entry}
	for _, n := range agency.All {
		names = append(names, string(n))
	}
	return a.Breakers.Read(ctx, names), nil
}
