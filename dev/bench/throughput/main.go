// Command throughput measures how close loanflow's loan workflow comes to raw
// Temporal on the same machine, in one process and one run: the embedded
// Temporal server, real Postgres and Redis, and simulated agencies over HTTP
// that are never the bottleneck (large capacity, 2 ms service time).
//
// Two peers run the same number of workflows at the same concurrency, in
// alternating rounds so that both see the same machine:
//
//   - raw: a workflow with the loan workflow's shape and no work in it — one
//     local activity, one activity, three activities in parallel on three
//     task queues of their own, then three activities in sequence — all
//     no-ops;
//   - loanflow: LoanApplicationWorkflow itself, with its breaker read, its
//     Postgres writes, its agency calls over HTTP through the flow-controlled
//     agency workers and the call statistics, and disbursement under the
//     customer lock.
//
// Each round keeps -inflight workflows running (closed loop) until -count
// have ended, and reports workflows/s, p50 and p99 of start→result, the
// process's CPU milliseconds per workflow and the cores it got (on a shared
// machine the rate follows other processes' load, the CPU per workflow much
// less), the load average, and the loanflow ÷ raw ratio. Every worker of
// both peers has -pollers pollers. The database (loanflow_bench_<random>) and the Redis
// keys (a random prefix) are removed at the end.
//
//	go run ./dev/bench/throughput -count 400 -inflight 64 -rounds 2
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"loanflow/agency"
	"loanflow/app"
	"loanflow/codec"
	"loanflow/config"
	"loanflow/dev/agencysim"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/internal/rediskeys"
	"loanflow/loan"
	"loanflow/underwriting"
	"loanflow/workflows"
)

type benchConfig struct {
	count, inflight, rounds int
	adminURL, redisURL      string
	verbose                 bool
	// peers lists the peers run each round ("raw", "loanflow").
	peers []string
	// rawPlain runs the raw peer through a client without the payload
	// codec, to measure what encryption costs Temporal alone.
	rawPlain bool
	// pollers sets every worker's pollers, both peers' (0: the SDK's defaults).
	pollers int
	// variant sets loanflow's workers' tuning (the default: none); result,
	// when set, is where the run writes its summary for a sweep.
	variant variant
	result  string
}

