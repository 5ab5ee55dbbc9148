package app

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/config"
	"loanflow/flowcontrol"
	"loanflow/ledger"
)

// Environment variables read by FromEnv, besides the TEMPORAL_* ones (see
// config.TemporalFromEnv) and the key rings (see codec.ProtectionFromEnv).
const (
	EnvDatabaseURL            = "DATABASE_URL"
	EnvRedisURL               = "REDIS_URL"
	EnvAgencyBaseURL          = "AGENCY_BASE_URL"
	EnvAgencyConcurrency      = "LOANFLOW_AGENCY_CONCURRENCY"
	EnvAgencyMaxConcurrency   = "LOANFLOW_AGENCY_MAX_CONCURRENCY"
	EnvRedisPrefix            = "LOANFLOW_REDIS_PREFIX"
	EnvDefaultExposureLimit   = "LOANFLOW_DEFAULT_EXPOSURE_LIMIT"
	DefaultRedisPrefix        = "loanflow:"
	defaultAgencyConcurrency  = 16
	maxAgencyConcurrencyValue = 1000
)

// Config is everything a worker process needs to know, read and checked
// before anything is connected.
type Config struct {
	Temporal    config.Temporal
	DatabaseURL string
	RedisURL    string
	// AgencyURLs are the agencies' base URLs, one per agency.
	AgencyURLs map[agency.Name]string
	// AgencyAllowHTTP accepts plain http agency URLs off loopback
	// (LOANFLOW_AGENCY_ALLOW_HTTP=1); real agencies need https.
	AgencyAllowHTTP bool
	// AgencyConcurrency is each agency's starting global concurrency limit,
	// until the flow controller sets one (default 16).
	AgencyConcurrency int
	// RedisPrefix starts every Redis key loanflow writes (default "loanflow:").
	RedisPrefix string
	// DefaultExposureLimit is the exposure limit, in won, given to a
	// customer on their first loan (default ledger.DefaultLimit).
	DefaultExposureLimit int64
	// WorkerID names this process among the agencies' live workers (default:
	// host, pid and a random suffix).
	WorkerID string
	// Pollers is the number of pollers each worker runs for workflow tasks
	// and for activity tasks (flag -pollers; 0 = the SDK's default, 2). A
	// worker starved of CPU fetches tasks faster with more.
	Pollers int
	// Flow configures the flow controller (default: every agency with
	// flowcontrol's defaults, starting at AgencyConcurrency).
	Flow flowcontrol.Config
	// Agencies are the agencies' contracts (LOANFLOW_AGENCIES_FILE): each
	// one's control period and concurrency cap, applied to Flow, and its TPS
	// ceiling, applied to its task queue in Temporal when the workers start.
	Agencies map[string]AgencyContract
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

	// LogLevel and MetricsAddr come from the worker's flags.
	LogLevel    slog.Level
	MetricsAddr string
}

// Load reads the production worker's flags and environment once and checks
// them all. A bad value is an error naming the flag or variable, the value
// and what is accepted; -h returns flag.ErrHelp.
func Load(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:9464", "listen address of the Prometheus /metrics endpoint (empty disables it)")
	pollers := fs.Int("pollers", 0, "pollers per worker for workflow tasks and for activity tasks (0: the SDK's default; at most 64)")
	dev := fs.Bool("dev", false, "not supported: the dev stack is the separate command loanflow-dev")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if *dev {
		return Config{}, errors.New("-dev: the production worker embeds no Temporal server or simulated agencies; run the dev stack with `go run ./dev/cmd/loanflow-dev` (or `make demo`)")
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q: the worker takes only flags (-log-level, -metrics-addr)", fs.Args())
	}
	if *pollers < 0 || *pollers > 64 {
		return Config{}, fmt.Errorf("invalid -pollers %d: accepted 0 (the SDK's default) to 64", *pollers)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return Config{}, fmt.Errorf("invalid -log-level %q: accepted debug, info, warn or error", *logLevel)
	}
	cfg, err := FromEnv(false)
	if err != nil {
		return cfg, err
	}
	if cfg.Temporal.Address == "" {
		cfg.Temporal.Address = config.DefaultTemporalAddress
	}
	if len(cfg.AgencyURLs) == 0 {
		return cfg, fmt.Errorf("no agency URLs: set %s (or AGENCY_KCB_URL, AGENCY_NICE_URL, AGENCY_MYDATA_URL, AGENCY_SCRAPING_URL); the simulated agencies run with `go run ./dev/cmd/loanflow-dev`", EnvAgencyBaseURL)
	}
	cfg.LogLevel, cfg.MetricsAddr, cfg.Pollers = level, *metricsAddr, *pollers
	return cfg, nil
}

