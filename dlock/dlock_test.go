package dlock

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"loanflow/internal/testenv"
)

// newTestLocker returns a Locker whose keys live under this test's own
// prefix, plus the client to inspect Redis with.
func newTestLocker(t testing.TB, o Options) (*Locker, *redis.Client) {
	t.Helper()
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	o.Prefix = prefix + "loanflow:"
	l, err := New(rdb, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, rdb
}

// peer returns a second Locker on the same keys, standing in for another
// worker process.
func peer(t testing.TB, l *Locker, o Options) *Locker {
	t.Helper()
	o.Prefix = l.opts.Prefix
	p, err := New(l.rdb, o)
	if err != nil {
		t.Fatalf("New (peer): %v", err)
	}
	return p
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewValidatesOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer func() { _ = rdb.Close() }()

	l, err := New(rdb, Options{Prefix: "loanflow:"})
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	want := Options{Prefix: "loanflow:", TTL: 10 * time.Second, WaitTimeout: 5 * time.Second, RetryMin: 5 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		FenceTTL: 30 * 24 * time.Hour}
	if l.opts != want {
		t.Fatalf("defaults: got %+v, want %+v", l.opts, want)
	}

	cases := []struct {
		name string
		rdb  redis.UniversalClient
		o    Options
		want []string // substrings the message must contain
	}{
		{"nil client", nil, Options{}, []string{"redis client is nil"}},
		{"negative TTL", rdb, Options{TTL: -time.Second}, []string{"TTL", "-1s", "10ms", "24h"}},
		{"tiny TTL", rdb, Options{TTL: time.Millisecond}, []string{"TTL", "1ms", "10ms"}},
		{"huge WaitTimeout", rdb, Options{WaitTimeout: 2 * time.Hour}, []string{"WaitTimeout", "2h0m0s", "1h0m0s"}},
		{"RetryMin sub-ms", rdb, Options{RetryMin: time.Microsecond}, []string{"RetryMin", "1µs", "1ms"}},
		{"RetryMax too big", rdb, Options{RetryMax: 2 * time.Minute}, []string{"RetryMax", "2m0s", "1m0s"}},
		{"RetryMin above RetryMax", rdb, Options{RetryMin: time.Second, RetryMax: 100 * time.Millisecond}, []string{"RetryMin", "1s", "RetryMax", "100ms"}},
		{"FenceTTL below the lease", rdb, Options{TTL: time.Minute, FenceTTL: 30 * time.Second}, []string{"FenceTTL", "30s", "1m0s"}},
		{"FenceTTL above a year", rdb, Options{FenceTTL: 400 * 24 * time.Hour}, []string{"FenceTTL", "9600h0m0s", "8784h0m0s"}},
		{"brace in Prefix", rdb, Options{Prefix: "loan{flow}:"}, []string{"Prefix", "loan{flow}:", "hash tag"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.rdb, c.o)
			if err == nil {
				t.Fatal("New accepted invalid options")
			}
			msg := err.Error()
			if msg != strings.ToLower(msg[:1])+msg[1:] || strings.HasSuffix(msg, ".") {
				t.Errorf("message should start lower-case and have no final period: %q", msg)
			}
			for _, s := range c.want {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not mention %q", msg, s)
				}
			}
		})
	}
}

func TestKeyLayoutSharesHashTag(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer func() { _ = rdb.Close() }()
	l, err := New(rdb, Options{Prefix: "loanflow:"})
	if err != nil {
		t.Fatal(err)
	}
	k := "customer:C00000001"
	if got := l.lockKey(k); got != "loanflow:lock:{customer:C00000001}" {
		t.Errorf("lock key %q", got)
	}
	if got := l.fenceKey(k); got != "loanflow:fence:{customer:C00000001}" {
		t.Errorf("fence key %q", got)
	}
	if got := l.channel(k); got != "loanflow:released:{customer:C00000001}" {
		t.Errorf("channel %q", got)
	}
	for _, bad := range []string{"", "a{b", "a}b"} {
		if _, err := l.Acquire(context.Background(), bad); err == nil {
			t.Errorf("Acquire(%q) accepted a key that breaks the hash tag", bad)
		}
	}
}