func main() {
	var c benchConfig
	flag.IntVar(&c.count, "count", 400, "workflows per peer per round")
	flag.IntVar(&c.inflight, "inflight", 64, "workflows kept running at once (closed loop)")
	flag.IntVar(&c.rounds, "rounds", 2, "rounds; each runs raw then loanflow")
	flag.StringVar(&c.adminURL, "database-url", config.EnvOr("LOANFLOW_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"Postgres URL of a database to connect to while creating and dropping the benchmark's own")
	flag.StringVar(&c.redisURL, "redis-url", config.EnvOr("REDIS_URL", config.DefaultRedisURL), "Redis URL")
	flag.BoolVar(&c.verbose, "v", false, "log the stack's own messages")
	peers := flag.String("peers", "raw,loanflow", "peers run each round, in order: raw, loanflow or both")
	flag.BoolVar(&c.rawPlain, "raw-plain", false, "run the raw peer through a client without the payload codec")
	c.pollers = 8
	flag.Func("pollers", "workflow and activity task pollers of every worker of both peers: auto (or 0; the SDK's poller autoscaling, the worker's default) or 1 to 64 (default 8)", func(v string) error {
		if v == "auto" {
			c.pollers = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("invalid -pollers %q: accepted auto (or 0) or 1 to 64", v)
		}
		c.pollers = n
		return nil
	})
	variants := flag.String("variants", "", "run each of these loanflow configurations, comma-separated, in a process of its own against raw Temporal, and print one table: "+variantSyntax)
	one := flag.String("variant", "default", "the loanflow configuration of this run: "+variantSyntax)
	flag.StringVar(&c.result, "result", "", "write this run's summary as JSON to this file (used by -variants)")
	outFile := flag.String("out", "", "also write the report to this Markdown file (with -variants, its tuning sweep section)")
	flag.Parse()
	c.peers = strings.Split(*peers, ",")
	var sweep []variant
	var err error
	if *variants != "" {
		sweep, err = parseVariants(*variants)
	} else {
		c.variant, err = parseVariant(*one)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench throughput:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var out io.Writer = os.Stdout
	var report strings.Builder
	if *outFile != "" {
		out = io.MultiWriter(os.Stdout, &report)
	}
	command := "`go run ./dev/bench/throughput " + strings.Join(os.Args[1:], " ") + "`"
	old, _ := os.ReadFile(*outFile)
	var doc string
	if sweep != nil {
		err = runSweep(ctx, c, sweep, out)
		if len(old) == 0 {
			old = []byte(docTitle + "\n")
		}
		doc = replaceSection(string(old), sweepHeading, "Regenerated by `make bench-throughput-sweep` ("+command+").\n\n"+report.String())
	} else {
		var s summary
		s, err = run(ctx, c, out)
		if err == nil && c.result != "" {
			err = writeResult(c.result, s)
		}
		doc = docTitle + "\n\nRegenerated by `make bench-throughput` (" + command + "). See README, Benchmarks.\n\n" + report.String()
		// The sweep's section and the hand-written notes survive a regeneration.
		if i := firstIndex(string(old), sweepHeading+"\n", notesHeading); i >= 0 {
			doc += "\n" + string(old[i:])
		}
	}
	if err == nil && *outFile != "" {
		err = os.WriteFile(*outFile, []byte(doc), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench throughput:", err)
		os.Exit(1)
	}
}

func (c benchConfig) validate() error {
	switch {
	case c.count < 10 || c.count > 100_000:
		return fmt.Errorf("invalid -count %d: accepted 10 to 100000", c.count)
	case c.inflight < 1 || c.inflight > 5_000:
		return fmt.Errorf("invalid -inflight %d: accepted 1 to 5000", c.inflight)
	case c.rounds < 1 || c.rounds > 20:
		return fmt.Errorf("invalid -rounds %d: accepted 1 to 20", c.rounds)
	case c.pollers < 0 || c.pollers > 64:
		return fmt.Errorf("invalid -pollers %d: accepted auto (or 0) or 1 to 64", c.pollers)
	}
	if len(c.peers) == 0 {
		return fmt.Errorf("invalid -peers %q: accepted raw, loanflow or raw,loanflow", "")
	}
	for _, p := range c.peers {
		if p != peerRaw && p != peerLoanflow {
			return fmt.Errorf("invalid -peers %q: accepted raw, loanflow or raw,loanflow", strings.Join(c.peers, ","))
		}
	}
	return nil
}

func randomID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// benchDatabaseURL is the admin URL with its database replaced by name.
func benchDatabaseURL(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("invalid -database-url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func run(ctx context.Context, c benchConfig, out io.Writer) (summary, error) {
	if err := c.validate(); err != nil {
		return summary{}, err
	}
	id := randomID()
	dbName := "loanflow_bench_" + id
	dbURL, err := benchDatabaseURL(c.adminURL, dbName)
	if err != nil {
		return summary{}, err
	}
	prefix := "loanflow-bench-" + id + ":"
	defer cleanup(c, dbName, prefix)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if c.verbose {
		logger = slog.Default()
	}
	// Agencies that never queue: whatever limits throughput is loanflow's
	// own work or Temporal.
	sims := map[agency.Name]agencysim.Config{}
	for _, n := range agency.All {
		sims[n] = agencysim.Config{Capacity: 2_000, MedianServiceTime: 2 * time.Millisecond, Jitter: -1, QueueLimit: -1}
	}
	setupCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Encrypted as in production, with keys that live only for the run: both
	// peers go through the same client, so both pay the codec.
	protection, err := ephemeralProtection()
	if err != nil {
		return summary{}, err
	}
	appCfg := app.Config{
		Temporal:          config.Temporal{Namespace: "default", Protection: protection},
		DatabaseURL:       dbURL,
		RedisURL:          c.redisURL,
		RedisPrefix:       prefix,
		AgencyConcurrency: 4 * c.inflight,
		Pollers:           c.pollers,
	}
	// The variant's tuning applies to loanflow's workers; the sticky cache
	// is the process's, so the raw peer's workers share it.
	if err := appCfg.SetTuningFlags(c.variant.flags); err != nil {
		return summary{}, fmt.Errorf("variant %s: %w", c.variant.name, err)
	}
	sticky := newStickyCounts()
	st, err := local.Start(setupCtx, local.Config{
		Config:         appCfg,
		UIPort:         -1,
		AgencySim:      sims,
		Logger:         logger,
		MetricsHandler: sticky.handler(),
	})
	if err != nil {
		return summary{}, err
	}
	defer st.Close()
	env := struct{ Client client.Client }{st.App().Client()}
	rawClient := env.Client
	if c.rawPlain {
		// The same frontend, without the codec and the search interceptor.
		rawClient, err = client.Dial(client.Options{HostPort: st.App().Config().Temporal.Address, Namespace: "default",
			Logger: sdklog.NewStructuredLogger(logger)})
		if err != nil {
			return summary{}, fmt.Errorf("dial a plain client for the raw peer: %w", err)
		}
		defer rawClient.Close()
	}
	stopRaw, err := startRawWorkers(rawClient, c.pollers)
	if err != nil {
		return summary{}, err
	}
	defer stopRaw()

	host, _ := os.Hostname()
	fmt.Fprintf(out, "throughput: %d workflows per peer per round, %d in flight, %d rounds; embedded Temporal (SQLite in memory), Postgres, Redis, agencies over HTTP (2 ms, never busy)\n",
		c.count, c.inflight, c.rounds)
	fmt.Fprintf(out, "pollers per worker: %s\n", pollersText(c.pollers))
	sum := summary{Variant: c.variant.name, Settings: settingsText(st.App().Config()), LoadStart: loadAvg(), Total: map[string]peerSummary{}}
	fmt.Fprintf(out, "loanflow's workers (variant %s): %s\n", sum.Variant, sum.Settings)
	fmt.Fprintf(out, "machine: %s, %d CPUs, %s; load average at start %s\n\n", host, runtime.NumCPU(), runtime.Version(), sum.LoadStart)
	// Distinct customers for every loanflow application of the run.
	warm := min(c.count, 2*c.inflight)
	customers := approvedCustomers(0, warm+c.rounds*c.count)
	starters := func(tag string, first, n int) map[string]starter {
		return map[string]starter{
			peerRaw:      rawStarter(rawClient, tag),
			peerLoanflow: loanStarter(env.Client, tag, customers[first:first+n]),
		}
	}
	// A short warm-up of each, so that neither peer pays for cold caches.
	for _, p := range c.peers {
		if _, err := measure(ctx, c.inflight, warm, starters("warm-"+id, 0, warm)[p]); err != nil {
			return summary{}, fmt.Errorf("%s warm-up: %w", p, err)
		}
	}

	// What the process burns with no workflow running (the controller's
	// ticks, pollers, membership), which every round's CPU includes.
	idle0, t0 := cpuTime(), time.Now()
	select {
	case <-ctx.Done():
		return summary{}, ctx.Err()
	case <-time.After(5 * time.Second):
	}
	sum.Idle = (cpuTime() - idle0).Seconds() / time.Since(t0).Seconds()
	fmt.Fprintf(out, "idle process: %.2f CPU cores\n\n", sum.Idle)
	sticky0 := sticky.snapshot()
	all := map[string][]result{}
	fmt.Fprintf(out, "| round | peer | workflows/s | p50 | p99 | CPU ms per workflow | CPU cores used | load average | loanflow ÷ raw |\n|---|---|---|---|---|---|---|---|---|\n")
	for r := 1; r <= c.rounds; r++ {
		tag := fmt.Sprintf("%s-r%d", id, r)
		st := starters(tag, warm+(r-1)*c.count, c.count)
		round := map[string]result{}
		rs := map[string]peerSummary{}
		for _, p := range c.peers {
			res, err := measure(ctx, c.inflight, c.count, st[p])
			if err != nil {
				return summary{}, fmt.Errorf("%s round %d: %w", p, r, err)
			}
			round[p], rs[p] = res, summarize(res)
			all[p] = append(all[p], res)
			fmt.Fprintf(out, "| %d | %s | %.1f | %s | %s | %.1f | %.2f | %s | %s |\n", r, p, res.rate, ms(res.p50), ms(res.p99),
				res.cpuPerWorkflow(), res.cores(), res.load, ratio(round, p))
		}
		sum.Rounds = append(sum.Rounds, rs)
	}
	sum.Sticky = sticky.since(sticky0)
	total := map[string]result{}
	for _, p := range c.peers {
		total[p] = merge(all[p])
		res := total[p]
		sum.Total[p] = summarize(res)
		fmt.Fprintf(out, "| all | %s | %.1f | %s | %s | %.1f | %.2f | | %s |\n", p, res.rate, ms(res.p50), ms(res.p99),
			res.cpuPerWorkflow(), res.cores(), bold(ratio(total, p)))
	}
	if lf, ok := total[peerLoanflow]; ok {
		fmt.Fprintf(out, "\nloanflow outcomes: %s\n", counts(lf.outcomes))
	}
	fmt.Fprintf(out, "sticky cache over the rounds (hit / miss / forced eviction): raw %s; loanflow %s\n",
		stickyText(sum.Sticky[rawQueue]), stickyText(sum.Sticky[workflows.TaskQueue]))
	return sum, nil
}

// The -out file: its title; the section a sweep (-variants) rewrites; the
// hand-written notes, which no run rewrites.
const (
	docTitle     = "# Throughput: loanflow against raw Temporal"
	sweepHeading = "## Tuning sweep"
	notesHeading = "## Notes"
)

// firstIndex is the first position in s of any of subs, or -1.
func firstIndex(s string, subs ...string) int {
	first := -1
	for _, sub := range subs {
		if i := strings.Index(s, sub); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

func pollersText(n int) string {
	if n == 0 {
		return "the SDK's poller autoscaling (workflow-task and activity-task, 1 to 100 each, 5 at the start), both peers"
	}
	return fmt.Sprintf("%d workflow-task and %d activity-task, both peers", n, n)
}

// The peers.
const (
	peerRaw      = "raw"
	peerLoanflow = "loanflow"
)

// ratio is loanflow's rate over raw's in rs, on loanflow's row.
func ratio(rs map[string]result, peer string) string {
	raw, ok1 := rs[peerRaw]
	lf, ok2 := rs[peerLoanflow]
	if peer != peerLoanflow || !ok1 || !ok2 || raw.rate == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", lf.rate/raw.rate)
}

func bold(s string) string {
	if s == "" {
		return s
	}
	return "**" + s + "**"
}

// loadAvg is the machine's 1-, 5- and 15-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuTime is the CPU time (user and system) this process has used: the
// server, the workers and the client together.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ephemeralProtection() (codec.Protection, error) {
	ck, err := codec.NewKey("bench")
	if err != nil {
		return codec.Protection{}, err
	}
	sk, err := codec.NewKey("bench-search")
	if err != nil {
		return codec.Protection{}, err
	}
	cr, err := codec.NewKeyRing(ck)
	if err != nil {
		return codec.Protection{}, err
	}
	sr, err := codec.NewKeyRing(sk)
	if err != nil {
		return codec.Protection{}, err
	}
	return codec.NewProtection(cr, sr)
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// result is one peer's round.
type result struct {
	n         int
	elapsed   time.Duration
	cpu       time.Duration // the process's CPU time over the round
	load      string        // the load average when the round started
	rate      float64
	p50, p99  time.Duration
	latencies []time.Duration
	outcomes  map[string]int
}

func merge(rs []result) result {
	var m result
	m.outcomes = map[string]int{}
	for _, r := range rs {
		m.n += r.n
		m.elapsed += r.elapsed
		m.cpu += r.cpu
		m.latencies = append(m.latencies, r.latencies...)
		for k, v := range r.outcomes {
			m.outcomes[k] += v
		}
	}
	m.finish()
	return m
}

// cpuPerWorkflow is the process's CPU milliseconds per workflow: unlike the
// rate, it hardly moves with other processes' load on the machine.
func (r result) cpuPerWorkflow() float64 {
	if r.n == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / 1000 / float64(r.n)
}

// cores is the CPU the process got over the round, in cores.
func (r result) cores() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return r.cpu.Seconds() / r.elapsed.Seconds()
}

func (r *result) finish() {
	slices.Sort(r.latencies)
	r.p50, r.p99 = quantile(r.latencies, 0.50), quantile(r.latencies, 0.99)
	if r.elapsed > 0 {
		r.rate = float64(r.n) / r.elapsed.Seconds()
	}
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// starter starts workflow i and waits for its end; it returns the outcome's
// label (a loan status, or "ok" for the raw peer).
type starter func(ctx context.Context, i int) (string, error)

// measure keeps inflight workflows running until n have ended. Any workflow
// that fails ends the measurement with its error: a benchmark that counts
// failures as throughput would flatter the failing peer.
func measure(ctx context.Context, inflight, n int, start starter) (result, error) {
	r := result{n: n, latencies: make([]time.Duration, n), outcomes: map[string]int{}, load: loadAvg()}
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	t0, cpu0 := time.Now(), cpuTime()
	for range min(inflight, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				s := time.Now()
				label, err := start(ctx, i)
				d := time.Since(s)
				mu.Lock()
				r.latencies[i] = d
				r.outcomes[label]++
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.elapsed, r.cpu = time.Since(t0), cpuTime()-cpu0
	if firstErr != nil {
		return r, firstErr
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.finish()
	return r, nil
}

// benchAmount and benchTerm are every benchmark application's request.
const (
	benchAmount = 5_000_000
	benchTerm   = 36
)

// approvedCustomers returns n customer ids, starting after offset, that the
// simulated agencies' data gets approved: every loanflow application then
// runs the whole approved path (disbursement included), the path the raw
// peer mirrors, and rejections cannot flatter loanflow.
func approvedCustomers(offset, n int) []string {
	out := make([]string, 0, n)
	for i := offset + 1; len(out) < n; i++ {
		id := fmt.Sprintf("C%08d", i)
		scores := []loan.CreditScore{
			{Agency: string(agency.KCB), Score: agencysim.Score(agency.KCB, id)},
			{Agency: string(agency.NICE), Score: agencysim.Score(agency.NICE, id)},
		}
		inc, debt, svc := agencysim.Financials(agency.MyData, id)
		fin := loan.Financials{Source: string(agency.MyData), AnnualIncome: inc, TotalDebt: debt, AnnualDebtService: svc}
		app := loan.Application{ApplicationID: "probe", CustomerID: id, Amount: benchAmount, TermMonths: benchTerm}
		if d, err := underwriting.Decide(app, scores, fin, underwriting.DefaultPolicy()); err == nil && d.Approved {
			out = append(out, id)
		}
	}
	return out
}

func loanStarter(c client.Client, tag string, customers []string) starter {
	return func(ctx context.Context, i int) (string, error) {
		// One customer per application: no lock contention and no exposure
		// refusals, so the run measures the pipeline.
		app := loan.Application{
			ApplicationID: fmt.Sprintf("tp-%s-%06d", tag, i),
			CustomerID:    customers[i%len(customers)],
			Amount:        benchAmount,
			TermMonths:    benchTerm,
		}
		run, err := loadgen.Start(ctx, c, app, workflows.Options{})
		if err != nil {
			return "start error", err
		}
		var res loan.Result
		if err := run.Get(ctx, &res); err != nil {
			return "error", fmt.Errorf("application %s: %w", app.ApplicationID, err)
		}
		if res.Status != loan.StatusDisbursed {
			return string(res.Status), fmt.Errorf("application %s ended %s %s (%s): the benchmark expects the approved path", app.ApplicationID, res.Status, res.StatusReason, res.Error)
		}
		return string(res.Status), nil
	}
}

func rawStarter(c client.Client, tag string) starter {
	return func(ctx context.Context, i int) (string, error) {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:        fmt.Sprintf("raw-%s-%06d", tag, i),
			TaskQueue: rawQueue,
		}, RawWorkflow)
		if err != nil {
			return "start error", err
		}
		if err := run.Get(ctx, nil); err != nil {
			return "error", err
		}
		return "ok", nil
	}
}

// startRawWorkers starts the raw peer's workers with the same options the
// loan queue's worker has (the SDK's defaults).
func startRawWorkers(c client.Client, pollers int) (func(), error) {
	opts := worker.Options{}
	app.ApplyPollers(&opts, pollers)
	var ws []worker.Worker
	stop := func() {
		for _, w := range ws {
			w.Stop()
		}
	}
	main := worker.New(c, rawQueue, opts)
	main.RegisterWorkflow(RawWorkflow)
	main.RegisterActivity(&rawActivities{})
	ws = append(ws, main)
	for _, q := range rawAgencyQueues {
		w := worker.New(c, q, opts)
		w.RegisterActivity(&rawActivities{})
		ws = append(ws, w)
	}
	for _, w := range ws {
		if err := w.Start(); err != nil {
			stop()
			return nil, errors.Join(errors.New("start raw worker"), err)
		}
	}
	return stop, nil
}

func cleanup(c benchConfig, dbName, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, c.adminURL); err == nil {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "bench throughput: drop database %s: %v\n", dbName, err)
		}
		_ = conn.Close(ctx)
	}
	if opts, err := redis.ParseURL(c.redisURL); err == nil {
		rdb := redis.NewClient(opts)
		defer func() { _ = rdb.Close() }()
		if _, err := rediskeys.DeletePrefix(ctx, rdb, prefix); err != nil {
			fmt.Fprintf(os.Stderr, "bench throughput: delete redis keys under %s: %v\n", prefix, err)
		}
	}
}
