// Package ledger books approved loans against customers' exposure limits and
// records them as disbursed, exactly once per application.
//
// Three layers keep the money right:
//
//   - A per-customer Redis lock (dlock, key "customer:<name>", where the
//     name is a hash of the customer id: Options.LockName) puts one
//     customer's bookings one after the other, so the common path has no
//     conflicts. Its lease is extended while the booking runs. No customer
//     id reaches Redis.
//   - Optimistic locking on the customer's row in Postgres: the exposure is
//     read with its version and written back only WHERE version = the version
//     read. A writer that finds the row changed rolls back and runs the whole
//     read-check-write again, a bounded number of times. This is the real
//     guarantee; it holds even when a lock holder pauses past its lease, and
//     on its own (a Ledger without Redis relies on it alone).
//   - The lock's fencing token is stored on the customer row, and the booking
//     UPDATE itself requires a token above the last one recorded, so a
//     holder whose lease ran out cannot write. Tokens never go backwards
//     from Postgres' point of view: a holder that finds its token at or
//     below the row's mark while it still owns the lock (Redis lost its
//     counter) floors the Redis counter at the mark and draws a new token.
//
// Idempotency: loans.application_id is unique, and every booking first looks
// for the application's loan; a retry, a crash after commit or a duplicate
// workflow start finds it and returns it instead of lending twice.
//
// A customer row is created on the customer's first booking with
// Options.DefaultLimit (150,000,000 won unless configured).
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"loanflow/dlock"
)

// Defaults applied where Options leaves a field zero.
const (
	// DefaultLimit is the exposure limit of a customer's row when it is
	// created on their first booking, in won.
	DefaultLimit int64 = 150_000_000
	// DefaultMaxAttempts bounds the read-check-write attempts of one booking
	// that keeps losing to concurrent writers.
	DefaultMaxAttempts = 10
	// DefaultTxTimeout bounds one booking transaction. The lock's lease is
	// kept alive while a transaction runs, so this is what stops a stuck
	// Postgres from holding a customer's lock indefinitely.
	DefaultTxTimeout = 10 * time.Second
)

// Retry pauses between optimistic attempts: jittered, doubling from
// retryMin to retryMax, so writers that collided spread out.
const (
	retryMin = time.Millisecond
	retryMax = 50 * time.Millisecond
)

// LoanStatusDisbursed is the status of a booked and disbursed loan.
const LoanStatusDisbursed = "DISBURSED"

// ErrLimitExceeded is matched (errors.Is) by a *LimitError: booking the loan
// would take the customer's exposure past their limit. Retrying cannot help.
var ErrLimitExceeded = errors.New("exposure limit exceeded")

// ErrLoanConflict means the application already has a loan with a different
// customer or different terms. The stored loan stands; retrying cannot help.
var ErrLoanConflict = errors.New("application already booked with different terms")

// ErrVersionConflict means every attempt of a booking lost to a concurrent
// writer of the customer's row (Options.MaxAttempts of them). Nothing was
// written; a later retry may succeed.
var ErrVersionConflict = errors.New("customer row changed by a concurrent writer on every attempt")

// ErrStaleFence means the lock held for a booking carries an older fencing
// token than the last write to the customer's row: the lease ran out and
// another holder has written since. Nothing was written; a later retry takes
// a new lock.
var ErrStaleFence = errors.New("fencing token older than the customer's last writer")

// ErrInvalidRequest means a Request is malformed; retrying cannot help.
var ErrInvalidRequest = errors.New("invalid booking request")

// ErrNotFound means no loan or customer has the id asked for.
var ErrNotFound = errors.New("not found")

// errConflict marks an attempt lost to a concurrent writer; book retries it.
var errConflict = errors.New("concurrent writer won")

