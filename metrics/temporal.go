// Package metrics exposes loanflow's Prometheus metrics: the Temporal SDK's
// own metrics (through SDKHandler) next to loanflow's per-agency ones, served
// on one /metrics endpoint.
package metrics

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// timerBuckets are the upper bounds, in seconds, of SDK latency histograms.
// They reach a minute because schedule-to-start latencies of a backed-up
// agency queue are measured in tens of seconds.
var timerBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// reportInterval is how often tally moves counters and gauges into their
// Prometheus series; timers are recorded at once.
const reportInterval = time.Second

// SDKHandler is the client.MetricsHandler of the Temporal SDK's contrib/tally
// package, set up as Temporal's samples do: Prometheus sanitizing, the
// Prometheus naming scope (counters end in _total, timers are histograms in
// _seconds) and tally's Prometheus reporter. The names are those of Temporal's
// published SDK dashboards: temporal_request_total,
// temporal_workflow_task_schedule_to_start_latency_seconds_bucket, ...
//
// It is also a prometheus.Collector, so it registers on the worker's own
// registry like any other collector.
type SDKHandler struct {
	client.MetricsHandler
	vecs   *collectorSet
	closer io.Closer
}

var _ client.MetricsHandler = (*SDKHandler)(nil)
var _ prometheus.Collector = (*SDKHandler)(nil)

// NewSDKHandler returns a handler with no series yet; register it on a
// prometheus.Registerer and pass it as client.Options.MetricsHandler.
func NewSDKHandler() *SDKHandler {
	vecs := &collectorSet{}
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              vecs,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: timerBuckets,
		// collectorSet never refuses; keep tally's default panic out of a
		// long-running process all the same.
		OnRegisterError: func(error) {},
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:         reporter,
		Separator:              tallyprom.DefaultSeparator,
		SanitizeOptions:        &sdktally.PrometheusSanitizeOptions,
		OmitCardinalityMetrics: true,
	}, reportInterval)
	scope = sdktally.NewPrometheusNamingScope(scope)
	return &SDKHandler{MetricsHandler: sdktally.NewMetricsHandler(scope), vecs: vecs, closer: closer}
}

// Close reports the last counter and gauge values and stops the reporting
// loop.
func (h *SDKHandler) Close() error { return h.closer.Close() }

// Describe sends nothing: the SDK's metrics are created on first use, after
// registration, which makes this an unchecked collector.
func (h *SDKHandler) Describe(chan<- *prometheus.Desc) {}

// Collect exports every series the SDK has created.
func (h *SDKHandler) Collect(ch chan<- prometheus.Metric) {
	for _, c := range h.vecs.snapshot() {
		c.Collect(ch)
	}
}

// collectorSet is the prometheus.Registerer that tally's reporter registers
// its metric vectors on. The SDK emits one name with different tag sets (a
// request counter with and without a task queue, say); one Registry refuses
// the second vector of a name, whereas Prometheus itself accepts series of
// one family with different labels. Keeping the vectors here and collecting
// them through SDKHandler lets both reach the scrape.
type collectorSet struct {
	mu   sync.Mutex
	cs   []prometheus.Collector
	seen map[prometheus.Collector]bool
}

func (s *collectorSet) Register(c prometheus.Collector) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[prometheus.Collector]bool{}
	}
	if s.seen[c] {
		return fmt.Errorf("sdk metrics: collector registered twice")
	}
	s.seen[c] = true
	s.cs = append(s.cs, c)
	return nil
}

func (s *collectorSet) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := s.Register(c); err != nil {
			panic(err)
		}
	}
}

func (s *collectorSet) Unregister(c prometheus.Collector) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen[c] {
		return false
	}
	delete(s.seen, c)
	for i, x := range s.cs {
		if x == c {
			s.cs = append(s.cs[:i:i], s.cs[i+1:]...)
			break
		}
	}
	return true
}

func (s *collectorSet) snapshot() []prometheus.Collector {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]prometheus.Collector(nil), s.cs...)
}
