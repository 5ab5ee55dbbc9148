package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"loanflow/app"
	"loanflow/codec"
	"loanflow/dev/devstack"
	"loanflow/internal/testenv"
	"loanflow/workflows"
)

// collector is an OTLP/HTTP trace receiver that keeps what it is sent.
type collector struct {
	mu   sync.Mutex
	body []byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		z, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		in = z
	}
	b, err := io.ReadAll(in)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.body = append(c.body, b...)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
}

func (c *collector) received() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.body)
}

// `starter apply` with an OTLP endpoint set sends, before it exits, the span
// of the workflow's start under the service loanflow-starter, and puts that
// span's context in the workflow's header, where the worker continues the
// trace: one trace from the CLI call through the worker.
func TestApplyStartsTheTrace(t *testing.T) {
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{UIPort: -1, SearchAttributes: app.SearchAttributes})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()

	t.Setenv("TEMPORAL_ADDRESS", st.Address)
	t.Setenv("TEMPORAL_NAMESPACE", st.Namespace)
	for v, id := range map[string]string{codec.EnvCodecKeys: "t-1", codec.EnvSearchKeys: "t-s1"} {
		k, err := codec.NewKey(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(v, codec.FormatKeys(k))
	}
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        srv.URL,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
		"OTEL_TRACES_EXPORTER":               "",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "",
		"OTEL_SERVICE_NAME":                  "",
		"OTEL_RESOURCE_ATTRIBUTES":           "",
		"OTEL_TRACES_SAMPLER":                "",
	} {
		t.Setenv(k, v)
	}

	id := "app-trace-" + testenv.ID()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"apply", "--id", id, "--customer", "C00012345", "--amount", "30000000"}, &out, &errOut); err != nil {
		t.Fatalf("apply: %v\n%s%s", err, out.String(), errOut.String())
	}

	// run has returned: its spans must have been flushed already. OTLP's
	// protobuf keeps names, string attributes and ids as raw bytes.
	sent := col.received()
	for _, want := range []string{"StartWorkflow:LoanApplicationWorkflow", "loanflow-starter"} {
		if !bytes.Contains(sent, []byte(want)) {
			t.Fatalf("the collector received no %q by the time apply returned (%d bytes)", want, len(sent))
		}
	}

	c, err := client.Dial(client.Options{HostPort: st.Address, Namespace: st.Namespace, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	events := c.GetWorkflowHistory(ctx, workflows.WorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := events.Next()
	if err != nil {
		t.Fatal(err)
	}
	header := first.GetWorkflowExecutionStartedEventAttributes().GetHeader().GetFields()
	p, ok := header["_tracer-data"]
	if !ok {
		keys := make([]string, 0, len(header))
		for k := range header {
			keys = append(keys, k)
		}
		t.Fatalf("the workflow's start carries no _tracer-data header (header keys: %v): the worker would begin a new trace", keys)
	}
	var carrier map[string]string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &carrier); err != nil {
		t.Fatal(err)
	}
	// traceparent: version-traceid-parentid-flags; the parent is the
	// starter's span, so the worker's spans hang under one that was sent.
	parts := strings.Split(carrier["traceparent"], "-")
	if len(parts) != 4 {
		t.Fatalf("traceparent %q in the header, want version-traceid-spanid-flags", carrier["traceparent"])
	}
	for i, what := range map[int]string{1: "trace id", 2: "span id"} {
		b, err := hex.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(sent, b) {
			t.Fatalf("the header's %s %s is not among the spans the starter sent", what, parts[i])
		}
	}
}

// A tracing variable the starter cannot use is bad input (exit 2) naming the
// variable, before anything is dialled.
func TestTracingSetupErrorNamesTheVariable(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	err := run(context.Background(), []string{"status", "app-1"}, &bytes.Buffer{}, &bytes.Buffer{})
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Fatalf("want a usage error naming OTEL_TRACES_EXPORTER, got %v", err)
	}
}