func TestMutualExclusion(t *testing.T) {
	l, _ := newTestLocker(t, Options{TTL: 5 * time.Second, WaitTimeout: 30 * time.Second})
	ctx := ctxT(t)
	const workers, rounds = 50, 10
	key := "customer:C00000001"

	// The counter is read and written in two separate steps, so without
	// mutual exclusion increments get lost. Atomics only keep the race
	// detector quiet: it cannot see the happens-before that Redis provides.
	var counter, holders, maxHolders atomic.Int64
	var mu sync.Mutex
	var fences []int64
	critical := func(lk *Lock) {
		if h := holders.Add(1); h > maxHolders.Load() {
			maxHolders.Store(h)
		}
		v := counter.Load()
		time.Sleep(200 * time.Microsecond)
		counter.Store(v + 1)
		mu.Lock()
		fences = append(fences, lk.Token())
		mu.Unlock()
		holders.Add(-1)
	}

	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				if w%2 == 0 {
					errs <- l.Do(ctx, key, func(_ context.Context, lk *Lock) error { critical(lk); return nil })
					continue
				}
				lk, err := l.Acquire(ctx, key)
				if err != nil {
					errs <- err
					continue
				}
				critical(lk)
				errs <- lk.Release(ctx)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("lock error: %v", err)
		}
	}
	if got := counter.Load(); got != workers*rounds {
		t.Errorf("counter = %d, want %d (lost updates: mutual exclusion broken)", got, workers*rounds)
	}
	if got := maxHolders.Load(); got != 1 {
		t.Errorf("max concurrent holders = %d, want 1", got)
	}
	for i := 1; i < len(fences); i++ {
		if fences[i] <= fences[i-1] {
			t.Fatalf("fencing tokens not strictly increasing in holding order at %d: %d then %d", i, fences[i-1], fences[i])
		}
	}
}

