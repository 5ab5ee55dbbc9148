// Command worker runs loanflow's workers: the loan workflow queue and one
// queue per external agency. With -dev it also embeds a Temporal server, the
// Web UI and the simulated agencies; with -demo N it then submits a batch of
// applications, prints a summary and keeps serving until Ctrl-C.
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

	"loanflow/config"
	"loanflow/loadgen"
	"loanflow/loan"
	"loanflow/metrics"
	"loanflow/service"
)

func main() {
	os.Exit(run())
}

func run() int {
	begin := time.Now()
	var (
		dev          = flag.Bool("dev", false, "embed Temporal, the Web UI and simulated agencies where they are not configured")
		frontendPort = flag.Int("frontend-port", 7233, "dev: embedded Temporal frontend port")
		uiPort       = flag.Int("ui-port", 8233, "dev: embedded Web UI port (-1 disables the UI)")
		temporalDB   = flag.String("temporal-db", "", "dev: keep the embedded server's state in this SQLite file (default: in memory)")
		persistence  = flag.String("temporal-persistence", "sqlite", "dev: the embedded server's store: sqlite, or postgres (databases temporal and temporal_visibility, created when missing)")
		temporalURL  = flag.String("temporal-db-url", "", "dev, with -temporal-persistence postgres: the Postgres server to keep the embedded server's state in (default: the server of DATABASE_URL)")
		shards       = flag.Int("temporal-history-shards", 4, "dev, with -temporal-persistence postgres: history shards, fixed when the databases are created")
		simAddr      = flag.String("agency-sim-addr", "127.0.0.1:8090", "dev: listen address of the simulated agencies")
		demo         = flag.Int("demo", 0, "after start, submit this many applications and print a summary")
		demoRate     = flag.Float64("demo-rate", 25, "applications per second of the -demo batch")
		incident     = flag.Bool("incident", false, "demo: script an incident on the simulated agencies during the batch (MyData degrades, then KCB goes down, then both recover); breakers cool down in 5 s instead of 30 s")
		logLevel     = flag.String("log-level", "info", "debug, info, warn or error")
		metricsAddr  = flag.String("metrics-addr", "127.0.0.1:9464", "listen address of the Prometheus /metrics endpoint (empty disables it)")
		codecAddr    = flag.String("codec-addr", "127.0.0.1:8234", "dev: listen address of the codec server the embedded Web UI decodes payloads through")
	)
	flag.Parse()
	levelSet := false
	flag.Visit(func(f *flag.Flag) { levelSet = levelSet || f.Name == "log-level" })
	if *demo > 0 && !levelSet {
		*logLevel = "warn" // keep the demo's progress and summary readable
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "invalid -log-level %q: accepted debug, info, warn or error\n", *logLevel)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg, err := service.ConfigFromEnv()
	if err != nil {
		log.Error("configuration", "error", err)
		return 2
	}
	cfg.Dev, cfg.FrontendPort, cfg.UIPort, cfg.TemporalDBFile, cfg.AgencySimAddr = *dev, *frontendPort, *uiPort, *temporalDB, *simAddr
	cfg.CodecAddr = *codecAddr
	if cfg.TemporalPostgres, err = temporalPostgres(*persistence, *temporalURL, *temporalDB, *shards, cfg.DatabaseURL); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.Logger = log
	if *incident {
		cfg.Breakers = demoBreakers()
	}
	reg := prometheus.NewRegistry()
	sdkMetrics := metrics.NewSDKHandler()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), sdkMetrics)
	cfg.MetricsHandler = sdkMetrics
	if *demo > 0 {
		if err := (loadgen.Options{Count: *demo, Rate: *demoRate}).Validate(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	env, err := service.Setup(ctx, cfg)
	if err != nil {
		log.Error("start", "error", err)
		return 1
	}
	defer env.Close()
	stop, err := env.StartWorkers(ctx)
	if err != nil {
		log.Error("start workers", "error", err)
		return 1
	}
	defer stop()
	if err := env.RegisterMetrics(reg); err != nil {
		log.Error("metrics", "error", err)
		return 1
	}
	if *metricsAddr != "" {
		stopMetrics, err := metrics.Serve(*metricsAddr, reg, log)
		if err != nil {
			log.Error("metrics endpoint", "addr", *metricsAddr, "error", err)
			return 1
		}
		defer stopMetrics()
	}
	ns := env.Config.Temporal.Namespace
	log.Info("loanflow worker running", "temporal", env.Config.Temporal.Address, "namespace", ns, "ui", env.UIURL, "ready_after", time.Since(begin).Round(time.Millisecond))
	if env.UIURL != "" {
		fmt.Printf("\nTemporal Web UI: %s (ready %s after start)\n", config.ListURL(env.UIURL, ns, ""), time.Since(begin).Round(time.Millisecond))
		if u := env.CodecAuthorizeURL(config.ListURL(env.UIURL, ns, "")); u != "" {
			// Payloads are encrypted; this link lets this browser decode them
			// through the codec server, then opens the UI.
			fmt.Printf("decoded payloads: open once %s\n", u)
		}
	} else {
		fmt.Printf("\nworker ready %s after start (no Web UI)\n", time.Since(begin).Round(time.Millisecond))
	}

	if *demo > 0 {
		fmt.Printf("submitting %d applications at %g/s ...\n", *demo, *demoRate)
		batchStart := time.Now()
		incidentDone := make(chan struct{})
		if *incident && env.Sim != nil {
			batch := time.Duration(float64(*demo) / *demoRate * float64(time.Second))
			go func() { defer close(incidentDone); runIncident(ctx, env.Sim, batch) }()
		} else {
			close(incidentDone)
		}
		sum, err := loadgen.Run(ctx, env.Client, loadgen.Options{Count: *demo, Rate: *demoRate, Progress: os.Stdout})
		<-incidentDone
		sum.Print(os.Stdout)
		if n := sum.ByReason[loan.ReasonLoanProductUnavailable]; n > 0 || *incident {
			fmt.Printf("rejected at entry (loan product closed): %d\n", n)
		}
		if *incident {
			printBreakerEvents(ctx, env, batchStart)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error("demo batch", "error", err)
		}
		if len(sum.Outcomes) > 0 {
			o := sum.Outcomes[0]
			fmt.Printf("one run:        %s\n", env.WorkflowURL(o.WorkflowID, ""))
		}
		fmt.Printf("disbursed loans: %s\n", config.ListURL(env.UIURL, ns, `LoanStatus="DISBURSED"`))
		fmt.Printf("all loans:      %s\n", config.ListURL(env.UIURL, ns, `WorkflowType="LoanApplicationWorkflow"`))
	}
	fmt.Println("serving until Ctrl-C")
	<-ctx.Done()
	log.Info("shutting down")
	return 0
}
