package local

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"loanflow/app"
	"loanflow/breaker"
	"loanflow/dev/agencysim"
	"loanflow/store"
)

// Observer is what a test or a benchmark inspects a running stack through:
// its own connections to the stack's Postgres and Redis, and the stack's
// Temporal client and simulator. The workers do not share these handles.
type Observer struct {
	Client   client.Client
	Store    *store.Store
	Redis    *redis.Client
	Breakers *breaker.Store
	Sim      *agencysim.Server
	Config   app.Config
	CodecURL string
	Logger   *slog.Logger

	stack *Stack
}

// Observe opens the observer's connections; Close of the stack closes them.
func (s *Stack) Observe(ctx context.Context) (*Observer, error) {
	cfg := s.app.Config()
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(ropts)
	s.closers = append(s.closers, st.Close, func() { _ = rdb.Close() })
	return &Observer{Client: s.app.Client(), Store: st, Redis: rdb, Breakers: breaker.NewStore(rdb, cfg.RedisPrefix),
		Sim: s.sim, Config: cfg, CodecURL: s.codecURL, Logger: s.log, stack: s}, nil
}

// PoolLimit is the stack's current concurrency limit for an agency.
func (o *Observer) PoolLimit(agencyName string) int { return o.stack.workers.PoolLimit(agencyName) }

// WorkflowURL is the Web UI link of a run.
func (o *Observer) WorkflowURL(workflowID, runID string) string {
	return o.stack.WorkflowURL(workflowID, runID)
}
