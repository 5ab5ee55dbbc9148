package metrics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/callstats"
	"loanflow/dev/devstack"
	"loanflow/flowcontrol"
	"loanflow/internal/testenv"
	"loanflow/metrics"
)

// dashboards are the Grafana dashboards shipped with the deployment files.
const dashboards = "../deploy/grafana/dashboards"

// notScrapedHere are dashboard metrics this test cannot produce, with why.
// They are registered by the worker's own wiring next to its slot suppliers
// and its controller watch, which need the whole service (Postgres,
// migrations, the flow controller) rather than one workflow.
var notScrapedHere = map[string]string{
	"loanflow_agency_limit":                     "registered by the worker with its slot suppliers",
	"loanflow_controller_last_tick_age_seconds": "registered by the worker with its controller watch",
}

// Temporal's published SDK dashboards (temporalio/dashboards, sdk/) query
// these names; a worker whose scrape lacks them shows empty panels there.
var upstreamSDKNames = []string{
	"temporal_request_total",
	"temporal_request_failure_total",
	"temporal_request_latency_seconds_bucket",
	"temporal_long_request_total",
	"temporal_long_request_latency_seconds_bucket",
	"temporal_workflow_task_schedule_to_start_latency_seconds_bucket",
	"temporal_workflow_task_execution_latency_seconds_bucket",
	"temporal_workflow_endtoend_latency_seconds_bucket",
	"temporal_workflow_completed_total",
	"temporal_activity_schedule_to_start_latency_seconds_bucket",
	"temporal_activity_execution_latency_seconds_bucket",
	"temporal_activity_execution_failed_total",
	"temporal_worker_task_slots_available",
	"temporal_worker_task_slots_used",
	"temporal_sticky_cache_size",
	"temporal_num_pollers",
}

func metricsWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           agency.KCB.TaskQueue(),
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaximumAttempts: 2},
	})
	return workflow.ExecuteActivity(ctx, agencyCall).Get(ctx, nil)
}

// agencyCall fails its first attempt, so failure counters exist too.
func agencyCall(ctx context.Context) error {
	if activity.GetInfo(ctx).Attempt == 1 {
		return temporal.NewApplicationError("agency busy", "Overload")
	}
	return nil
}

// A real embedded Temporal server, a real worker and client with
// metrics.SDKHandler, loanflow's collectors on real Redis: the /metrics
// scrape must contain every metric the shipped dashboards query and the
// names Temporal's own SDK dashboards query.
func TestDashboardQueriesMatchScrape(t *testing.T) {
	testenv.Short(t)
	want := dashboardMetrics(t)
	if len(want) == 0 {
		t.Fatalf("no metric names found in the expr fields of %s", dashboards)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{UIPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()

	rdb, prefix := testenv.Redis(t)
	reg := prometheus.NewRegistry()
	sdk := metrics.NewSDKHandler()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), sdk)
	rec, err := callstats.NewRecorder(rdb, callstats.RecorderOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Register(reg); err != nil {
		t.Fatal(err)
	}
	agencies := []string{string(agency.KCB), string(agency.NICE)}
	reg.MustRegister(metrics.NewFlowCollector(rdb, prefix, agencies, append(agencies, breaker.Entry)))
	if err := flowcontrol.WriteLimits(ctx, rdb, prefix, map[string]int{string(agency.KCB): 40, string(agency.NICE): 25}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := breaker.NewStore(rdb, prefix).Write(ctx, []breaker.Status{
		breaker.StatusOf(string(agency.KCB), breaker.NewMachine(now), 0),
		breaker.StatusOf(breaker.Entry, breaker.NewMachine(now), 0),
	}, time.Minute); err != nil {
		t.Fatal(err)
	}

	c, err := client.Dial(client.Options{HostPort: st.Address, Namespace: st.Namespace, MetricsHandler: sdk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wf := worker.New(c, "metrics-test", worker.Options{})
	wf.RegisterWorkflow(metricsWorkflow)
	ag := worker.New(c, agency.KCB.TaskQueue(), worker.Options{
		Interceptors: []interceptor.WorkerInterceptor{callstats.NewInterceptor(rec)},
	})
	ag.RegisterActivity(agencyCall)
	for _, w := range []worker.Worker{wf, ag} {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "metrics-" + testenv.ID(), TaskQueue: "metrics-test"}, metricsWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// A request the server refuses, for the failure counters.
	if _, err := c.DescribeWorkflowExecution(ctx, "no-such-workflow-"+testenv.ID(), ""); err == nil {
		t.Fatal("describing a missing workflow succeeded")
	}
	// Counters and gauges reach Prometheus on tally's one-second report.
	time.Sleep(1500 * time.Millisecond)

	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	got := scrape(t, srv.URL+"/metrics")

	var missing []string
	for _, name := range want {
		if _, skip := notScrapedHere[name]; skip {
			continue
		}
		if !got[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the dashboards query metrics absent from the scrape: %s", strings.Join(missing, ", "))
	}
	missing = missing[:0]
	for _, name := range upstreamSDKNames {
		if !got[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("Temporal's SDK dashboards query metrics absent from the scrape: %s", strings.Join(missing, ", "))
	}
	for name := range notScrapedHere {
		if !slices.Contains(want, name) {
			t.Errorf("notScrapedHere lists %s, which no dashboard queries any more", name)
		}
	}
	if t.Failed() {
		var names []string
		for n := range got {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("scraped: %s", strings.Join(names, " "))
	}
}

// scrape returns the sample names at url: the family names plus, for
// histograms and summaries, the _bucket, _sum and _count series.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	out := map[string]bool{}
	for name, f := range fams {
		if len(f.GetMetric()) == 0 {
			continue
		}
		out[name] = true
		switch f.GetType().String() {
		case "HISTOGRAM":
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case "SUMMARY":
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	return out
}

// metricName matches the metric names of our queries: loanflow's own, the
// SDK's and the Go and process collectors'.
var metricName = regexp.MustCompile(`\b(?:loanflow|temporal|go|process)_[a-zA-Z0-9_]+\b`)

// dashboardMetrics returns every metric name in the expr fields (panel
// queries) and query fields (template variables) of the dashboards.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboards, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s (%v)", dashboards, err)
	}
	set := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walk(doc, func(key, val string) {
			if key != "expr" && key != "query" {
				return
			}
			for _, m := range metricName.FindAllString(val, -1) {
				set[m] = true
			}
		})
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func walk(v any, fn func(key, val string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				fn(k, s)
				continue
			}
			if q, ok := e.(map[string]any); ok && k == "query" {
				// Grafana 10+ keeps a variable's query as {"query": "..."}.
				if s, ok := q["query"].(string); ok {
					fn(k, s)
				}
			}
			walk(e, fn)
		}
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	}
}
