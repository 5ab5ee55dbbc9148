package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/callstats"
	"loanflow/dlock"
	"loanflow/flowcontrol"
	"loanflow/internal/sysinfo"
	"loanflow/ledger"
	"loanflow/metrics"
	"loanflow/workflows"
)

// Workers are the running workers of one process, with the flow-control
// membership that gives the agency workers their share of each limit.
type Workers struct {
	group     *errgroup.Group
	cancel    context.CancelFunc
	suppliers map[string]*flowcontrol.SlotSupplier
	done      chan struct{}
	err       error
}

// LedgerOptions are the disbursement ledger's options: the Redis prefix, the
// default exposure limit, and the customer lock named by the CustomerRef
// keyed hash (the search key ring's current key), so that no customer id
// reaches Redis and nobody without the key can test a guessed id against a
// lock's name. A Config without a hasher (built by hand) leaves the ledger's
// unkeyed default.
func (cfg Config) LedgerOptions() ledger.Options {
	o := ledger.Options{Lock: dlock.Options{Prefix: cfg.RedisPrefix}, DefaultLimit: cfg.DefaultExposureLimit}
	if h := cfg.Temporal.Protection.Hasher; h != nil {
		o.LockName = h.CustomerRef
	}
	return o
}

// Start starts the worker of the loan queue, the controller's worker, and one
// worker per agency queue whose pool follows the flow controller's limits,
// and makes sure the controller runs; ctx bounds the start only. The
// workers run under one group until Stop, or until any of them stops on a
// fatal error (namespace deleted, credentials revoked): then every worker is
// stopped and the membership leaves Redis, so a dead process holds no share
// of an agency's limit, and Wait returns that error.
func (a *App) Start(ctx context.Context) (_ *Workers, err error) {
	gctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(gctx)
	ws := &Workers{group: g, cancel: cancel, done: make(chan struct{})}
	defer func() {
		if err != nil {
			cancel()
			_ = g.Wait()
		}
	}()

	// Before the first worker of this process: the SDK sizes its sticky
	// cache when that one starts.
	a.cfg.ApplyStickyCache()
	led, err := ledger.New(a.store.Pool(), a.redis, a.cfg.LedgerOptions())
	if err != nil {
		return nil, fmt.Errorf("set up the disbursement ledger: %w", err)
	}
	suppliers, membership, err := a.agencyPools()
	if err != nil {
		return nil, err
	}
	ws.suppliers = suppliers
	g.Go(func() error {
		if err := membership.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("agency pool membership stopped", "error", err)
		}
		return nil
	})
	g.Go(func() error { a.watchHeartbeat(gctx); return nil })

	// A fatal worker error ends the group: its context is cancelled, every
	// worker stops, and the membership leaves.
	fatalCh := make(chan error, 1)
	fatal := func(queue string) func(error) {
		return func(err error) {
			select {
			case fatalCh <- fmt.Errorf("worker on task queue %s stopped: %w", queue, err):
			default: // the first fatal error is the one reported
			}
		}
	}
	g.Go(func() error {
		for {
			select {
			case err := <-fatalCh:
				return err
			case err := <-a.inject:
				fatal("(injected)")(err)
			case <-gctx.Done():
				return nil
			}
		}
	})
	run := func(queue string, opts worker.Options, register func(worker.Worker)) error {
		opts.OnFatalError = fatal(queue)
		ApplyPollers(&opts, a.cfg.Pollers)
		w := worker.New(a.client, queue, opts)
		register(w)
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker on task queue %s: %w", queue, err)
		}
		g.Go(func() error { <-gctx.Done(); w.Stop(); return nil })
		return nil
	}

	loanTuner, err := a.loanTuner()
	if err != nil {
		return nil, err
	}
	if err := run(workflows.TaskQueue, worker.Options{Tuner: loanTuner}, func(w worker.Worker) {
		w.RegisterWorkflow(workflows.LoanApplicationWorkflow)
		w.RegisterActivity(&activities.LoanActivities{Store: a.store})
		w.RegisterActivity(&activities.BreakerActivities{Breakers: breaker.NewReader(a.breakers, a.cfg.BreakerHold, a.log)})
		w.RegisterActivity(&activities.DisburseActivities{Ledger: led})
	}); err != nil {
		return nil, err
	}
	// The controller and its watchdog run on their own task queue, so a
	// surge of loan tasks cannot delay a tick.
	if err := run(workflows.ControllerTaskQueue, worker.Options{}, func(w worker.Worker) {
		w.RegisterWorkflow(workflows.FlowControllerWorkflow)
		w.RegisterWorkflow(workflows.ControllerWatchdogWorkflow)
		w.RegisterActivity(&activities.ControllerActivities{Stats: a.stats, Redis: a.redis, Prefix: a.cfg.RedisPrefix,
			Breakers: a.breakers, Events: a.store})
		w.RegisterActivity(&activities.WatchdogActivities{Ensure: a.checkController})
	}); err != nil {
		return nil, err
	}
	if err := a.applyCeilings(ctx); err != nil {
		return nil, err
	}
	acts := &activities.AgencyActivities{Agencies: a.agencies, Latency: a.stats, Gate: flowcontrol.Gates(suppliers),
		Pace: a.stats, RefusalPeriod: a.cfg.Flow.PeriodOf}
	for _, n := range agency.All {
		tuner, err := flowcontrol.NewTuner(suppliers[string(n)])
		if err != nil {
			return nil, err
		}
		opts := worker.Options{
			Tuner:        tuner,
			Interceptors: []interceptor.WorkerInterceptor{callstats.NewInterceptor(a.stats)},
		}
		if err := run(n.TaskQueue(), opts, func(w worker.Worker) { w.RegisterActivity(acts) }); err != nil {
			return nil, err
		}
	}
	go func() { ws.err = g.Wait(); cancel(); close(ws.done) }()
	if !a.cfg.NoController {
		if err := a.EnsureController(ctx); err != nil {
			return nil, err
		}
		a.waitPublished(ctx, 15*time.Second)
	}
	return ws, nil
}

