package callstats_test

// An external test package: activities imports callstats (the controller's
// activities read windows), so only an external test can run the real agency
// activities under the interceptor.

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/callstats"
	"loanflow/internal/testenv"
)

// The real agency activities against an HTTP agency: the class of each
// failure survives activities' error conversion, and final failures keep the
// type the workflow's retry policy knows.
func TestInterceptorClassesRealAgencyActivities(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	rec, err := callstats.NewRecorder(rdb, callstats.RecorderOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]struct {
		status int
		body   any
	}{
		"C00000200": {200, agency.ScoreResponse{CustomerID: "C00000200", Score: 700, ReportID: "r"}},
		"C00000503": {503, agency.ErrorResponse{Error: "busy"}},
		"C00000500": {500, agency.ErrorResponse{Error: "boom"}},
		"C00000400": {400, agency.ErrorResponse{Error: "bad customer id"}},
		"C00000999": {200, agency.ScoreResponse{CustomerID: "C00000999", Score: 5000, ReportID: "r"}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Query().Get(agency.ParamCustomerID)]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_ = json.NewEncoder(w).Encode(a.body)
	}))
	defer srv.Close()
	client, err := agency.NewClient(agency.ClientConfig{URLs: agency.URLsFromBase(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	acts := &activities.AgencyActivities{Agencies: client}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{callstats.NewInterceptor(rec)}})
	env.RegisterActivity(acts)
	customers := []string{"C00000200", "C00000503", "C00000500", "C00000400", "C00000999"}
	wf := func(ctx workflow.Context) ([]string, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:           agency.KCB.TaskQueue(),
			StartToCloseTimeout: 10 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		types := make([]string, len(customers))
		for i, c := range customers {
			err := workflow.ExecuteActivity(ctx, acts.FetchCreditScore, activities.AgencyRequest{Agency: agency.KCB, CustomerID: c, ApplicationID: "app-" + c}).Get(ctx, nil)
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) {
				types[i] = appErr.Type()
			}
		}
		return types, nil
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "scores"})
	env.ExecuteWorkflow("scores")
	var types []string
	if err := env.GetWorkflowResult(&types); err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{"", "overload", "agency_error", activities.ErrTypeAgencyRejected, activities.ErrTypeAgencyRejected}
	for i := range wantTypes {
		if types[i] != wantTypes[i] {
			t.Errorf("customer %s: error type %q, want %q", customers[i], types[i], wantTypes[i])
		}
	}
	now := time.Now()
	w, err := rec.Window(context.Background(), "kcb", now.Add(-10*time.Second), now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"ok": 1, "overload": 1, "agency_error": 1, "client_error": 1, "invalid_data": 1}
	if !maps.Equal(w.ByClass, want) {
		t.Fatalf("by class %v, want %v", w.ByClass, want)
	}
	if got := w.FailureRate(); got != 0.4 {
		t.Errorf("FailureRate = %v, want 0.4 (client error and invalid data are not the agency's fault)", got)
	}
}

// slowGate admits every call after a fixed wait, as a worker's call slots
// do when the limit's calls are all running.
type slowGate struct{ wait time.Duration }

func (g slowGate) Enter(ctx context.Context, _ string, _ time.Time) (func(), error) {
	select {
	case <-time.After(g.wait):
		return func() {}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// A call that waited in the worker for a call slot was not at the agency
// meanwhile: the wait is queue wait (demand for more calls), and the
// agency's latency runs from the moment the call was sent. Counted as
// latency, the wait would pass for a slower agency and cut the limit.
func TestInterceptorLatencyStartsWhenTheCallIsSent(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	rec, err := callstats.NewRecorder(rdb, callstats.RecorderOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	const service, wait = 40 * time.Millisecond, 400 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(service)
		_ = json.NewEncoder(w).Encode(agency.ScoreResponse{CustomerID: r.URL.Query().Get(agency.ParamCustomerID), Score: 700, ReportID: "r"})
	}))
	defer srv.Close()
	client, err := agency.NewClient(agency.ClientConfig{URLs: agency.URLsFromBase(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	acts := &activities.AgencyActivities{Agencies: client, Gate: slowGate{wait}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{callstats.NewInterceptor(rec)}})
	env.RegisterActivity(acts)
	wf := func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:           agency.KCB.TaskQueue(),
			StartToCloseTimeout: 10 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		return workflow.ExecuteActivity(ctx, acts.FetchCreditScore, activities.AgencyRequest{Agency: agency.KCB, CustomerID: "C00000001", ApplicationID: "app-1"}).Get(ctx, nil)
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "gated"})
	env.ExecuteWorkflow("gated")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w, err := rec.Window(context.Background(), "kcb", now.Add(-10*time.Second), now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if w.Count(agency.ClassOK) != 1 || w.QueueWait.Count() != 1 {
		t.Fatalf("ok %d, queue waits %d; want 1 call with its queue wait", w.Count(agency.ClassOK), w.QueueWait.Count())
	}
	// The histograms' buckets are within 12%.
	if lat := w.Latency.Quantile(0.5); lat < service*8/10 || lat > service+wait/2 {
		t.Errorf("latency %s, want about the agency's %s (the %s wait for a call slot left out)", lat, service, wait)
	}
	if qw := w.QueueWait.Quantile(0.5); qw < wait*8/10 {
		t.Errorf("queue wait %s, want at least about the %s wait for a call slot", qw, wait)
	}
}
