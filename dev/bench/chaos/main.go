// Command chaos runs a scripted incident against loanflow on the embedded
// stack (Temporal in process, simulated agencies over HTTP, the local
// Postgres and Redis) and prints the invariants it must hold:
//
//	MyData fails and heals; Redis loses its data; KCB goes down for many
//	cool-downs; the flow controller is terminated during the outage; KCB
//	comes back.
//
// The invariants: calls in flight at each agency against its global limit,
// loan-entry transitions (no reopening while a bureau is out), applications
// lost (must be 0), and every outcome matching its Postgres row. It uses a
// database and a Redis key prefix of its own, removed at the end. It is not
// part of `make test`: run `make chaos`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"loanflow/agency"
	"loanflow/app"
	"loanflow/breaker"
	"loanflow/config"
	"loanflow/dev/agencysim"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/flowcontrol"
	"loanflow/internal/rediskeys"
	"loanflow/loan"
	"loanflow/workflows"
)

type options struct {
	adminURL, redisURL string
	rate               time.Duration
	scale              float64
	verbose            bool
}

func main() {
	var o options
	flag.StringVar(&o.adminURL, "database-url", envOr("LOANFLOW_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "Postgres server (a database of its own is created and dropped)")
	flag.StringVar(&o.redisURL, "redis-url", envOr("REDIS_URL", config.DefaultRedisURL), "Redis (keys under a prefix of their own, deleted after)")
	flag.DurationVar(&o.rate, "every", 150*time.Millisecond, "start an application this often")
	flag.Float64Var(&o.scale, "scale", 1, "stretch the script's timings by this factor")
	flag.BoolVar(&o.verbose, "v", false, "log loanflow's own messages")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// breakers trip and recover within seconds, so the incident fits a minute.
func breakers() map[string]breaker.Config {
	out := map[string]breaker.Config{}
	for _, n := range agency.All {
		c := breaker.DefaultConfig()
		c.FloorPeriods, c.OpenAfterPeriods, c.RecoveryPeriods = 2, 2, 2
		c.CoolDown = 3 * time.Second
		c.ProbeFraction = 0.3
		out[string(n)] = c
	}
	return out
}

// sampler follows calls in service at every agency against its global limit.
type sampler struct {
	mu       sync.Mutex
	maxIn    map[agency.Name]int
	limitAt  map[agency.Name]int // the limit when maxIn was seen
	over     map[agency.Name]int // samples above the limit
	samples  int
	maxLimit map[agency.Name]int
}

func (s *sampler) run(ctx context.Context, env *local.Observer) {
	names := make([]string, len(agency.All))
	for i, n := range agency.All {
		names[i] = string(n)
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	limits := map[string]int{}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if i%10 == 0 {
			// The last limit known is kept when Redis has lost it, as the
			// workers' pools do.
			if l, err := flowcontrol.ReadLimits(ctx, env.Redis, env.Config.RedisPrefix, names); err == nil {
				for k, v := range l {
					limits[k] = v
				}
			}
		}
		s.mu.Lock()
		s.samples++
		for _, n := range agency.All {
			in := env.Sim.Stats(n).InService
			l, ok := limits[string(n)]
			if !ok {
				l = env.Config.Flow.Agencies[string(n)].InitialLimit
			}
			if in > s.maxIn[n] {
				s.maxIn[n], s.limitAt[n] = in, l
			}
			s.maxLimit[n] = max(s.maxLimit[n], l)
			if in > l {
				s.over[n]++
			}
		}
		s.mu.Unlock()
	}
}

func run(ctx context.Context, o options) error {
	id := time.Now().UTC().Format("20060102t150405")
	dbName := "loanflow_chaos_" + id
	dbURL, drop, err := createDatabase(ctx, o.adminURL, dbName)
	if err != nil {
		return err
	}
	defer drop()
	prefix := "lfchaos:" + id + ":"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.verbose {
		log = slog.Default()
	}
	step := func(d time.Duration) time.Duration { return time.Duration(float64(d) * o.scale) }
	st, err := local.Start(ctx, local.Config{
		Config: app.Config{Temporal: config.Temporal{Namespace: "default"}, DatabaseURL: dbURL, RedisURL: o.redisURL, RedisPrefix: prefix,
			Breakers: breakers(), WatchdogEvery: 2 * time.Second},
		UIPort: -1, Logger: log,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	env, err := st.Observe(ctx)
	if err != nil {
		return err
	}
	defer func() { _, _ = cleanRedis(env.Redis, prefix) }()

	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	s := &sampler{maxIn: map[agency.Name]int{}, limitAt: map[agency.Name]int{}, over: map[agency.Name]int{}, maxLimit: map[agency.Name]int{}}
	sampled := make(chan struct{})
	go func() { defer close(sampled); s.run(sctx, env) }()

	// Traffic: one application every o.rate until the script ends.
	var mu sync.Mutex
	var runs []client.WorkflowRun
	startErrs := 0
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		t := time.NewTicker(o.rate)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-tctx.Done():
				return
			case <-t.C:
			}
			app := loan.Application{ApplicationID: fmt.Sprintf("chaos-%s-%05d", id, i), CustomerID: fmt.Sprintf("C%08d", 1+i%200), Amount: 5_000_000, TermMonths: 24}
			r, err := loadgen.Start(ctx, env.Client, app, workflows.Options{AgencyScheduleToClose: 5 * time.Second, BureauWait: 2 * time.Minute, BreakerPoll: time.Second})
			mu.Lock()
			if err != nil {
				startErrs++
			} else {
				runs = append(runs, r)
			}
			mu.Unlock()
		}
	}()

	t0 := time.Now()
	say := func(format string, args ...any) {
		fmt.Printf("%6.1fs  %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	at := func(d time.Duration) { time.Sleep(time.Until(t0.Add(step(d)))) }
	var kcbDown, kcbUp time.Time
	script := []struct {
		at   time.Duration
		what string
		do   func() error
	}{
		{10 * time.Second, "mydata fails (every call 500)", func() error { return env.Sim.SetFaults(agency.MyData, agencysim.Faults{ErrorRate: 1}) }},
		{20 * time.Second, "redis loses loanflow's data", func() error { n, err := cleanRedis(env.Redis, prefix); say("  %d keys deleted", n); return err }},
		{30 * time.Second, "mydata heals; kcb goes down", func() error {
			kcbDown = time.Now()
			return errors.Join(env.Sim.SetFaults(agency.MyData, agencysim.Faults{}), env.Sim.SetFaults(agency.KCB, agencysim.Faults{Down: true}))
		}},
		{45 * time.Second, "flow controller terminated", func() error {
			return env.Client.TerminateWorkflow(ctx, workflows.FlowControllerID, "", "chaos")
		}},
		{75 * time.Second, "kcb comes back", func() error { kcbUp = time.Now(); return env.Sim.SetFaults(agency.KCB, agencysim.Faults{}) }},
		{90 * time.Second, "traffic stops", func() error { stopTraffic(); <-trafficDone; return nil }},
	}
	fmt.Printf("chaos: one application every %s; database %s, Redis prefix %s\n", o.rate, dbName, prefix)
	for _, sc := range script {
		at(sc.at)
		say("%s", sc.what)
		if err := sc.do(); err != nil {
			say("  error: %v", err)
		}
	}

	// Every application must end, in a final row matching the workflow.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	lost, mismatched := 0, 0
	outcomes := map[string]int{}
	for _, r := range runs {
		var res loan.Result
		if err := r.Get(wctx, &res); err != nil {
			lost++
			say("  %s did not finish: %v", r.GetID(), err)
			continue
		}
		outcomes[string(res.Status)+" "+res.Reason()]++
		rec, err := env.Store.GetApplication(wctx, res.ApplicationID)
		if err != nil || !rec.Status.Final() || rec.Status != res.Status || rec.CreditPath != res.CreditPath {
			mismatched++
			say("  %s: workflow %s/%s, postgres %+v %v", res.ApplicationID, res.Status, res.CreditPath, rec, err)
		}
	}
	n, err := env.Store.CountApplications(wctx)
	if err != nil {
		return err
	}
	stopSampling()
	<-sampled

	events, err := env.Store.BreakerEvents(wctx, "")
	if err != nil {
		return err
	}
	entry, reopenDuringOutage := 0, 0
	var entryLog []string
	for _, e := range events {
		if e.Breaker != breaker.Entry {
			continue
		}
		entry++
		entryLog = append(entryLog, fmt.Sprintf("%.1fs→%s", e.At.Sub(t0).Seconds(), e.To))
		if e.To == string(breaker.Closed) && e.At.After(kcbDown) && e.At.Before(kcbUp) {
			reopenDuringOutage++
		}
	}

	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INVARIANT\tVALUE\tHOLDS")
	for _, a := range agency.All {
		ok := s.maxIn[a] <= s.limitAt[a]
		fmt.Fprintf(tw, "max calls in service at %s vs its global limit then (max limit)\t%d vs %d (%d); %d of %d samples above\t%s\n",
			a, s.maxIn[a], s.limitAt[a], s.maxLimit[a], s.over[a], s.samples, yes(ok))
	}
	fmt.Fprintf(tw, "loan entry transitions\t%d: %s\t-\n", entry, strings.Join(entryLog, " "))
	fmt.Fprintf(tw, "entry reopenings during the kcb outage (%.0fs)\t%d\t%s\n", kcbUp.Sub(kcbDown).Seconds(), reopenDuringOutage, yes(reopenDuringOutage == 0))
	fmt.Fprintf(tw, "applications started\t%d (%d start errors)\t-\n", len(runs), startErrs)
	fmt.Fprintf(tw, "applications lost (no result)\t%d\t%s\n", lost, yes(lost == 0))
	fmt.Fprintf(tw, "rows in postgres vs applications started\t%d vs %d\t%s\n", n, len(runs), yes(n == len(runs)))
	fmt.Fprintf(tw, "outcomes not matching postgres\t%d\t%s\n", mismatched, yes(mismatched == 0))
	if err := tw.Flush(); err != nil {
		return err
	}
	keys := make([]string, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Println("\noutcomes:")
	for _, k := range keys {
		fmt.Printf("  %-45s %d\n", k, outcomes[k])
	}
	if lost > 0 || mismatched > 0 || reopenDuringOutage > 0 || n != len(runs) {
		return errors.New("an invariant did not hold")
	}
	return nil
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func createDatabase(ctx context.Context, adminURL, name string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to Postgres (set LOANFLOW_TEST_DATABASE_URL): %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return "", nil, err
	}
	u := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(dctx, adminURL)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos: drop database:", err)
			return
		}
		defer func() { _ = c.Close(dctx) }()
		if _, err := c.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: drop database:", err)
		}
	}
	return u, drop, nil
}

// cleanRedis deletes the run's keys: at the script's step, Redis losing its
// data; at the end, cleaning up.
func cleanRedis(rdb *redis.Client, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rediskeys.DeletePrefix(ctx, rdb, prefix)
}