// LimitError says by how much a booking would exceed a customer's limit.
type LimitError struct {
	CustomerID string
	Exposure   int64 // outstanding before this loan, won
	Limit      int64 // won
	Amount     int64 // principal asked for, won
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("customer %s: exposure %d + principal %d = %d won would exceed the limit of %d won",
		e.CustomerID, e.Exposure, e.Amount, e.Exposure+e.Amount, e.Limit)
}

// Unwrap makes errors.Is(err, ErrLimitExceeded) hold.
func (e *LimitError) Unwrap() error { return ErrLimitExceeded }

// Options configures a Ledger. Zero fields take the defaults.
type Options struct {
	// DefaultLimit is the exposure limit, in won, of a customer row created
	// on the customer's first booking. Default 150,000,000.
	DefaultLimit int64
	// MaxAttempts bounds the read-check-write attempts of one booking.
	// Default 10.
	MaxAttempts int
	// TxTimeout bounds each booking transaction. Default 10s.
	TxTimeout time.Duration
	// Lock configures the per-customer Redis lock (its Prefix, e.g.
	// "loanflow:", namespaces the keys). Unused without Redis.
	Lock dlock.Options
	// LockName turns a customer id into the name their lock is keyed by
	// (dlock key "customer:<name>"), so that the id never appears in Redis
	// key names, where MONITOR, SCAN, the slowlog, key-space notifications
	// and RDB dumps would show it. It must be deterministic, non-empty and
	// free of '{' and '}'. The worker passes the CustomerRef keyed hash
	// (codec.Hasher). When nil, the name is a hex SHA-256 of the id
	// (DefaultLockName): customer ids are guessable, so an unkeyed hash is
	// only obfuscation, which is why production passes the keyed one.
	//
	// A keyed name changes when the key ring's current key does. During a
	// rotation (or a rolling deploy that changes LockName) two workers may
	// hold one customer's lock under two names at once, each name with its
	// own fencing counter. Money stays right: the version check lets only
	// one of the writers that read a version of the customer's row commit,
	// whichever lock each held, and the booking UPDATE still refuses a token
	// at or below the row's mark. A counter that lags behind the other
	// name's tokens is floored at the mark by its next holder, as after
	// Redis loses a counter. A holder whose token is not above the one the
	// other name's holder just wrote gets ErrStaleFence, and a later retry
	// takes a new lock. Meanwhile that customer's bookings collide and
	// retry as they would without Redis. The old name's fence counter stays
	// in Redis, unread.
	LockName func(customerID string) string
}

// DefaultLockName is the lock name of a customer id when Options.LockName is
// nil: a hex SHA-256 of the id under a domain of its own. It is unkeyed, so
// anyone can hash a guessed id and compare: obfuscation, not protection.
func DefaultLockName(customerID string) string {
	sum := sha256.Sum256([]byte("loanflow/ledger-lock/v1\x00" + customerID))
	return hex.EncodeToString(sum[:])
}

// LockKey is the dlock key a booking for customerID is locked under, for
// tools and tests that take the customer's lock as another worker would.
func (o Options) LockKey(customerID string) string {
	name := DefaultLockName
	if o.LockName != nil {
		name = o.LockName
	}
	return "customer:" + name(customerID)
}

// Ledger books loans. It is safe for concurrent use.
type Ledger struct {
	pool    *pgxpool.Pool
	locker  *dlock.Locker // nil: optimistic locking alone
	lockTTL time.Duration
	opts    Options
	stats   counters

	// Test hooks: afterRead runs between reading the customer row and
	// writing it (a place to pause a holder); afterCommit runs after the
	// commit and may fail the booking (a crash before the caller hears).
	afterRead   func(ctx context.Context, attempt int)
	afterCommit func(ctx context.Context) error
}

