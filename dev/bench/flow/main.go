// Command flow benchmarks loanflow's adaptive flow control on the real
// stack: embedded Temporal (no UI), real Redis and a simulated agency over
// HTTP with a known capacity C and median service time. Each application is a
// workflow making one credit-score call through an activity on the agency's
// task queue, with the same client timeout and retry policy for every
// strategy. Strategies, run one after another on identical scenarios, each on
// a fresh agency and a task queue of its own:
//
//   - unbounded: worker slots effectively unlimited, as the old asynchronous
//     design fired every call at once;
//   - fixed-C and fixed-4C: fixed pools sized for normal load and large;
//   - failsafe-go: failsafe-go's adaptivelimiter on its defaults, per worker,
//     around the agency call (worker slots unlimited);
//   - loanflow: the real FlowControllerWorkflow writing limits to Redis, and
//     the worker's flowcontrol.SlotSupplier following them through
//     flowcontrol.Membership, with the callstats interceptor measuring calls;
//   - oracle: a fixed pool always sized to the agency's true capacity,
//     following each step the instant it happens.
//
// Scenarios (-duration each, after a warm-up at half the nominal load):
// a 3× surge; capacity halved for the middle third under 2× load; service
// time doubled from one third under 2× load; and, on request
// (-scenarios incident), an incident of mixed shape: 4× load, capacity to
// 3/8 and service time ×3 for the middle third, so that the backlog
// outlives the calls' 30 s budget, then recovery. As the loan workflow
// does, an application whose call's budget ended in the queue (timed out
// there, or refused by admission as expired) schedules it again with a
// fresh budget, at most 20 times. -workers runs loanflow's
// strategy on that many worker processes sharing the limit. Besides the
// summary it prints a table per phase (from 5 s after each step): goodput ÷
// the oracle's in the same phase, agency errors, convergence; a phase whose
// service time exceeds the client's timeout is marked, not scored (no
// strategy serves it: the breakers' case). -trace prints each run's limit
// once a second. It writes docs/bench-flow.md
// (the table and the method) and one SVG chart per scenario, and prints the
// table. Redis keys live under a random prefix, deleted at the end.
//
//	go run ./bench/flow -quick
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
	workers                    int
	trace                      bool
	probe                      float64
	minSamples                 int64
	scenarios, strategies      []string
	out, redisURL              string
}

type redisClient = redis.UniversalClient