// ApplyStickyCache sets the process's sticky workflow cache size, when
// StickyCacheSize is set. The SDK reads it when the first worker of the
// process starts, and every worker shares that cache until all have stopped:
// a process that runs other workers (an embedded server's) calls it before
// starting them.
func (cfg Config) ApplyStickyCache() {
	if cfg.StickyCacheSize != nil {
		worker.SetStickyWorkflowCacheSize(*cfg.StickyCacheSize)
	}
}

// loanTuner builds the slot suppliers of the loan queue's worker from
// LoanSlots: nil (the SDK's fixed 1000 slots per kind) when nothing is set.
func (a *App) loanTuner() (worker.WorkerTuner, error) {
	ls := a.cfg.LoanSlots
	if ls.Tuner == TunerResource {
		info, err := sysinfo.New()
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", EnvLoanTuner, TunerResource, err)
		}
		copts := worker.DefaultResourceControllerOptions()
		copts.InfoSupplier = info
		if ls.TargetCPU > 0 {
			copts.CpuTargetPercent = ls.TargetCPU
		}
		if ls.TargetMem > 0 {
			copts.MemTargetPercent = ls.TargetMem
		}
		// One controller for every kind of task: it judges the machine as a whole.
		ctl := worker.NewResourceController(copts)
		supplier := func(o worker.ResourceBasedSlotSupplierOptions, n, def int) (worker.SlotSupplier, error) {
			o.MaxSlots = ls.slots(n, def)
			o.MinSlots = min(o.MinSlots, o.MaxSlots)
			return worker.NewResourceBasedSlotSupplier(ctl, o)
		}
		wf, err := supplier(worker.DefaultWorkflowResourceBasedSlotSupplierOptions(), ls.Workflow, sdkResourceWorkflowSlots)
		if err != nil {
			return nil, fmt.Errorf("loan queue's workflow slots: %w", err)
		}
		actOpts := worker.DefaultActivityResourceBasedSlotSupplierOptions()
		if ls.RampThrottle != nil {
			actOpts.RampThrottle = *ls.RampThrottle
		}
		act, err := supplier(actOpts, ls.Activity, sdkResourceActivitySlots)
		if err != nil {
			return nil, fmt.Errorf("loan queue's activity slots: %w", err)
		}
		la, err := supplier(actOpts, ls.LocalActivity, sdkResourceActivitySlots)
		if err != nil {
			return nil, fmt.Errorf("loan queue's local-activity slots: %w", err)
		}
		// The loan worker runs no Nexus tasks or sessions; their suppliers
		// are the SDK's defaults.
		nx, err := worker.NewFixedSizeSlotSupplier(sdkFixedSlots)
		if err != nil {
			return nil, err
		}
		ss, err := worker.NewFixedSizeSlotSupplier(sdkFixedSlots)
		if err != nil {
			return nil, err
		}
		return worker.NewCompositeTuner(worker.CompositeTunerOptions{
			WorkflowSlotSupplier: wf, ActivitySlotSupplier: act, LocalActivitySlotSupplier: la,
			NexusSlotSupplier: nx, SessionActivitySlotSupplier: ss,
		})
	}
	if ls.Workflow == 0 && ls.Activity == 0 && ls.LocalActivity == 0 {
		return nil, nil
	}
	return worker.NewFixedSizeTuner(worker.FixedSizeTunerOptions{
		NumWorkflowSlots:      ls.slots(ls.Workflow, 0),
		NumActivitySlots:      ls.slots(ls.Activity, 0),
		NumLocalActivitySlots: ls.slots(ls.LocalActivity, 0),
	})
}