// New returns a Ledger over pool. With rdb non-nil, each booking runs under
// the customer's Redis lock; with rdb nil it relies on optimistic locking
// alone (the benchmark's comparison, or a deployment without Redis). It
// returns an error naming the first option out of range.
func New(pool *pgxpool.Pool, rdb redis.UniversalClient, opts Options) (*Ledger, error) {
	if pool == nil {
		return nil, errors.New("ledger: postgres pool is nil")
	}
	if opts.DefaultLimit == 0 {
		opts.DefaultLimit = DefaultLimit
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.TxTimeout == 0 {
		opts.TxTimeout = DefaultTxTimeout
	}
	if opts.DefaultLimit < 0 {
		return nil, fmt.Errorf("ledger: option DefaultLimit %d: must be 0 or more won (0 means %d)", opts.DefaultLimit, DefaultLimit)
	}
	if opts.MaxAttempts < 1 || opts.MaxAttempts > 1000 {
		return nil, fmt.Errorf("ledger: option MaxAttempts %d: must be between 1 and 1000 (0 means %d)", opts.MaxAttempts, DefaultMaxAttempts)
	}
	if opts.TxTimeout < time.Millisecond || opts.TxTimeout > time.Hour {
		return nil, fmt.Errorf("ledger: option TxTimeout %v: must be between 1ms and 1h (0 means %v)", opts.TxTimeout, DefaultTxTimeout)
	}
	l := &Ledger{pool: pool, opts: opts}
	if rdb != nil {
		lk, err := dlock.New(rdb, opts.Lock)
		if err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		l.locker = lk
		l.lockTTL = opts.Lock.TTL
		if l.lockTTL == 0 {
			l.lockTTL = dlock.DefaultTTL
		}
	}
	return l, nil
}

// Locked reports whether bookings run under the Redis lock.
func (l *Ledger) Locked() bool { return l.locker != nil }

// Request asks to book and disburse one approved application.
type Request struct {
	ApplicationID   string `json:"application_id"`
	CustomerID      string `json:"customer_id"`
	Principal       int64  `json:"principal"` // won
	RateBasisPoints int    `json:"rate_bp"`
	TermMonths      int    `json:"term_months"`
	MonthlyPayment  int64  `json:"monthly_payment"` // won
}

func (r Request) validate() error {
	var bad []string
	if r.ApplicationID == "" {
		bad = append(bad, "application_id is empty")
	}
	if r.CustomerID == "" || strings.ContainsAny(r.CustomerID, "{}") {
		bad = append(bad, fmt.Sprintf("customer_id %q: accepted a non-empty id without '{' or '}'", r.CustomerID))
	}
	if r.Principal <= 0 {
		bad = append(bad, fmt.Sprintf("principal %d: accepted more than 0 won", r.Principal))
	}
	if r.RateBasisPoints < 0 {
		bad = append(bad, fmt.Sprintf("rate_bp %d: accepted 0 or more", r.RateBasisPoints))
	}
	if r.TermMonths <= 0 {
		bad = append(bad, fmt.Sprintf("term_months %d: accepted more than 0", r.TermMonths))
	}
	if r.MonthlyPayment < 0 {
		bad = append(bad, fmt.Sprintf("monthly_payment %d: accepted 0 or more won", r.MonthlyPayment))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidRequest, strings.Join(bad, "; "))
	}
	return nil
}

// Loan is a booked loan, as stored.
type Loan struct {
	ID              int64
	ApplicationID   string
	CustomerID      string
	Principal       int64 // won
	RateBasisPoints int
	TermMonths      int
	MonthlyPayment  int64 // won
	Status          string
	FencingToken    int64 // the lock's token when booked; 0 without the lock
	CreatedAt       time.Time
	DisbursedAt     time.Time
}

// sameTerms reports whether l is the loan r asks for.
func (l Loan) sameTerms(r Request) bool { return len(l.differences(r)) == 0 }

// differences names the terms in which l is not the loan r asks for: the
// names only, so an error that reaches the logs carries no personal data.
func (l Loan) differences(r Request) []string {
	var d []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"customer", l.CustomerID == r.CustomerID},
		{"principal", l.Principal == r.Principal},
		{"rate", l.RateBasisPoints == r.RateBasisPoints},
		{"term", l.TermMonths == r.TermMonths},
		{"monthly payment", l.MonthlyPayment == r.MonthlyPayment},
	} {
		if !f.same {
			d = append(d, f.name)
		}
	}
	return d
}