func TestFencingTokensStrictlyIncrease(t *testing.T) {
	l, rdb := newTestLocker(t, Options{TTL: 100 * time.Millisecond})
	other := peer(t, l, Options{TTL: 100 * time.Millisecond})
	ctx := ctxT(t)
	key := "customer:C00000002"

	var last int64
	for i := range 20 {
		lk, err := []*Locker{l, other}[i%2].Acquire(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if lk.Token() <= last {
			t.Fatalf("acquisition %d: token %d after %d", i, lk.Token(), last)
		}
		last = lk.Token()
		if i%5 == 4 {
			time.Sleep(150 * time.Millisecond) // let it expire instead of releasing
			continue
		}
		if err := lk.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The counter outlives the leases by far: it expires only DefaultFenceTTL
	// after its last token.
	if ttl, err := rdb.PTTL(ctx, l.fenceKey(key)).Result(); err != nil || ttl <= DefaultFenceTTL-time.Minute || ttl > DefaultFenceTTL {
		t.Errorf("fence counter PTTL = %v, %v; want about %v", ttl, err, DefaultFenceTTL)
	}
}

func TestReleaseChecksOwner(t *testing.T) {
	l, rdb := newTestLocker(t, Options{})
	ctx := ctxT(t)
	key := "customer:C00000003"

	a, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	// B believes it holds the same key (a stale handle from an earlier
	// lease, say) but its owner token is not the one in Redis.
	b := &Lock{l: l, key: key, owner: newOwner(), lost: make(chan struct{})}
	b.fence.Store(a.Token() - 1)
	if err := b.Release(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("B's release of A's lock: got %v, want ErrLockLost", err)
	}
	if err := b.Extend(ctx, time.Minute); !errors.Is(err, ErrLockLost) {
		t.Fatalf("B's extend of A's lock: got %v, want ErrLockLost", err)
	}
	if _, err := b.RaiseToken(ctx, 1000); !errors.Is(err, ErrLockLost) {
		t.Fatalf("B's raise of A's token: got %v, want ErrLockLost", err)
	}
	if got, _ := rdb.Get(ctx, l.lockKey(key)).Result(); got != a.owner {
		t.Fatalf("after B's release the lock holds %q, want A's token %q", got, a.owner)
	}
	select {
	case <-a.Lost():
		t.Fatal("A's Lost() closed, but A still holds the lock")
	default:
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("A's release: %v", err)
	}
	if err := a.Release(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("A's second release: got %v, want ErrLockLost", err)
	}
}

func TestExtendKeepsLockPastTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	l, _ := newTestLocker(t, Options{TTL: ttl})
	other := peer(t, l, Options{TTL: ttl, WaitTimeout: 50 * time.Millisecond})
	ctx := ctxT(t)
	key := "customer:C00000004"

	a, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 { // 600ms in all, twice the TTL
		time.Sleep(ttl / 3)
		if err := a.Extend(ctx, ttl); err != nil {
			t.Fatalf("extend: %v", err)
		}
	}
	if _, err := other.Acquire(ctx, key); !errors.Is(err, ErrNotAcquired) {
		t.Fatalf("another owner after %v of extensions: got %v, want ErrNotAcquired", 2*ttl, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("release after extensions: %v", err)
	}
}

func TestExpiryLetsAnotherOwnerIn(t *testing.T) {
	const ttl = 200 * time.Millisecond
	l, rdb := newTestLocker(t, Options{TTL: ttl})
	other := peer(t, l, Options{TTL: 10 * time.Second, WaitTimeout: 2 * time.Second})
	ctx := ctxT(t)
	key := "customer:C00000005"

	a, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 150*time.Millisecond)
	b, err := other.Acquire(ctx, key)
	if err != nil {
		t.Fatalf("acquire after A's lease expired: %v", err)
	}
	if b.Token() <= a.Token() {
		t.Errorf("B's token %d not above A's %d", b.Token(), a.Token())
	}
	if err := a.Extend(ctx, ttl); !errors.Is(err, ErrLockLost) {
		t.Errorf("A's extend after expiry: got %v, want ErrLockLost", err)
	}
	if err := a.Release(ctx); !errors.Is(err, ErrLockLost) {
		t.Errorf("A's release after expiry: got %v, want ErrLockLost", err)
	} else if !strings.Contains(err.Error(), key) {
		t.Errorf("error %q does not name the key", err)
	}
	select {
	case <-a.Lost():
	default:
		t.Error("A's Lost() not closed after its release found the lock lost")
	}
	if got, _ := rdb.Get(ctx, l.lockKey(key)).Result(); got != b.owner {
		t.Fatalf("lock holds %q after A's stale release, want B's token %q", got, b.owner)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatalf("B's release: %v", err)
	}
}

func TestWaitTimeout(t *testing.T) {
	const wait = 300 * time.Millisecond
	l, _ := newTestLocker(t, Options{})
	other := peer(t, l, Options{WaitTimeout: wait})
	ctx := ctxT(t)
	key := "customer:C00000006"

	a, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Release(ctx) }()

	start := time.Now()
	_, err = other.Acquire(ctx, key)
	took := time.Since(start)
	if !errors.Is(err, ErrNotAcquired) {
		t.Fatalf("got %v, want ErrNotAcquired", err)
	}
	if !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "waited") {
		t.Errorf("error %q should name the key and the wait", err)
	}
	if took < wait-10*time.Millisecond || took > wait+1500*time.Millisecond {
		t.Errorf("gave up after %v, want about %v", took, wait)
	}

	// A caller's context that ends first wins over WaitTimeout.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = l.Acquire(short, key)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotAcquired) {
		t.Fatalf("with a 100ms ctx: got %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("ctx deadline honoured only after %v", took)
	}
}

