package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
//
// With a prefetch (NewPrefetchingSlotSupplier) the limit bounds the calls
// at the agency, not the tasks: a few permits more than the limit let the
// pollers fetch the next tasks while the limit's calls are running, and each
// call passes Enter, which holds it until fewer than the limit are at the
// agency. Without it, every permit held by a poller in its round trip, or by
// a task reporting its result, is a call the agency does not get.
type SlotSupplier struct {
	mu       sync.Mutex
	changed  *sync.Cond // broadcast when a permit or a call ends, or the limit changes
	limit    int
	prefetch float64 // extra permits, as a fraction of the limit
	inUse    int
	running  int
	calling  int
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

// DefaultPrefetch is the workers' prefetch: a quarter of the limit in
// permits beyond it, enough for the pollers' round trips and the results'
// reports to overlap the calls when those take up to a fifth of a call's
// time, and few enough that the calls waiting for a slot wait a fraction of
// one call.
const DefaultPrefetch = 0.25

// NewPrefetchingSlotSupplier returns a supplier whose limit bounds the calls
// that pass Enter, and which issues floor(prefetch × limit) permits beyond
// it, so that tasks are fetched ahead of the calls that end. Every call made
// under its permits must pass Enter: the permits alone no longer bound them.
// prefetch is 0 to 1.
func NewPrefetchingSlotSupplier(limit int, prefetch float64) (*SlotSupplier, error) {
	if !(prefetch >= 0 && prefetch <= 1) {
		return nil, fmt.Errorf("new slot supplier: prefetch %v: accepted 0 to 1", prefetch)
	}
	s := NewSlotSupplier(limit)
	s.prefetch = prefetch
	return s, nil
}

// permitsLocked is how many permits may be issued at once.
func (s *SlotSupplier) permitsLocked() int {
	return s.limit + int(s.prefetch*float64(s.limit))
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
	for s.inUse >= s.permitsLocked() {
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
	if s.inUse >= s.permitsLocked() {
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

// ErrGateClosed is returned by Enter when its notAfter passes first.
var ErrGateClosed = errors.New("no call slot free in time")

// Enter waits until fewer calls than the limit have entered and not yet
// left, then counts this one; release, called once the call is over, lets
// the next one in. It gives up with ErrGateClosed once notAfter has passed
// (a zero notAfter waits for ctx alone), and with ctx.Err() when ctx ends.
// Without a prefetch the permits bound the calls too; Enter then only holds
// a call fetched before a cut until the calls are below the new limit.
func (s *SlotSupplier) Enter(ctx context.Context, notAfter time.Time) (release func(), err error) {
	wake := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.changed.Broadcast()
	}
	stop := context.AfterFunc(ctx, wake)
	defer stop()
	if !notAfter.IsZero() {
		t := time.AfterFunc(time.Until(notAfter), wake)
		defer t.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.calling >= s.limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !notAfter.IsZero() && !time.Now().Before(notAfter) {
			return nil, ErrGateClosed
		}
		s.changed.Wait()
	}
	s.calling++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calling--
		s.changed.Broadcast()
	}), nil
}

// InFlight is the number of calls at the agency: those that entered, with a
// prefetch, and the running tasks without one.
func (s *SlotSupplier) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prefetch > 0 {
		return s.calling
	}
	return s.running
}

// Held is what this supplier may have at the agency before its limit next
// changes: its limit, or more while the calls (with a prefetch; the permits
// without one) admitted under a higher limit are still running.
func (s *SlotSupplier) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prefetch > 0 {
		return max(s.limit, s.calling)
	}
	return max(s.limit, s.inUse)
}

// Calling is the number of calls that entered and have not left.
func (s *SlotSupplier) Calling() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calling
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

// Gates are the agency workers' slot suppliers, by agency, as the gate
// every agency call passes (activities.AgencyGate). An agency without a
// supplier has no gate.
type Gates map[string]*SlotSupplier

// Enter is the agency's supplier's Enter.
func (g Gates) Enter(ctx context.Context, agencyName string, notAfter time.Time) (func(), error) {
	s, ok := g[agencyName]
	if !ok {
		return func() {}, nil
	}
	return s.Enter(ctx, notAfter)
}