// Booking is what one Book call did, with where its time went.
type Booking struct {
	Loan Loan
	// Existing means the loan had been booked before (a retry or a
	// duplicate): nothing was written now.
	Existing bool
	// Attempts counts read-check-write transactions; Conflicts those lost to
	// a concurrent writer and run again.
	Attempts, Conflicts int
	// LockWait is the time from asking for the customer's lock to holding
	// it; LockHeld the time the booking ran while holding it. Both are zero
	// without the lock.
	LockWait, LockHeld time.Duration
	// Elapsed is the whole call, lock release included.
	Elapsed time.Duration
}

// Book books req's loan against the customer's exposure and records it as
// disbursed, or returns the loan already booked for req.ApplicationID.
//
// Errors: a *LimitError (errors.Is ErrLimitExceeded), ErrLoanConflict and
// ErrInvalidRequest are final. dlock.ErrNotAcquired, dlock.ErrLockLost,
// ErrVersionConflict and ErrStaleFence mean nothing was written and a later
// retry may succeed; so may a Postgres error. The returned Booking carries
// the attempts and timings even on error.
//
// A booking that committed is returned as a success even if the lock's
// lease was lost or its release failed afterwards: the version check made
// the write safe, and reporting it as failed would only cost a retry.
func (l *Ledger) Book(ctx context.Context, req Request) (Booking, error) {
	start := time.Now()
	var b Booking
	if err := req.validate(); err != nil {
		return b, fmt.Errorf("book application %s: %w", req.ApplicationID, err)
	}
	if l.locker == nil {
		err := l.book(ctx, req, nil, &b)
		b.Elapsed = time.Since(start)
		return b, l.wrap(req, err)
	}
	committed := false
	err := l.locker.Do(ctx, l.opts.LockKey(req.CustomerID), func(ctx context.Context, lk *dlock.Lock) error {
		held := time.Now()
		b.LockWait = held.Sub(start)
		err := l.book(ctx, req, lk, &b)
		b.LockHeld = time.Since(held)
		committed = err == nil
		return err
	})
	b.Elapsed = time.Since(start)
	switch {
	case committed:
		if err != nil {
			l.stats.lateLockErrors.Add(1)
		}
		return b, nil
	case errors.Is(err, dlock.ErrNotAcquired):
		l.stats.lockNotAcquired.Add(1)
	case errors.Is(err, dlock.ErrLockLost):
		l.stats.lockLost.Add(1)
	}
	return b, l.wrap(req, err)
}

func (l *Ledger) wrap(req Request, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("book application %s: %w", req.ApplicationID, err)
}

// book runs read-check-write attempts until one commits, finds the loan,
// fails for good, or MaxAttempts attempts have lost to concurrent writers.
// lk is the customer's lock, or nil without one.
func (l *Ledger) book(ctx context.Context, req Request, lk *dlock.Lock, b *Booking) error {
	for attempt := 1; ; attempt++ {
		b.Attempts = attempt
		l.stats.attempts.Add(1)
		ln, existing, err := l.attempt(ctx, req, lk, attempt)
		switch {
		case err == nil:
			b.Loan, b.Existing = ln, existing
			if existing {
				l.stats.existing.Add(1)
			} else {
				l.stats.booked.Add(1)
			}
			return nil
		case errors.Is(err, ErrLimitExceeded):
			l.stats.refused.Add(1)
			return err
		case errors.Is(err, ErrStaleFence):
			l.stats.staleFences.Add(1)
			return err
		case !errors.Is(err, errConflict):
			return err
		}
		b.Conflicts++
		l.stats.conflicts.Add(1)
		if attempt >= l.opts.MaxAttempts {
			l.stats.exhausted.Add(1)
			return fmt.Errorf("gave up after %d attempts: %w", attempt, ErrVersionConflict)
		}
		l.stats.retries.Add(1)
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return fmt.Errorf("wait to retry after %d conflicts: %w", attempt, err)
		}
	}
}