// Wait blocks until the workers have stopped: nil after Stop, the first
// fatal error otherwise.
func (ws *Workers) Wait() error {
	<-ws.done
	return ws.err
}

// Done is closed once every worker has stopped.
func (ws *Workers) Done() <-chan struct{} { return ws.done }

// Stop stops every worker and the membership, and waits for them.
func (ws *Workers) Stop() error {
	ws.cancel()
	return ws.Wait()
}

// PoolLimit is this process's current concurrency limit for an agency.
func (ws *Workers) PoolLimit(agencyName string) int {
	if s, ok := ws.suppliers[agencyName]; ok {
		return s.Limit()
	}
	return 0
}

// agencyPools builds one slot supplier per agency, starting at 0, and the
// membership that keeps each at this process's share of the agency's global
// limit (the controller's initial limit until it has written one).
func (a *App) agencyPools() (map[string]*flowcontrol.SlotSupplier, *flowcontrol.Membership, error) {
	suppliers := make(map[string]*flowcontrol.SlotSupplier, len(agency.All))
	defaults := make(map[string]int, len(agency.All))
	for _, n := range agency.All {
		// 0 until the first heartbeat gives this worker its share: the
		// global limit is a bound across the workers from the start.
		s, err := flowcontrol.NewPrefetchingSlotSupplier(0, a.cfg.agencyPrefetch())
		if err != nil {
			return nil, nil, err
		}
		suppliers[string(n)] = s
		defaults[string(n)] = a.cfg.Flow.Agencies[string(n)].InitialLimit
	}
	m, err := flowcontrol.NewMembership(a.redis, flowcontrol.MembershipOptions{
		Prefix:   a.cfg.RedisPrefix,
		WorkerID: a.cfg.WorkerID,
		// A new limit reaches the pools within one beat; faster beats
		// shorten the controller's loop.
		Heartbeat: 500 * time.Millisecond,
		TTL:       3 * time.Second,
		Logger:    a.log,
	}, suppliers, defaults)
	if err != nil {
		return nil, nil, fmt.Errorf("set up the agency pools: %w", err)
	}
	return suppliers, m, nil
}

// RegisterMetrics registers the per-agency statistics (calls by outcome,
// latency, queue wait, in flight, dropped samples), each agency's current
// limit in this process and the controller's tick age.
func (a *App) RegisterMetrics(reg prometheus.Registerer, ws *Workers) error {
	if err := a.stats.Register(reg); err != nil {
		return fmt.Errorf("register call statistics metrics: %w", err)
	}
	for name, s := range ws.suppliers {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "loanflow_agency_limit",
			Help:        "Concurrency limit of this worker's pool for the agency: its share of the controller's global limit.",
			ConstLabels: prometheus.Labels{"agency": name},
		}, func() float64 { return float64(s.Limit()) })
		if err := reg.Register(g); err != nil {
			return fmt.Errorf("register limit metric of %s: %w", name, err)
		}
	}
	agencies := make([]string, 0, len(a.cfg.Flow.Agencies))
	for name := range a.cfg.Flow.Agencies {
		agencies = append(agencies, name)
	}
	sort.Strings(agencies)
	if err := reg.Register(metrics.NewFlowCollector(a.redis, a.cfg.RedisPrefix, agencies, append(slices.Clone(agencies), breaker.Entry))); err != nil {
		return fmt.Errorf("register flow state metrics: %w", err)
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "loanflow_controller_last_tick_age_seconds",
		Help: "Seconds since the flow controller last published (Redis server time); alert when it exceeds a few control periods.",
	}, a.tickAge.Seconds)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register controller tick age metric: %w", err)
	}
	return nil
}

// ApplyPollers sets a worker's workflow-task and activity-task pollers as
// Config.Pollers says: a fixed count, or for 0 the SDK's poller
// autoscaling (its defaults: 5 at the start, 1 to 100).
func ApplyPollers(opts *worker.Options, pollers int) {
	if pollers > 0 {
		opts.MaxConcurrentWorkflowTaskPollers = pollers
		opts.MaxConcurrentActivityTaskPollers = pollers
		return
	}
	auto := worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{})
	opts.WorkflowTaskPollerBehavior, opts.ActivityTaskPollerBehavior = auto, auto
}

// agencyPrefetch is AgencyPrefetch, or flowcontrol.DefaultPrefetch when
// unset.
func (cfg Config) agencyPrefetch() float64 {
	if cfg.AgencyPrefetch != nil {
		return *cfg.AgencyPrefetch
	}
	return flowcontrol.DefaultPrefetch
}
