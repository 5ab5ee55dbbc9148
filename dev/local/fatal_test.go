package local_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc"

	"loanflow/agency"
	"loanflow/dev/local"
)

// A worker that can no longer poll for good (its namespace is gone: the
// server answers NamespaceNotFound) stops the whole process's workers and
// the flow-control membership: Wait returns the error, and the process's
// registration leaves Redis at once instead of holding its share of every
// agency's limit with no pollers behind it.
func TestFatalWorkerErrorStopsWorkersAndMembership(t *testing.T) {
	var namespaceGone atomic.Bool
	gone := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if namespaceGone.Load() && strings.Contains(method, "Poll") {
			return serviceerror.NewNamespaceNotFound("default")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	var st *local.Stack
	env := startDevWith(t, func(c *local.Config) {
		c.DialOptions = []grpc.DialOption{grpc.WithChainUnaryInterceptor(gone)}
		c.WorkerID = "fatal-" + c.RedisPrefix
	}, func(s *local.Stack) { st = s })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := env.Config.RedisPrefix + "workers:{" + string(agency.KCB) + "}"
	if _, err := env.Redis.ZScore(ctx, key, env.Config.WorkerID).Result(); err != nil {
		t.Fatalf("worker %s not registered in %s before the fault: %v", env.Config.WorkerID, key, err)
	}

	namespaceGone.Store(true)
	select {
	case <-st.Workers().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("workers still running 30 s after every poll answered NamespaceNotFound")
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
