// Package dlock is a per-key distributed lock in Redis. loanflow takes it
// around a customer's disbursement so that two approved applications for the
// same customer are executed one after the other.
//
// The lock is a lease: it expires after Options.TTL unless extended, so a
// crashed holder cannot block a customer forever. A lease can also be lost
// while the holder still runs (a long GC pause, a network partition), which
// is why every acquisition carries a fencing token that only ever grows per
// key; the Postgres optimistic-lock check behind this lock is the real
// guarantee against lost updates, and the lock keeps it from being the
// common path.
//
// Keys, for Prefix "loanflow:" and key "customer:C00000001":
//
//	loanflow:lock:{customer:C00000001}      owner token, PX = TTL
//	loanflow:fence:{customer:C00000001}     fencing counter, PX = FenceTTL from its last token
//	loanflow:released:{customer:C00000001}  pub/sub channel, one message per release
//
// The braces are a Redis Cluster hash tag: the lock and fence keys, which one
// script touches together, always live in the same slot.
//
// A fencing counter expires FenceTTL after the last token drawn from it, so
// Redis does not keep one key for every customer who ever borrowed. A key
// locked again after that starts its tokens from 1, as after Redis lost its
// data: a store that fences writes with the tokens keeps the highest it has
// seen and calls Lock.RaiseToken with it when a token is not above it (the
// ledger does), so the tokens it accepts still only grow.
package dlock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotAcquired is returned by Acquire and Do when another owner held the
// lock for the whole wait. It is wrapped with the key and the time waited.
var ErrNotAcquired = errors.New("lock not acquired: held by another owner")

// ErrLockLost is returned when the caller no longer owns a lock it thinks it
// holds: the lease expired, or the key was deleted or taken by someone else.
var ErrLockLost = errors.New("lock lost: no longer held by this owner")

// Default option values, applied where Options leaves a field zero.
const (
	DefaultTTL         = 10 * time.Second
	DefaultWaitTimeout = 5 * time.Second
	DefaultRetryMin    = 5 * time.Millisecond
	DefaultRetryMax    = 200 * time.Millisecond
	DefaultFenceTTL    = 30 * 24 * time.Hour
)

// Accepted option ranges. PX has millisecond resolution, so nothing shorter
// than a millisecond means anything to Redis.
const (
	minTTL         = 10 * time.Millisecond
	maxTTL         = 24 * time.Hour
	minWaitTimeout = time.Millisecond
	maxWaitTimeout = time.Hour
	minRetry       = time.Millisecond
	maxRetry       = time.Minute
	maxFenceTTL    = 366 * 24 * time.Hour
)

// acquireScript takes the lock and draws the next fencing token in one step,
// so a token is never handed out without the lock or the other way round.
// KEYS[1] lock, KEYS[2] fence; ARGV[1] owner token, ARGV[2] TTL in ms,
// ARGV[3] the fence's TTL in ms. Returns the fencing token (>= 1), or 0 if
// someone else holds the lock.
var acquireScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local t = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return t
end
return 0
`)

// releaseScript deletes the lock only if the caller still owns it, then wakes
// the waiters. KEYS[1] lock; ARGV[1] owner token, ARGV[2] release channel,
// ARGV[3] fencing token (message payload, for whoever watches the channel).
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`)

// extendScript resets the lease only if the caller still owns the lock.
// KEYS[1] lock; ARGV[1] owner token, ARGV[2] TTL in ms.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// raiseScript floors the fencing counter at ARGV[2] and draws the next token,
// only if the caller still owns the lock. KEYS[1] lock, KEYS[2] fence;
// ARGV[1] owner token, ARGV[2] floor, ARGV[3] the fence's TTL in ms.
// Returns the new token, or 0 if the lock is no longer the caller's.
var raiseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
  if cur < tonumber(ARGV[2]) then
    redis.call('SET', KEYS[2], ARGV[2])
  end
  local t = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return t
