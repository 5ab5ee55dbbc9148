package flowcontrol

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/worker"

	"loanflow/internal/testenv"
)

const (
	testHeartbeat = 100 * time.Millisecond
	testTTL       = 500 * time.Millisecond
	testAgency    = "kcb"
)

// member is one simulated worker process.
type member struct {
	m      *Membership
	s      *SlotSupplier
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	err    error         // Run's result, once done is closed
}

// stop ends the member's Run; crash leaves its registration behind.
func (w *member) stop(t *testing.T, crash bool) {
	t.Helper()
	w.m.skipDeregister = crash
	w.cancel()
	<-w.done
	if w.err != nil {
		t.Fatalf("run: %v", w.err)
	}
}

func startMember(t *testing.T, rdb redis.UniversalClient, prefix, id string, defaults map[string]int) *member {
	t.Helper()
	return startMemberBeating(t, rdb, prefix, id, defaults, testHeartbeat, testTTL)
}

// startMemberBeating starts a member with its own heartbeat and TTL.
func startMemberBeating(t *testing.T, rdb redis.UniversalClient, prefix, id string, defaults map[string]int, heartbeat, ttl time.Duration) *member {
	t.Helper()
	return startMemberWith(t, rdb, prefix, id, NewSlotSupplier(1), defaults, heartbeat, ttl)
}

