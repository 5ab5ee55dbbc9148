package service

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/callstats"
	"loanflow/flowcontrol"
)

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

// agencyWorkers builds one slot supplier per agency, starting at 0, and the
// membership that keeps each at this process's share of the agency's global
// limit (the controller's initial limit until it has written one).
func (e *Env) agencyWorkers() (map[string]*flowcontrol.SlotSupplier, *flowcontrol.Membership, error) {
	suppliers := make(map[string]*flowcontrol.SlotSupplier, len(agency.All))
	defaults := make(map[string]int, len(agency.All))
	for _, n := range agency.All {
		l := e.Config.Flow.Agencies[string(n)].InitialLimit
		// 0 until the first heartbeat gives this worker its share: the
		// global limit is a bound across the workers from the start.
		suppliers[string(n)] = flowcontrol.NewSlotSupplier(0)
		defaults[string(n)] = l
	}
	m, err := flowcontrol.NewMembership(e.Redis, flowcontrol.MembershipOptions{
		Prefix:   e.Config.RedisPrefix,
		WorkerID: e.Config.WorkerID,
		// A new limit reaches the pools within one beat; faster beats
		// shorten the controller's loop.
		Heartbeat: 500 * time.Millisecond,
		TTL:       3 * time.Second,
		Logger:    e.Logger,
	}, suppliers, defaults)
	if err != nil {
		return nil, nil, fmt.Errorf("set up the agency pools: %w", err)
	}
	return suppliers, m, nil
}

// agencyWorkerOptions is one agency queue's worker: its pool is the live
// slot supplier, and the interceptor records every call's statistics.
func (e *Env) agencyWorkerOptions(s *flowcontrol.SlotSupplier) (worker.Options, error) {
	tuner, err := flowcontrol.NewTuner(s)
	if err != nil {
		return worker.Options{}, err
	}
	return e.withPollers(worker.Options{
		Tuner:        tuner,
		Interceptors: []interceptor.WorkerInterceptor{callstats.NewInterceptor(e.Stats)},
	}), nil
}

func (e *Env) controllerActivities() *activities.ControllerActivities {
	return &activities.ControllerActivities{Stats: e.Stats, Redis: e.Redis, Prefix: e.Config.RedisPrefix,
		Breakers: e.Breakers, Events: e.Store}
}

// workerID names this process among the agencies' live workers.
func workerID() string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1_000_000, 36)
}

// RegisterMetrics registers the per-agency statistics (calls by outcome,
// latency, queue wait, in flight, dropped samples) and each agency's current
// limit in this process. Call it after StartWorkers.
func (e *Env) RegisterMetrics(reg prometheus.Registerer) error {
	if err := e.Stats.Register(reg); err != nil {
		return fmt.Errorf("register call statistics metrics: %w", err)
	}
	for name, s := range e.suppliers {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "loanflow_agency_limit",
			Help:        "Concurrency limit of this worker's pool for the agency: its share of the controller's global limit.",
			ConstLabels: prometheus.Labels{"agency": name},
		}, func() float64 { return float64(s.Limit()) })
		if err := reg.Register(g); err != nil {
			return fmt.Errorf("register limit metric of %s: %w", name, err)
		}
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "loanflow_controller_last_tick_age_seconds",
		Help: "Seconds since the flow controller last published (Redis server time); alert when it exceeds a few control periods.",
	}, e.tickAge.Seconds)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register controller tick age metric: %w", err)
	}
	return nil
}

// PoolLimit is this process's current concurrency limit for an agency, 0
// before StartWorkers.
func (e *Env) PoolLimit(agencyName string) int {
	if s, ok := e.suppliers[agencyName]; ok {
		return s.Limit()
	}
	return 0
}
