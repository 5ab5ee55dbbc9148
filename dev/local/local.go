// Package local runs a whole loanflow on one machine for development, the
// demo, the benchmarks and the end-to-end tests: what is not configured is
// embedded (a Temporal server with the Web UI, the simulated agencies, a
// codec server for the UI), the database is created when missing, and the
// production wiring (package app) does the rest, unchanged.
package local

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
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"loanflow/agency"
	"loanflow/app"
	"loanflow/config"
	"loanflow/dev/agencysim"
	"loanflow/dev/devstack"
)

// Config is the production configuration plus what to embed.
type Config struct {
	app.Config
	FrontendPort   int    // embedded frontend port; 0 = any free port
	UIPort         int    // embedded Web UI port; 0 = any free port, -1 = no UI
	TemporalDBFile string // embedded server's SQLite file; empty = in memory
	// TemporalPostgres keeps the embedded server's state in Postgres instead of SQLite.
	TemporalPostgres *devstack.Postgres
	AgencySimAddr    string // simulated agencies' listen address; default 127.0.0.1:0
	AgencySim        map[agency.Name]agencysim.Config
	// CodecAddr is where the codec server the embedded Web UI decodes
	// payloads through listens (default 127.0.0.1:0 when the UI runs).
	CodecAddr string
	// CodecToken authorizes calls to that codec server (default
	// LOANFLOW_CODEC_TOKEN, or a token generated under .dev/).
	CodecToken string

	Logger         *slog.Logger
	MetricsHandler client.MetricsHandler
	// DialOptions are added to the workers' Temporal connection (tests
	// inject faults with them).
	DialOptions []grpc.DialOption
	// InjectFatal: see app.Options.
	InjectFatal <-chan error
}

// Stack is a running local loanflow.
type Stack struct {
	app      *app.App
	workers  *app.Workers
	server   *devstack.Stack
	sim      *agencysim.Server
	uiURL    string
	codecURL string
	token    string
	log      *slog.Logger
	closers  []func()
}

// Start embeds what cfg leaves unset (Temporal when Temporal.Address is
// empty, the agencies when AgencyURLs is), creates the database if missing,
// connects through app.Connect and starts the workers. On error, whatever
// was started is stopped.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger
	s := &Stack{log: log, uiURL: cfg.Temporal.UIURL}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if cfg.Temporal.Protection.Codec == nil {
		notes, err := cfg.Temporal.LoadProtection(true, true)
		for _, n := range notes {
			log.Warn(n)
		}
		if err != nil {
			return nil, err
		}
	}
	if cfg.Temporal.Namespace == "" {
		cfg.Temporal.Namespace = config.DefaultNamespace
	}
	// The embedded server runs SDK workers of its own, which share the
	// process's sticky cache: its size is set before any of them starts.
	cfg.ApplyStickyCache()
	if cfg.Temporal.Address == "" {
		t0 := time.Now()
		codecLn, err := s.listenCodec(&cfg)
		if err != nil {
			return nil, err
		}
		s.server, err = devstack.Start(ctx, devstack.Options{
			CodecEndpoint:    s.codecURL,
			FrontendPort:     cfg.FrontendPort,
			UIPort:           cfg.UIPort,
			Namespace:        cfg.Temporal.Namespace,
			DatabaseFile:     cfg.TemporalDBFile,
			Postgres:         cfg.TemporalPostgres,
			SearchAttributes: app.SearchAttributes,
			Logger:           log,
		})
		if err != nil {
			return nil, fmt.Errorf("start embedded temporal: %w", err)
		}
		s.closers = append(s.closers, s.server.Stop)
		cfg.Temporal.Address = s.server.Address
		s.uiURL = s.server.UIAddress
		if err := s.serveCodec(codecLn, cfg); err != nil {
			return nil, err
		}
		log.Info("embedded temporal started", "address", s.server.Address, "ui", s.server.UIAddress, "took", time.Since(t0).Round(time.Millisecond))
	}
	if len(cfg.AgencyURLs) == 0 {
		addr := cfg.AgencySimAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		s.sim = agencysim.New(cfg.AgencySim)
		s.sim.SetLogger(log)
		// The simulator lives until Close, not until Start's context ends.
		base, stop, err := s.sim.Start(context.Background(), addr)
		if err != nil {
			return nil, fmt.Errorf("start simulated agencies on %s: %w", addr, err)
		}
		s.closers = append(s.closers, func() { _ = stop() })
		cfg.AgencyURLs = agency.URLsFromBase(base)
		log.Info("simulated agencies started", "url", base)
	}
	if err := ensureDatabase(ctx, cfg.DatabaseURL, log); err != nil {
		return nil, err
	}
	s.app, err = app.Connect(ctx, cfg.Config, app.Options{Logger: log, MetricsHandler: cfg.MetricsHandler, DialOptions: cfg.DialOptions, InjectFatal: cfg.InjectFatal})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.app.Close)
	s.workers, err = s.app.Start(ctx)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.workers.Stop() })
	return s, nil
}

// Close stops everything Start started, in reverse order.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// App is the production wiring the stack runs.
func (s *Stack) App() *app.App { return s.app }

// Workers are the stack's running workers.
func (s *Stack) Workers() *app.Workers { return s.workers }

// Sim is the simulated agencies, nil when real ones are configured.
func (s *Stack) Sim() *agencysim.Server { return s.sim }

// UIURL is the Web UI's base URL.
func (s *Stack) UIURL() string { return s.uiURL }

// CodecURL is the codec server's base URL, empty when none runs.
func (s *Stack) CodecURL() string { return s.codecURL }

// WorkflowURL is the Web UI link of a run.
func (s *Stack) WorkflowURL(workflowID, runID string) string {
	return config.WorkflowURL(s.uiURL, s.app.Config().Temporal.Namespace, workflowID, runID)
}

// ensureDatabase creates the database of a local dev URL when it does not exist.
func ensureDatabase(ctx context.Context, dbURL string, log *slog.Logger) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
		return fmt.Errorf("connect to Postgres at %s (set DATABASE_URL): %w", config.RedactURL(dbURL), err)
	}
	u, perr := url.Parse(dbURL)
	if perr != nil {
		return fmt.Errorf("DATABASE_URL %s is not a URL: %w", config.RedactURL(dbURL), config.RedactError(perr, dbURL))
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("connect to Postgres to create database %s: %w", name, err)
	}
	defer func() { _ = admin.Close(ctx) }()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	log.Info("created database", "name", name)
	return nil
}
