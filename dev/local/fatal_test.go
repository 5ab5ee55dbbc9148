package local_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/api/serviceerror"

	"loanflow/agency"
	"loanflow/dev/local"
)

// A worker that stops for good (its namespace deleted: the SDK reports
// NamespaceNotFound through OnFatalError) stops the whole process's workers
// and the flow-control membership: Wait returns the error, and the
// process's registration leaves Redis at once instead of holding its share
// of every agency's limit with no pollers behind it.
func TestFatalWorkerErrorStopsWorkersAndMembership(t *testing.T) {
	inject := make(chan error, 1)
	var st *local.Stack
	env := startDevWith(t, func(c *local.Config) {
		c.InjectFatal = inject
		c.WorkerID = "fatal-" + c.RedisPrefix
	}, func(s *local.Stack) { st = s })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range agency.All {
		k := env.Config.RedisPrefix + "workers:{" + string(n) + "}"
		if _, err := env.Redis.ZScore(ctx, k, env.Config.WorkerID).Result(); err != nil {
			t.Fatalf("worker %s not registered in %s before the fault: %v", env.Config.WorkerID, k, err)
		}
	}

	inject <- serviceerror.NewNamespaceNotFound("default")
	select {
	case <-st.Workers().Done():
	case <-time.After(20 * time.Second):
		t.Fatal("workers still running 20 s after a fatal worker error")
	}
	err := st.Workers().Wait()
	var nf *serviceerror.NamespaceNotFound
	if !errors.As(err, &nf) {
		t.Fatalf("Wait: %v, want the NamespaceNotFound that stopped a worker", err)
	}
	t.Logf("workers stopped: %v", err)
	// Checked well within the registration's TTL (3 s): it was removed,
	// not left to expire.
	for _, n := range agency.All {
		k := env.Config.RedisPrefix + "workers:{" + string(n) + "}"
		if _, err := env.Redis.ZScore(ctx, k, env.Config.WorkerID).Result(); !errors.Is(err, redis.Nil) {
			t.Errorf("%s still holds worker %s after the fatal error (err %v)", k, env.Config.WorkerID, err)
		}
	}
}
