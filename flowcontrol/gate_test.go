package flowcontrol

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
)

// With a prefetch the pool issues a quarter of its limit in permits beyond
// it (rounded down), so pollers fetch the next tasks while the limit's calls
// run; without one, the permits are the limit.
func TestPrefetchIssuesPermitsBeyondTheLimit(t *testing.T) {
	for _, tc := range []struct {
		limit    int
		prefetch float64
		want     int
	}{
		{8, 0.25, 10}, {20, 0.25, 25}, {3, 0.25, 3}, {0, 0.25, 0}, {8, 0, 8}, {4, 1, 8},
	} {
		s, err := NewPrefetchingSlotSupplier(tc.limit, tc.prefetch)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for s.TryReserveSlot(worker.SlotReservationInfo(nil)) != nil {
			n++
			if n > 100 {
				break
			}
		}
		if n != tc.want {
			t.Errorf("limit %d prefetch %v: %d permits issued, want %d", tc.limit, tc.prefetch, n, tc.want)
		}
	}
	for _, bad := range []float64{-0.1, 1.5} {
		if _, err := NewPrefetchingSlotSupplier(4, bad); err == nil {
			t.Errorf("prefetch %v accepted; want an error naming it", bad)
		}
	}
}

// The limit bounds the calls that pass Enter: the one beyond waits for a
// release, and a cut holds new calls until enough of the old ones ended.
func TestEnterBoundsTheCallsAtTheLimit(t *testing.T) {
	s, err := NewPrefetchingSlotSupplier(4, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var rel []func()
	for range 4 {
		r, err := s.Enter(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		rel = append(rel, r)
	}
	if s.Calling() != 4 || s.InFlight() != 4 || s.Held() != 4 {
		t.Fatalf("calling %d in flight %d held %d, want 4 each", s.Calling(), s.InFlight(), s.Held())
	}
	entered := make(chan func(), 1)
	go func() {
		r, err := s.Enter(ctx, time.Time{})
		if err != nil {
			t.Error(err)
		}
		entered <- r
	}()
	select {
	case <-entered:
		t.Fatal("a fifth call entered under a limit of 4")
	case <-time.After(50 * time.Millisecond):
	}
	s.SetLimit(2)
	if s.Held() != 4 {
		t.Fatalf("held %d after the cut with 4 calls running, want 4", s.Held())
	}
	rel[0]()
	rel[0]() // a second release of the same call does nothing
	rel[1]()
	select {
	case <-entered:
		t.Fatal("a call entered with 2 running under a limit of 2")
	case <-time.After(50 * time.Millisecond):
	}
	rel[2]()
	select {
	case r := <-entered:
		r()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting call did not enter once 1 ran under a limit of 2")
	}
	rel[3]()
	if s.Calling() != 0 {
		t.Fatalf("calling %d at the end, want 0", s.Calling())
	}
}

// A call gives up waiting at notAfter (its budget's last moment to be sent)
// or when its context ends; a limit of 0 admits none.
func TestEnterGivesUp(t *testing.T) {
	s, err := NewPrefetchingSlotSupplier(0, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Enter(context.Background(), start.Add(50*time.Millisecond)); !errors.Is(err, ErrGateClosed) {
		t.Fatalf("err %v, want ErrGateClosed", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("gave up after %s, want at about 50ms", d)
	}
	if _, err := s.Enter(context.Background(), start.Add(-time.Second)); !errors.Is(err, ErrGateClosed) {
		t.Fatalf("err %v with notAfter past, want ErrGateClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	if _, err := s.Enter(ctx, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if s.Calling() != 0 {
		t.Fatalf("calling %d after calls that gave up, want 0", s.Calling())
	}
}

// Under contention and a changing limit no more calls are in than the
// limit (the highest it was since the last cut settled), and none is lost.
func TestEnterUnderContention(t *testing.T) {
	s, err := NewPrefetchingSlotSupplier(3, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	var in, peak, done atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				r, err := s.Enter(context.Background(), time.Time{})
				if err != nil {
					t.Error(err)
					return
				}
				n := in.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(100 * time.Microsecond)
				in.Add(-1)
				r()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 3 || done.Load() != 800 {
		t.Fatalf("peak %d calls in (limit 3), %d done of 800", peak.Load(), done.Load())
	}
}

// Without a prefetch the permits bound the calls and Held counts them, as
// before the gate: a pool whose calls do not all pass Enter keeps its bound.
func TestHeldWithoutPrefetchCountsPermits(t *testing.T) {
	s := NewSlotSupplier(2)
	p := s.TryReserveSlot(worker.SlotReservationInfo(nil))
	_ = s.TryReserveSlot(worker.SlotReservationInfo(nil))
	s.SetLimit(1)
	if s.Held() != 2 {
		t.Fatalf("held %d with 2 permits under a limit of 1, want 2", s.Held())
	}
	release(s, p)
	if s.Held() != 1 {
		t.Fatalf("held %d, want 1", s.Held())
	}
}
