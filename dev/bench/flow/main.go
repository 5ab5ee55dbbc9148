// Command flow benchmarks loanflow's adaptive flow control on the real
// stack: embedded Temporal (no UI), real Redis and a simulated agency over
// HTTP with a known capacity C and median service time. Each application is a
// workflow making K credit-score calls in sequence (-calls-per-app, each
// scale's own: 1 at small, 8 at large) through an activity on the agency's
// task queue, with the same client timeout and retry policy for every
// strategy; the offered load is in calls/s and applications start at it ÷ K. Strategies, run one after another on identical scenarios, each on
// a fresh agency and a task queue of its own:
//
//   - unbounded: worker slots effectively unlimited, as the old asynchronous
//     design fired every call at once;
//   - fixed-C and fixed-4C: fixed pools sized for normal load and large;
//   - failsafe-go: failsafe-go's adaptivelimiter per worker, tuned for the
//     scale with its documented options (tunedPeer), its limit copied to
//     the worker's slots so calls beyond it wait in the task queue;
//     failsafe-go-default, on request, is the limiter on its defaults
//     around the call, rejecting what exceeds it;
//   - loanflow: the real FlowControllerWorkflow writing limits to Redis, and
//     the worker's flowcontrol.SlotSupplier following them through
//     flowcontrol.Membership, with the callstats interceptor measuring calls;
//   - oracle: a fixed pool always sized to the agency's true capacity,
//     following each step the instant it happens.
//
// It runs one or more scales (-scales small,large by default, each a
// section of the report with its own targets), after checks of whether the
// embedded Temporal carries each scale's capacity rate and highest offered
// load, in calls/s made by applications of its K calls (-ceiling).
// Scenarios (each scale's duration, after a warm-up at half the nominal
// load): a 3× surge; capacity halved for the middle third under 2× load;
// service time doubled from one third under 2× load; and an incident of
// issue 13's shape (the small scale's default): 4× load, capacity to 3/8
// and service time ×3 for the middle third, so that the backlog outlives
// the calls' 30 s budget, then recovery, with loanflow and failsafe-go on
// two worker processes. As the loan workflow does, an application whose
// call's budget ended in the queue (timed out there, or refused by
// admission as expired) schedules it again with a fresh budget, at most 20
// times per call. -workers runs loanflow and failsafe-go on that many worker
// processes in every scenario. Besides the summary it prints a table per
// phase (from 5 s after each step): goodput ÷
// the oracle's in the same phase, agency errors, convergence; a phase whose
// service time exceeds the client's timeout is marked, not scored (no
// strategy serves it: the breakers' case). -rounds N runs it all N times,
// round after round, and adds each phase's median and range over the
// rounds. -trace prints each run's limit once a second. It writes
// docs/bench-flow.md
// (the table and the method) and one SVG chart per scenario, and prints the
// table. Redis keys live under a random prefix, deleted at the end.
//
//	go run ./dev/bench/flow -quick
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc"

	"loanflow/activities"
	"loanflow/breaker"
	"loanflow/callstats"
	"loanflow/codec"
	lfconfig "loanflow/config"
	"loanflow/dev/devstack"
	"loanflow/internal/rediskeys"
	"loanflow/workflows"
)

type config struct {
	duration, warmup, drain    time.Duration
	serviceTime, clientTimeout time.Duration
	sampleEvery                time.Duration
	capacity, initialLimit     int
	callsPerApp                int // K: agency calls per application
	workers                    int
	workersSet                 bool // -workers given: it overrides each scenario's own
	trace                      bool
	probe                      float64
	ceiling                    time.Duration // the Temporal ceiling check's length; 0 skips it
	minSamples                 int64
	prefetch                   float64
	// source names the code measured: the checkout's commit, and whether
	// it had uncommitted changes (see checkoutSource).
	source string
	// pollers is the agency workers' activity-task pollers: a fixed
	// count, or 0 for the SDK's poller autoscaling (-pollers).
	pollers int
	// rounds: each scenario and strategy runs this many times, round
	// after round (-rounds).
	rounds                int
	scenarios, strategies []string
	out, redisURL         string
	// cpuProfiles, when set, is the folder each run's CPU profile over
	// its measured window is written to (-cpuprofile).
	cpuProfiles string
	// scale and targets: the scale being run and its per-phase targets.
	scale   string
	targets targets
}