end
return 0
`)

// Options configures a Locker. Zero fields take the Default values.
type Options struct {
	// Prefix starts every key and channel name, e.g. "loanflow:". It must not
	// contain '{' or '}', which would change the Cluster hash tag.
	Prefix string
	// TTL is the lease: how long a lock outlives a holder that stops
	// extending it. Default 10s; accepted 10ms..24h.
	TTL time.Duration
	// WaitTimeout bounds how long Acquire waits for a held lock. Default 5s;
	// accepted 1ms..1h.
	WaitTimeout time.Duration
	// RetryMin and RetryMax bound the jittered exponential backoff between
	// attempts while waiting; a release message cuts a wait short. Defaults
	// 5ms and 200ms; accepted 1ms <= RetryMin <= RetryMax <= 1m.
	RetryMin, RetryMax time.Duration
	// FenceTTL is how long a key's fencing counter outlives the last token
	// drawn from it (see the package comment). Default 30 days; accepted
	// from the lease (TTL) up to 366 days.
	FenceTTL time.Duration
}

// Locker hands out locks on keys in one Redis (standalone or Cluster). It is
// safe for concurrent use.
type Locker struct {
	rdb  redis.UniversalClient
	opts Options
}

// New returns a Locker, or an error naming the first option that is out of
// range.
func New(rdb redis.UniversalClient, opts Options) (*Locker, error) {
	if rdb == nil {
		return nil, errors.New("dlock: redis client is nil")
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("dlock: option Prefix %q: must not contain '{' or '}' (they are reserved for the Redis Cluster hash tag)", opts.Prefix)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.WaitTimeout == 0 {
		opts.WaitTimeout = DefaultWaitTimeout
	}
	if opts.RetryMin == 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.FenceTTL == 0 {
		opts.FenceTTL = DefaultFenceTTL
	}
	if err := checkRange("TTL", opts.TTL, minTTL, maxTTL); err != nil {
		return nil, err
	}
	if err := checkRange("WaitTimeout", opts.WaitTimeout, minWaitTimeout, maxWaitTimeout); err != nil {
		return nil, err
	}
	if err := checkRange("RetryMin", opts.RetryMin, minRetry, maxRetry); err != nil {
		return nil, err
	}
	if err := checkRange("RetryMax", opts.RetryMax, minRetry, maxRetry); err != nil {
		return nil, err
	}
	if err := checkRange("FenceTTL", opts.FenceTTL, opts.TTL, maxFenceTTL); err != nil {
		return nil, err
	}
	if opts.RetryMin > opts.RetryMax {
		return nil, fmt.Errorf("dlock: option RetryMin %v: must not exceed RetryMax (%v)", opts.RetryMin, opts.RetryMax)
	}
	return &Locker{rdb: rdb, opts: opts}, nil
}

func checkRange(field string, v, lo, hi time.Duration) error {
	if v < lo || v > hi {
		return fmt.Errorf("dlock: option %s %v: must be between %v and %v (0 means the default)", field, v, lo, hi)
	}
	return nil
}

func checkKey(key string) error {
	if key == "" {
		return errors.New("dlock: key is empty: pass the resource to lock, e.g. \"customer:C00000001\"")
	}
	// A brace inside the key could make the lock and fence keys hash to
	// different Cluster slots, and then the acquire script cannot run there.
	if strings.ContainsAny(key, "{}") {
		return fmt.Errorf("dlock: key %q: must not contain '{' or '}'", key)
	}
	return nil
}

func (l *Locker) lockKey(key string) string  { return l.opts.Prefix + "lock:{" + key + "}" }
func (l *Locker) fenceKey(key string) string { return l.opts.Prefix + "fence:{" + key + "}" }
func (l *Locker) channel(key string) string  { return l.opts.Prefix + "released:{" + key + "}" }

// Lock is one holder's lease on a key, returned by Acquire. Its methods are
// safe for concurrent use.
type Lock struct {
	l        *Locker
	key      string
	owner    string       // random 128-bit token stored as the lock's value
	fence    atomic.Int64 // fencing token drawn with the lock (raised by RaiseToken)
	taken    time.Time    // just before the acquiring command was sent
	lost     chan struct{}
	lostOnce sync.Once
}

// Key returns the key the lock was taken on (without prefix or hash tag).
func (lk *Lock) Key() string { return lk.key }

// Token returns the fencing token: it is strictly greater than the token of
// every earlier acquisition of the same key, so a downstream store can refuse
// writes carrying a token older than one it has already seen.
func (lk *Lock) Token() int64 { return lk.fence.Load() }

// Lost returns a channel that is closed once this Lock is known to be lost:
// when Extend or Release found another owner or no lock, or when Do's lease
// keeper could not extend the lease in time. It is not closed by a
// successful Release.
func (lk *Lock) Lost() <-chan struct{} { return lk.lost }

func (lk *Lock) markLost() { lk.lostOnce.Do(func() { close(lk.lost) }) }

// Acquire takes the lock on key, waiting up to Options.WaitTimeout while
// another owner holds it. It returns an error wrapping ErrNotAcquired when the
// wait runs out, or ctx's error when ctx ends first.
func (l *Locker) Acquire(ctx context.Context, key string) (*Lock, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(l.opts.WaitTimeout)

	var (
		sub       *redis.PubSub
		msgs      <-chan *redis.Message
		triedSubs bool
	)
	defer func() {
		if sub != nil {
			_ = sub.Close()
		}
	}()

	for attempt := 0; ; attempt++ {
		lk, err := l.try(ctx, key)
		if err != nil || lk != nil {
			return lk, err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, l.notAcquired(key, start)
		}
		if !triedSubs {
			triedSubs = true
			// Subscribe only once the lock turned out to be held, so the
			// uncontended path costs one round trip. Waiting for the
			// subscription to be confirmed and then trying again closes the
			// gap in which a release would have gone unheard.
			var ok bool
			sub, ok = l.subscribe(ctx, key, remaining)
			if ok {
				msgs = sub.Channel()
				continue
			}
			// Without pub/sub the backoff alone still bounds the wait.
		}

		timer := time.NewTimer(min(l.backoff(attempt), remaining))
		select {
		case _, open := <-msgs:
			if !open {
				msgs = nil // subscription closed: rely on the backoff
			}
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("dlock: acquire %q: gave up after %v: %w", key, time.Since(start).Round(time.Millisecond), context.Cause(ctx))
		}
		timer.Stop()
	}
}

func (l *Locker) notAcquired(key string, start time.Time) error {
	return fmt.Errorf("dlock: acquire %q: waited %v (WaitTimeout %v): %w", key, time.Since(start).Round(time.Millisecond), l.opts.WaitTimeout, ErrNotAcquired)
}

// subscribe opens a subscription to key's release channel and waits for
// Redis to confirm it. On failure it returns ok=false and the caller falls
// back to polling.
func (l *Locker) subscribe(ctx context.Context, key string, wait time.Duration) (*redis.PubSub, bool) {
	sub := l.rdb.Subscribe(ctx, l.channel(key))
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if _, err := sub.Receive(cctx); err != nil {
		_ = sub.Close()
		return nil, false
	}
	return sub, true
}

// backoff returns the pause before retry number attempt: uniform between
// RetryMin and a ceiling that doubles from RetryMin up to RetryMax, so waiters
// spread out instead of retrying in step.
func (l *Locker) backoff(attempt int) time.Duration {
	ceiling := l.opts.RetryMax
	if attempt < 30 {
		ceiling = min(l.opts.RetryMin<<attempt, l.opts.RetryMax)
	}
	if ceiling <= l.opts.RetryMin {
		return l.opts.RetryMin
	}
	return l.opts.RetryMin + mathrand.N(ceiling-l.opts.RetryMin+1)
}

// try makes one attempt; it returns (nil, nil) when someone else holds key.
func (l *Locker) try(ctx context.Context, key string) (*Lock, error) {
	owner := newOwner()
	taken := time.Now()
	fence, err := acquireScript.Run(ctx, l.rdb,
		[]string{l.lockKey(key), l.fenceKey(key)},
		owner, l.opts.TTL.Milliseconds(), l.opts.FenceTTL.Milliseconds()).Int64()
	if err != nil {
		// The script may have run even though the reply was lost (timeout,
		// cancelled ctx). Delete by our own token so such a phantom lock
		// does not block the key for a whole TTL.
		l.cleanup(ctx, key, owner)
		return nil, fmt.Errorf("dlock: acquire %q: %w", key, err)
	}
	if fence == 0 {
		return nil, nil
	}
	lk := &Lock{l: l, key: key, owner: owner, taken: taken, lost: make(chan struct{})}
	lk.fence.Store(fence)
	return lk, nil
}

func (l *Locker) cleanup(ctx context.Context, key, owner string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = releaseScript.Run(cctx, l.rdb, []string{l.lockKey(key)}, owner, l.channel(key), 0).Err()
}

func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error since Go 1.24
	return hex.EncodeToString(b[:])
}

// Release deletes the lock if this holder still owns it and wakes waiters.
// If the lock was lost it returns an error wrapping ErrLockLost and leaves
// the current owner's lock in place.
func (lk *Lock) Release(ctx context.Context) error {
	l := lk.l
	n, err := releaseScript.Run(ctx, l.rdb, []string{l.lockKey(lk.key)}, lk.owner, l.channel(lk.key), lk.fence.Load()).Int64()
	if err != nil {
		return fmt.Errorf("dlock: release %q (fencing token %d): %w", lk.key, lk.fence.Load(), err)
	}
	if n == 0 {
		lk.markLost()
		return fmt.Errorf("dlock: release %q (fencing token %d): lease expired or lock taken by another owner: %w", lk.key, lk.fence.Load(), ErrLockLost)
	}
	return nil
}

// RaiseToken gives this holder a new fencing token above floor, and makes
// every later acquisition of the key draw tokens above it too. A downstream
// store that has seen a token higher than this lock's (because Redis lost
// its counter, e.g. a restart without persistence) calls it with the highest
// token it has seen, so tokens never go backwards from the store's point of
// view. It returns an error wrapping ErrLockLost if the lock is no longer
// this holder's.
func (lk *Lock) RaiseToken(ctx context.Context, floor int64) (int64, error) {
	l := lk.l
	n, err := raiseScript.Run(ctx, l.rdb, []string{l.lockKey(lk.key), l.fenceKey(lk.key)}, lk.owner, floor, l.opts.FenceTTL.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("dlock: raise token of %q above %d: %w", lk.key, floor, err)
	}
	if n == 0 {
		lk.markLost()
		return 0, fmt.Errorf("dlock: raise token of %q above %d: lease expired or lock taken by another owner: %w", lk.key, floor, ErrLockLost)
	}
	lk.fence.Store(n)
	return n, nil
}

// Extend resets the lease to ttl from now if this holder still owns the lock,
// and otherwise returns an error wrapping ErrLockLost. ttl must be at least
// 1ms.
func (lk *Lock) Extend(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("dlock: extend %q: ttl %v: must be at least 1ms", lk.key, ttl)
	}
	l := lk.l
	n, err := extendScript.Run(ctx, l.rdb, []string{l.lockKey(lk.key)}, lk.owner, ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("dlock: extend %q (fencing token %d): %w", lk.key, lk.fence.Load(), err)
	}
	if n == 0 {
		lk.markLost()
		return fmt.Errorf("dlock: extend %q (fencing token %d): lease expired or lock taken by another owner: %w", lk.key, lk.fence.Load(), ErrLockLost)
	}
	return nil
}

// Do runs fn while holding the lock on key. It extends the lease every TTL/3
// while fn runs; if the lease is lost it cancels fn's context (whose
// context.Cause then wraps ErrLockLost) and returns an error wrapping
// ErrLockLost. The lock is always released before Do returns, even if fn
// panics. Otherwise Do returns fn's error, or the release error if fn
// succeeded but the lock could not be released as its owner.
func (l *Locker) Do(ctx context.Context, key string, fn func(ctx context.Context, lk *Lock) error) (err error) {
	lk, err := l.Acquire(ctx, key)
	if err != nil {
		return err
	}

	fnCtx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	kept := make(chan error, 1)
	go func() { kept <- l.keepAlive(context.WithoutCancel(ctx), lk, stop, cancel) }()

	defer func() {
		close(stop)
		lostErr := <-kept // the keeper has exited: nothing is left running
		cancel(nil)
		// Release even when ctx is already cancelled: leaving the lock to
		// expire would stall the customer's next disbursement for a TTL.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.TTL)
		relErr := lk.Release(rctx)
		rcancel()
		switch {
		case lostErr != nil:
			// fn failing with the cancellation we caused adds nothing.
			if err == nil || errors.Is(err, context.Canceled) {
				err = lostErr
			} else {
				err = errors.Join(lostErr, err)
			}
		case err == nil:
			err = relErr
		case relErr != nil:
			err = errors.Join(err, relErr)
		}
	}()
	return fn(fnCtx, lk)
}

// keepAlive extends lk every TTL/3 until stop is closed. It gives up, cancels
// fn with the reason and returns it once Redis says the lock is gone or the
// lease runs out without a successful extension (Redis unreachable): from then
// on nothing guarantees exclusivity.
func (l *Locker) keepAlive(ctx context.Context, lk *Lock, stop <-chan struct{}, cancel context.CancelCauseFunc) error {
	ttl := l.opts.TTL
	interval := ttl / 3
	leaseEnd := lk.taken.Add(ttl)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	expiry := time.NewTimer(time.Until(leaseEnd))
	defer expiry.Stop()

	var lastErr error
	for {
		select {
		case <-stop:
			return nil
		case <-expiry.C:
			return l.expired(lk, lastErr, cancel)
		case <-tick.C:
		}
		sent := time.Now()
		ectx, ecancel := context.WithTimeout(ctx, min(interval, time.Until(leaseEnd)))
		err := lk.Extend(ectx, ttl)
		ecancel()
		switch {
		case err == nil:
			leaseEnd = sent.Add(ttl) // Redis started the new lease after sent
			expiry.Reset(time.Until(leaseEnd))
			lastErr = nil
		case errors.Is(err, ErrLockLost):
			lost := fmt.Errorf("dlock: lock %q (fencing token %d) was lost while held, its work was cancelled: %w", lk.key, lk.fence.Load(), err)
			cancel(lost)
			return lost
		default:
			lastErr = err
			if !time.Now().Before(leaseEnd) {
				return l.expired(lk, lastErr, cancel)
			}
		}
	}
}

func (l *Locker) expired(lk *Lock, lastErr error, cancel context.CancelCauseFunc) error {
	lk.markLost()
	lost := fmt.Errorf("dlock: lock %q (fencing token %d): lease of %v ran out without a successful extension (last error: %v), its work was cancelled: %w", lk.key, lk.fence.Load(), l.opts.TTL, lastErr, ErrLockLost)
	cancel(lost)
	return lost
}
