// Package agencysim simulates the external credit agencies for the dev mode,
// tests and benchmarks. Each agency has a capacity model (a bounded number of
// requests in service, a bounded FIFO queue, and service time that inflates
// while the agency is past capacity), deterministic data per customer,
// counters, and faults that can be injected while it runs.
package agencysim

import (
	"math"
	"time"

	"loanflow/agency"
)

// Config is one simulated agency's capacity model. Zero fields take the
// agency's default (see DefaultConfig); for Jitter, QueueLimit and
// InflationPerOverload a negative value turns the feature off.
type Config struct {
	// Capacity is how many requests are served at once; ≤0 means the default.
	Capacity int `json:"capacity"`
	// MedianServiceTime is the median time to serve one request when the
	// agency is not overloaded; ≤0 means the default.
	MedianServiceTime time.Duration `json:"median_service_time"`
	// Jitter is the sigma of the lognormal service time around the median;
	// 0 means 0.25, negative means every request takes exactly the median.
	Jitter float64 `json:"jitter"`
	// QueueLimit bounds the requests waiting for a slot; a full queue answers
	// 503 at once. 0 means 2×Capacity, negative means no queue.
	QueueLimit int `json:"queue_limit"`
	// QueueTimeout is how long a request may wait in the queue before it is
	// answered 503; ≤0 means the default.
	QueueTimeout time.Duration `json:"queue_timeout"`
	// InflationPerOverload stretches service time while more requests are
	// present (in service + queued) than Capacity: the time is multiplied by
	// 1 + InflationPerOverload×(present−Capacity)/Capacity, which is what
	// makes unbounded fan-out collapse throughput. 0 means 0.5, negative means
	// no inflation.
	InflationPerOverload float64 `json:"inflation_per_overload"`
	// RetryAfter is sent with every 503, rounded up to whole seconds; ≤0 means 1s.
	RetryAfter time.Duration `json:"retry_after"`
	// WorkAfterAbandon keeps a request's slot busy until its service time
	// ends even when the client has gone, as a real server that never notices
	// the disconnect would. False frees the slot at once.
	WorkAfterAbandon bool `json:"work_after_abandon"`
}

// DefaultConfig is the capacity model of an agency: the bureaus are fast,
// MyData is slower, and app scraping is the slowest, most variable and the
// quickest to degrade under overload. An unknown name gets the bureaus' values.
func DefaultConfig(name agency.Name) Config {
	switch name {
	case agency.MyData:
		return Config{Capacity: 15, MedianServiceTime: 40 * time.Millisecond, Jitter: 0.25,
			QueueLimit: 30, QueueTimeout: time.Second, InflationPerOverload: 0.5, RetryAfter: time.Second}
	case agency.Scraping:
		return Config{Capacity: 10, MedianServiceTime: 120 * time.Millisecond, Jitter: 0.5,
			QueueLimit: 20, QueueTimeout: 2 * time.Second, InflationPerOverload: 1.0, RetryAfter: 2 * time.Second}
	default: // KCB, NICE
		return Config{Capacity: 20, MedianServiceTime: 20 * time.Millisecond, Jitter: 0.25,
			QueueLimit: 40, QueueTimeout: 500 * time.Millisecond, InflationPerOverload: 0.5, RetryAfter: time.Second}
	}
}

// normalized fills defaults and turns "off" markers into zero, so the
// simulator never sees a value it cannot use.
func (c Config) normalized(name agency.Name) Config {
	d := DefaultConfig(name)
	if c.Capacity <= 0 {
		c.Capacity = d.Capacity
	}
	if c.MedianServiceTime <= 0 {
		c.MedianServiceTime = d.MedianServiceTime
	}
	c.Jitter = orDefault(c.Jitter, d.Jitter)
	c.InflationPerOverload = orDefault(c.InflationPerOverload, d.InflationPerOverload)
	switch {
	case c.QueueLimit == 0:
		c.QueueLimit = 2 * c.Capacity
	case c.QueueLimit < 0:
		c.QueueLimit = 0
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = d.QueueTimeout
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = d.RetryAfter
	}
	return c
}

func orDefault(v, def float64) float64 {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return def
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}
