package local_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"loanflow/agency"
	"loanflow/app"
	"loanflow/codec"
	"loanflow/config"
	"loanflow/dev/agencysim"
	"loanflow/dev/devstack"
	"loanflow/dev/loadgen"
	"loanflow/flowcontrol"
	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/store"
)

// fleetWorker is one worker process of the fleet.
type fleetWorker struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildWorker compiles the worker command once for the test.
func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	cmd := exec.Command("go", "build", "-o", bin, "loanflow/worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build loanflow/worker: %v\n%s", err, out)
	}
	return bin
}

func startFleetWorker(t *testing.T, bin string, env []string) *fleetWorker {
	t.Helper()
	w := &fleetWorker{out: &syncBuffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(bin, "-metrics-addr", "", "-log-level", "warn")
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(15 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.done
		}
		if t.Failed() {
			t.Logf("worker %d output:\n%s", w.cmd.Process.Pid, w.out.String())
		}
	})
	return w
}

// Three worker processes share the agencies' limits through Redis, one of
// them is killed (SIGKILL) while applications are in flight: every
// application still ends with a Postgres row matching its workflow, and the
// simulated agencies never serve more calls at once than the global limit.
func TestFleetOfWorkersSurvivesKillAndHoldsLimit(t *testing.T) {
	testenv.Short(t)
	const (
		workers = 4
		limit   = 2 // every agency's global limit, held by LOANFLOW_AGENCY_MAX_CONCURRENCY: below the worker count
		apps    = 45
	)
	t0 := time.Now()
	bin := buildWorker(t)
	t.Logf("worker built in %s", time.Since(t0).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The server keeps its state in Postgres, as a fleet's frontend would;
	// both databases are the test's own.
	temporalDB, visibilityDB := testenv.Postgres(t), testenv.Postgres(t)
	st, err := devstack.Start(ctx, devstack.Options{UIPort: -1, SearchAttributes: app.SearchAttributes, Logger: log,
		Postgres: &devstack.Postgres{URL: temporalDB, Database: dbName(t, temporalDB), VisibilityDatabase: dbName(t, visibilityDB)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	// Every call takes 300 ms and the agencies have room for far more than
	// the limit, so nothing queues there: what is in service is what the
	// workers let through. The whole batch starts within a second, so the
	// demand (about 45 calls per agency) is far above the limit.
	simCfg := map[agency.Name]agencysim.Config{}
	for _, n := range agency.All {
		simCfg[n] = agencysim.Config{Capacity: 100, MedianServiceTime: 300 * time.Millisecond, Jitter: -1}
	}
	sim := agencysim.New(simCfg)
	sim.SetLogger(log)
	simURL, stopSim, err := sim.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stopSim() })
	dbURL := testenv.Postgres(t)
	rdb, prefix := testenv.Redis(t)

	// The workers and the test's client share one key ring, as a real
	// fleet does: without keys a worker refuses to start outside -dev.
	codecKey, searchKey := testKey(t, "fleet-1"), testKey(t, "fleet-s1")
	protection, err := codec.NewProtection(testRing(t, codecKey), testRing(t, searchKey))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		codec.EnvCodecKeys + "=" + codec.FormatKeys(codecKey),
		codec.EnvSearchKeys + "=" + codec.FormatKeys(searchKey),
		"TEMPORAL_ADDRESS=" + st.Address,
		"TEMPORAL_NAMESPACE=" + st.Namespace,
		"DATABASE_URL=" + dbURL,
		"REDIS_URL=" + testenv.RedisURL(),
		"LOANFLOW_REDIS_PREFIX=" + prefix,
		"AGENCY_BASE_URL=" + simURL,
		"LOANFLOW_AGENCY_CONCURRENCY=" + strconv.Itoa(limit),
		"LOANFLOW_AGENCY_MAX_CONCURRENCY=" + strconv.Itoa(limit),
	}
	fleet := make([]*fleetWorker, workers)
	for i := range fleet {
		fleet[i] = startFleetWorker(t, bin, env)
	}
	// All of them must share the limits before the load starts: a worker
	// alone holds the whole limit until the others have joined.
	agencies := make([]string, len(agency.All))
	for i, n := range agency.All {
		agencies[i] = string(n)
	}
	waitFleet(ctx, t, rdb, prefix, agencies, workers, fleet)
	time.Sleep(1200 * time.Millisecond) // two heartbeats: every share is now limit/3
	t.Logf("fleet of %d formed %s after the test began", workers, time.Since(t0).Round(time.Millisecond))

	c, err := dialTemporal(st, protection)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range agency.All {
		sim.ResetStats(n)
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	maxGlobal := make(chan int, 1)
	go func() { maxGlobal <- sampleLimits(sampleCtx, rdb, prefix, agencies) }()

	type batch struct {
		sum loadgen.Summary
		err error
	}
	res := make(chan batch, 1)
	go func() {
		sum, err := loadgen.Run(ctx, c, loadgen.Options{Count: apps, Rate: 45, RunID: "fleet-" + testenv.ID(), Seed: 12})
		res <- batch{sum, err}
	}()
	time.Sleep(1500 * time.Millisecond) // the batch started, calls in flight
	victim := fleet[workers-1]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	t.Logf("killed worker pid %d mid-run", victim.cmd.Process.Pid)

	b := <-res
	stopSampling()
	globalSeen := <-maxGlobal
	if b.err != nil {
		t.Fatal(b.err)
	}
	sum := b.sum
	t.Logf("%d applications in %s (p50 %s, p99 %s): %v", len(sum.Outcomes), sum.Elapsed.Round(time.Millisecond), sum.P50, sum.P99, sum.ByStatus)
	if err := sum.FirstError(); err != nil {
		t.Fatalf("an application failed: %v", err)
	}
	if len(sum.Outcomes) != apps {
		t.Fatalf("%d outcomes, want %d", len(sum.Outcomes), apps)
	}

	// Nothing lost: every application has its final row, as its workflow decided.
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, o := range sum.Outcomes {
		res := o.Result
		rec, err := s.GetApplication(ctx, res.ApplicationID)
		if err != nil {
			t.Fatalf("%s: %v", res.ApplicationID, err)
		}
		if rec.Status != res.Status || rec.CreditPath != res.CreditPath || rec.WorkflowID != o.WorkflowID {
			t.Errorf("%s: postgres has %s/%s/%s, workflow returned %s/%s/%s", res.ApplicationID,
				rec.Status, rec.CreditPath, rec.WorkflowID, res.Status, res.CreditPath, o.WorkflowID)
		}
		if res.Status == loan.StatusFailed {
			t.Errorf("%s failed: %s", res.ApplicationID, res.Error)
		}
	}
	if n, err := s.CountApplications(ctx); err != nil || n != apps {
		t.Fatalf("%d applications in postgres (err %v), want %d", n, err, apps)
	}

	// The limit held, and it was what held the calls back.
	if globalSeen > limit {
		t.Errorf("the controller published a global limit of %d, above the ceiling %d", globalSeen, limit)
	}
	peak := 0
	for _, n := range agency.All {
		stats := sim.Stats(n)
		t.Logf("%s: %d requests, max in service %d, max queued %d, abandoned %d", n, stats.Requests, stats.MaxInService, stats.MaxQueued, stats.Abandoned)
		if stats.MaxInService > limit {
			t.Errorf("%s: %d calls in service at once, above the global limit %d", n, stats.MaxInService, limit)
		}
		peak = max(peak, stats.MaxInService)
	}
	if peak < limit {
		t.Errorf("no agency ever reached the limit %d (peak %d): the load did not test it", limit, peak)
	}
}

func dbName(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// dialTemporal dials the stack as the workers do, codec included.
func dialTemporal(st *devstack.Stack, p codec.Protection) (client.Client, error) {
	opts, err := config.Temporal{Address: st.Address, Namespace: st.Namespace, Protection: p}.ClientOptions(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return config.DialOptions(opts)
}

// waitFleet waits until every agency has the given number of live workers
// registered in Redis.
func waitFleet(ctx context.Context, t *testing.T, rdb *redis.Client, prefix string, agencies []string, want int, fleet []*fleetWorker) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		ok := true
		for _, a := range agencies {
			n, err := rdb.ZCard(ctx, prefix+"workers:{"+a+"}").Result()
			if err != nil || int(n) != want {
				ok = false
			}
		}
		if ok {
			return
		}
		for _, w := range fleet {
			select {
			case <-w.done:
				t.Fatalf("worker %d exited before the fleet formed:\n%s", w.cmd.Process.Pid, w.out.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d workers did not all register within 45s", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sampleLimits reads the published global limits until ctx ends and
// returns the highest seen.
func sampleLimits(ctx context.Context, rdb *redis.Client, prefix string, agencies []string) int {
	highest := 0
	for ctx.Err() == nil {
		if ls, err := flowcontrol.ReadLimits(ctx, rdb, prefix, agencies); err == nil {
			for _, l := range ls {
				highest = max(highest, l)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return highest
}