type redisClient = redis.UniversalClient

func main() {
	c := config{pollers: defaultPollers}
	var scen, strat, scalesFlag string
	var quick bool
	var probe float64
	flag.StringVar(&scalesFlag, "scales", "small,large", "agency scales, comma-separated, each a section of the report: small (C=4 × 600ms, 1 call per application), large (C=20 × 300ms, 8 calls per application) or C×median service time as 20x300ms")
	flag.DurationVar(&c.duration, "duration", 60*time.Second, "measured length of each scenario (default: each scale's own)")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "warm-up at half the nominal load before each measured part")
	flag.DurationVar(&c.drain, "drain", 10*time.Second, "how long a run's leftover applications may take to drain before they are terminated")
	flag.IntVar(&c.callsPerApp, "calls-per-app", 0, fmt.Sprintf("K, the agency calls each application makes in sequence, 1 to %d, for every scale; the offered load stays in calls/s and applications start at it ÷ K (default: each scale's own; for a custom one, the fewest that start at most %d applications/s at its scenarios' highest offered load, what the embedded Temporal carries on 2 cores)", maxCallsPerApp, maxAppRate))
	flag.IntVar(&c.capacity, "capacity", 4, "the agency's capacity C, calls in service at once; with -service-time, replaces -scales by this one scale")
	flag.Int64Var(&c.minSamples, "min-samples", 5, "the controller's MinSamples: successful calls a period needs before its latency is trusted")
	flag.DurationVar(&c.serviceTime, "service-time", 600*time.Millisecond, "the agency's median service time; with -capacity, replaces -scales by this one scale")
	flag.DurationVar(&c.clientTimeout, "client-timeout", 2*time.Second, "the agency client's timeout per call (default: each scale's own; for a custom one 10/3 × its median service time, the presets' ratio, to 100 ms; 2s for -probe)")
	flag.Float64Var(&c.prefetch, "prefetch", 0.25, "permits each worker's pool issues beyond its limit, as a fraction of it, so tasks are fetched while its calls run; the limit still bounds the calls at the agency (0: permits are the limit)")
	flag.Func("pollers", "the agency workers' activity-task pollers: a count from 1 to 64, or auto for the SDK's poller autoscaling, which adds pollers while the server has tasks waiting, as the production workers do (default auto)", func(v string) error {
		n, err := parsePollers(v)
		c.pollers = n
		return err
	})
	flag.IntVar(&c.initialLimit, "initial-limit", 0, "the controller's initial limit (default C)")
	flag.BoolVar(&c.trace, "trace", false, "print each run's limit, requests at the agency and capacity once a second to stderr, and loanflow's controller decisions with the observation each read")
	flag.IntVar(&c.workers, "workers", 1, "worker processes for loanflow and failsafe-go (loanflow's share one limit, failsafe-go's each limit their own calls); default 1, 2 in the incident")
	flag.DurationVar(&c.sampleEvery, "sample", 200*time.Millisecond, "sampling period of the charts and convergence")
	flag.StringVar(&scen, "scenarios", "", "scenarios to run, comma-separated: "+strings.Join(scenarioNames(), ", ")+" (default: each scale's own)")
	flag.StringVar(&strat, "strategies", strings.Join(defaultStrategies, ","), "strategies to run, comma-separated (also: "+stPeerDefault+", failsafe-go on its defaults)")
	flag.StringVar(&c.out, "out", "docs/", "folder for bench-flow.md and the charts; empty writes nothing")
	flag.StringVar(&c.redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL")
	flag.IntVar(&c.rounds, "rounds", 1, fmt.Sprintf("run every scenario and strategy this many times, 1 to %d, round after round, every other round running the strategies in reverse order; the summary, the per-phase table and the charts are the first round's, and a table gives each phase's median and range over the rounds, the oracle's errors and convergence included (one run of the real stack scatters by up to ±0.3 × the oracle)", maxRounds))
	flag.StringVar(&c.cpuProfiles, "cpuprofile", "", "write each run's CPU profile over its measured window to this folder, one file per run named after it (e.g. r02-surge-loanflow.pprof), to compare strategies with go tool pprof -diff_base")
	flag.BoolVar(&quick, "quick", false, "smoke check: 15s scenarios, 2s warm-up, 5s drain")
	flag.DurationVar(&c.ceiling, "ceiling", 10*time.Second, "before the scales, offer each scale's capacity rate and its highest offered load (calls/s, in applications of its K calls), unbounded, to an agency that is never busy for this long each and report whether Temporal carried them; 0 skips")
	flag.Float64Var(&probe, "probe", 0, "measure the Temporal ceiling instead: offer this many calls/s (applications of -calls-per-app calls), unbounded, to an agency that is never busy, and report start→call latency")
	flag.Parse()
	c.source = checkoutSource(".")
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })

	scales, err := scalesOf(c, set, scalesFlag, scen, probe)
	if err == nil {
		err = checkRounds(c.rounds)
	}
	if err == nil && quick {
		c.warmup, c.drain, c.ceiling = 2*time.Second, 5*time.Second, min(c.ceiling, 5*time.Second)
		for i := range scales {
			scales[i].duration, scales[i].durations = 15*time.Second, nil
		}
	}
	c.workersSet = set["workers"]
	c.strategies = split(strat)
	c.probe = probe
	if probe > 0 {
		c.out, c.strategies = "", []string{stUnbounded}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err == nil {
		err = run(ctx, c, scales)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench flow:", err)
		os.Exit(1)
	}
}

