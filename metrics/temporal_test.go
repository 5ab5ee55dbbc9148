package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSDKHandlerExportsCountersGaugesAndTimers(t *testing.T) {
	h := NewSDKHandler()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)

	// The SDK uses one name with different tag sets; both must export.
	h.WithTags(map[string]string{"task_queue": "loan"}).Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"task_queue": "loan", "operation": "Poll"}).Counter("temporal_request").Inc(3)
	h.Gauge("sticky_cache_size").Update(7)
	tm := h.WithTags(map[string]string{"activity_type": "FetchCreditScore"}).Timer("activity_execution_latency")
	tm.Record(3 * time.Millisecond)
	tm.Record(2 * time.Second)

	want := `
# HELP temporal_temporal_request Temporal SDK metric temporal_request.
# TYPE temporal_temporal_request counter
temporal_temporal_request{operation="",task_queue="loan"} 2
temporal_temporal_request{operation="Poll",task_queue="loan"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "temporal_temporal_request"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "temporal_sticky_cache_size":
			found++
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 7 {
				t.Fatalf("gauge = %v, want 7", v)
			}
		case "temporal_activity_execution_latency":
			found++
			hist := mf.GetMetric()[0].GetHistogram()
			if hist.GetSampleCount() != 2 || hist.GetSampleSum() < 2.003-1e-9 {
				t.Fatalf("histogram count %d sum %v, want 2 and 2.003", hist.GetSampleCount(), hist.GetSampleSum())
			}
		}
	}
	if found != 2 {
		t.Fatalf("found %d of the gauge and timer families, want 2", found)
	}
}
