package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
)

var _ worker.SlotSupplier = (*SlotSupplier)(nil)

// The SDK's info types have unexported parts; embedding the interfaces
// satisfies them, and the supplier only ever calls Permit.
type usedInfo struct {
	worker.SlotMarkUsedInfo
	p *worker.SlotPermit
}

func (u usedInfo) Permit() *worker.SlotPermit { return u.p }

type releaseInfo struct {
	worker.SlotReleaseInfo
	p *worker.SlotPermit
}

func (r releaseInfo) Permit() *worker.SlotPermit { return r.p }

func release(s *SlotSupplier, p *worker.SlotPermit) { s.ReleaseSlot(releaseInfo{p: p}) }

// reserveAsync starts n reservations, each delivering its permit on the
// returned channel.
func reserveAsync(ctx context.Context, s *SlotSupplier, n int) <-chan *worker.SlotPermit {
	ch := make(chan *worker.SlotPermit, n)
	for range n {
		go func() {
			if p, err := s.ReserveSlot(ctx, nil); err == nil {
				ch <- p
			}
		}()
	}
	return ch
}

// receive waits for n permits from ch.
func receive(t *testing.T, ch <-chan *worker.SlotPermit, n int, what string) []*worker.SlotPermit {
	t.Helper()
	var got []*worker.SlotPermit
	timeout := time.After(2 * time.Second)
	for len(got) < n {
		select {
		case p := <-ch:
			got = append(got, p)
		case <-timeout:
			t.Fatalf("%s: %d permits within 2s, want %d", what, len(got), n)
		}
	}
	return got
}

// none checks that ch delivers nothing for a while.
func none(t *testing.T, ch <-chan *worker.SlotPermit, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: got a permit, want the reservation to block", what)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestSlotSupplierLimitChangesWithoutRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := NewSlotSupplier(5)
	held := receive(t, reserveAsync(ctx, s, 5), 5, "limit 5")
	if s.TryReserveSlot(nil) != nil {
		t.Fatal("TryReserveSlot issued a 6th permit at limit 5")
	}
	waiting := reserveAsync(ctx, s, 4)
	none(t, waiting, "6th reservation at limit 5")

	// Raising to 8 admits exactly three of the four waiters.
	s.SetLimit(8)
	held = append(held, receive(t, waiting, 3, "after SetLimit(8)")...)
	none(t, waiting, "9th reservation at limit 8")
	if s.InUse() != 8 {
		t.Fatalf("InUse = %d after SetLimit(8), want 8", s.InUse())
	}

	// Lowering to 2: the held permits stay valid, and the last waiter gets
	// one only once fewer than 2 are in use.
	s.SetLimit(2)
	if s.Limit() != 2 || s.InUse() != 8 {
		t.Fatalf("after SetLimit(2): limit %d, in use %d; want 2 and 8", s.Limit(), s.InUse())
	}
	for len(held) > 1 {
		none(t, waiting, fmt.Sprintf("%d in use at limit 2", s.InUse()))
		release(s, held[0])
		held = held[1:]
	}
	held = append(held, receive(t, waiting, 1, "1 in use at limit 2")...)
	for _, p := range held {
		release(s, p)
	}
	if s.InUse() != 0 {
		t.Fatalf("InUse = %d after releasing everything, want 0", s.InUse())
	}
}

func TestSlotSupplierRunningCountsUsedPermits(t *testing.T) {
	s := NewSlotSupplier(3)
	a, b := s.TryReserveSlot(nil), s.TryReserveSlot(nil)
	s.MarkSlotUsed(usedInfo{p: a})
	s.MarkSlotUsed(usedInfo{p: a}) // twice is once
	if s.InUse() != 2 || s.Running() != 1 {
		t.Fatalf("in use %d running %d, want 2 and 1", s.InUse(), s.Running())
	}
	release(s, a)
	release(s, a) // a double release must not free a second slot
	release(s, b)
	if s.InUse() != 0 || s.Running() != 0 {
		t.Fatalf("in use %d running %d after release, want 0 and 0", s.InUse(), s.Running())
	}
	if s.MaxSlots() != 0 {
		t.Fatalf("MaxSlots = %d, want 0", s.MaxSlots())
	}
}

func TestSlotSupplierReserveHonoursContext(t *testing.T) {
	s := NewSlotSupplier(0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.ReserveSlot(ctx, nil)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ReserveSlot returned %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("ReserveSlot returned %s after cancel, want promptly", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ReserveSlot did not return within 2s of cancel")
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer dcancel()
	if _, err := s.ReserveSlot(dctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReserveSlot past deadline returned %v, want context.DeadlineExceeded", err)
	}
	if s.InUse() != 0 {
		t.Fatalf("InUse = %d after cancelled reservations, want 0", s.InUse())
	}
}

// TestSlotSupplierNeverExceedsLimit hammers the supplier from 200 goroutines
// while the limit changes at random. After a change, in-use may stay above a
// lower limit only while the permits issued before it drain: it must never
// grow while at or above the limit, and never exceed the limit once it has
// dropped below it.
func TestSlotSupplierNeverExceedsLimit(t *testing.T) {
	const maxLimit = 30
	s := NewSlotSupplier(10)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()

	var held, maxHeld, issued atomic.Int64
	var wg sync.WaitGroup
	for g := range 200 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for ctx.Err() == nil {
				var p *worker.SlotPermit
				if rng.IntN(4) == 0 {
					if p = s.TryReserveSlot(nil); p == nil {
						time.Sleep(50 * time.Microsecond)
						continue
					}
				} else {
					var err error
					if p, err = s.ReserveSlot(ctx, nil); err != nil {
						return
					}
				}
				n := held.Add(1)
				for m := maxHeld.Load(); n > m && !maxHeld.CompareAndSwap(m, n); m = maxHeld.Load() {
				}
				issued.Add(1)
				s.MarkSlotUsed(usedInfo{p: p})
				time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
				held.Add(-1)
				release(s, p)
			}
		})
	}

	var violations []string
	rng := rand.New(rand.NewPCG(99, 1))
	for ctx.Err() == nil {
		s.SetLimit(rng.IntN(maxLimit + 1))
		s.mu.Lock()
		prev, below := s.inUse, s.inUse < s.limit
		s.mu.Unlock()
		for end := time.Now().Add(time.Duration(1+rng.IntN(5)) * time.Millisecond); time.Now().Before(end); {
			s.mu.Lock()
			cur, lim := s.inUse, s.limit
			s.mu.Unlock()
			switch {
			case below && cur > lim:
				violations = append(violations, fmt.Sprintf("in use %d > limit %d after dropping below it", cur, lim))
			case !below && cur > prev:
				violations = append(violations, fmt.Sprintf("in use grew %d→%d while at or above limit %d", prev, cur, lim))
			}
			below = below || cur < lim
			prev = cur
			time.Sleep(20 * time.Microsecond)
		}
	}
	wg.Wait()
	if len(violations) > 0 {
		t.Fatalf("%d violations, first: %s", len(violations), violations[0])
	}
	if m := maxHeld.Load(); m > maxLimit {
		t.Fatalf("%d permits held at once, above the largest limit set (%d)", m, maxLimit)
	}
	if s.InUse() != 0 || s.Running() != 0 {
		t.Fatalf("in use %d running %d at the end, want 0 and 0", s.InUse(), s.Running())
	}
	if issued.Load() < 1000 {
		t.Fatalf("only %d permits issued; the test did not exercise the supplier", issued.Load())
	}
	t.Logf("%d permits issued, at most %d held at once", issued.Load(), maxHeld.Load())
}
