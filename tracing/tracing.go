// Package tracing sets up OpenTelemetry tracing of workflows and activities
// through the Temporal SDK's contrib/opentelemetry interceptor, exporting over
// OTLP as configured by the standard OTEL_* environment variables.
//
// Tracing is off unless OTEL_TRACES_EXPORTER=otlp, OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. The exporter itself reads the
// endpoint, headers, TLS and timeout variables; the tracer provider reads
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG; the resource reads
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Setup returns the client interceptor that traces workflows and activities
// (pass it in client.Options.Interceptors; workers made from that client
// inherit it) and the shutdown that flushes the spans still buffered. With
// tracing off it returns a nil interceptor and a shutdown that does nothing.
// serviceName names the process unless OTEL_SERVICE_NAME is set.
func Setup(ctx context.Context, serviceName string) (interceptor.Interceptor, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	exp, err := exporterFromEnv(ctx, os.Getenv)
	if err != nil || exp == nil {
		return nil, noop, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, noop, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	i, err := NewInterceptor(tp)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, noop, err
	}
	return i, tp.Shutdown, nil
}

// NewInterceptor returns the Temporal tracing interceptor writing spans to tp,
// propagated in Temporal headers with W3C trace context (the format every
// Temporal SDK reads).
func NewInterceptor(tp trace.TracerProvider) (interceptor.Interceptor, error) {
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            tp.Tracer("loanflow"),
		TextMapPropagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	return i, nil
}

// exporterFromEnv returns the OTLP span exporter the environment asks for,
// or nil when tracing is off.
func exporterFromEnv(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	kind := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch kind {
	case "none":
		return nil, nil
	case "":
		if endpoint == "" {
			return nil, nil
		}
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER is %q; accepted: otlp, none (or unset: tracing on when an OTLP endpoint is set)", kind)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch proto {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf": // the specification's default
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL is %q; accepted: grpc, http/protobuf", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter (%s): %w", cmpOr(proto, "http/protobuf"), err)
	}
	if exp == nil {
		return nil, errors.New("OTLP trace exporter: none created")
	}
	return exp, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