// scalesOf turns the flags into the scales to run: -scales, or the one
// scale -capacity and -service-time describe; -client-timeout,
// -calls-per-app, -duration and -scenarios, when given, apply to every
// scale.
func scalesOf(c config, set map[string]bool, scalesFlag, scen string, probe float64) ([]scale, error) {
	k := 1
	if set["calls-per-app"] {
		if err := checkCallsPerApp("-calls-per-app", c.callsPerApp); err != nil {
			return nil, err
		}
		k = c.callsPerApp
	}
	custom := scale{name: "custom", capacity: c.capacity, serviceTime: c.serviceTime, clientTimeout: timeoutFor(c.serviceTime),
		callsPerApp: k, autoCalls: !set["calls-per-app"], duration: c.duration, scenarios: []string{"surge", "capacity", "slowdown"}, targets: targetsSmall}
	var scales []scale
	switch {
	case probe > 0:
		// An agency that never queues: the latency is Temporal's.
		scales = []scale{{name: "probe", capacity: 10000, serviceTime: 10 * time.Millisecond, clientTimeout: c.clientTimeout,
			callsPerApp: k, duration: c.duration, scenarios: []string{"probe"}, targets: targetsSmall}}
	case set["capacity"] || set["service-time"]:
		if set["scales"] {
			return nil, fmt.Errorf("invalid flags: -scales %q with -capacity or -service-time: accepted one or the other", scalesFlag)
		}
		scales = []scale{custom}
	default:
		var err error
		if scales, err = parseScales(scalesFlag, custom); err != nil {
			return nil, err
		}
	}
	for i := range scales {
		if set["client-timeout"] {
			scales[i].clientTimeout = c.clientTimeout
		}
		if set["calls-per-app"] {
			scales[i].callsPerApp, scales[i].autoCalls = k, false
		}
		if set["duration"] {
			scales[i].duration, scales[i].durations = c.duration, nil
		}
		if scen != "" && probe == 0 {
			scales[i].scenarios = split(scen)
		}
	}
	return scales, nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// scaleRun is one scale's configuration, scenarios and results.
type scaleRun struct {
	scale   scale
	cfg     config // the scale's; duration is each scenario's own (scenario.d)
	scs     []scenario
	results []result
	// rounds holds every round's results, the first being results.
	rounds [][]result
}

// runOrder is the order round runs the strategies in: as given in even
// rounds (the first, whose results the summary and charts show, among
// them), reversed in odd ones.
func runOrder(strategies []string, round int) []string {
	order := slices.Clone(strategies)
	if round%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

// maxRounds bounds -rounds: each round is a whole scale's runs again.
const maxRounds = 10

// checkRounds refuses a -rounds outside 1 to maxRounds.
func checkRounds(n int) error {
	if n < 1 || n > maxRounds {
		return fmt.Errorf("invalid -rounds: %d: accepted 1 to %d", n, maxRounds)
	}
	return nil
}

// runOverhead is about what a run takes besides its warm-up and measured
// part (draining, terminating leftovers, the server settling, teardown) on
// a quiet machine: the committed 18-run report took 15m5s for 45 s runs.
// On a loaded one it is up to a minute and more.
const runOverhead = 6 * time.Second

func run(ctx context.Context, c config, scales []scale) error {
	var runs []*scaleRun
	var estimate time.Duration
	nruns := 0
	for _, s := range scales {
		cfg := c
		cfg.scale, cfg.targets = s.name, s.targets
		cfg.capacity, cfg.serviceTime, cfg.clientTimeout = s.capacity, s.serviceTime, s.clientTimeout
		cfg.duration, cfg.callsPerApp = s.duration, s.callsPerApp
		if err := checkCallsPerApp("scale "+s.name+": calls per application", s.callsPerApp); err != nil {
			return err
		}
		if cfg.initialLimit <= 0 {
			cfg.initialLimit = s.capacity
		}
		cfg.scenarios = s.scenarios
		sr := &scaleRun{scale: s, cfg: cfg}
		for _, name := range s.scenarios {
			d := s.durationOf(name)
			if s.capacity < 1 || s.serviceTime <= 0 || d < 3*time.Second || s.clientTimeout <= 0 {
				return fmt.Errorf("invalid flags: scale %s: capacity %d, service time %s, duration %s, client timeout %s: accepted a capacity of 1 or more, positive times and a duration of at least 3s",
					s.name, s.capacity, s.serviceTime, d, s.clientTimeout)
			}
			sc, ok := scenarioOf(name, d, cfg)
			if !ok {
				return fmt.Errorf("invalid -scenarios: %q: accepted %s", name, strings.Join(scenarioNames(), ", "))
			}
			sr.scs = append(sr.scs, sc)
			nruns += len(c.strategies)
			estimate += time.Duration(len(c.strategies)) * (c.warmup + d + runOverhead)
		}
		if s.autoCalls {
			peak, _ := peakOffered(s, sr.scs)
			k := callsFor(max(peak, s.nominal()))
			sr.scale.callsPerApp, sr.cfg.callsPerApp = k, k
		}
		runs = append(runs, sr)
	}
	c.rounds = max(c.rounds, 1)
	nruns *= c.rounds
	estimate *= time.Duration(c.rounds)
	for _, s := range c.strategies {
		if !slices.Contains(allStrategies, s) {
			return fmt.Errorf("invalid -strategies: %q: accepted %s", s, strings.Join(allStrategies, ", "))
		}
	}
	if nruns == 0 {
		return errNoRuns
	}
	var checks []ceilingCheck
	if c.probe > 0 || c.ceiling < time.Second {
		c.ceiling = 0
	} else {
		checks = ceilingChecks(runs)
		estimate += time.Duration(len(checks)) * (c.warmup + c.ceiling + runOverhead)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	quiet := slog.New(slog.DiscardHandler)

	ropts, err := redis.ParseURL(c.redisURL)
	if err != nil {
		return fmt.Errorf("-redis-url %s: %w", lfconfig.RedactURL(c.redisURL), lfconfig.RedactError(err, c.redisURL))
	}
	rdb := redis.NewClient(ropts)
	defer func() { _ = rdb.Close() }()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("connect to redis (set -redis-url or REDIS_URL): %w", err)
	}
	prefix := "loanflow-bench-flow-" + randomHex() + ":"
	defer deleteKeys(rdb, prefix, logger)
	stats, err := callstats.NewRecorder(rdb, callstats.RecorderOptions{Prefix: prefix, Logger: quiet})
	if err != nil {
		return err
	}

	t0 := time.Now()
	stack, err := devstack.Start(ctx, devstack.Options{UIPort: -1})
	if err != nil {
		return fmt.Errorf("start embedded temporal: %w", err)
	}
	defer stack.Stop()
	logger.Info("embedded temporal started", "address", stack.Address, "took", time.Since(t0).Round(time.Millisecond))
	// Encrypted like production, so the benchmark pays the codec's cost too.
	cdc, err := codec.Ephemeral()
	if err != nil {
		return err
	}
	tc, err := client.Dial(client.Options{
		HostPort: stack.Address, Namespace: stack.Namespace, Logger: tlog.NewStructuredLogger(quiet),
		DataConverter: cdc.DataConverter(), FailureConverter: cdc.FailureConverter(),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(stats.PollInterceptor())}},
	})
	if err != nil {
		return fmt.Errorf("connect to embedded temporal: %w", err)
	}
	defer tc.Close()

	b := &bench{cfg: c, tc: tc, stats: stats, membRDB: rdb, finisher: &finisher{}, prefix: prefix, namespace: stack.Namespace}
	w := worker.New(tc, benchQueue, worker.Options{
		MaxConcurrentWorkflowTaskPollers: 8, MaxConcurrentWorkflowTaskExecutionSize: 1000,
		MaxConcurrentLocalActivityExecutionSize: 1000,
	})
	w.RegisterWorkflow(ApplicationWorkflow)
	w.RegisterActivity(b.finisher)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the application worker: %w", err)
	}
	defer w.Stop()
	cw := worker.New(tc, workflows.ControllerTaskQueue, worker.Options{})
	cw.RegisterWorkflow(workflows.FlowControllerWorkflow)
	// The controller publishes its breakers too; the benchmark routes nothing by them.
	cw.RegisterActivity(&activities.ControllerActivities{Stats: stats, Redis: rdb, Prefix: prefix, Breakers: breaker.NewStore(rdb, prefix)})
	if err := cw.Start(); err != nil {
		return fmt.Errorf("start the controller worker: %w", err)
	}
	defer cw.Stop()

	logger.Info("benchmark", "scales", len(runs), "runs", nruns,
		"estimated_total", fmt.Sprintf("%.0f min (each run: warm-up + measured + about %s)", estimate.Minutes(), runOverhead))
	for i := range checks {
		x := &checks[i]
		pc := c
		pc.scale, pc.capacity, pc.serviceTime, pc.probe, pc.callsPerApp = "ceiling", 10000, 10*time.Millisecond, x.offered, x.k
		sc, _ := scenarioOf("probe", c.ceiling, pc)
		b.cfg = pc
		r, err := b.runOne(ctx, sc, stUnbounded)
		if err != nil {
			return fmt.Errorf("temporal ceiling check (%s): %w", x.of, err)
		}
		x.r, x.load = r, loadAverage()
		logger.Info("temporal ceiling check", "scale", x.scale, "of", x.of, "offered", fmt.Sprintf("%.1f calls/s", x.offered),
			"calls_per_app", x.k, "applications", fmt.Sprintf("%.1f/s", x.offered/float64(x.k)),
			"asked", fmt.Sprintf("%.1f calls/s", x.asked()), "answered", fmt.Sprintf("%.1f calls/s", r.goodput()), "start_to_call_p50", r.apps.firstP50.Round(time.Millisecond),
			"start_to_call_p99", r.apps.firstP99.Round(time.Millisecond), "app_p99", r.apps.p99.Round(time.Millisecond),
			"carried", x.carried(), "cpu_per_call", r.cpuPerCall().Round(100*time.Microsecond),
			"cpu_per_app", r.cpuPerApp().Round(100*time.Microsecond), "load", x.load, "note", r.limiterNote)
	}
	for _, sr := range runs {
		c := sr.cfg
		b.cfg = c
		logger.Info("scale", "scale", c.scale, "capacity", c.capacity, "service_time", c.serviceTime,
			"nominal_rate", sr.scale.nominal(), "client_timeout", c.clientTimeout, "calls_per_app", c.callsPerApp,
			"runs", c.rounds*len(sr.scs)*len(c.strategies))
		// Round after round, each a whole pass over the scenarios and
		// strategies, so that the machine's drift falls on every
		// strategy alike. Every other round runs the strategies in
		// reverse: a run right after another pays for its leftovers (the
		// drain's terminations, a busier Temporal), which measured up to
		// 1.3× in the goodput of two strategies swapped. Each round's
		// results keep the strategies' order.
		sr.rounds = make([][]result, c.rounds)
		for round := range c.rounds {
			for _, sc := range sr.scs {
				done := make(map[string]result, len(c.strategies))
				for _, st := range runOrder(c.strategies, round) {
					r, err := b.runOne(ctx, sc, st)
					if err != nil {
						return fmt.Errorf("scale %s, round %d, scenario %s, strategy %s: %w", c.scale, round+1, sc.name, st, err)
					}
					logger.Info("run done", "scale", c.scale, "round", round+1, "scenario", sc.name, "strategy", st, "goodput", fmt.Sprintf("%.1f/s", r.goodput()),
						"calls_asked", fmt.Sprintf("%.1f/s", float64(r.apps.started*r.callsPerApp)/r.window.Seconds()), "app_p99", r.apps.p99.Round(time.Millisecond),
						"of_capacity", fmt.Sprintf("%.2f", r.goodput()/r.trueRate), "agency_errors", fmt.Sprintf("%.1f%%", 100*r.errorRate()),
						"app_p50", r.apps.p50.Round(time.Millisecond), "start_to_call_p50", r.apps.firstP50.Round(time.Millisecond),
						"start_to_call_p99", r.apps.firstP99.Round(time.Millisecond), "expired_refusals", r.expired,
						"cpu_per_app", r.cpuPerApp().Round(100*time.Microsecond), "cpu_per_call", r.cpuPerCall().Round(100*time.Microsecond),
						"load", loadAverage(), "note", r.limiterNote)
					if c.trace {
						printTrace(os.Stderr, r, c.sampleEvery)
					}
					done[st] = r
				}
				for _, st := range c.strategies {
					sr.rounds[round] = append(sr.rounds[round], done[st])
				}
			}
		}
		sr.results = sr.rounds[0]
		fmt.Printf("\nscale %s: C=%d, median service time %s (%.1f calls/s nominal)\n\n", c.scale, c.capacity, c.serviceTime, sr.scale.nominal())
		fmt.Print(markdownTable(sr.results))
		fmt.Print("\nper phase:\n\n" + targetsLine(c.targets) + phaseTable(sr.results, c.targets))
		if len(sr.rounds) > 1 {
			fmt.Printf("\nper phase over %d rounds:\n\n%s", len(sr.rounds), roundsTable(sr.rounds, c.targets))
			fmt.Printf("\napplications over the rounds (those that ended in each round's window):\n\n%s", appsRoundsTable(sr.rounds))
		}
		if c.trace {
			var traces [][]sample
			for _, rs := range sr.rounds {
				for _, r := range rs {
					traces = append(traces, r.trace)
				}
			}
			fmt.Printf("\nloanflow's controller, latency ÷ its baseline by the limit's distance from the agency's true capacity "+
				"(every period of %d calls or more, its limit and the capacity steady, over the rounds and scenarios):\n\n%s",
				baselineMinCalls, baselineText(baselineTable(traces)))
		}
	}
	if c.out == "" {
		return nil
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", c.out, err)
	}
	for _, sr := range runs {
		for _, sc := range sr.scs {
			path := filepath.Join(c.out, chartName(sr.cfg.scale, sc.name))
			if err := writeFile(path, func(w io.Writer) error { return writeChart(w, sc, sr.results, sr.cfg) }); err != nil {
				return err
			}
		}
	}
	return writeFile(filepath.Join(c.out, "bench-flow.md"), func(w io.Writer) error {
		return writeDoc(w, runs, checks, c, time.Since(t0))
	})
}

