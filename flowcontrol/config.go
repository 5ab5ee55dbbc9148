package flowcontrol

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// AgencyConfig tunes the control law for one agency.
type AgencyConfig struct {
	// Period is this agency's own control period, 0 for the controller's
	// (Config.Period). A longer one means fewer, later decisions. It is not
	// needed for a slow, low-rate agency: where a period holds too few
	// calls the law reads up to eight together before it grows the limit,
	// and in the simulator a longer period served no agency model better
	// (flowsim's TestLongerPeriodNoBetter). It is a whole number of seconds
	// (the statistics are per second) and a multiple of the controller's
	// period, which is the tick the controller steps it on.
	Period time.Duration `json:"period,omitempty"`
	// MinLimit and MaxLimit bound the agency's global concurrency limit;
	// InitialLimit is where a new controller starts. It should be at or below
	// the agency's expected capacity, so that the first latency baseline is
	// learned without queueing at the agency.
	MinLimit     int `json:"min_limit"`
	MaxLimit     int `json:"max_limit"`
	InitialLimit int `json:"initial_limit"`
	// LatencyTolerance is how far the latency may rise above the learned
	// baseline before the limit is cut: 1.15 lets it be 1.15× the baseline.
	// The limit only grows while the latency is within a third of that margin
	// (1.05×), so the band in between is where the limit holds still.
	LatencyTolerance float64 `json:"latency_tolerance"`
	// FailureTarget is the fraction of calls that may fail through the
	// agency's fault (overload, 5xx, timeouts) before the limit is cut.
	FailureTarget float64 `json:"failure_target"`
	// Headroom multiplies the Little's-law estimate of the agency's capacity
	// (goodput × baseline latency) when the limit is cut to it; it makes up
	// for the estimate reading low while the agency is inflated by overload.
	Headroom float64 `json:"headroom"`
	// BacklogQueueWait is the task-queue wait (p90) from which there is a
	// backlog, i.e. demand for more concurrency.
	BacklogQueueWait time.Duration `json:"backlog_queue_wait"`
	// SettlePeriods is how many control periods a new limit needs to show in
	// the statistics (the workers' heartbeat plus the statistics window): no
	// increase for that many periods after a decrease, and the check of
	// whether a latency cut helped waits that long.
	SettlePeriods int `json:"settle_periods"`
	// MinSamples is the number of successful calls a period needs before its
	// latency is trusted; with fewer, only failures and backlog are used.
	MinSamples int64 `json:"min_samples"`
}

// DefaultAgencyConfig is a starting point for an agency whose capacity is in
// the tens of concurrent calls: limits 1..500 starting at 10, latency
// tolerance 1.15, failure target 1%, headroom 1.05, backlog from a 50 ms
// queue wait, 2 settle periods, 10 samples.
func DefaultAgencyConfig() AgencyConfig {
	return AgencyConfig{
		MinLimit:         1,
		MaxLimit:         500,
		InitialLimit:     10,
		LatencyTolerance: 1.15,
		FailureTarget:    0.01,
		Headroom:         1.05,
		BacklogQueueWait: 50 * time.Millisecond,
		SettlePeriods:    2,
		MinSamples:       10,
	}
}

// Validate reports the first field that is out of range, naming the field,
// the value received and what is accepted.
func (c AgencyConfig) Validate() error {
	bad := func(field string, v any, accepted string) error {
		return fmt.Errorf("invalid agency config: %s %v: accepted %s", field, v, accepted)
	}
	switch {
	case c.Period < 0 || c.Period > MaxAgencyPeriod || c.Period%time.Second != 0:
		return bad("period", c.Period, fmt.Sprintf("0 (the controller's period) or a whole number of seconds up to %s", MaxAgencyPeriod))
	case c.MinLimit < 1:
		return bad("min_limit", c.MinLimit, "1 or more")
	case c.MaxLimit < c.MinLimit:
		return bad("max_limit", c.MaxLimit, fmt.Sprintf("min_limit (%d) or more", c.MinLimit))
	case c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit:
		return bad("initial_limit", c.InitialLimit, fmt.Sprintf("%d to %d (min_limit to max_limit)", c.MinLimit, c.MaxLimit))
	case !finite(c.LatencyTolerance) || c.LatencyTolerance <= 1 || c.LatencyTolerance > 10:
		return bad("latency_tolerance", c.LatencyTolerance, "more than 1, at most 10")
	case !finite(c.FailureTarget) || c.FailureTarget < 0 || c.FailureTarget >= 1:
		return bad("failure_target", c.FailureTarget, "0 or more, less than 1")
	case !finite(c.Headroom) || c.Headroom < 1 || c.Headroom > 2:
		return bad("headroom", c.Headroom, "1 to 2")
	case c.BacklogQueueWait <= 0:
		return bad("backlog_queue_wait", c.BacklogQueueWait, "more than 0")
	case c.SettlePeriods < 1 || c.SettlePeriods > 10:
		return bad("settle_periods", c.SettlePeriods, "1 to 10")
	case c.MinSamples < 1:
		return bad("min_samples", c.MinSamples, "1 or more")
	}
	return nil
}

// Config is the controller's configuration: the control period (the
// controller's tick) and each agency's tuning, with its own period. Agencies that are observed but not listed get
// DefaultAgencyConfig.
type Config struct {
	// Period is the control period; an Observation without its own Period
	// is taken to cover one Period.
	Period   time.Duration           `json:"period"`
	Agencies map[string]AgencyConfig `json:"agencies"`
}

// DefaultConfig is a one-second period with DefaultAgencyConfig for each
// named agency.
func DefaultConfig(agencies ...string) Config {
	c := Config{Period: time.Second, Agencies: make(map[string]AgencyConfig, len(agencies))}
	for _, a := range agencies {
		c.Agencies[a] = DefaultAgencyConfig()
	}
	return c
}

// Validate reports the first invalid field, naming the agency.
func (c Config) Validate() error {
	if c.Period <= 0 {
		return fmt.Errorf("invalid flow control config: period %s: accepted more than 0", c.Period)
	}
	names := make([]string, 0, len(c.Agencies))
	for a := range c.Agencies {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, a := range names {
		if a == "" {
			return fmt.Errorf("invalid flow control config: empty agency name: accepted a non-empty name")
		}
		ac := c.Agencies[a]
		if err := ac.Validate(); err != nil {
			return fmt.Errorf("agency %s: %w", a, err)
		}
		if ac.Period != 0 && (ac.Period < c.Period || ac.Period%c.Period != 0) {
			return fmt.Errorf("agency %s: invalid agency config: period %s: accepted 0 or a multiple of the controller's period %s, up to %s", a, ac.Period, c.Period, MaxAgencyPeriod)
		}
	}
	return nil
}

// MaxAgencyPeriod bounds an agency's control period: a longer one would
// leave the agency's limit unjudged for too long after its capacity changed.
const MaxAgencyPeriod = time.Minute

// PeriodOf is the control period of one agency: its own, or the
// controller's.
func (c Config) PeriodOf(name string) time.Duration {
	if p := c.agency(name).Period; p > 0 {
		return p
	}
	return c.Period
}

// agency returns the tuning for one agency.
func (c Config) agency(name string) AgencyConfig {
	if ac, ok := c.Agencies[name]; ok {
		return ac
	}
	return DefaultAgencyConfig()
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
