package tracing

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func tracedWorkflow(ctx workflow.Context) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, tracedActivity, "x").Get(ctx, &out)
	return out, err
}

func tracedActivity(_ context.Context, in string) (string, error) { return in + "!", nil }

// The interceptor records a span for the workflow run and one for the
// activity run, the activity's a descendant of the workflow's, in one trace.
func TestInterceptorLinksActivityToWorkflow(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	i, err := NewInterceptor(tp)
	if err != nil {
		t.Fatal(err)
	}

	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{i}})
	env.RegisterWorkflow(tracedWorkflow)
	env.RegisterActivity(tracedActivity)
	env.ExecuteWorkflow(tracedWorkflow)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	var names []string
	for _, sp := range spans {
		byName[sp.Name] = sp
		names = append(names, sp.Name)
	}
	run, ok := byName["RunWorkflow:tracedWorkflow"]
	if !ok {
		t.Fatalf("no workflow span; spans: %s", strings.Join(names, ", "))
	}
	act, ok := byName["RunActivity:tracedActivity"]
	if !ok {
		t.Fatalf("no activity span; spans: %s", strings.Join(names, ", "))
	}
	if act.SpanContext.TraceID() != run.SpanContext.TraceID() {
		t.Fatalf("activity span in trace %s, workflow span in trace %s", act.SpanContext.TraceID(), run.SpanContext.TraceID())
	}
	// Walk up from the activity's span to the workflow's.
	byID := map[string]tracetest.SpanStub{}
	for _, sp := range spans {
		byID[sp.SpanContext.SpanID().String()] = sp
	}
	cur, hops := act, 0
	for cur.Parent.SpanID() != run.SpanContext.SpanID() {
		p, ok := byID[cur.Parent.SpanID().String()]
		if !ok || hops > 5 {
			t.Fatalf("activity span's ancestry (%s) does not reach the workflow span; spans: %s", cur.Name, strings.Join(names, ", "))
		}
		cur, hops = p, hops+1
	}
}

func TestExporterFromEnv(t *testing.T) {
	ctx := context.Background()
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr string
	}{
		{"unset", nil, false, ""},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ""},
		{"console", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, false, `OTEL_TRACES_EXPORTER is "console"`},
		{"protocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, false, `OTEL_EXPORTER_OTLP_PROTOCOL is "thrift"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp, err := exporterFromEnv(ctx, env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (exp != nil) != tc.on {
				t.Fatalf("exporter = %v, want on = %v", exp, tc.on)
			}
			if exp != nil {
				_ = exp.Shutdown(ctx)
			}
		})
	}
}

// With tracing off, Setup returns no interceptor and a harmless shutdown.
func TestSetupOffByDefault(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
	i, shutdown, err := Setup(context.Background(), "loanflow-worker")
	if err != nil || i != nil {
		t.Fatalf("Setup = %v, %v; want nil, nil", i, err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