func main() {
	var c config
	var scen, strat string
	var quick bool
	var probe float64
	flag.DurationVar(&c.duration, "duration", 60*time.Second, "measured length of each scenario")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "warm-up at half the nominal load before each measured part")
	flag.DurationVar(&c.drain, "drain", 10*time.Second, "how long a run's leftover applications may take to drain before they are terminated")
	flag.IntVar(&c.capacity, "capacity", 4, "the agency's capacity C, calls in service at once")
	flag.Int64Var(&c.minSamples, "min-samples", 5, "the controller's MinSamples: successful calls a period needs before its latency is trusted")
	flag.DurationVar(&c.serviceTime, "service-time", 600*time.Millisecond, "the agency's median service time")
	flag.DurationVar(&c.clientTimeout, "client-timeout", 2*time.Second, "the agency client's timeout per call")
	flag.IntVar(&c.initialLimit, "initial-limit", 0, "the controller's initial limit (default C)")
	flag.BoolVar(&c.trace, "trace", false, "print each run's limit, requests at the agency and capacity once a second to stderr")
	flag.IntVar(&c.workers, "workers", 1, "worker processes sharing the agency's limit under loanflow's controller")
	flag.DurationVar(&c.sampleEvery, "sample", 200*time.Millisecond, "sampling period of the charts and convergence")
	flag.StringVar(&scen, "scenarios", "surge,capacity,slowdown", "scenarios to run, comma-separated (also: incident)")
	flag.StringVar(&strat, "strategies", strings.Join(allStrategies, ","), "strategies to run, comma-separated")
	flag.StringVar(&c.out, "out", "docs/", "folder for bench-flow.md and the charts; empty writes nothing")
	flag.StringVar(&c.redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL")
	flag.BoolVar(&quick, "quick", false, "smoke check: 15s scenarios, 2s warm-up, 5s drain")
	flag.Float64Var(&probe, "probe", 0, "measure the Temporal ceiling instead: offer this many applications/s, unbounded, to an agency that is never busy, and report start→call latency")
	flag.Parse()
	if quick {
		c.duration, c.warmup, c.drain = 15*time.Second, 2*time.Second, 5*time.Second
	}
	if c.initialLimit <= 0 {
		c.initialLimit = c.capacity
	}
	c.scenarios = split(scen)
	c.strategies = split(strat)
	c.probe = probe
	if probe > 0 {
		// An agency that never queues: the latency is Temporal's.
		c.capacity, c.serviceTime, c.out = 10000, 10*time.Millisecond, ""
		c.scenarios, c.strategies = []string{"probe"}, []string{stUnbounded}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench flow:", err)
		os.Exit(1)
	}
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

func run(ctx context.Context, c config) error {
	if c.capacity < 1 || c.serviceTime <= 0 || c.duration < 3*time.Second || c.clientTimeout <= 0 {
		return fmt.Errorf("invalid flags: -capacity %d, -service-time %s, -duration %s, -client-timeout %s: accepted a capacity of 1 or more, positive times and a duration of at least 3s",
			c.capacity, c.serviceTime, c.duration, c.clientTimeout)
	}
	all := scenarios(c.duration)
	if c.probe > 0 {
		level := c.probe / (float64(c.capacity) / c.serviceTime.Seconds())
		all = append(all, scenario{name: "probe", title: fmt.Sprintf("Temporal ceiling: %.0f applications/s", c.probe),
			load: func(time.Duration) float64 { return level }, capacity: func(time.Duration) float64 { return 1 },
			slowdown: func(time.Duration) float64 { return 1 }})
	}
	var scs []scenario
	for _, name := range c.scenarios {
		i := slices.IndexFunc(all, func(s scenario) bool { return s.name == name })
		if i < 0 {
			return fmt.Errorf("invalid -scenarios: %q: accepted surge, capacity, slowdown", name)
		}
		scs = append(scs, all[i])
	}
	for _, s := range c.strategies {
		if !slices.Contains(allStrategies, s) {
			return fmt.Errorf("invalid -strategies: %q: accepted %s", s, strings.Join(allStrategies, ", "))
		}
	}
	if len(scs) == 0 || len(c.strategies) == 0 {
		return errNoRuns
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

	logger.Info("benchmark", "capacity", c.capacity, "service_time", c.serviceTime,
		"nominal_rate", float64(c.capacity)/c.serviceTime.Seconds(), "duration", c.duration,
		"runs", len(scs)*len(c.strategies))
	var results []result
	for _, sc := range scs {
		for _, st := range c.strategies {
			r, err := b.runOne(ctx, sc, st)
			if err != nil {
				return fmt.Errorf("scenario %s, strategy %s: %w", sc.name, st, err)
			}
			logger.Info("run done", "scenario", sc.name, "strategy", st, "goodput", fmt.Sprintf("%.1f/s", r.goodput()),
				"of_capacity", fmt.Sprintf("%.2f", r.goodput()/r.trueRate), "agency_errors", fmt.Sprintf("%.1f%%", 100*r.errorRate()),
				"app_p50", r.apps.p50.Round(time.Millisecond), "start_to_call_p50", r.apps.firstP50.Round(time.Millisecond),
				"start_to_call_p99", r.apps.firstP99.Round(time.Millisecond), "expired_refusals", r.expired, "note", r.limiterNote)
			if c.trace {
				printTrace(os.Stderr, r, c.sampleEvery)
			}
			results = append(results, r)
		}
	}

	table := markdownTable(results, c)
	fmt.Print(table)
	fmt.Print("\nper phase:\n\n" + phaseTable(results))
	if c.out == "" {
		return nil
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", c.out, err)
	}
	for _, sc := range scs {
		path := filepath.Join(c.out, "bench-flow-"+sc.name+".svg")
		if err := writeFile(path, func(w io.Writer) error { return writeChart(w, sc, results, c) }); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(c.out, "bench-flow.md"), func(w io.Writer) error {
		return writeDoc(w, scs, results, table, c, time.Since(t0))
	})
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
// those admission refused; each worker's slots (limit/issued/running) and
// the agency task queue's backlog (count, age of its head, add and
// dispatch rates) and that of the applications' workflow tasks.
func printTrace(w io.Writer, r result, every time.Duration) {
	n := max(1, int(time.Second/every))
	var prev sample
	for i := 0; i < len(r.trace); i += n {
		x := r.trace[i]
		slots := make([]string, len(x.Slots))
		for j, s := range x.Slots {
			slots[j] = fmt.Sprintf("%d/%d/%d", s.Limit, s.InUse, s.Running)
		}
		queue := func(name string, q queueStats) string {
			if q.Err != "" {
				return name + ": " + q.Err
			}
			return fmt.Sprintf("%s=%d age=%.1fs add=%.1f/s dispatch=%.1f/s", name, q.Count, q.Age.Seconds(), q.AddRate, q.DispatchRate)
		}
		backlog := queue("backlog", x.Backlog) + " " + queue("workflow-tasks", x.Workflows)
		fmt.Fprintf(w, "%s %s t=%5.1fs limit=%4.1f present=%3d capacity=%4.1f req=%3d ok=%3d attempts=%3d refused=%3d slots=%s %s\n",
			r.scenario, r.strategy, x.T.Seconds(), x.Limit, x.Present, x.Capacity,
			x.Requests-prev.Requests, x.OK-prev.OK, x.Attempts-prev.Attempts, x.Expired-prev.Expired,
			strings.Join(slots, ","), backlog)
		prev = x
	}
}