func TestDoDetectsLossAndCancelsWork(t *testing.T) {
	const ttl = 300 * time.Millisecond
	l, rdb := newTestLocker(t, Options{TTL: ttl})
	ctx := ctxT(t)
	key := "customer:C00000007"

	started := make(chan *Lock, 1)
	var fnCause error // written by fn, read after Do returns
	done := make(chan error, 1)
	go func() {
		done <- l.Do(ctx, key, func(ctx context.Context, lk *Lock) error {
			started <- lk
			select {
			case <-ctx.Done():
				fnCause = context.Cause(ctx)
				return ctx.Err()
			case <-time.After(5 * time.Second):
				return errors.New("fn was not cancelled after the lock was deleted")
			}
		})
	}()
	lk := <-started
	// Losing the lease behind the holder's back, as an operator's DEL, a
	// failover that lost the write or a long pause past the TTL would.
	deleted := time.Now()
	if err := rdb.Del(ctx, l.lockKey(key)).Err(); err != nil {
		t.Fatal(err)
	}
	err := <-done
	took := time.Since(deleted)
	if !errors.Is(err, ErrLockLost) {
		t.Fatalf("Do: got %v, want ErrLockLost", err)
	}
	if !strings.Contains(err.Error(), key) {
		t.Errorf("error %q does not name the key", err)
	}
	if !errors.Is(fnCause, ErrLockLost) {
		t.Errorf("fn's context cause = %v, want ErrLockLost", fnCause)
	}
	select {
	case <-lk.Lost():
	default:
		t.Error("Lost() not closed")
	}
	if took > 2*time.Second {
		t.Errorf("loss noticed %v after the key was deleted, want within about TTL/3 (%v)", took, ttl/3)
	}
	t.Logf("loss noticed %v after deletion: %v", took.Round(time.Millisecond), err)
}

func TestDoKeepsLeaseAndReleases(t *testing.T) {
	const ttl = 300 * time.Millisecond
	l, rdb := newTestLocker(t, Options{TTL: ttl})
	other := peer(t, l, Options{WaitTimeout: 50 * time.Millisecond})
	ctx := ctxT(t)
	key := "customer:C00000009"

	err := l.Do(ctx, key, func(ctx context.Context, lk *Lock) error {
		time.Sleep(3 * ttl) // well past the first lease
		if _, err := other.Acquire(ctx, key); !errors.Is(err, ErrNotAcquired) {
			t.Errorf("another owner during Do: got %v, want ErrNotAcquired", err)
		}
		return ctx.Err()
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if n, _ := rdb.Exists(ctx, l.lockKey(key)).Result(); n != 0 {
		t.Fatal("lock still present after Do returned")
	}

	errWork := errors.New("disbursement rejected")
	if err := l.Do(ctx, key, func(context.Context, *Lock) error { return errWork }); !errors.Is(err, errWork) {
		t.Fatalf("Do: got %v, want fn's error", err)
	}
	if n, _ := rdb.Exists(ctx, l.lockKey(key)).Result(); n != 0 {
		t.Fatal("lock still present after fn failed")
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic in fn was swallowed")
			}
		}()
		_ = l.Do(ctx, key, func(context.Context, *Lock) error { panic("boom") })
	}()
	if n, _ := rdb.Exists(ctx, l.lockKey(key)).Result(); n != 0 {
		t.Fatal("lock still present after fn panicked")
	}
}

func TestDoLeavesNoGoroutines(t *testing.T) {
	// Short enough that each Do sees two extension ticks. On a loaded
	// machine a slow round trip can still cost the lease: Do then ends with
	// ErrLockLost, which must leave no goroutine behind either.
	l, _ := newTestLocker(t, Options{TTL: 90 * time.Millisecond})
	ctx := ctxT(t)
	key := "customer:C00000010"
	lost := 0
	run := func() {
		err := l.Do(ctx, key, func(context.Context, *Lock) error {
			time.Sleep(65 * time.Millisecond)
			return nil
		})
		switch {
		case errors.Is(err, ErrLockLost):
			lost++
		case err != nil:
			t.Fatal(err)
		}
	}
	run() // warm the connection pool
	before := runtime.NumGoroutine()
	for range 15 {
		run()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines: %d before, %d after 15 Do calls (%d lost their lease)", before, after, lost)
	}
	if lost > 0 {
		t.Logf("%d of 16 Do calls lost their 90 ms lease (a slow machine)", lost)
	}
}

