package app

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/config"
	"loanflow/flowcontrol"
	"loanflow/ledger"
	"loanflow/store"
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

// Environment variables of the workers' tuning. Each has a flag of the
// worker with the same meaning (tuningSettings), which wins when given.
const (
	EnvStickyCacheSize        = "LOANFLOW_STICKY_CACHE_SIZE"
	EnvLoanTuner              = "LOANFLOW_LOAN_TUNER"
	EnvLoanWorkflowSlots      = "LOANFLOW_LOAN_WORKFLOW_SLOTS"
	EnvLoanActivitySlots      = "LOANFLOW_LOAN_ACTIVITY_SLOTS"
	EnvLoanLocalActivitySlots = "LOANFLOW_LOAN_LOCAL_ACTIVITY_SLOTS"
	EnvLoanTargetCPU          = "LOANFLOW_LOAN_TARGET_CPU"
	EnvLoanTargetMem          = "LOANFLOW_LOAN_TARGET_MEM"
	EnvLoanRampThrottle       = "LOANFLOW_LOAN_RAMP_THROTTLE"
	EnvPostgresMaxConns       = "LOANFLOW_PG_MAX_CONNS"
	EnvPollers                = "LOANFLOW_POLLERS"
	EnvAgencyPrefetch         = "LOANFLOW_AGENCY_PREFETCH"
)

// The slot tuners the loan queue's worker can run with (LoanSlots.Tuner).
const (
	// TunerFixed gives each kind of task a fixed number of slots.
	TunerFixed = "fixed"
	// TunerResource is the SDK's resource-based tuner: it issues slots while
	// the machine's CPU and memory stay under their targets.
	TunerResource = "resource"
)

// Bounds of the tuning settings.
const (
	maxStickyCacheSize = 1_000_000
	maxLoanSlots       = 10_000
	maxPostgresConns   = 1_000
	maxPollers         = 64
	maxRampThrottle    = 10 * time.Second
	// The SDK's defaults, which an unset setting keeps: fixed slots per kind
	// of task, and the resource-based suppliers' maxima.
	sdkFixedSlots            = 1_000
	sdkResourceWorkflowSlots = 1_000
	sdkResourceActivitySlots = 10_000
)

// LoanSlots are the slot suppliers of the loan queue's worker: how many
// workflow tasks, activities (disbursement) and local activities (breaker
// reads, Postgres writes) it runs at once. The agency queues' workers keep
// their own tuner (flowcontrol.NewTuner), whose activity slots follow the
// flow controller.
type LoanSlots struct {
	// Tuner is TunerFixed (the default) or TunerResource.
	Tuner string
	// Workflow, Activity and LocalActivity are each kind's slots (fixed), or
	// the most the resource-based tuner issues; 0 keeps the SDK's (fixed:
	// 1000 each; resource-based: 1000 workflow, 10000 activity and local
	// activity).
	Workflow, Activity, LocalActivity int
	// TargetCPU and TargetMem are the resource-based tuner's targets, as
	// fractions of the machine's (or its cgroup's) CPU and memory; 0 keeps
	// the SDK's (0.9 and 0.8).
	TargetCPU, TargetMem float64
	// RampThrottle is how long the resource-based tuner waits after issuing
	// an activity or local-activity slot before it issues the next (beyond
	// the first): nil keeps the SDK's 50 ms, meant for activities whose
	// load shows only after they start; at most 20 a second, where the loan
	// workflow's local activities are short Postgres writes.
	RampThrottle *time.Duration
}

