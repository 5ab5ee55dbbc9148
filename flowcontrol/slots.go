package flowcontrol

import (
	"context"
	"fmt"
	"sync"

	"go.temporal.io/sdk/worker"
)

// SlotSupplier is a worker.SlotSupplier whose limit can change while the
// worker runs: a mutex and a condition variable around a changeable limit.
// Raising the limit wakes waiting reservations at once; lowering it lets the
// permits already held finish normally and blocks new reservations until
// fewer than the new limit are in use, so a lower limit drains without
// cancelling anything.
//
// The SDK reserves a slot before it polls for a task, so an idle poller holds
// a permit too: InUse counts every permit issued (what the limit bounds), and
// Running counts only the permits marked used by a task that is running —
// the calls actually in flight at the agency.
type SlotSupplier struct {
	mu      sync.Mutex
	changed *sync.Cond // broadcast when a permit is released or the limit changes
	limit   int
	inUse   int
	running int
}

// slotPermit is the SlotPermit.UserData of this supplier's permits.
type slotPermit struct {
	used, released bool
}

// NewSlotSupplier returns a supplier that issues up to limit permits at once
// (a negative limit counts as 0, which blocks every reservation).
func NewSlotSupplier(limit int) *SlotSupplier {
	s := &SlotSupplier{limit: max(limit, 0)}
	s.changed = sync.NewCond(&s.mu)
	return s
}

// SetLimit changes the limit, taking effect on the running worker: a higher
// limit wakes waiting reservations, a lower one holds new reservations back
// until enough permits have been released. A negative limit counts as 0.
func (s *SlotSupplier) SetLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = max(n, 0)
	s.changed.Broadcast()
}

// Limit is the current limit.
func (s *SlotSupplier) Limit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit
}

// InUse is the number of permits issued and not yet released, including
// those held by pollers still waiting for a task. It can exceed Limit only
// right after the limit was lowered, until the extra permits are released.
func (s *SlotSupplier) InUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inUse
}

// Running is the number of permits marked used by a running task and not
// yet released: for an agency's activity worker, its calls in flight.
func (s *SlotSupplier) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// ReserveSlot blocks until fewer permits are in use than the limit, then
// issues one. It returns ctx.Err() as soon as ctx is done.
func (s *SlotSupplier) ReserveSlot(ctx context.Context, _ worker.SlotReservationInfo) (*worker.SlotPermit, error) {
	// A condition variable cannot wait on a context; wake every waiter when
	// ctx ends so this one can see it.
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.changed.Broadcast()
	})
	defer stop()

	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inUse >= s.limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.changed.Wait()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.issueLocked(), nil
}

// TryReserveSlot issues a permit if one is free now, and returns nil
// otherwise.
func (s *SlotSupplier) TryReserveSlot(worker.SlotReservationInfo) *worker.SlotPermit {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse >= s.limit {
		return nil
	}
	return s.issueLocked()
}

func (s *SlotSupplier) issueLocked() *worker.SlotPermit {
	s.inUse++
	return &worker.SlotPermit{UserData: &slotPermit{}}
}

// MarkSlotUsed counts the permit as running a task.
func (s *SlotSupplier) MarkSlotUsed(info worker.SlotMarkUsedInfo) {
	p, ok := info.Permit().UserData.(*slotPermit)
	if !ok {
		return // not one of ours
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.used && !p.released {
		p.used = true
		s.running++
	}
}

// ReleaseSlot returns the permit and wakes waiting reservations. Releasing a
// permit twice, or one this supplier did not issue, does nothing.
func (s *SlotSupplier) ReleaseSlot(info worker.SlotReleaseInfo) {
	p, ok := info.Permit().UserData.(*slotPermit)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.released {
		return
	}
	p.released = true
	s.inUse--
	if p.used {
		s.running--
	}
	s.changed.Broadcast()
}

// MaxSlots returns 0: the limit changes at run time, so there is no fixed
// maximum, and the SDK then leaves out its "slots available" gauge rather
// than report one computed from a stale maximum. Limit and InUse give the
// live figures.
func (s *SlotSupplier) MaxSlots() int { return 0 }

// Fixed slot counts for the task kinds an agency worker does not limit
// dynamically.
const (
	tunerWorkflowSlots      = 100
	tunerLocalActivitySlots = 100
	tunerNexusSlots         = 10
	tunerSessionSlots       = 10
)

// NewTuner returns a worker tuner whose activity slots come from activity,
// for worker.Options.Tuner; workflow, local-activity, Nexus and session
// slots are fixed (100, 100, 10, 10). The SDK panics if the worker options
// also set a MaxConcurrent…ExecutionSize, which the tuner replaces.
func NewTuner(activity *SlotSupplier) (worker.WorkerTuner, error) {
	if activity == nil {
		return nil, fmt.Errorf("new tuner: activity slot supplier is nil: accepted a *SlotSupplier")
	}
	fixed := func(n int) (worker.SlotSupplier, error) {
		s, err := worker.NewFixedSizeSlotSupplier(n)
		if err != nil {
			return nil, fmt.Errorf("new tuner: fixed slot supplier of %d: %w", n, err)
		}
		return s, nil
	}
	wf, err := fixed(tunerWorkflowSlots)
	if err != nil {
		return nil, err
	}
	la, err := fixed(tunerLocalActivitySlots)
	if err != nil {
		return nil, err
	}
	nx, err := fixed(tunerNexusSlots)
	if err != nil {
		return nil, err
	}
	ss, err := fixed(tunerSessionSlots)
	if err != nil {
		return nil, err
	}
	t, err := worker.NewCompositeTuner(worker.CompositeTunerOptions{
		ActivitySlotSupplier:        activity,
		WorkflowSlotSupplier:        wf,
		LocalActivitySlotSupplier:   la,
		NexusSlotSupplier:           nx,
		SessionActivitySlotSupplier: ss,
	})
	if err != nil {
		return nil, fmt.Errorf("new tuner: %w", err)
	}
	return t, nil
}
