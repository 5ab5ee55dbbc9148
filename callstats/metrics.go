package callstats

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"loanflow/agency"
)

// Prometheus metric names, each labelled by agency.
const (
	MetricCalls     = "loanflow_agency_calls_total"              // counter; also labelled by outcome
	MetricLatency   = "loanflow_agency_call_latency_seconds"     // histogram
	MetricQueueWait = "loanflow_agency_queue_wait_seconds"       // histogram
	MetricInFlight  = "loanflow_agency_calls_in_flight"          // gauge
	MetricDropped   = "loanflow_callstats_dropped_samples_total" // counter
)

// promBuckets are coarser than Histogram's: Prometheus keeps one series per
// bucket, and precise percentiles come from the Redis windows.
func promBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
}

// metrics are one Recorder's Prometheus collectors.
type metrics struct {
	calls     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	queueWait *prometheus.HistogramVec
	dropped   *prometheus.CounterVec
	inFlight  *prometheus.Desc
}

func newMetrics() metrics {
	return metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCalls,
			Help: "Agency calls finished, by outcome class.",
		}, []string{"agency", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricLatency,
			Help:    "Agency call latency, from the activity's start to its return.",
			Buckets: promBuckets(),
		}, []string{"agency"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricQueueWait,
			Help:    "Time an agency call's current attempt waited in its task queue before starting.",
			Buckets: promBuckets(),
		}, []string{"agency"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDropped,
			Help: "Call samples not written to Redis because it was unavailable or slow.",
		}, []string{"agency"}),
		inFlight: prometheus.NewDesc(MetricInFlight,
			"Agency calls running now in this process.", []string{"agency"}, nil),
	}
}

// agencyState is one agency's in-process counters, with its Prometheus
// series resolved once so that recording does no label lookups.
type agencyState struct {
	inFlight  atomic.Int64
	calls     map[agency.Class]prometheus.Counter // never written after creation
	other     *prometheus.CounterVec              // for classes not in agency.Classes
	name      string
	latency   prometheus.Observer
	queueWait prometheus.Observer
	dropped   prometheus.Counter
}

func (m metrics) newAgencyState(name string) *agencyState {
	st := &agencyState{
		calls:     make(map[agency.Class]prometheus.Counter, len(agency.Classes)),
		other:     m.calls,
		name:      name,
		latency:   m.latency.WithLabelValues(name),
		queueWait: m.queueWait.WithLabelValues(name),
		dropped:   m.dropped.WithLabelValues(name),
	}
	// Every class starts at zero, so rate() sees the first failure.
	for _, c := range agency.Classes {
		st.calls[c] = m.calls.WithLabelValues(name, string(c))
	}
	return st
}

func (st *agencyState) observe(c agency.Class, lat, qw time.Duration, qwKnown bool) {
	if ctr, ok := st.calls[c]; ok {
		ctr.Inc()
	} else {
		st.other.WithLabelValues(st.name, string(c)).Inc()
	}
	st.latency.Observe(lat.Seconds())
	if qwKnown {
		st.queueWait.Observe(qw.Seconds())
	}
}

// Collectors returns the Recorder's Prometheus collectors: calls by outcome,
// latency and queue-wait histograms, in-flight calls and dropped samples, all
// per agency. Register them on the worker's own registry.
func (r *Recorder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{r.metrics.calls, r.metrics.latency, r.metrics.queueWait,
		r.metrics.dropped, inFlightCollector{r}}
}

// Register registers Collectors on reg.
func (r *Recorder) Register(reg prometheus.Registerer) error {
	for _, c := range r.Collectors() {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register call-stats metrics: %w", err)
		}
	}
	return nil
}

// inFlightCollector reads the in-flight counters at scrape time.
type inFlightCollector struct{ r *Recorder }

func (c inFlightCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.r.metrics.inFlight }

func (c inFlightCollector) Collect(ch chan<- prometheus.Metric) {
	desc := c.r.metrics.inFlight
	c.r.agencies.Range(func(k, v any) bool {
		m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, float64(v.(*agencyState).inFlight.Load()), k.(string))
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- m
		return true
	})
}
