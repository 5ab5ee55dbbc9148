// Command worker runs loanflow's workers in production: the loan workflow
// queue, the flow controller's queue and one queue per external agency,
// against the Temporal, Postgres, Redis and agencies its configuration names
// (see app.Load). It embeds no Temporal server and no simulated agencies:
// those are the dev command, ./dev/cmd/loanflow-dev.
//
// It exits 2 on bad configuration, before connecting to anything; 1 when it
// cannot start or when a worker stops on a fatal error (the process then
// holds no share of any agency's limit); 0 on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"loanflow/app"
	"loanflow/metrics"
	"loanflow/tracing"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	begin := time.Now()
	cfg, err := app.Load(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker: configuration:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	slog.SetDefault(log)

	reg := prometheus.NewRegistry()
	sdkMetrics := metrics.NewSDKHandler()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), sdkMetrics)

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	opts := app.Options{Logger: log, MetricsHandler: sdkMetrics}
	// OpenTelemetry spans for workflows and activities, when the OTEL_*
	// variables name an exporter; off otherwise.
	traces, stopTracing, err := tracing.Setup(ctx, "loanflow-worker")
	if err != nil {
		log.Error("tracing", "error", err)
		return 2
	}
	defer func() { _ = stopTracing(context.Background()) }()
	if traces != nil {
		opts.Interceptors = append(opts.Interceptors, traces)
	}
	defer func() { _ = sdkMetrics.Close() }()
	a, err := app.Connect(ctx, cfg, opts)
	if err != nil {
		log.Error("start", "error", err)
		return 1
	}
	defer a.Close()
	ws, err := a.Start(ctx)
	if err != nil {
		log.Error("start workers", "error", err)
		return 1
	}
	defer func() { _ = ws.Stop() }()
	if err := a.RegisterMetrics(reg, ws); err != nil {
		log.Error("metrics", "error", err)
		return 1
	}
	if cfg.MetricsAddr != "" {
		stopMetrics, err := metrics.Serve(cfg.MetricsAddr, reg, log)
		if err != nil {
			log.Error("metrics endpoint", "addr", cfg.MetricsAddr, "error", err)
			return 1
		}
		defer stopMetrics()
	}
	tc := a.Config().Temporal
	log.Info("loanflow worker running", "temporal", tc.Address, "namespace", tc.Namespace, "ready_after", time.Since(begin).Round(time.Millisecond))
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		if err := ws.Stop(); err != nil {
			log.Error("workers stopped", "error", err)
			return 1
		}
		return 0
	case <-ws.Done():
		// A worker stopped for good; the others and the membership are
		// stopped already, so this process holds no agency share.
		log.Error("workers stopped", "error", ws.Wait())
		return 1
	}
}