// slots is the number of slots of one kind, or the most issued: n, or the
// SDK's default for the tuner.
func (s LoanSlots) slots(n, resourceDefault int) int {
	switch {
	case n > 0:
		return n
	case s.Tuner == TunerResource:
		return resourceDefault
	default:
		return sdkFixedSlots
	}
}

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
	// and for activity tasks (LOANFLOW_POLLERS, -pollers), or 0 (the
	// default, "auto") for the SDK's poller autoscaling: each worker starts
	// 5 pollers per kind of task and scales them between 1 and 100 on the
	// server's feedback (tasks waiting or not), so a backlog is fetched with
	// more pollers and an idle queue holds few polls open. A worker starved
	// of CPU fetches tasks faster with more.
	Pollers int
	// AgencyPrefetch is the agency workers' slots beyond their call limit,
	// as a fraction of it (LOANFLOW_AGENCY_PREFETCH, -agency-prefetch; 0 to
	// 1): the pollers fetch the next tasks while the limit's calls run,
	// and each call still waits in the worker for a call slot, so the limit
	// bounds the calls at the agency either way. nil keeps
	// flowcontrol.DefaultPrefetch (0.25); 0 issues slots up to the limit
	// only.
	AgencyPrefetch *float64
	// StickyCacheSize is the process's sticky workflow cache, in workflows
	// (LOANFLOW_STICKY_CACHE_SIZE, -sticky-cache-size): nil keeps the SDK's
	// (10,000); 0 turns sticky execution off, so every workflow task replays
	// the workflow's history. Every worker of the process shares the cache.
	StickyCacheSize *int
	// LoanSlots are the slot suppliers of the loan queue's worker
	// (LOANFLOW_LOAN_TUNER and the variables after it).
	LoanSlots LoanSlots
	// PostgresMaxConns is the Postgres pool's size (LOANFLOW_PG_MAX_CONNS,
	// -pg-max-conns); 0: pool_max_conns of DATABASE_URL, or else the loan
	// worker's local-activity and activity slots plus one (the controller's
	// writes), at most 16 (see PostgresPoolSize).
	PostgresMaxConns int
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
	tuning := make(map[string]*string, len(tuningSettings))
	for _, ts := range tuningSettings {
		tuning[ts.flag] = fs.String(ts.flag, "", ts.usage+"; "+ts.accepted+" (overrides "+ts.env+")")
	}
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
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return Config{}, fmt.Errorf("invalid -log-level %q: accepted debug, info, warn or error", *logLevel)
	}
	cfg, err := FromEnv(false)
	if err != nil {
		return cfg, err
	}
	// The tuning flags given win over their variables.
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if v, ok := tuning[f.Name]; ok {
			given[f.Name] = *v
		}
	})
	if len(given) > 0 {
		if err := cfg.readTuning(fromFlags(given, fromEnv)); err != nil {
			return cfg, err
		}
	}
	if cfg.Temporal.Address == "" {
		cfg.Temporal.Address = config.DefaultTemporalAddress
	}
	if len(cfg.AgencyURLs) == 0 {
		return cfg, fmt.Errorf("no agency URLs: set %s (or AGENCY_KCB_URL, AGENCY_NICE_URL, AGENCY_MYDATA_URL, AGENCY_SCRAPING_URL); the simulated agencies run with `go run ./dev/cmd/loanflow-dev`", EnvAgencyBaseURL)
	}
	cfg.LogLevel, cfg.MetricsAddr = level, *metricsAddr
	return cfg, nil
}