func backoff(attempt int) time.Duration {
	ceiling := retryMax
	if attempt < 16 {
		ceiling = min(retryMin<<attempt, retryMax)
	}
	return mathrand.N(ceiling) + 1
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// customerRow is what a booking reads of a customer.
type customerRow struct {
	exposure, limit, version, lastFence int64
}

// attempt is one read-check-write transaction. It returns errConflict when a
// concurrent writer changed the customer's row (or booked the same
// application) between the read and the write; nothing is then written.
func (l *Ledger) attempt(ctx context.Context, req Request, lk *dlock.Lock, n int) (Loan, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.TxTimeout)
	defer cancel()
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return Loan{}, false, fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit

	if ln, err := loanByApplication(ctx, tx, req.ApplicationID); err == nil {
		if !ln.sameTerms(req) {
			return Loan{}, false, fmt.Errorf("%w: stored loan %d differs from the one asked in: %s",
				ErrLoanConflict, ln.ID, strings.Join(ln.differences(req), ", "))
		}
		return ln, true, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Loan{}, false, err
	}

	c, err := l.readCustomer(ctx, tx, req.CustomerID)
	if err != nil {
		return Loan{}, false, err
	}
	if l.afterRead != nil {
		l.afterRead(ctx, n)
	}

	fence := c.lastFence // unchanged by a booking without the lock
	if lk != nil {
		fence = lk.Token()
		if fence <= c.lastFence {
			// A token not above the row's mark means either someone
			// acquired the lock after us (our lease ended: Extend fails and
			// we are the paused holder), or the Redis counter went backwards
			// (Redis lost its data) while we do hold the lock. Then the
			// counter is floored at the row's mark and we draw a new token
			// above it, so the mark never goes backwards and every later
			// holder's token is above it too.
			if err := lk.Extend(ctx, l.lockTTL); err != nil {
				return Loan{}, false, fmt.Errorf("%w: lock token %d, the customer's row last written with %d: %w",
					ErrStaleFence, fence, c.lastFence, err)
			}
			raised, err := lk.RaiseToken(ctx, c.lastFence)
			if err != nil {
				return Loan{}, false, fmt.Errorf("%w: lock token %d, the customer's row last written with %d: %w",
					ErrStaleFence, fence, c.lastFence, err)
			}
			fence = raised
			l.stats.fenceResets.Add(1)
		}
	}

	if c.exposure+req.Principal > c.limit {
		return Loan{}, false, &LimitError{CustomerID: req.CustomerID, Exposure: c.exposure, Limit: c.limit, Amount: req.Principal}
	}

	// The fence is enforced here, in the same statement as the version
	// check: under the lock a token must be above the row's mark (tokens are
	// unique per acquisition); without the lock the mark is kept as it is.
	fenceCond := "last_fence < $3"
	if lk == nil {
		fenceCond = "last_fence <= $3"
	}
	tag, err := tx.Exec(ctx, `
		UPDATE customers
		SET exposure = exposure + $2, version = version + 1, last_fence = $3, updated_at = now()
		WHERE customer_id = $1 AND version = $4 AND `+fenceCond,
		req.CustomerID, req.Principal, fence, c.version)
	if err != nil {
		return Loan{}, false, fmt.Errorf("add the principal to the customer's exposure: %w", err)
	}
	if tag.RowsAffected() == 0 {
		// Tell a newer fence from a plain version conflict: the former is
		// final for this lock, the latter is retried.
		var mark int64
		if err := tx.QueryRow(ctx, `SELECT last_fence FROM customers WHERE customer_id = $1`, req.CustomerID).Scan(&mark); err == nil &&
			lk != nil && mark >= fence {
			return Loan{}, false, fmt.Errorf("%w: lock token %d, the customer's row last written with %d", ErrStaleFence, fence, mark)
		}
		return Loan{}, false, errConflict
	}

	ln := Loan{ApplicationID: req.ApplicationID, CustomerID: req.CustomerID, Principal: req.Principal,
		RateBasisPoints: req.RateBasisPoints, TermMonths: req.TermMonths, MonthlyPayment: req.MonthlyPayment,
		Status: LoanStatusDisbursed, FencingToken: 0}
	if lk != nil {
		ln.FencingToken = fence
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO loans (application_id, customer_id, principal, rate_bp, term_months, monthly_payment,
		                   status, fencing_token, disbursed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
		RETURNING loan_id, created_at, disbursed_at`,
		ln.ApplicationID, ln.CustomerID, ln.Principal, ln.RateBasisPoints, ln.TermMonths, ln.MonthlyPayment,
		ln.Status, ln.FencingToken).Scan(&ln.ID, &ln.CreatedAt, &ln.DisbursedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		// The same application is being booked concurrently (for another
		// customer row, or the version check would have caught it); the
		// next attempt finds that loan.
		return Loan{}, false, errConflict
	}
	if err != nil {
		return Loan{}, false, fmt.Errorf("insert loan: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		// The commit may have happened anyway; a retry finds the loan.
		return Loan{}, false, fmt.Errorf("commit: %w", err)
	}
	if l.afterCommit != nil {
		if err := l.afterCommit(ctx); err != nil {
			return Loan{}, false, err
		}
	}
	return ln, false, nil
}

// readCustomer reads the customer's row, creating it with the default limit
// on their first booking.
func (l *Ledger) readCustomer(ctx context.Context, tx pgx.Tx, id string) (customerRow, error) {
	var c customerRow
	const q = `SELECT exposure, exposure_limit, version, last_fence FROM customers WHERE customer_id = $1`
	err := tx.QueryRow(ctx, q, id).Scan(&c.exposure, &c.limit, &c.version, &c.lastFence)
	if !errors.Is(err, pgx.ErrNoRows) {
		if err != nil {
			return c, fmt.Errorf("read the customer's row: %w", err)
		}
		return c, nil
	}
	// A concurrent first booking may be inserting the same row: ON CONFLICT
	// waits for it, and the re-read (a new snapshot under READ COMMITTED)
	// then sees whichever row won.
	if _, err := tx.Exec(ctx, `
		INSERT INTO customers (customer_id, exposure_limit) VALUES ($1, $2)
		ON CONFLICT (customer_id) DO NOTHING`, id, l.opts.DefaultLimit); err != nil {
		return c, fmt.Errorf("create the customer's row: %w", err)
	}
	if err := tx.QueryRow(ctx, q, id).Scan(&c.exposure, &c.limit, &c.version, &c.lastFence); err != nil {
		return c, fmt.Errorf("read the customer's row after creating it: %w", err)
	}
	return c, nil
}

// querier is what both a pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func loanByApplication(ctx context.Context, q querier, applicationID string) (Loan, error) {
	var ln Loan
	var disbursedAt *time.Time
	err := q.QueryRow(ctx, `
		SELECT loan_id, application_id, customer_id, principal, rate_bp, term_months, monthly_payment,
		       status, fencing_token, created_at, disbursed_at
		FROM loans WHERE application_id = $1`, applicationID).Scan(
		&ln.ID, &ln.ApplicationID, &ln.CustomerID, &ln.Principal, &ln.RateBasisPoints, &ln.TermMonths,
		&ln.MonthlyPayment, &ln.Status, &ln.FencingToken, &ln.CreatedAt, &disbursedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Loan{}, fmt.Errorf("loan of application %s: %w", applicationID, ErrNotFound)
	}
	if err != nil {
		return Loan{}, fmt.Errorf("read loan of application %s: %w", applicationID, err)
	}
	if disbursedAt != nil {
		ln.DisbursedAt = *disbursedAt
	}
	return ln, nil
}

// Loan returns the loan booked for an application, or an error wrapping
// ErrNotFound.
func (l *Ledger) Loan(ctx context.Context, applicationID string) (Loan, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.TxTimeout)
	defer cancel()
	return loanByApplication(ctx, l.pool, applicationID)
}

// Customer is a customer's exposure record.
type Customer struct {
	ID        string
	Limit     int64 // won
	Exposure  int64 // outstanding booked principal, won
	Version   int64
	LastFence int64
}

// Customer returns a customer's exposure record, or an error wrapping
// ErrNotFound when they have never booked a loan nor been given a limit.
func (l *Ledger) Customer(ctx context.Context, id string) (Customer, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.TxTimeout)
	defer cancel()
	c := Customer{ID: id}
	err := l.pool.QueryRow(ctx, `
		SELECT exposure_limit, exposure, version, last_fence FROM customers WHERE customer_id = $1`, id).Scan(
		&c.Limit, &c.Exposure, &c.Version, &c.LastFence)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("read customer %s: %w", id, err)
	}
	return c, nil
}

// SetLimit sets a customer's exposure limit in won, creating their row if
// needed. A limit below the current exposure is allowed: it stops new loans
// until enough is repaid. It bumps the version, so a booking that read the
// old limit retries against the new one.
func (l *Ledger) SetLimit(ctx context.Context, customerID string, limit int64) error {
	if limit < 0 {
		return fmt.Errorf("set limit of customer %s: %w: limit %d: accepted 0 or more won", customerID, ErrInvalidRequest, limit)
	}
	ctx, cancel := context.WithTimeout(ctx, l.opts.TxTimeout)
	defer cancel()
	if _, err := l.pool.Exec(ctx, `
		INSERT INTO customers (customer_id, exposure_limit) VALUES ($1, $2)
		ON CONFLICT (customer_id) DO UPDATE
		SET exposure_limit = EXCLUDED.exposure_limit, version = customers.version + 1, updated_at = now()`,
		customerID, limit); err != nil {
		return fmt.Errorf("set limit of customer %s to %d won: %w", customerID, limit, err)
	}
	return nil
}

// Stats counts what a Ledger has done since it was created.
type Stats struct {
	Booked   int64 // new loans committed
	Existing int64 // bookings that found their loan already booked
	Refused  int64 // bookings refused by the exposure limit
	// Attempts counts read-check-write transactions; Conflicts those lost
	// to a concurrent writer; Retries those run again after a conflict;
	// Exhausted the bookings that gave up after MaxAttempts conflicts.
	Attempts, Conflicts, Retries, Exhausted int64
	// StaleFences counts writes refused for an old fencing token;
	// FenceResets tokens found older than the row's while the lock was still
	// held (the Redis counter went backwards).
	StaleFences, FenceResets int64
	// LockNotAcquired and LockLost count bookings that failed on the lock;
	// LateLockErrors those that committed and then lost the lease or failed
	// to release it (reported as successes).
	LockNotAcquired, LockLost, LateLockErrors int64
}

type counters struct {
	booked, existing, refused, attempts, conflicts, retries, exhausted  atomic.Int64
	staleFences, fenceResets, lockNotAcquired, lockLost, lateLockErrors atomic.Int64
}

// Stats returns a snapshot of the counters.
func (l *Ledger) Stats() Stats {
	c := &l.stats
	return Stats{
		Booked: c.booked.Load(), Existing: c.existing.Load(), Refused: c.refused.Load(),
		Attempts: c.attempts.Load(), Conflicts: c.conflicts.Load(), Retries: c.retries.Load(), Exhausted: c.exhausted.Load(),
		StaleFences: c.staleFences.Load(), FenceResets: c.fenceResets.Load(),
		LockNotAcquired: c.lockNotAcquired.Load(), LockLost: c.lockLost.Load(), LateLockErrors: c.lateLockErrors.Load(),
	}
}