func TestReleaseWakesWaiterThroughPubSub(t *testing.T) {
	// With the backoff pinned at 2s, a waiter that only polled would get
	// the lock about 1.7s after the release below; pub/sub must beat that
	// by a wide margin.
	l, _ := newTestLocker(t, Options{})
	waiter := peer(t, l, Options{WaitTimeout: 10 * time.Second, RetryMin: 2 * time.Second, RetryMax: 2 * time.Second})
	ctx := ctxT(t)
	key := "customer:C00000011"

	a, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		lk  *Lock
		at  time.Time
		err error
	}
	got := make(chan result, 1)
	go func() {
		lk, err := waiter.Acquire(ctx, key)
		got <- result{lk, time.Now(), err}
	}()
	time.Sleep(300 * time.Millisecond) // let the waiter subscribe and start its 2s pause
	released := time.Now()
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("waiter: %v", r.err)
	}
	defer func() { _ = r.lk.Release(ctx) }()
	if lag := r.at.Sub(released); lag > 500*time.Millisecond {
		t.Fatalf("waiter got the lock %v after the release; pub/sub wake-up should take milliseconds", lag)
	} else {
		t.Logf("waiter acquired %v after release (backoff alone would take ~1.7s)", lag)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	l, _ := newTestLocker(b, Options{})
	ctx := context.Background()
	key := "customer:bench"
	b.ReportAllocs()
	for b.Loop() {
		lk, err := l.Acquire(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		if err := lk.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// RaiseToken floors the counter: the holder's token and every later one are
// above the floor, even after the counter key was lost.
func TestRaiseTokenFloorsTheCounter(t *testing.T) {
	l, rdb := newTestLocker(t, Options{})
	ctx := ctxT(t)
	key := "customer:C00000004"
	a, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, l.fenceKey(key)).Err(); err != nil { // Redis lost the counter
		t.Fatal(err)
	}
	got, err := a.RaiseToken(ctx, 500)
	if err != nil || got != 501 || a.Token() != 501 {
		t.Fatalf("RaiseToken(500) = %d, %v; token %d; want 501", got, err, a.Token())
	}
	if got, err := a.RaiseToken(ctx, 10); err != nil || got != 502 {
		t.Fatalf("RaiseToken below the counter = %d, %v; want 502", got, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Release(ctx) }()
	if b.Token() != 503 {
		t.Fatalf("next acquisition drew %d, want 503", b.Token())
	}
}

// A fencing counter expires FenceTTL after the last token drawn from it,
// whether by an acquisition or a raise, so idle keys leave Redis; a key
// locked again after that starts over at 1, which a fencing store floors
// with RaiseToken (see TestRaiseTokenFloorsTheCounter, and the ledger's
// fence-reset test).
func TestFenceCounterExpiresAfterItsLastToken(t *testing.T) {
	const fenceTTL = time.Hour
	l, rdb := newTestLocker(t, Options{FenceTTL: fenceTTL})
	ctx := ctxT(t)
	key := "customer:C00000005"
	pttl := func(what string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, l.fenceKey(key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d <= fenceTTL-time.Minute || d > fenceTTL {
			t.Fatalf("%s: the fence key's TTL is %v, want about %v (a negative one means none or no key)", what, d, fenceTTL)
		}
		return d
	}
	a, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	pttl("after an acquisition")
	// Shorten it by hand: the next token must set it back to the whole TTL.
	if err := rdb.PExpire(ctx, l.fenceKey(key), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RaiseToken(ctx, 100); err != nil {
		t.Fatal(err)
	}
	pttl("after a raise")
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.PExpire(ctx, l.fenceKey(key), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	b, err := l.Acquire(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Release(ctx) }()
	pttl("after the next acquisition")
	if b.Token() != 102 {
		t.Fatalf("next acquisition drew %d, want 102: the counter carries on while it lives", b.Token())
	}
}
