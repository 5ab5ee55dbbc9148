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
// end of the window observed last time (zero on a fresh start). Periods and
// Cursors give an agency its own period and its own end of the last window
// where they differ from Period and After.
type ObserveInput struct {
	Agencies []string                 `json:"agencies"`
	Period   time.Duration            `json:"period"`
	After    time.Time                `json:"after,omitzero"`
	Periods  map[string]time.Duration `json:"periods,omitempty"`
	Cursors  map[string]time.Time     `json:"cursors,omitempty"`
}

// Span is the window of complete one-second buckets an agency is observed
// over: [From, To).
type Span struct{ From, To time.Time }

// DueSpans says which agencies are due at server time now, and over which
// window. An agency is due once a whole period of its own has completed since
// its cursor (the end of its last window), and its window then covers whole
// periods of its own: one, or up to maxCatchUp after a gap, so the cursor
// stays on the agency's period and every bucket is observed exactly once. A
// fresh start observes each agency over its last period. Periods are whole
// seconds (buckets are per second), at least one.
func DueSpans(now time.Time, in ObserveInput) map[string]Span {
	to := WindowEnd(now)
	out := make(map[string]Span, len(in.Agencies))
	for _, a := range in.Agencies {
		period := in.Period
		if p, ok := in.Periods[a]; ok && p > 0 {
			period = p
		}
		period = max(period.Truncate(time.Second), time.Second)
		after := in.After
		if c, ok := in.Cursors[a]; ok && !c.IsZero() {
			after = c
		}
		if after.IsZero() {
			out[a] = Span{From: to.Add(-period), To: to}
			continue
		}
		from := after.Truncate(time.Second)
		if oldest := to.Add(-maxCatchUp * period); from.Before(oldest) {
			from = oldest
		}
		if n := to.Sub(from) / period; n >= 1 {
			out[a] = Span{From: from, To: from.Add(n * period)}
		}
	}
	return out
}

// ReadLimits returns the limits persisted by an earlier controller run.
func (a *ControllerActivities) ReadLimits(ctx context.Context, agencies []string) (map[string]int, error) {
	return flowcontrol.ReadLimits(ctx, a.Redis, a.Prefix, agencies)
}

// BucketGrace is how long after a second ends its bucket is taken as
// complete: the calls that finished in it have been recorded by then.
const BucketGrace = 200 * time.Millisecond

// maxCatchUp bounds, in periods, the window read after a gap (a restart, a
// slow tick): older buckets say little about the agency now.
const maxCatchUp = 5

// WindowEnd is the end of the last complete one-second bucket at server
// time now. The controller passes it back as ObserveInput.After, so every
// bucket is observed exactly once however its ticks drift.
func WindowEnd(now time.Time) time.Time { return now.Add(-BucketGrace).Truncate(time.Second) }

// Observe reads the complete buckets of every agency that is due (DueSpans:
// a whole period of its own since its cursor; its last period on a fresh
// start) and the calls now in flight. Time is Redis's: the buckets are shared
// by every worker, so no process's clock decides which are complete. An
// agency that is not due is left out; when none is, the result is empty:
// there is nothing new to judge.
func (a *ControllerActivities) Observe(ctx context.Context, in ObserveInput) (map[string]flowcontrol.Observation, error) {
	now, err := a.Redis.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("read Redis server time: %w", err)
	}
	spans := DueSpans(now, in)
	// Agencies sharing a window are read in one round trip.
	groups := map[Span][]string{}
	var order []Span
	for _, name := range in.Agencies {
		sp, ok := spans[name]
		if !ok {
			continue
		}
		if _, seen := groups[sp]; !seen {
			order = append(order, sp)
		}
		groups[sp] = append(groups[sp], name)
	}
	obs := make(map[string]flowcontrol.Observation, len(spans))
	for _, sp := range order {
		windows, err := a.Stats.Windows(ctx, groups[sp], sp.From, sp.To)
		if err != nil {
			return nil, fmt.Errorf("read call statistics: %w", err)
		}
		for _, w := range windows {
			inFlight, err := flowcontrol.ReadInFlight(ctx, a.Redis, a.Prefix, w.Agency)
			if err != nil {
				return nil, fmt.Errorf("read in-flight calls of %s: %w", w.Agency, err)
			}
			// Now is the window's end, in server time: the agency's cursor.
			obs[w.Agency] = Observation(w, inFlight, sp.To)
		}
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
