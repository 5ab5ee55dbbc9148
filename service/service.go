// Package service wires loanflow's parts together: Temporal (embedded or
// remote), Postgres with its migrations, Redis, the agencies (simulated or
// real), and the workers of the loan and agency task queues. The worker
// command, the demo and the end-to-end tests all start loanflow through it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/agencysim"
	"loanflow/breaker"
	"loanflow/callstats"
	"loanflow/config"
	"loanflow/devstack"
	"loanflow/flowcontrol"
	"loanflow/migrations"
	"loanflow/store"
	"loanflow/workflows"
)

// SearchAttributes are the custom search attributes the Web UI filters loans by.
// None holds personal data: no codec covers them (see workflows/search.go).
var SearchAttributes = map[string]enumspb.IndexedValueType{
	"CustomerRef": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"LoanStatus":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"CreditPath":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"AmountBand":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// Config says what to connect to and what to embed.
type Config struct {
	Temporal    config.Temporal
	DatabaseURL string
	RedisURL    string
	// AgencyURLs are the agencies' base URLs; in dev mode, empty means
	// "serve the simulated agencies in this process".
	AgencyURLs map[agency.Name]string
	// AgencyAllowHTTP accepts plain http agency URLs off loopback
	// (LOANFLOW_AGENCY_ALLOW_HTTP=1); real agencies need https.
	AgencyAllowHTTP bool
	// AgencyConcurrency is each agency's starting global concurrency limit,
	// until the flow controller sets one.
	AgencyConcurrency int
	// RedisPrefix starts every Redis key loanflow writes (default "loanflow:").
	RedisPrefix string
	// WorkerID names this process among the agencies' live workers (default:
	// host, pid and a random suffix).
	WorkerID string
	// Flow configures the flow controller (default: every agency with
	// flowcontrol's defaults, starting at AgencyConcurrency).
	Flow flowcontrol.Config
	// Breakers tunes each agency's circuit breaker (default breaker.DefaultConfig).
	Breakers map[string]breaker.Config
	// NoController leaves starting the flow controller to other processes.
	NoController bool
	// LeasePeriods is the life of a published breaker record in control
	// periods (default 5); BreakerHold how long a reader keeps answering
	// with the last record once it is gone (default breaker.DefaultHold).
	LeasePeriods int
	BreakerHold  time.Duration
	// WatchdogEvery is the period of the controller's watchdog schedule
	// (default DefaultWatchdogEvery); StalePeriods how many control periods
	// without a tick make the controller stale (default DefaultStalePeriods).
	WatchdogEvery time.Duration
	StalePeriods  int
	// ControllerPeriodsPerRun is how many periods the controller runs
	// before continuing as new (default 600); tests shorten it.
	ControllerPeriodsPerRun int
	// Pollers is each worker's workflow-task and activity-task pollers
	// (0: the SDK's defaults, 2 each). On a contended machine 2 pollers
	// were seen to cap throughput before the CPU did (docs/bench-throughput.md).
	Pollers int
	// MetricsHandler receives the Temporal SDK's metrics (default none).
	MetricsHandler client.MetricsHandler

	// Dev embeds what is not configured: a Temporal server with the Web UI
	// (unless Temporal.Address is set) and the simulated agencies (unless
	// AgencyURLs is set). It also creates the database if it is missing.
	Dev            bool
	FrontendPort   int    // embedded frontend port; 0 = any free port
	UIPort         int    // embedded Web UI port; 0 = any free port, -1 = no UI
	TemporalDBFile string // embedded server's SQLite file; empty = in memory
	AgencySimAddr  string // simulated agencies' listen address; default 127.0.0.1:0
	AgencySim      map[agency.Name]agencysim.Config
	// CodecAddr is where dev mode serves the codec server the embedded Web
	// UI decodes payloads through (default 127.0.0.1:0 when the UI runs).
	CodecAddr string
	// CodecToken authorizes calls to that codec server (default
	// LOANFLOW_CODEC_TOKEN, or a token generated under .dev/).
	CodecToken string

	// TemporalPostgres keeps the embedded server's state in Postgres instead of SQLite.
	TemporalPostgres *devstack.Postgres

	Logger *slog.Logger
}

// Env is a connected loanflow: clients of every backing service, plus what
// dev mode embedded.
type Env struct {
	Config   Config
	Client   client.Client
	Store    *store.Store
	Redis    *redis.Client
	Agencies *agency.Client
	Stack    *devstack.Stack   // embedded Temporal, or nil
	Sim      *agencysim.Server // simulated agencies, or nil
	Stats    *callstats.Recorder
	Breakers *breaker.Store

	suppliers map[string]*flowcontrol.SlotSupplier
	tickAge   tickAge
	SimURL    string
	UIURL     string
	// CodecURL is the dev codec server's base URL, empty when none runs.
	CodecURL string
	Logger   *slog.Logger

	closers []func()
}

// Setup connects to (or, in dev mode, starts) everything loanflow needs and
// brings the schema up to date. On error, whatever was started is stopped.
func Setup(ctx context.Context, cfg Config) (_ *Env, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AgencyConcurrency <= 0 {
		cfg.AgencyConcurrency = 16
	}
	if cfg.RedisPrefix == "" {
		cfg.RedisPrefix = RedisPrefix
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = workerID()
	}
	if cfg.Flow.Agencies == nil {
		cfg.Flow = flowConfig(cfg.AgencyConcurrency)
	}
	if cfg.Flow.Period <= 0 {
		cfg.Flow.Period = time.Second
	}
	if err := cfg.Flow.Validate(); err != nil {
		return nil, err
	}
	e := &Env{Config: cfg, Logger: cfg.Logger, UIURL: cfg.Temporal.UIURL}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	log := cfg.Logger

	if cfg.Temporal.Protection.Codec == nil {
		// Outside dev mode the keys must be configured: nothing reaches
		// Temporal in plaintext.
		notes, err := cfg.Temporal.LoadProtection(cfg.Dev, cfg.Dev)
		for _, n := range notes {
			log.Warn(n)
		}
		if err != nil {
			return nil, fmt.Errorf("refusing to start: %w", err)
		}
	}
	log.Info("payload encryption on", "codec_key", cfg.Temporal.Protection.Codec.Ring().CurrentID(), "codec_keys", len(cfg.Temporal.Protection.Codec.Ring().IDs()))

	if cfg.Dev && cfg.Temporal.Address == "" {
		t0 := time.Now()
		codecLn, err := e.listenCodec(&cfg)
		if err != nil {
			return nil, err
		}
		e.Stack, err = devstack.Start(ctx, devstack.Options{
			CodecEndpoint:    e.CodecURL,
			FrontendPort:     cfg.FrontendPort,
			UIPort:           cfg.UIPort,
			Namespace:        cfg.Temporal.Namespace,
			DatabaseFile:     cfg.TemporalDBFile,
			Postgres:         cfg.TemporalPostgres,
			SearchAttributes: SearchAttributes,
			Logger:           log,
		})
		if err != nil {
			return nil, fmt.Errorf("start embedded temporal: %w", err)
		}
		e.closers = append(e.closers, e.Stack.Stop)
		cfg.Temporal.Address = e.Stack.Address
		e.UIURL = e.Stack.UIAddress
		if err := e.serveCodec(codecLn, cfg); err != nil {
			return nil, err
		}
		log.Info("embedded temporal started", "address", e.Stack.Address, "ui", e.Stack.UIAddress, "took", time.Since(t0).Round(time.Millisecond))
	}
	if len(cfg.AgencyURLs) == 0 {
		if !cfg.Dev {
			return nil, errors.New("no agency URLs: set AGENCY_BASE_URL (or AGENCY_KCB_URL, AGENCY_NICE_URL, AGENCY_MYDATA_URL, AGENCY_SCRAPING_URL), or run in dev mode")
		}
		addr := cfg.AgencySimAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		e.Sim = agencysim.New(cfg.AgencySim)
		e.Sim.SetLogger(log)
		// The simulator lives until Close, not until Setup's context ends.
		base, stop, err := e.Sim.Start(context.Background(), addr)
		if err != nil {
			return nil, fmt.Errorf("start simulated agencies on %s: %w", addr, err)
		}
		e.closers = append(e.closers, func() { _ = stop() })
		e.SimURL = base
		cfg.AgencyURLs = agency.URLsFromBase(base)
		log.Info("simulated agencies started", "url", base)
	}
	e.Agencies, err = agency.NewClient(agency.ClientConfig{URLs: cfg.AgencyURLs, AllowInsecureHTTP: cfg.AgencyAllowHTTP})
	if err != nil {
		return nil, err
	}

	if cfg.Dev {
		if err := ensureDatabase(ctx, cfg.DatabaseURL, log); err != nil {
			return nil, err
		}
	}
	if err := migrations.Up(ctx, cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("migrate %s: %w", redactURL(cfg.DatabaseURL), err)
	}
	e.Store, err = store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, e.Store.Close)
	if err := migrations.Validate(ctx, e.Store.Pool()); err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}

	ropts, err := redisOptions(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	e.Redis = redis.NewClient(ropts)
	e.closers = append(e.closers, func() { _ = e.Redis.Close() })
	if err := e.Redis.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("connect to Redis at %s (set REDIS_URL): %w", redactURL(cfg.RedisURL), err)
	}

	e.Breakers = breaker.NewStore(e.Redis, cfg.RedisPrefix)
	e.Stats, err = callstats.NewRecorder(e.Redis, callstats.RecorderOptions{Prefix: cfg.RedisPrefix, Logger: log})
	if err != nil {
		return nil, err
	}
	copts, err := cfg.Temporal.ClientOptions(log)
	if err != nil {
		return nil, err
	}
	copts.MetricsHandler = cfg.MetricsHandler
	// Lets the statistics measure a retried call's queue wait from its own attempt.
	copts.ConnectionOptions.DialOptions = append(copts.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(e.Stats.PollInterceptor()))
	e.Client, err = config.DialOptions(copts)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, e.Client.Close)
	e.Config = cfg
	if e.Stack == nil {
		if err := registerSearchAttributes(ctx, e.Client, cfg.Temporal.Namespace, log); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Close stops everything Setup started, in reverse order.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// WorkflowURL is the Web UI link of a run.
func (e *Env) WorkflowURL(workflowID, runID string) string {
	return config.WorkflowURL(e.UIURL, e.Config.Temporal.Namespace, workflowID, runID)
}

// StartWorkers starts the worker of the loan queue and one worker per agency
// queue, whose pools follow the flow controller's limits, and makes sure the
// controller runs. The returned function stops them all.
func (e *Env) StartWorkers(ctx context.Context) (stop func(), err error) {
	var started []worker.Worker
	mctx, cancelMembership := context.WithCancel(context.Background())
	membershipDone := make(chan struct{})
	stop = func() {
		for _, w := range started {
			w.Stop()
		}
		cancelMembership()
		<-membershipDone
	}
	suppliers, membership, err := e.agencyWorkers()
	if err != nil {
		close(membershipDone)
		return nil, err
	}
	e.suppliers = suppliers
	go func() {
		defer close(membershipDone)
		if err := membership.Run(mctx); err != nil && !errors.Is(err, context.Canceled) {
			e.Logger.Error("agency pool membership stopped", "error", err)
		}
	}()
	defer func() {
		if err != nil {
			stop()
		}
	}()

	lw := worker.New(e.Client, workflows.TaskQueue, e.withPollers(worker.Options{}))
	lw.RegisterWorkflow(workflows.LoanApplicationWorkflow)
	lw.RegisterActivity(&activities.LoanActivities{Store: e.Store})
	lw.RegisterActivity(&activities.BreakerActivities{Breakers: breaker.NewReader(e.Breakers, e.Config.BreakerHold, e.Logger)})
	da, err := e.disburseActivities()
	if err != nil {
		return nil, err
	}
	lw.RegisterActivity(da)
	if err := lw.Start(); err != nil {
		return nil, fmt.Errorf("start worker on task queue %s: %w", workflows.TaskQueue, err)
	}
	started = append(started, lw)
	cw, err := e.startControllerWorker()
	if err != nil {
		return nil, err
	}
	started = append(started, cw)
	acts := &activities.AgencyActivities{Agencies: e.Agencies, Latency: e.Stats}
	for _, n := range agency.All {
		opts, err := e.agencyWorkerOptions(suppliers[string(n)])
		if err != nil {
			return nil, err
		}
		w := worker.New(e.Client, n.TaskQueue(), opts)
		w.RegisterActivity(acts)
		if err := w.Start(); err != nil {
			return nil, fmt.Errorf("start worker on task queue %s: %w", n.TaskQueue(), err)
		}
		started = append(started, w)
	}
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); e.watchHeartbeat(mctx) }()
	stopMembership := stop
	stop = func() { stopMembership(); <-watchDone }
	if !e.Config.NoController {
		if err := e.EnsureController(ctx); err != nil {
			return nil, err
		}
		e.waitPublished(ctx, 15*time.Second)
	}
	return stop, nil
}