// FromEnv reads every environment variable a worker uses: DATABASE_URL,
// REDIS_URL, the agency URLs (AGENCY_BASE_URL, or AGENCY_<NAME>_URL per
// agency), LOANFLOW_AGENCY_ALLOW_HTTP, LOANFLOW_AGENCY_CONCURRENCY,
// LOANFLOW_AGENCY_MAX_CONCURRENCY, LOANFLOW_AGENCIES_FILE, LOANFLOW_REDIS_PREFIX,
// LOANFLOW_DEFAULT_EXPOSURE_LIMIT, the Temporal client settings (envconfig:
// TEMPORAL_* and the TOML profile) and the key rings. devKeys lets the key
// rings come from (and be generated under) .dev/ when they are not set.
// Temporal.Address and AgencyURLs stay empty when unset, so a dev stack can
// tell what to embed.
func FromEnv(devKeys bool) (Config, error) {
	t, err := config.TemporalFromEnv()
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		Temporal:    t,
		DatabaseURL: config.EnvOr(EnvDatabaseURL, config.DefaultDatabaseURL),
		RedisURL:    config.EnvOr(EnvRedisURL, config.DefaultRedisURL),
	}
	if base := os.Getenv(EnvAgencyBaseURL); base != "" {
		cfg.AgencyURLs = agency.URLsFromBase(base)
	}
	for _, n := range agency.All {
		key := "AGENCY_" + strings.ToUpper(string(n)) + "_URL"
		if v := os.Getenv(key); v != "" {
			if cfg.AgencyURLs == nil {
				cfg.AgencyURLs = map[agency.Name]string{}
			}
			cfg.AgencyURLs[n] = v
		}
	}
	if cfg.AgencyURLs != nil && len(cfg.AgencyURLs) != len(agency.All) {
		return cfg, fmt.Errorf("agency URLs: got %d of %d; set AGENCY_BASE_URL or all of AGENCY_KCB_URL, AGENCY_NICE_URL, AGENCY_MYDATA_URL, AGENCY_SCRAPING_URL", len(cfg.AgencyURLs), len(agency.All))
	}
	switch v := os.Getenv(agency.AllowHTTPEnv); v {
	case "", "0", "false":
	case "1", "true":
		cfg.AgencyAllowHTTP = true
	default:
		return cfg, fmt.Errorf("%s=%q: accepted 1 or true (allow plain http to agencies off loopback), 0, false or unset", agency.AllowHTTPEnv, v)
	}
	if v := os.Getenv(EnvAgencyConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAgencyConcurrencyValue {
			return cfg, fmt.Errorf("%s=%q: accepted a whole number from 1 to 1000", EnvAgencyConcurrency, v)
		}
		cfg.AgencyConcurrency = n
	}
	if v := os.Getenv(EnvAgencyMaxConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAgencyConcurrencyValue {
			return cfg, fmt.Errorf("%s=%q: accepted a whole number from 1 to 1000", EnvAgencyMaxConcurrency, v)
		}
		cfg.Flow = cappedFlowConfig(cfg.AgencyConcurrency, n)
	}
	if v := os.Getenv(EnvAgenciesFile); v != "" {
		if cfg.Agencies, err = LoadAgencies(v); err != nil {
			return cfg, err
		}
		if cfg.Flow.Agencies == nil {
			cfg.Flow = flowConfig(cmp.Or(cfg.AgencyConcurrency, defaultAgencyConcurrency))
		}
		// Per agency, the contract's cap wins over LOANFLOW_AGENCY_MAX_CONCURRENCY.
		cfg.Flow = withContracts(cfg.Flow, cfg.Agencies)
	}
	// Processes that share an agency's limits must share the prefix; a
	// separate prefix makes a separate fleet on the same Redis.
	if v := os.Getenv(EnvRedisPrefix); v != "" {
		if strings.ContainsAny(v, "{}") {
			return cfg, fmt.Errorf("%s=%q: accepted a prefix without '{' or '}' (the agency is the Redis Cluster hash tag)", EnvRedisPrefix, v)
		}
		cfg.RedisPrefix = v
	}
	if v := os.Getenv(EnvDefaultExposureLimit); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || !isDecimal(v) {
			return cfg, fmt.Errorf("%s=%q: accepted a whole number of won, 1 or more, in decimal digits (default %d)", EnvDefaultExposureLimit, v, ledger.DefaultLimit)
		}
		cfg.DefaultExposureLimit = n
	}
	// Outside dev mode the keys must be configured: nothing reaches
	// Temporal in plaintext.
	notes, err := cfg.Temporal.LoadProtection(devKeys, devKeys)
	for _, n := range notes {
		slog.Warn(n)
	}
	if err != nil {
		return cfg, fmt.Errorf("refusing to start: %w", err)
	}
	return cfg, nil
}