// ceilingCheck is the embedded Temporal's answer to one rate of calls,
// made by applications of k calls each, every call at once, from an agency
// that never queues.
type ceilingCheck struct {
	scale   string
	kind    string  // ceilingCapacity or ceilingOffered
	of      string  // what the rate is, for the report
	offered float64 // calls/s
	k       int
	r       result
	load    string // the load average after the check
}

// The two checks of a scale.
const (
	// ceilingCapacity is the agency's nominal rate, what a strategy that
	// holds the agency at its capacity dispatches.
	ceilingCapacity = "capacity"
	// ceilingOffered is the highest load the scale's scenarios offer, what
	// a strategy without a bound dispatches.
	ceilingOffered = "offered"
)

// ceilingChecks are the checks of the scales to run: for each, its
// agency's capacity rate and, when higher, its scenarios' highest offered
// load, both in calls/s made by applications of the scale's K calls.
func ceilingChecks(runs []*scaleRun) []ceilingCheck {
	var out []ceilingCheck
	for _, sr := range runs {
		s := sr.scale
		out = append(out, ceilingCheck{scale: s.name, kind: ceilingCapacity, of: s.name + " capacity", offered: s.nominal(), k: s.calls()})
		peak, peakOf := peakOffered(s, sr.scs)
		if peak > s.nominal() {
			out = append(out, ceilingCheck{scale: s.name, kind: ceilingOffered, of: s.name + " " + peakOf + " offered", offered: peak, k: s.calls()})
		}
	}
	return out
}