// FromEnv reads every environment variable a worker uses: DATABASE_URL,
// REDIS_URL, the agency URLs (AGENCY_BASE_URL, or AGENCY_<NAME>_URL per
// agency), LOANFLOW_AGENCY_ALLOW_HTTP, LOANFLOW_AGENCY_CONCURRENCY,
// LOANFLOW_AGENCY_MAX_CONCURRENCY, LOANFLOW_AGENCIES_FILE, LOANFLOW_REDIS_PREFIX,
// LOANFLOW_DEFAULT_EXPOSURE_LIMIT, the workers' tuning (tuningSettings), the Temporal client settings (envconfig:
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
	if err := cfg.readTuning(fromEnv); err != nil {
		return cfg, err
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

// tuningSetting is one of the workers' tuning settings: its variable, the
// worker's flag that overrides it, what it accepts, and how a value is read
// into a Config (false: not accepted).
type tuningSetting struct {
	env, flag, accepted, usage string
	set                        func(cfg *Config, v string) bool
}

// tuningSettings are read by FromEnv from the environment, and by Load from
// its flags too.
var tuningSettings = []tuningSetting{
	{EnvStickyCacheSize, "sticky-cache-size", "a whole number from 0 (no sticky execution) to 1000000",
		"workflows in the process's sticky cache (unset: the SDK's 10000)",
		func(cfg *Config, v string) bool {
			n, ok := intIn(v, 0, maxStickyCacheSize)
			cfg.StickyCacheSize = &n
			return ok
		}},
	{EnvLoanTuner, "loan-tuner", "fixed or resource", "slot tuner of the loan queue's worker (unset: fixed)",
		func(cfg *Config, v string) bool {
			cfg.LoanSlots.Tuner = v
			return v == TunerFixed || v == TunerResource
		}},
	slotsSetting(EnvLoanWorkflowSlots, "loan-workflow-slots", "workflow-task", func(ls *LoanSlots) *int { return &ls.Workflow }),
	slotsSetting(EnvLoanActivitySlots, "loan-activity-slots", "activity", func(ls *LoanSlots) *int { return &ls.Activity }),
	slotsSetting(EnvLoanLocalActivitySlots, "loan-local-activity-slots", "local-activity", func(ls *LoanSlots) *int { return &ls.LocalActivity }),
	{EnvLoanTargetCPU, "loan-target-cpu", "a fraction above 0 and at most 1",
		"CPU use the resource tuner aims at (unset: the SDK's 0.9)",
		func(cfg *Config, v string) (ok bool) { cfg.LoanSlots.TargetCPU, ok = fraction(v); return ok }},
	{EnvLoanTargetMem, "loan-target-mem", "a fraction above 0 and at most 1",
		"memory use the resource tuner aims at (unset: the SDK's 0.8)",
		func(cfg *Config, v string) (ok bool) { cfg.LoanSlots.TargetMem, ok = fraction(v); return ok }},
	{EnvLoanRampThrottle, "loan-ramp-throttle", "a duration from 0s to 10s, such as 5ms",
		"pause of the resource tuner between two activity or local-activity slots (unset: the SDK's 50ms)",
		func(cfg *Config, v string) bool {
			d, err := time.ParseDuration(v)
			cfg.LoanSlots.RampThrottle = &d
			return err == nil && d >= 0 && d <= maxRampThrottle
		}},
	{EnvPollers, "pollers", "auto (or 0), or a whole number from 1 to 64",
		"pollers per worker for workflow tasks and for activity tasks, or auto to let each worker scale its pollers on the server's feedback (unset: auto)",
		func(cfg *Config, v string) (ok bool) {
			if v == "auto" {
				cfg.Pollers = 0
				return true
			}
			cfg.Pollers, ok = intIn(v, 0, maxPollers)
			return ok
		}},
	{EnvAgencyPrefetch, "agency-prefetch", "a fraction from 0 to 1",
		"agency workers' slots beyond their call limit, as a fraction of it, so tasks are fetched while the calls run (unset: 0.25)",
		func(cfg *Config, v string) bool {
			f, err := strconv.ParseFloat(v, 64)
			cfg.AgencyPrefetch = &f
			return err == nil && f >= 0 && f <= 1
		}},
	{EnvPostgresMaxConns, "pg-max-conns", "a whole number from 1 to 1000",
		"connections in the Postgres pool (unset: pool_max_conns of DATABASE_URL, else the loan worker's local-activity and activity slots plus one, at most 16)",
		func(cfg *Config, v string) (ok bool) {
			cfg.PostgresMaxConns, ok = intIn(v, 1, maxPostgresConns)
			return ok
		}},
}

// slotsSetting is the setting of one kind of the loan worker's slots.
func slotsSetting(env, flag, kind string, field func(*LoanSlots) *int) tuningSetting {
	return tuningSetting{env, flag, "a whole number from 1 to 10000",
		kind + " slots of the loan queue's worker, the most with the resource tuner (unset: the SDK's)",
		func(cfg *Config, v string) (ok bool) {
			*field(&cfg.LoanSlots), ok = intIn(v, 1, maxLoanSlots)
			return ok
		}}
}

func intIn(v string, lo, hi int) (int, bool) {
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= lo && n <= hi
}

func fraction(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil && f > 0 && f <= 1
}

// readTuning reads the tuning settings into cfg, each from what lookup
// finds for its variable and flag (an empty value leaves the setting as it
// is), and checks them; label names the source in errors
// ("LOANFLOW_PG_MAX_CONNS=" or "-pg-max-conns ").
func (cfg *Config) readTuning(lookup func(ts tuningSetting) (label, value string)) error {
	labels := make(map[string]string, len(tuningSettings))
	for _, ts := range tuningSettings {
		label, v := lookup(ts)
		if label == "" {
			label = envLabel(ts.env)
		}
		labels[ts.env] = label
		if v != "" && !ts.set(cfg, v) {
			return fmt.Errorf("%s%q: accepted %s", label, v, ts.accepted)
		}
	}
	return cfg.validateTuning(func(env string) string { return labels[env] })
}

// fromEnv reads a tuning setting from its variable.
func fromEnv(ts tuningSetting) (string, string) { return envLabel(ts.env), os.Getenv(ts.env) }

// fromFlags reads a tuning setting from flags (by flag name) when given
// there, otherwise with orElse.
func fromFlags(flags map[string]string, orElse func(tuningSetting) (string, string)) func(tuningSetting) (string, string) {
	return func(ts tuningSetting) (string, string) {
		if v, ok := flags[ts.flag]; ok {
			return "-" + ts.flag + " ", v
		}
		return orElse(ts)
	}
}

// SetTuningFlags sets tuning settings given by the worker's flag names
// (without the dash: "sticky-cache-size", "loan-tuner",
// "loan-workflow-slots", "loan-activity-slots", "loan-local-activity-slots",
// "loan-target-cpu", "loan-target-mem", "loan-ramp-throttle", "pg-max-conns"), with the worker's
// checks and messages; the settings not named keep their values. For
// commands that build a Config in code, such as the benchmarks.
func (cfg *Config) SetTuningFlags(flags map[string]string) error {
	for name := range flags {
		if !slices.ContainsFunc(tuningSettings, func(ts tuningSetting) bool { return ts.flag == name }) {
			names := make([]string, len(tuningSettings))
			for i, ts := range tuningSettings {
				names[i] = ts.flag
			}
			return fmt.Errorf("tuning setting %q: accepted %s", name, strings.Join(names, ", "))
		}
	}
	return cfg.readTuning(fromFlags(flags, func(ts tuningSetting) (string, string) { return "-" + ts.flag + " ", "" }))
}

// envLabel names a setting by its variable, as in "LOANFLOW_PG_MAX_CONNS=".
func envLabel(env string) string { return env + "=" }

// validateTuning checks the tuning settings however they were set (a
// Config built in code too); label names a setting in an error, by its
// variable or its flag.
func (cfg Config) validateTuning(label func(env string) string) error {
	if n := cfg.StickyCacheSize; n != nil && (*n < 0 || *n > maxStickyCacheSize) {
		return fmt.Errorf("%s%d: accepted a whole number from 0 (no sticky execution) to %d", label(EnvStickyCacheSize), *n, maxStickyCacheSize)
	}
	if f := cfg.AgencyPrefetch; f != nil && !(*f >= 0 && *f <= 1) {
		return fmt.Errorf("%s%v: accepted a fraction from 0 to 1", label(EnvAgencyPrefetch), *f)
	}
	ls := cfg.LoanSlots
	switch ls.Tuner {
	case "", TunerFixed, TunerResource:
	default:
		return fmt.Errorf("%s%q: accepted %s or %s", label(EnvLoanTuner), ls.Tuner, TunerFixed, TunerResource)
	}
	for _, s := range []struct {
		env string
		n   int
	}{{EnvLoanWorkflowSlots, ls.Workflow}, {EnvLoanActivitySlots, ls.Activity}, {EnvLoanLocalActivitySlots, ls.LocalActivity}} {
		if s.n < 0 || s.n > maxLoanSlots {
			return fmt.Errorf("%s%d: accepted a whole number from 1 to %d (0 in code: the SDK's)", label(s.env), s.n, maxLoanSlots)
		}
	}
	for _, t := range []struct {
		env string
		f   float64
	}{{EnvLoanTargetCPU, ls.TargetCPU}, {EnvLoanTargetMem, ls.TargetMem}} {
		switch {
		case t.f < 0 || t.f > 1 || t.f != t.f:
			return fmt.Errorf("%s%v: accepted a fraction above 0 and at most 1", label(t.env), t.f)
		case t.f != 0 && ls.Tuner != TunerResource:
			return fmt.Errorf("%s%v: a target is accepted only with %s%s (the tuner is %q)", label(t.env), t.f, label(EnvLoanTuner), TunerResource, cmp.Or(ls.Tuner, TunerFixed))
		}
	}
	if d := ls.RampThrottle; d != nil {
		switch {
		case *d < 0 || *d > maxRampThrottle:
			return fmt.Errorf("%s%s: accepted a duration from 0s to %s", label(EnvLoanRampThrottle), *d, maxRampThrottle)
		case ls.Tuner != TunerResource:
			return fmt.Errorf("%s%s: accepted only with %s%s (the tuner is %q)", label(EnvLoanRampThrottle), *d, label(EnvLoanTuner), TunerResource, cmp.Or(ls.Tuner, TunerFixed))
		}
	}
	if n := cfg.PostgresMaxConns; n < 0 || n > maxPostgresConns {
		return fmt.Errorf("%s%d: accepted a whole number from 1 to %d (0 in code: the default)", label(EnvPostgresMaxConns), n, maxPostgresConns)
	}
	if cfg.PostgresMaxConns > 0 && store.HasPoolSize(cfg.DatabaseURL) {
		return fmt.Errorf("%s%d: DATABASE_URL sets pool_max_conns too; accepted one of the two", label(EnvPostgresMaxConns), cfg.PostgresMaxConns)
	}
	return nil
}

// PostgresPoolSize is the size of the Postgres pool and what set it. The
// Postgres writes run in the loan worker's local activities (the
// application, the outcome) and activities (disbursement), plus the
// controller's breaker events: a connection more than those slots can hold
// at once is never used, and one fewer makes a write wait for a connection
// while it holds its slot. So by default the pool has those slots plus one,
// at most store.DefaultMaxConns. 0 means pool_max_conns of DATABASE_URL.
func (cfg Config) PostgresPoolSize() (int, string) {
	switch {
	case cfg.PostgresMaxConns > 0:
		return cfg.PostgresMaxConns, EnvPostgresMaxConns
	case store.HasPoolSize(cfg.DatabaseURL):
		return 0, "pool_max_conns of DATABASE_URL"
	}
	ls := cfg.LoanSlots
	slots := ls.slots(ls.LocalActivity, sdkResourceActivitySlots) + ls.slots(ls.Activity, sdkResourceActivitySlots) + 1
	if slots < store.DefaultMaxConns {
		return slots, "the loan worker's local-activity and activity slots plus one"
	}
	return store.DefaultMaxConns, "the default"
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
	if err := cfg.validateTuning(envLabel); err != nil {
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
