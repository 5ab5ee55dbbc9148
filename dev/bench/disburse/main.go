// Command disburse benchmarks loan disbursement (ledger.Book) on a real
// Postgres and Redis: disbursements per second for many distinct customers
// and for one hot customer, the Redis lock's share of each disbursement's
// latency, and the same workloads without the lock (optimistic locking
// alone) with their conflict and retry counts.
//
// It creates a fresh database (named by -db, or a random name), migrates it,
// and drops it at the end; its Redis keys live under a prefix of their own
// and are deleted at the end. Lock and no-lock runs alternate, several rounds
// over, and the ratios are taken within each round, because a shared machine
// is noisy.
//
//	go run ./bench/disburse -n 2000 -concurrency 16 -rounds 3
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"loanflow/dlock"
	"loanflow/internal/rediskeys"
	"loanflow/ledger"
	"loanflow/migrations"
)

type config struct {
	adminURL, dbName, redisURL string
	n, customers, concurrency  int
	rounds, maxAttempts        int
	amount                     int64
	keep                       bool
}

func main() {
	var c config
	flag.StringVar(&c.adminURL, "database-url", envOr("LOANFLOW_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"Postgres URL of a database to connect to while creating and dropping the benchmark's own")
	flag.StringVar(&c.dbName, "db", "", "name of the database to create for the run (default: loanflow_bench_<random>)")
	flag.StringVar(&c.redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL")
	flag.IntVar(&c.n, "n", 2000, "disbursements per run")
	flag.IntVar(&c.customers, "customers", 1000, "distinct customers in the many-customers workload")
	flag.IntVar(&c.concurrency, "concurrency", 16, "disbursements in flight at once")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every workload with and without the lock")
	flag.IntVar(&c.maxAttempts, "max-attempts", ledger.DefaultMaxAttempts, "optimistic attempts per disbursement before giving up")
	flag.Int64Var(&c.amount, "amount", 1_000_000, "principal of each loan, won")
	flag.BoolVar(&c.keep, "keep", false, "keep the database after the run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench disburse:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c config) validate() error {
	switch {
	case c.n < 1:
		return fmt.Errorf("-n %d: accepted 1 or more", c.n)
	case c.customers < 1:
		return fmt.Errorf("-customers %d: accepted 1 or more", c.customers)
	case c.concurrency < 1 || c.concurrency > 500:
		return fmt.Errorf("-concurrency %d: accepted 1 to 500", c.concurrency)
	case c.rounds < 1:
		return fmt.Errorf("-rounds %d: accepted 1 or more", c.rounds)
	case c.amount < 1:
		return fmt.Errorf("-amount %d: accepted 1 or more won", c.amount)
	case c.dbName != "" && pgx.Identifier{c.dbName}.Sanitize() != `"`+c.dbName+`"`:
		return fmt.Errorf("-db %q: accepted a plain database name", c.dbName)
	}
	return nil
}

func run(ctx context.Context, c config) error {
	if err := c.validate(); err != nil {
		return err
	}
	id := randomID()
	if c.dbName == "" {
		c.dbName = "loanflow_bench_" + id
	}
	dbURL, drop, err := createDatabase(ctx, c.adminURL, c.dbName)
	if err != nil {
		return err
	}
	if !c.keep {
		defer drop()
	}
	if err := migrations.Up(ctx, dbURL); err != nil {
		return err
	}
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	pcfg.MaxConns = int32(c.concurrency + 4)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("open pool on %s: %w", c.dbName, err)
	}
	defer pool.Close()

	ropts, err := redis.ParseURL(c.redisURL)
	if err != nil {
		return fmt.Errorf("-redis-url %q: %w", c.redisURL, err)
	}
	ropts.PoolSize = 2*c.concurrency + 8 // waiters' pub/sub connections come on top of the commands
	rdb := redis.NewClient(ropts)
	defer func() { _ = rdb.Close() }()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("connect to Redis at %s: %w", c.redisURL, err)
	}
	prefix := "lfbench:" + id + ":"
	defer cleanRedis(rdb, prefix)

	fmt.Printf("disbursement benchmark: %d per run, %d in flight, %d rounds, %d distinct customers, GOMAXPROCS %d, database %s, Redis prefix %s\n\n",
		c.n, c.concurrency, c.rounds, c.customers, runtime.GOMAXPROCS(0), c.dbName, prefix)

	// Warm the pool and the scripts so the first measured run pays no setup.
	if _, err := runOnce(ctx, c, pool, rdb, prefix, workload{"warm-up", false}, true, -1); err != nil {
		return err
	}
	workloads := []workload{{"many customers", false}, {"one hot customer", true}}
	results := map[string][]result{}
	ratios := map[string][]float64{}
	seq := 0
	for r := range c.rounds {
		for _, w := range workloads {
			// Alternate which variant goes first, so drift hits both alike.
			order := []bool{true, false}
			if r%2 == 1 {
				order = []bool{false, true}
			}
			var pair [2]result
			for _, locked := range order {
				res, err := runOnce(ctx, c, pool, rdb, prefix, w, locked, seq)
				seq++
				if err != nil {
					return err
				}
				results[res.key()] = append(results[res.key()], res)
				if locked {
					pair[0] = res
				} else {
					pair[1] = res
				}
				fmt.Fprintf(os.Stderr, "round %d  %-16s  %-7s  %7.0f/s  p99 %6.1f ms  conflicts %d\n",
					r+1, w.name, res.variant(), res.throughput(), ms(res.p99), res.stats.Conflicts)
			}
			ratios[w.name] = append(ratios[w.name], pair[1].throughput()/pair[0].throughput())
		}
	}
	fmt.Fprintln(os.Stderr)
	report(c, workloads, results, ratios)
	return nil
}

type workload struct {
	name string
	hot  bool
}

type result struct {
	w        workload
	locked   bool
	wall     time.Duration
	ok       int
	failed   int
	firstErr error
	p50, p99 time.Duration
	// Sums over successful disbursements.
	wait, held, total time.Duration
	attempts          int
	stats             ledger.Stats
}

func (r result) key() string { return r.w.name + "/" + r.variant() }
func (r result) variant() string {
	if r.locked {
		return "lock"
	}
	return "no lock"
}
func (r result) throughput() float64 { return float64(r.ok) / r.wall.Seconds() }

// runOnce books c.n loans, c.concurrency at a time, on fresh customers.
func runOnce(ctx context.Context, c config, pool *pgxpool.Pool, rdb *redis.Client, prefix string, w workload, locked bool, seq int) (result, error) {
	var r redis.UniversalClient
	if locked {
		r = rdb
	}
	led, err := ledger.New(pool, r, ledger.Options{
		MaxAttempts: c.maxAttempts,
		// A hot customer queues c.concurrency bookings on one lock.
		Lock: dlock.Options{Prefix: prefix, WaitTimeout: time.Minute},
	})
	if err != nil {
		return result{}, err
	}
	n := c.n
	if seq < 0 {
		n = min(n, 200)
	}
	customer := func(i int) string { return fmt.Sprintf("B%d-%d", seq, i%c.customers) }
	if w.hot {
		customer = func(int) string { return fmt.Sprintf("B%d-hot", seq) }
		if err := led.SetLimit(ctx, customer(0), int64(n)*c.amount); err != nil {
			return result{}, err
		}
	}

	jobs := make(chan int)
	type sample struct {
		b   ledger.Booking
		err error
	}
	samples := make([]sample, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range c.concurrency {
		wg.Go(func() {
			for i := range jobs {
				b, err := led.Book(ctx, ledger.Request{
					ApplicationID: fmt.Sprintf("bench-%d-%d", seq, i), CustomerID: customer(i),
					Principal: c.amount, RateBasisPoints: 600, TermMonths: 36, MonthlyPayment: c.amount / 33,
				})
				samples[i] = sample{b, err}
			}
		})
	}
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}

	res := result{w: w, locked: locked, wall: time.Since(start), stats: led.Stats()}
	var lat []time.Duration
	for _, s := range samples {
		if s.err != nil {
			res.failed++
			if res.firstErr == nil {
				res.firstErr = s.err
			}
			continue
		}
		res.ok++
		res.wait += s.b.LockWait
		res.held += s.b.LockHeld
		res.total += s.b.Elapsed
		res.attempts += s.b.Attempts
		lat = append(lat, s.b.Elapsed)
	}
	if res.firstErr != nil && !errors.Is(res.firstErr, ledger.ErrVersionConflict) {
		// Only giving up after MaxAttempts conflicts is an expected failure.
		return res, fmt.Errorf("%s, %s: %d disbursements failed, first: %w", w.name, res.variant(), res.failed, res.firstErr)
	}
	slices.Sort(lat)
	res.p50, res.p99 = pct(lat, 0.50), pct(lat, 0.99)
	return res, nil
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func share(part, whole time.Duration) string {
	if whole <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
}

// median returns the run with the median throughput, so a row's figures all
// come from one run.
func median(rs []result) result {
	s := slices.Clone(rs)
	sort.Slice(s, func(i, j int) bool { return s[i].throughput() < s[j].throughput() })
	return s[len(s)/2]
}

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(c config, workloads []workload, results map[string][]result, ratios map[string][]float64) {
	fmt.Printf("Each row is the median-throughput run of %d (range of disbursements/s in brackets).\n", c.rounds)
	fmt.Println("Lock wait = asking for the customer's Redis lock until holding it; lock overhead = everything")
	fmt.Println("outside the booking transaction (acquire, lease keeper start, release); in lock = the transaction.")
	fmt.Println()
	fmt.Println("| workload | variant | disbursements/s | p50 ms | p99 ms | lock wait | lock overhead | in lock | attempts/disb. | conflicts | retries | gave up |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, w := range workloads {
		for _, v := range []string{"lock", "no lock"} {
			rs := results[w.name+"/"+v]
			m := median(rs)
			lo, hi := rs[0].throughput(), rs[0].throughput()
			for _, r := range rs {
				lo, hi = min(lo, r.throughput()), max(hi, r.throughput())
			}
			wait, over, in := "–", "–", "–"
			if m.locked {
				wait, over, in = share(m.wait, m.total), share(m.total-m.held, m.total), share(m.held, m.total)
			}
			fmt.Printf("| %s | %s | %.0f [%.0f–%.0f] | %.1f | %.1f | %s | %s | %s | %.2f | %d | %d | %d |\n",
				w.name, v, m.throughput(), lo, hi, ms(m.p50), ms(m.p99), wait, over, in,
				float64(m.attempts)/float64(max(m.ok, 1)), m.stats.Conflicts, m.stats.Retries, m.stats.Exhausted)
		}
	}
	fmt.Println()
	fmt.Println("| workload | no-lock ÷ lock throughput (median of per-round ratios) | per round |")
	fmt.Println("|---|---:|---|")
	for _, w := range workloads {
		var per []string
		for _, r := range ratios[w.name] {
			per = append(per, fmt.Sprintf("%.2f", r))
		}
		fmt.Printf("| %s | %.2f | %s |\n", w.name, medianF(ratios[w.name]), strings.Join(per, ", "))
	}
	hotLock := median(results["one hot customer/lock"])
	manyLock := median(results["many customers/lock"])
	fmt.Printf("\nhot ÷ many customers, with the lock: %.2f\n", hotLock.throughput()/manyLock.throughput())
}

// createDatabase creates dbName next to adminURL's database and returns its
// URL and a function that drops it.
func createDatabase(ctx context.Context, adminURL, dbName string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to Postgres at %s (set -database-url): %w", redact(adminURL), err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", dbName, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("parse -database-url: %w", err)
	}
	u.Path = "/" + dbName
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(dctx, adminURL)
		if err != nil {
			fmt.Fprintf(os.Stderr, "drop database %s: %v\n", dbName, err)
			return
		}
		defer func() { _ = c.Close(dctx) }()
		if _, err := c.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{dbName}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "drop database %s: %v\n", dbName, err)
		}
	}
	return u.String(), drop, nil
}

func cleanRedis(rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := rediskeys.DeletePrefix(ctx, rdb, prefix); err != nil {
		fmt.Fprintf(os.Stderr, "bench disburse: delete redis keys under %s: %v\n", prefix, err)
	}
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