// peakOffered is the highest load, in calls/s, that the scenarios scs
// offer at scale s, and the scenario that offers it.
func peakOffered(s scale, scs []scenario) (peak float64, of string) {
	for _, sc := range scs {
		if l := sc.load(0) * s.nominal(); l > peak {
			peak, of = l, sc.name
		}
	}
	return peak, of
}

// ceilingTime is how long, at most, each of an application's calls may
// wait for Temporal, on average, for the rate to count as carried.
const ceilingTime = time.Second

// asked is the calls/s the applications started in the window asked for:
// the offered rate, to the rounding of its applications' starts.
func (x ceilingCheck) asked() float64 {
	return float64(x.r.apps.started*max(x.k, 1)) / x.r.window.Seconds()
}

// carried: Temporal answered at least 90% of the calls the applications
// started in the window asked for, the 99th percentile of start→first call
// stayed under ceilingTime, and that of the applications' K calls under
// K × ceilingTime.
func (x ceilingCheck) carried() bool {
	return x.r.goodput() >= 0.9*x.asked() && x.r.apps.firstP99 < ceilingTime &&
		x.r.apps.p99 < time.Duration(max(x.k, 1))*ceilingTime
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

func randomHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// deleteKeys removes every key under the benchmark's prefix.
func deleteKeys(rdb *redis.Client, prefix string, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := rediskeys.DeletePrefix(ctx, rdb, prefix); err != nil {
		logger.Warn("could not delete the benchmark's redis keys", "prefix", prefix, "error", err)
	}
}

// printTrace writes a run's trace once a second: limit, requests present
// at the agency, its true capacity; in the second before: requests the
// agency received and answered 200, attempts that reached a worker and
// those admission refused; each worker's slots (limit/issued/running/calling, the last the calls past the gate) and
// the agency task queue's backlog (count, age of its head, add and
// dispatch rates) and that of the applications' workflow tasks.
func printTrace(w io.Writer, r result, every time.Duration) {
	n := max(1, int(time.Second/every))
	var prev sample
	for i := 0; i < len(r.trace); i += n {
		x := r.trace[i]
		slots := make([]string, len(x.Slots))
		for j, s := range x.Slots {
			slots[j] = fmt.Sprintf("%d/%d/%d/%d", s.Limit, s.InUse, s.Running, s.Calling)
		}
		queue := func(name string, q queueStats) string {
			if q.Err != "" {
				return name + ": " + q.Err
			}
			return fmt.Sprintf("%s=%d age=%.1fs add=%.1f/s dispatch=%.1f/s", name, q.Count, q.Age.Seconds(), q.AddRate, q.DispatchRate)
		}
		backlog := queue("backlog", x.Backlog) + " " + queue("workflow-tasks", x.Workflows)
		decision := ""
		if x.Decision != "" {
			decision = "\n    " + x.Decision
		}
		fmt.Fprintf(w, "%s %s t=%5.1fs limit=%4.1f present=%3d capacity=%4.1f req=%3d ok=%3d attempts=%3d refused=%3d slots=%s %s%s\n",
			r.scenario, r.strategy, x.T.Seconds(), x.Limit, x.Present, x.Capacity,
			x.Requests-prev.Requests, x.OK-prev.OK, x.Attempts-prev.Attempts, x.Expired-prev.Expired,
			strings.Join(slots, ","), backlog, decision)
		prev = x
	}
}

// defaultPollers is the agency workers' activity-task pollers unless
// -pollers says otherwise: 0, the SDK's poller autoscaling, as the
// production workers' default (app.Config.Pollers); maxPollers bounds a
// fixed count.
const (
	defaultPollers = 0
	maxPollers     = 64
)

// parsePollers reads -pollers: a count from 1 to maxPollers, or "auto"
// (returned as 0) for the SDK's poller autoscaling.
func parsePollers(v string) (int, error) {
	if strings.TrimSpace(v) == "auto" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > maxPollers {
		return defaultPollers, fmt.Errorf("invalid -pollers: %q: accepted a count from 1 to %d, or auto", v, maxPollers)
	}
	return n, nil
}

// pollersText says how the agency workers poll, for the report.
func pollersText(n int) string {
	if n == 0 {
		return "the SDK's poller autoscaling (1 to 100 activity-task pollers per worker, 5 at the start)"
	}
	return fmt.Sprintf("%d activity-task pollers per worker", n)
}
