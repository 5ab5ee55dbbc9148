package callstats

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"loanflow/agency"
)

// The Prometheus metrics count every sample, whether Redis took it or not.
func TestPrometheusMetrics(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: closedAddr(t)})
	defer func() { _ = rdb.Close() }()
	rec, err := NewRecorder(rdb, RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := rec.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	noQW := sample(base, 2*time.Second, 0, agency.ClassOverload)
	noQW.Scheduled = time.Time{}
	for _, s := range []Sample{
		sample(base, 20*time.Millisecond, 3*time.Millisecond, agency.ClassOK),
		sample(base, 30*time.Millisecond, 0, agency.ClassOK),
		noQW,
	} {
		_ = rec.Record(ctx, "kcb", s)
	}
	rec.state("nice").inFlight.Add(2)

	want := `
# HELP loanflow_agency_calls_in_flight Agency calls running now in this process.
# TYPE loanflow_agency_calls_in_flight gauge
loanflow_agency_calls_in_flight{agency="kcb"} 0
loanflow_agency_calls_in_flight{agency="nice"} 2
# HELP loanflow_agency_calls_total Agency calls finished, by outcome class.
# TYPE loanflow_agency_calls_total counter
loanflow_agency_calls_total{agency="kcb",outcome="agency_error"} 0
loanflow_agency_calls_total{agency="kcb",outcome="canceled"} 0
loanflow_agency_calls_total{agency="kcb",outcome="client_error"} 0
loanflow_agency_calls_total{agency="kcb",outcome="expired"} 0
loanflow_agency_calls_total{agency="kcb",outcome="invalid_data"} 0
loanflow_agency_calls_total{agency="kcb",outcome="ok"} 2
loanflow_agency_calls_total{agency="kcb",outcome="overload"} 1
loanflow_agency_calls_total{agency="kcb",outcome="timeout"} 0
loanflow_agency_calls_total{agency="kcb",outcome="transport"} 0
loanflow_agency_calls_total{agency="nice",outcome="agency_error"} 0
loanflow_agency_calls_total{agency="nice",outcome="canceled"} 0
loanflow_agency_calls_total{agency="nice",outcome="client_error"} 0
loanflow_agency_calls_total{agency="nice",outcome="expired"} 0
loanflow_agency_calls_total{agency="nice",outcome="invalid_data"} 0
loanflow_agency_calls_total{agency="nice",outcome="ok"} 0
loanflow_agency_calls_total{agency="nice",outcome="overload"} 0
loanflow_agency_calls_total{agency="nice",outcome="timeout"} 0
loanflow_agency_calls_total{agency="nice",outcome="transport"} 0
# HELP loanflow_callstats_dropped_samples_total Call samples not written to Redis because it was unavailable or slow.
# TYPE loanflow_callstats_dropped_samples_total counter
loanflow_callstats_dropped_samples_total{agency="kcb"} 3
loanflow_callstats_dropped_samples_total{agency="nice"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricInFlight, MetricCalls, MetricDropped); err != nil {
		t.Fatal(err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	sums := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil && m.GetLabel()[0].GetValue() == "kcb" {
				counts[mf.GetName()] = h.GetSampleCount()
				sums[mf.GetName()] = h.GetSampleSum()
			}
		}
	}
	if counts[MetricLatency] != 3 || counts[MetricQueueWait] != 2 {
		t.Fatalf("histogram counts %v; want latency 3, queue wait 2", counts)
	}
	if s := sums[MetricLatency]; s < 2.049 || s > 2.051 {
		t.Fatalf("latency sum %v s, want 2.05", s)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	if err := rec.Register(reg); err == nil {
		t.Fatal("registering twice should fail")
	}
}
