package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSDKHandlerUsesPrometheusNaming(t *testing.T) {
	h := NewSDKHandler()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)

	// The SDK uses one name with different tag sets; both must export.
	h.WithTags(map[string]string{"task_queue": "loan"}).Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"task_queue": "loan", "operation": "Poll"}).Counter("temporal_request").Inc(3)
	h.Gauge("temporal_sticky_cache_size").Update(7)
	tm := h.WithTags(map[string]string{"activity_type": "FetchCreditScore"}).Timer("temporal_activity_execution_latency")
	tm.Record(3 * time.Millisecond)
	tm.Record(2 * time.Second)
	// Counters and gauges reach Prometheus on tally's report; Close reports.
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP temporal_request_total temporal_request_total counter
# TYPE temporal_request_total counter
temporal_request_total{task_queue="loan"} 2
temporal_request_total{operation="Poll",task_queue="loan"} 3
# HELP temporal_sticky_cache_size temporal_sticky_cache_size gauge
# TYPE temporal_sticky_cache_size gauge
temporal_sticky_cache_size 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "temporal_request_total", "temporal_sticky_cache_size"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var hist bool
	for _, mf := range mfs {
		if mf.GetName() != "temporal_activity_execution_latency_seconds" {
			continue
		}
		hist = true
		hg := mf.GetMetric()[0].GetHistogram()
		if hg.GetSampleCount() != 2 || hg.GetSampleSum() < 2.003-1e-9 {
			t.Fatalf("histogram count %d sum %v, want 2 and 2.003", hg.GetSampleCount(), hg.GetSampleSum())
		}
		if n := len(hg.GetBucket()); n != len(timerBuckets) {
			t.Fatalf("histogram has %d buckets, want %d", n, len(timerBuckets))
		}
	}
	if !hist {
		t.Fatal("no temporal_activity_execution_latency_seconds histogram")
	}
}
