package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"loanflow/breaker"
	"loanflow/flowcontrol"
)

// FlowCollector exports what the flow controller last published in Redis,
// read at scrape time: each agency's global concurrency limit (every worker
// takes a share of it, exported by the worker as loanflow_agency_limit) and
// each breaker's state. Every worker reports the same values; dashboards take
// max() over instances.
type FlowCollector struct {
	limits   func(ctx context.Context) (map[string]int, error)
	breakers *breaker.Store
	agencies []string
	names    []string
	timeout  time.Duration

	globalLimit *prometheus.Desc
	state       *prometheus.Desc
	up          *prometheus.Desc
}

var _ prometheus.Collector = (*FlowCollector)(nil)

// NewFlowCollector reads the limits of agencies and the states of the
// breakers named (the agencies' and breaker.Entry) under Redis key prefix.
func NewFlowCollector(rdb redis.UniversalClient, prefix string, agencies, breakers []string) *FlowCollector {
	c := &FlowCollector{
		breakers: breaker.NewStore(rdb, prefix),
		agencies: agencies,
		names:    breakers,
		timeout:  2 * time.Second,
		globalLimit: prometheus.NewDesc("loanflow_agency_global_limit",
			"Concurrency limit for the agency across all workers, as the flow controller last published it.",
			[]string{"agency"}, nil),
		state: prometheus.NewDesc("loanflow_breaker_state",
			"1 for the breaker's current (effective) state, 0 for the others.",
			[]string{"breaker", "state"}, nil),
		up: prometheus.NewDesc("loanflow_flow_state_up",
			"1 when the flow controller's limits and breaker states could be read from Redis at this scrape.",
			nil, nil),
	}
	c.limits = func(ctx context.Context) (map[string]int, error) {
		return flowcontrol.ReadLimits(ctx, rdb, prefix, agencies)
	}
	return c
}

// Describe sends the three descriptors.
func (c *FlowCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.globalLimit
	ch <- c.state
	ch <- c.up
}

// Collect reads Redis once per scrape; on error only loanflow_flow_state_up
// (0) is exported, so a dashboard shows no stale values.
func (c *FlowCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	limits, err := c.limits(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	states, err := c.breakers.Read(ctx, c.names)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for a, l := range limits {
		ch <- prometheus.MustNewConstMetric(c.globalLimit, prometheus.GaugeValue, float64(l), a)
	}
	for name, st := range states {
		for _, s := range []breaker.State{breaker.Closed, breaker.HalfOpen, breaker.Open} {
			v := 0.0
			if st.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, name, string(s))
		}
	}
}