func isDecimal(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// withDefaults fills what was left unset and checks the result.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.AgencyConcurrency <= 0 {
		cfg.AgencyConcurrency = defaultAgencyConcurrency
	}
	if cfg.RedisPrefix == "" {
		cfg.RedisPrefix = DefaultRedisPrefix
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
	cfg.Flow = withContracts(cfg.Flow, cfg.Agencies)
	if cfg.Temporal.Address == "" {
		cfg.Temporal.Address = config.DefaultTemporalAddress
	}
	if cfg.Temporal.Namespace == "" {
		cfg.Temporal.Namespace = config.DefaultNamespace
	}
	if err := cfg.Flow.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Temporal.Protection.Codec == nil {
		return cfg, errors.New("refusing to start: no payload codec; set LOANFLOW_CODEC_KEYS or LOANFLOW_CODEC_KEY_FILE")
	}
	if len(cfg.AgencyURLs) != len(agency.All) {
		return cfg, fmt.Errorf("agency URLs: got %d of %d; set AGENCY_BASE_URL or all of AGENCY_KCB_URL, AGENCY_NICE_URL, AGENCY_MYDATA_URL, AGENCY_SCRAPING_URL", len(cfg.AgencyURLs), len(agency.All))
	}
	return cfg, nil
}

// cappedFlowConfig is the default flow configuration with every agency's
// global limit held at or below maxLimit, starting at initial (default 16),
// capped too: a contract ceiling the controller may not raise past.
func cappedFlowConfig(initial, maxLimit int) flowcontrol.Config {
	if initial <= 0 {
		initial = defaultAgencyConcurrency
	}
	cfg := flowConfig(min(initial, maxLimit))
	for name, ac := range cfg.Agencies {
		ac.MaxLimit = maxLimit
		ac.MinLimit = min(ac.MinLimit, maxLimit)
		ac.InitialLimit = min(ac.InitialLimit, maxLimit)
		cfg.Agencies[name] = ac
	}
	return cfg
}

// flowConfig is the controller's default configuration: every agency with
// flowcontrol's defaults, each starting at the worker's static concurrency.
func flowConfig(initial int) flowcontrol.Config {
	names := make([]string, len(agency.All))
	for i, n := range agency.All {
		names[i] = string(n)
	}
	cfg := flowcontrol.DefaultConfig(names...)
	for name, ac := range cfg.Agencies {
		ac.InitialLimit = min(max(initial, ac.MinLimit), ac.MaxLimit)
		cfg.Agencies[name] = ac
	}
	return cfg
}

// workerID names this process among the agencies' live workers.
func workerID() string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1_000_000, 36)
}
