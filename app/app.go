// Package app is loanflow's production wiring: it reads the configuration
// once (Load), connects Postgres, Redis and Temporal, brings the schema up to
// date, registers the search attributes (Connect), and runs the workers of
// the loan, controller and agency task queues until the context ends or one
// of them fails for good (Start, Wait). The worker command is a thin main
// around it; the dev stack (dev/local) runs the same code against an
// embedded server and simulated agencies.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"google.golang.org/grpc"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/callstats"
	"loanflow/config"
	"loanflow/migrations"
	"loanflow/store"
)

// SearchAttributes are the custom search attributes the Web UI filters loans by.
// None holds personal data: no codec covers them (see workflows/search.go).
var SearchAttributes = map[string]enumspb.IndexedValueType{
	"CustomerRef": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"LoanStatus":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"CreditPath":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"AmountBand":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// Options are what the caller hands the wiring besides the configuration.
type Options struct {
	Logger *slog.Logger
	// MetricsHandler receives the Temporal SDK's metrics (default none).
	MetricsHandler client.MetricsHandler
	// Interceptors are added to the Temporal client; one that is also a
	// worker interceptor (tracing.Setup's) applies to every worker too.
	Interceptors []interceptor.ClientInterceptor
	// DialOptions are added to the Temporal client's gRPC connection.
	DialOptions []grpc.DialOption
	// InjectFatal delivers errors that stop the workers exactly as a fatal
	// worker error reported through worker.Options.OnFatalError does (the
	// SDK only reports a lost namespace after two minutes of failed polls,
	// too long for a test).
	InjectFatal <-chan error
}

// App is a connected loanflow worker process.
type App struct {
	cfg      Config
	log      *slog.Logger
	client   client.Client
	store    *store.Store
	redis    *redis.Client
	agencies *agency.Client
	stats    *callstats.Recorder
	breakers *breaker.Store
	tickAge  tickAge
	inject   <-chan error
	closers  []func()
}

// Connect checks cfg, connects to Postgres (running the migrations and
// validating the schema), Redis and Temporal, and registers the search
// attributes. On error, whatever was opened is closed.
func Connect(ctx context.Context, cfg Config, o Options) (_ *App, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: o.Logger, inject: o.InjectFatal}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	log := a.log
	log.Info("payload encryption on", "codec_key", cfg.Temporal.Protection.Codec.Ring().CurrentID(), "codec_keys", len(cfg.Temporal.Protection.Codec.Ring().IDs()))
	a.agencies, err = agency.NewClient(agency.ClientConfig{URLs: cfg.AgencyURLs, AllowInsecureHTTP: cfg.AgencyAllowHTTP})
	if err != nil {
		return nil, err
	}

	if err := migrations.Up(ctx, cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("migrate %s: %w", config.RedactURL(cfg.DatabaseURL), err)
	}
	poolSize, poolBy := cfg.PostgresPoolSize()
	a.store, err = store.OpenSized(ctx, cfg.DatabaseURL, poolSize)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.store.Close)
	log.Info("postgres pool", "max_conns", a.store.Pool().Config().MaxConns, "set_by", poolBy)
	if err := migrations.Validate(ctx, a.store.Pool()); err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}

	ropts, err := redisOptions(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	a.redis = redis.NewClient(ropts)
	a.closers = append(a.closers, func() { _ = a.redis.Close() })
	if err := a.redis.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("connect to Redis at %s (set REDIS_URL): %w", config.RedactURL(cfg.RedisURL), err)
	}

	a.breakers = breaker.NewStore(a.redis, cfg.RedisPrefix)
	a.stats, err = callstats.NewRecorder(a.redis, callstats.RecorderOptions{Prefix: cfg.RedisPrefix, Logger: log})
	if err != nil {
		return nil, err
	}
	copts, err := cfg.Temporal.ClientOptions(log)
	if err != nil {
		return nil, err
	}
	copts.MetricsHandler = o.MetricsHandler
	copts.Interceptors = append(copts.Interceptors, o.Interceptors...)
	// Lets the statistics measure a retried call's queue wait from its own attempt.
	copts.ConnectionOptions.DialOptions = append(copts.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(a.stats.PollInterceptor()))
	copts.ConnectionOptions.DialOptions = append(copts.ConnectionOptions.DialOptions, o.DialOptions...)
	a.client, err = config.DialOptions(copts)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.client.Close)
	if err := registerSearchAttributes(ctx, a.client, cfg.Temporal.Namespace, log); err != nil {
		return nil, err
	}
	return a, nil
}

// Close closes what Connect opened, in reverse order.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Client is the Temporal client the workers poll with.
func (a *App) Client() client.Client { return a.client }

// Config is the configuration the process runs with, defaults filled in.
func (a *App) Config() Config { return a.cfg }

// BreakerEvents lists the breaker transitions recorded at or after since.
func (a *App) BreakerEvents(ctx context.Context, since time.Time) ([]store.BreakerEvent, error) {
	events, err := a.store.BreakerEvents(ctx, "")
	if err != nil {
		return nil, err
	}
	out := events[:0]
	for _, e := range events {
		if !e.At.Before(since) {
			out = append(out, e)
		}
	}
	return out, nil
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

// redisOptions parses REDIS_URL without echoing a password in the error.
func redisOptions(raw string) (*redis.Options, error) {
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", EnvRedisURL, config.RedactURL(raw), config.RedactError(err, raw))
	}
	return o, nil
}