// startMemberWith is startMemberBeating with the worker's own supplier.
func startMemberWith(t *testing.T, rdb redis.UniversalClient, prefix, id string, s *SlotSupplier, defaults map[string]int, heartbeat, ttl time.Duration) *member {
	t.Helper()
	m, err := NewMembership(rdb, MembershipOptions{Prefix: prefix, WorkerID: id, TTL: ttl, Heartbeat: heartbeat,
		RotateEvery: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, map[string]*SlotSupplier{testAgency: s}, defaults)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &member{m: m, s: s, cancel: cancel, done: make(chan struct{})}
	go func() {
		w.err = m.Run(ctx)
		close(w.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// eventually polls cond until it holds or timeout passes, and returns how
// long it took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func limits(ws []*member) []int {
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = w.s.Limit()
	}
	return out
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestMembershipSharesSumToGlobalLimit(t *testing.T) {
	testenv.Short(t)
	for _, tc := range []struct {
		workers int
		want    []int // shares in worker-id order
	}{
		{1, []int{10}},
		{2, []int{5, 5}},
		{3, []int{4, 3, 3}},
	} {
		t.Run(fmt.Sprintf("%d workers", tc.workers), func(t *testing.T) {
			rdb, prefix := testenv.Redis(t)
			ctx := context.Background()
			if err := WriteLimits(ctx, rdb, prefix, map[string]int{testAgency: 10}); err != nil {
				t.Fatal(err)
			}
			var ws []*member
			for i := range tc.workers {
				ws = append(ws, startMember(t, rdb, prefix, fmt.Sprintf("worker-%d", i), nil))
			}
			eventually(t, 2*time.Second, fmt.Sprintf("shares %v", tc.want), func() bool {
				return slices.Equal(limits(ws), tc.want)
			})
			if got := sum(limits(ws)); got != 10 {
				t.Fatalf("shares %v sum to %d, want 10", limits(ws), got)
			}
		})
	}
}

func TestMembershipNewLimitReachesSuppliersWithinTwoHeartbeats(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	ws := []*member{
		startMember(t, rdb, prefix, "a", map[string]int{testAgency: 6}),
		startMember(t, rdb, prefix, "b", map[string]int{testAgency: 6}),
	}
	// Without a limit in Redis the default is shared.
	eventually(t, 2*time.Second, "default 6 shared as 3+3", func() bool { return slices.Equal(limits(ws), []int{3, 3}) })

	if err := WriteLimits(ctx, rdb, prefix, map[string]int{testAgency: 21}); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 2*testHeartbeat+50*time.Millisecond, "limit 21 shared as 11+10",
		func() bool { return slices.Equal(limits(ws), []int{11, 10}) })
	t.Logf("new limit reached both suppliers in %s (heartbeat %s)", took.Round(time.Millisecond), testHeartbeat)

	got, err := ReadLimits(ctx, rdb, prefix, []string{testAgency, "nice"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{testAgency: 21}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ReadLimits = %v, want %v (nice absent)", got, want)
	}
}

func TestMembershipCrashedWorkerShareReturnsWithinTTL(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	if err := WriteLimits(context.Background(), rdb, prefix, map[string]int{testAgency: 9}); err != nil {
		t.Fatal(err)
	}
	a := startMember(t, rdb, prefix, "a", nil)
	b := startMember(t, rdb, prefix, "b", nil)
	c := startMember(t, rdb, prefix, "c", nil)
	eventually(t, 2*time.Second, "3+3+3", func() bool { return slices.Equal(limits([]*member{a, b, c}), []int{3, 3, 3}) })

	// A crash leaves the registration until it expires.
	c.stop(t, true)
	time.Sleep(2 * testHeartbeat)
	if got := limits([]*member{a, b}); !slices.Equal(got, []int{3, 3}) {
		t.Fatalf("right after the crash: shares %v, want [3 3] until the TTL passes", got)
	}
	took := eventually(t, testTTL+2*testHeartbeat, "5+4 after the crash", func() bool {
		return slices.Equal(limits([]*member{a, b}), []int{5, 4})
	})
	t.Logf("crashed worker's share returned in %s (TTL %s, heartbeat %s)", (took + 2*testHeartbeat).Round(time.Millisecond), testTTL, testHeartbeat)

	// A clean stop gives the share back on the others' next heartbeat.
	b.stop(t, false)
	eventually(t, 2*testHeartbeat+50*time.Millisecond, "9 after a clean stop", func() bool { return a.s.Limit() == 9 })
}

func TestMembershipShareMayBeZeroBelowOnePerWorker(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	if err := WriteLimits(context.Background(), rdb, prefix, map[string]int{testAgency: 2}); err != nil {
		t.Fatal(err)
	}
	ws := []*member{startMember(t, rdb, prefix, "a", nil), startMember(t, rdb, prefix, "b", nil), startMember(t, rdb, prefix, "c", nil)}
	// 2 over 3 workers: 1, 1, 0 in id order (rotation off); the sum is the bound.
	eventually(t, 2*time.Second, "1+1+0", func() bool { return slices.Equal(limits(ws), []int{1, 1, 0}) })
}

func TestReadInFlightSumsLiveWorkers(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	if err := WriteLimits(ctx, rdb, prefix, map[string]int{testAgency: 10}); err != nil {
		t.Fatal(err)
	}
	a := startMember(t, rdb, prefix, "a", nil)
	b := startMember(t, rdb, prefix, "b", nil)
	eventually(t, 2*time.Second, "5+5", func() bool { return slices.Equal(limits([]*member{a, b}), []int{5, 5}) })
	run := func(s *SlotSupplier, n int) {
		for range n {
			p := s.TryReserveSlot(nil)
			if p == nil {
				t.Fatal("no permit")
			}
			s.MarkSlotUsed(usedInfo{p: p})
		}
	}
	run(a.s, 3)
	run(b.s, 4)
	eventually(t, 2*time.Second, "in flight 7", func() bool {
		n, err := ReadInFlight(ctx, rdb, prefix, testAgency)
		return err == nil && n == 7
	})
	// A crashed worker's calls stop counting once its registration expires.
	b.stop(t, true)
	eventually(t, testTTL+2*testHeartbeat, "in flight 3 after the crash", func() bool {
		n, err := ReadInFlight(ctx, rdb, prefix, testAgency)
		return err == nil && n == 3
	})
	if n, err := ReadInFlight(ctx, rdb, prefix, "nice"); err != nil || n != 0 {
		t.Fatalf("ReadInFlight of an agency without workers = %d, %v; want 0, nil", n, err)
	}
}

func TestMembershipOptionsValidated(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer func() { _ = rdb.Close() }()
	sup := map[string]*SlotSupplier{testAgency: NewSlotSupplier(1)}
	for _, tc := range []struct {
		name string
		opts MembershipOptions
		sup  map[string]*SlotSupplier
		def  map[string]int
		want string
	}{
		{"no worker id", MembershipOptions{}, sup, nil, "worker id is empty"},
		{"brace in prefix", MembershipOptions{WorkerID: "w", Prefix: "a{b}:"}, sup, nil, `prefix "a{b}:"`},
		{"ttl below heartbeat", MembershipOptions{WorkerID: "w", TTL: time.Second, Heartbeat: 2 * time.Second}, sup, nil, "ttl 1s"},
		{"no suppliers", MembershipOptions{WorkerID: "w"}, nil, nil, "no slot suppliers"},
		{"bad agency", MembershipOptions{WorkerID: "w"}, map[string]*SlotSupplier{"k{x}": NewSlotSupplier(1)}, nil, `agency name "k{x}"`},
		{"bad default", MembershipOptions{WorkerID: "w"}, sup, map[string]int{testAgency: 0}, "default limit 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMembership(rdb, tc.opts, tc.sup, tc.def)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewMembership error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestMembershipHandOffNeedsNoHeartbeat cuts a limit shared by two workers
// whose heartbeats are an hour apart, while each runs calls under its old
// share. The cut is announced, so both beat at once; each is left at 0
// (the other's claim still covers its old share) and beats again every
// 100 ms; as each worker's calls end, the permits they free go to the
// shares, with the sum of the limits never above the new limit. Before
// the announcement and the quick re-beats, nothing changed until the
// next heartbeat, and a limit cut from 4 to 2 left both workers at 0 for
// up to two heartbeats.
func TestMembershipHandOffNeedsNoHeartbeat(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	if err := WriteLimits(ctx, rdb, prefix, map[string]int{testAgency: 4}); err != nil {
		t.Fatal(err)
	}
	ws := []*member{
		startMemberBeating(t, rdb, prefix, "a", nil, time.Hour, 2*time.Hour),
		startMemberBeating(t, rdb, prefix, "b", nil, time.Hour, 2*time.Hour),
	}
	// b's first beat sees a's claim: both hold their share of 4 at once.
	eventually(t, 5*time.Second, "limit 4 shared as 2+2", func() bool { return slices.Equal(limits(ws), []int{2, 2}) })
	// Each worker runs two calls.
	permits := make([][]*worker.SlotPermit, len(ws))
	for i, w := range ws {
		for range 2 {
			p := w.s.TryReserveSlot(nil)
			if p == nil {
				t.Fatalf("worker %d: no permit free at limit %d", i, w.s.Limit())
			}
			permits[i] = append(permits[i], p)
		}
	}

	if err := WriteLimits(ctx, rdb, prefix, map[string]int{testAgency: 2}); err != nil {
		t.Fatal(err)
	}
	// The announcement reaches both: neither may issue a permit while the
	// other still claims its old share.
	eventually(t, 5*time.Second, "both held at 0 while the calls under the old limit run", func() bool {
		return slices.Equal(limits(ws), []int{0, 0})
	})
	// One call ends at each worker: the two left are the new limit, and
	// each worker gets its share of 1 without waiting for a heartbeat.
	for i, w := range ws {
		release(w.s, permits[i][0])
	}
	took := eventually(t, 5*time.Second, "limit 2 shared as 1+1", func() bool {
		if got := sum(limits(ws)); got > 2 {
			t.Fatalf("limits %v sum to %d, above the limit 2", limits(ws), got)
		}
		return slices.Equal(limits(ws), []int{1, 1})
	})
	t.Logf("hand-off done %s after the calls ended (heartbeat 1h)", took.Round(time.Millisecond))
	for i, w := range ws {
		release(w.s, permits[i][1])
	}
}

// TestWriteLimitsAnnouncesOnlyChanges: a limit written again unchanged
// (the controller writes every period) wakes no worker.
func TestWriteLimitsAnnouncesOnlyChanges(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	sub := rdb.Subscribe(ctx, changedChannel(prefix, testAgency), changedChannel(prefix, "nice"))
	defer func() { _ = sub.Close() }()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range []map[string]int{{testAgency: 5}, {testAgency: 5, "nice": 3}, {testAgency: 6, "nice": 3}} {
		if err := WriteLimits(ctx, rdb, prefix, l); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 3 {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		msg, err := sub.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, strings.TrimPrefix(msg.Channel, prefix)+"="+msg.Payload)
	}
	want := []string{"limit-changed:{kcb}=5", "limit-changed:{nice}=3", "limit-changed:{kcb}=6"}
	if !slices.Equal(got, want) {
		t.Fatalf("announcements %v, want %v", got, want)
	}
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if msg, err := sub.ReceiveMessage(rctx); err == nil {
		t.Fatalf("unexpected announcement %s=%s", msg.Channel, msg.Payload)
	}
}

// TestMembershipBoundsPrefetchedCalls: with a prefetch each worker holds
// more permits than its limit, and the claims are the calls at the agency:
// a cut holds every worker's next call until the calls across the fleet are
// below the new limit, however many tasks were fetched ahead.
func TestMembershipBoundsPrefetchedCalls(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	if err := WriteLimits(ctx, rdb, prefix, map[string]int{testAgency: 8}); err != nil {
		t.Fatal(err)
	}
	var ws []*member
	for _, id := range []string{"a", "b"} {
		s, err := NewPrefetchingSlotSupplier(0, 0.25)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, startMemberWith(t, rdb, prefix, id, s, nil, time.Hour, 2*time.Hour))
	}
	eventually(t, 5*time.Second, "limit 8 shared as 4+4", func() bool { return slices.Equal(limits(ws), []int{4, 4}) })
	calls := make([][]func(), len(ws))
	var permits []func()
	defer func() {
		for _, r := range permits {
			r() // the tasks end: the workers may leave
		}
	}()
	for i, w := range ws {
		for range 5 { // four calls and a task fetched ahead
			p := w.s.TryReserveSlot(nil)
			if p == nil {
				t.Fatalf("worker %d: no permit free for a prefetched task at limit %d", i, w.s.Limit())
			}
			permits = append(permits, func() { release(w.s, p) })
		}
		for range 4 {
			r, err := w.s.Enter(ctx, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			calls[i] = append(calls[i], r)
		}
	}
	if err := WriteLimits(ctx, rdb, prefix, map[string]int{testAgency: 4}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "both held at 0 while the 8 calls run", func() bool {
		return slices.Equal(limits(ws), []int{0, 0})
	})
	// Each worker's prefetched task waits for a call slot.
	var entered atomic.Int64
	for _, w := range ws {
		go func() {
			r, err := w.s.Enter(ctx, time.Now().Add(10*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			entered.Add(1)
			r()
		}()
	}
	calling := func() int { return ws[0].s.Calling() + ws[1].s.Calling() }
	// Two calls end at each worker: 4 run, the new limit; shares 2+2, and
	// no waiting task may enter.
	for i := range ws {
		calls[i][0]()
		calls[i][1]()
	}
	eventually(t, 5*time.Second, "limit 4 shared as 2+2", func() bool { return slices.Equal(limits(ws), []int{2, 2}) })
	time.Sleep(50 * time.Millisecond)
	if entered.Load() != 0 || calling() != 4 {
		t.Fatalf("%d prefetched tasks entered, %d calls in; want 0 entered, 4 in (the limit)", entered.Load(), calling())
	}
	// One more ends at each: each waiting task takes its slot.
	for i := range ws {
		calls[i][2]()
	}
	eventually(t, 5*time.Second, "both prefetched tasks entered", func() bool {
		if calling() > 4 {
			t.Fatalf("%d calls in, above the limit 4", calling())
		}
		return entered.Load() == 2
	})
	for i := range ws {
		calls[i][3]()
	}
}