// withPollers applies Config.Pollers to o.
func (e *Env) withPollers(o worker.Options) worker.Options {
	if n := e.Config.Pollers; n > 0 {
		o.MaxConcurrentWorkflowTaskPollers, o.MaxConcurrentActivityTaskPollers = n, n
	}
	return o
}

func registerSearchAttributes(ctx context.Context, c client.Client, namespace string, log *slog.Logger) error {
	_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: SearchAttributes,
	})
	var exists *serviceerror.AlreadyExists
	var denied *serviceerror.PermissionDenied
	switch {
	case err == nil, errors.As(err, &exists):
		return nil
	case errors.As(err, &denied):
		// Temporal Cloud keys may not manage search attributes; an operator
		// adds them once with the cloud tooling.
		log.Warn("cannot register search attributes; add them to the namespace by hand", "namespace", namespace, "attributes", "CustomerRef, LoanStatus, CreditPath, AmountBand (Keyword)", "error", err)
		return nil
	default:
		return fmt.Errorf("register search attributes in namespace %s: %w", namespace, err)
	}
}

// ensureDatabase creates the database of a local dev URL when it does not exist.
func ensureDatabase(ctx context.Context, dbURL string, log *slog.Logger) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
		return fmt.Errorf("connect to Postgres at %s (set DATABASE_URL): %w", redactURL(dbURL), err)
	}
	u, perr := url.Parse(dbURL)
	if perr != nil {
		return fmt.Errorf("DATABASE_URL %s is not a URL: %w", redactURL(dbURL), config.RedactError(perr, dbURL))
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("connect to Postgres to create database %s: %w", name, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	log.Info("created database", "name", name)
	return nil
}

// redactURL hides a password in a connection URL before it reaches a log or an error.
func redactURL(raw string) string { return config.RedactURL(raw) }

// redisOptions parses REDIS_URL.
func redisOptions(raw string) (*redis.Options, error) {
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %s: %w", config.RedactURL(raw), config.RedactError(err, raw))
	}
	return o, nil
}
