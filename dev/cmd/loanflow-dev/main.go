// Command loanflow-dev runs loanflow on one machine for development: an
// embedded Temporal server with the Web UI (unless TEMPORAL_ADDRESS is set),
// the simulated agencies (unless agency URLs are set), a codec server for the
// UI, and the production workers. With -demo N it submits a batch of
// applications, prints a summary and keeps serving until Ctrl-C; -incident
// scripts an agency incident during the batch.
//
// The production worker is the separate command ./worker, which embeds none
// of this.
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
	"loanflow/config"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/loan"
	"loanflow/metrics"
)

func main() {
	os.Exit(run())
}

func run() int {
	begin := time.Now()
	var (
		frontendPort = flag.Int("frontend-port", 7233, "embedded Temporal frontend port")
		uiPort       = flag.Int("ui-port", 8233, "embedded Web UI port (-1 disables the UI)")
		temporalDB   = flag.String("temporal-db", "", "keep the embedded server's state in this SQLite file (default: in memory)")
		persistence  = flag.String("temporal-persistence", "sqlite", "the embedded server's store: sqlite, or postgres (databases temporal and temporal_visibility, created when missing)")
		temporalURL  = flag.String("temporal-db-url", "", "with -temporal-persistence postgres: the Postgres server to keep the embedded server's state in (default: the server of DATABASE_URL)")
		shards       = flag.Int("temporal-history-shards", 4, "with -temporal-persistence postgres: history shards, fixed when the databases are created")
		simAddr      = flag.String("agency-sim-addr", "127.0.0.1:8090", "listen address of the simulated agencies")
		demo         = flag.Int("demo", 0, "after start, submit this many applications and print a summary")
		demoRate     = flag.Float64("demo-rate", 25, "applications per second of the -demo batch")
		incident     = flag.Bool("incident", false, "demo: script an incident on the simulated agencies during the batch (MyData degrades, then KCB goes down, then both recover); breakers cool down in 5 s instead of 30 s")
		logLevel     = flag.String("log-level", "info", "debug, info, warn or error")
		metricsAddr  = flag.String("metrics-addr", "127.0.0.1:9464", "listen address of the Prometheus /metrics endpoint (empty disables it)")
		codecAddr    = flag.String("codec-addr", "127.0.0.1:8234", "listen address of the codec server the embedded Web UI decodes payloads through")
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

	appCfg, err := app.FromEnv(true)
	if err != nil {
		log.Error("configuration", "error", err)
		return 2
	}
	cfg := local.Config{Config: appCfg, FrontendPort: *frontendPort, UIPort: *uiPort, TemporalDBFile: *temporalDB,
		AgencySimAddr: *simAddr, CodecAddr: *codecAddr, Logger: log}
	if cfg.TemporalPostgres, err = temporalPostgres(*persistence, *temporalURL, *temporalDB, *shards, cfg.DatabaseURL); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *incident {
		cfg.Breakers = demoBreakers()
	}
	if *demo > 0 {
		if err := (loadgen.Options{Count: *demo, Rate: *demoRate}).Validate(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	reg := prometheus.NewRegistry()
	sdkMetrics := metrics.NewSDKHandler()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), sdkMetrics)
	cfg.MetricsHandler = sdkMetrics

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	st, err := local.Start(ctx, cfg)
	if err != nil {
		log.Error("start", "error", err)
		return 1
	}
	defer st.Close()
	if err := st.App().RegisterMetrics(reg, st.Workers()); err != nil {
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
	tc := st.App().Config().Temporal
	ns, ui := tc.Namespace, st.UIURL()
	log.Info("loanflow dev stack running", "temporal", tc.Address, "namespace", ns, "ui", ui, "ready_after", time.Since(begin).Round(time.Millisecond))
	if ui != "" {
		fmt.Printf("\nTemporal Web UI: %s (ready %s after start)\n", config.ListURL(ui, ns, ""), time.Since(begin).Round(time.Millisecond))
		if u := st.CodecAuthorizeURL(config.ListURL(ui, ns, "")); u != "" {
			// Payloads are encrypted; this link lets this browser decode them
			// through the codec server, then opens the UI.
			fmt.Printf("decoded payloads: open once %s\n", u)
		}
	} else {
		fmt.Printf("\nworkers ready %s after start (no Web UI)\n", time.Since(begin).Round(time.Millisecond))
	}

	if *demo > 0 {
		runDemo(ctx, st, *demo, *demoRate, *incident)
	}
	fmt.Println("serving until Ctrl-C")
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		stopping := time.Now()
		fmt.Println("stopping: the workers finish their tasks in hand, then the server stops")
		st.Close()
		fmt.Printf("stopped in %s\n", time.Since(stopping).Round(time.Millisecond))
		return 0
	case <-st.Workers().Done():
		log.Error("workers stopped", "error", st.Workers().Wait())
		return 1
	}
}

// runDemo submits a batch, with the scripted incident if asked, and prints
// its summary with links into the Web UI.
func runDemo(ctx context.Context, st *local.Stack, count int, rate float64, incident bool) {
	tc := st.App().Config().Temporal
	ns, ui := tc.Namespace, st.UIURL()
	fmt.Printf("submitting %d applications at %g/s ...\n", count, rate)
	batchStart := time.Now()
	incidentDone := make(chan struct{})
	if incident && st.Sim() != nil {
		batch := time.Duration(float64(count) / rate * float64(time.Second))
		go func() { defer close(incidentDone); runIncident(ctx, st.Sim(), batch) }()
	} else {
		close(incidentDone)
	}
	sum, err := loadgen.Run(ctx, st.App().Client(), loadgen.Options{Count: count, Rate: rate, Progress: os.Stdout})
	<-incidentDone
	sum.Print(os.Stdout)
	if n := sum.ByReason[loan.ReasonLoanProductUnavailable]; n > 0 || incident {
		fmt.Printf("rejected at entry (loan product closed): %d\n", n)
	}
	if incident {
		printBreakerEvents(ctx, st, batchStart)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("demo batch", "error", err)
	}
	if len(sum.Outcomes) > 0 {
		fmt.Printf("one run:        %s\n", st.WorkflowURL(sum.Outcomes[0].WorkflowID, ""))
	}
	fmt.Printf("disbursed loans: %s\n", config.ListURL(ui, ns, `LoanStatus="DISBURSED"`))
	fmt.Printf("all loans:      %s\n", config.ListURL(ui, ns, `WorkflowType="LoanApplicationWorkflow"`))
}
