package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"loanflow/dlock"
	"loanflow/internal/testenv"
	"loanflow/migrations"
)

// env is one test's database and Redis prefix; ledgers made from it share both.
type env struct {
	pool   *pgxpool.Pool
	rdb    *redis.Client
	prefix string
}

func setup(t *testing.T) (context.Context, *env) {
	t.Helper()
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	url := testenv.Postgres(t)
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("migrations.Up: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 24 // enough for 50 optimistic writers to collide for real
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rdb, prefix := testenv.Redis(t)
	return ctx, &env{pool: pool, rdb: rdb, prefix: prefix + "loanflow:"}
}

// locked returns a Ledger that books under the Redis lock. A generous wait
// keeps 50 queued bookings from timing out on a slow, shared machine.
func (e *env) locked(t *testing.T, o Options) *Ledger {
	t.Helper()
	o.Lock.Prefix = e.prefix
	if o.Lock.WaitTimeout == 0 {
		o.Lock.WaitTimeout = time.Minute
	}
	l, err := New(e.pool, e.rdb, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// optimistic returns a Ledger without the Redis lock.
func (e *env) optimistic(t *testing.T, o Options) *Ledger {
	t.Helper()
	l, err := New(e.pool, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func request(app, customer string, principal int64) Request {
	return Request{ApplicationID: app, CustomerID: customer, Principal: principal,
		RateBasisPoints: 650, TermMonths: 36, MonthlyPayment: principal / 33}
}

// checkBooks asserts the ledger's invariant for one customer: exposure is at
// most the limit and equals the principal of the customer's loans.
func checkBooks(t *testing.T, ctx context.Context, l *Ledger, customer string) (exposure int64, loans int) {
	t.Helper()
	c, err := l.Customer(ctx, customer)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	if err := l.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(principal), 0) FROM loans WHERE customer_id = $1`,
		customer).Scan(&loans, &sum); err != nil {
		t.Fatal(err)
	}
	if c.Exposure > c.Limit {
		t.Fatalf("customer %s: exposure %d exceeds limit %d", customer, c.Exposure, c.Limit)
	}
	if c.Exposure != sum {
		t.Fatalf("customer %s: exposure %d but loans sum to %d (%d loans): an update was lost", customer, c.Exposure, sum, loans)
	}
	return c.Exposure, loans
}

// concurrentSameCustomer runs 50 bookings for one fresh customer at once, 20
// rounds over, whose amounts together exceed the limit.
func concurrentSameCustomer(t *testing.T, ctx context.Context, l *Ledger, rounds int) {
	const apps, limit = 50, 100_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range rounds {
		customer := fmt.Sprintf("C%08d", round+1)
		if err := l.SetLimit(ctx, customer, limit); err != nil {
			t.Fatal(err)
		}
		reqs := make([]Request, apps)
		var asked int64
		for i := range reqs {
			amount := (1 + rng.Int64N(100)) * 100_000 // 0.1M..10M won
			reqs[i] = request(fmt.Sprintf("r%d-a%d", round, i), customer, amount)
			asked += amount
		}
		if asked <= limit {
			reqs[0].Principal += limit - asked + 1 // make sure the limit binds
		}

		var wg sync.WaitGroup
		bookings := make([]Booking, apps)
		errs := make([]error, apps)
		for i := range reqs {
			wg.Go(func() { bookings[i], errs[i] = l.Book(ctx, reqs[i]) })
		}
		wg.Wait()

		var booked int64
		var nBooked, nRefused int
		for i, err := range errs {
			var le *LimitError
			switch {
			case err == nil:
				booked += reqs[i].Principal
				nBooked++
				if bookings[i].Existing || bookings[i].Loan.Principal != reqs[i].Principal {
					t.Fatalf("round %d: %s booked as %+v", round, reqs[i].ApplicationID, bookings[i])
				}
			case errors.As(err, &le):
				nRefused++
				if le.Exposure+le.Amount <= le.Limit {
					t.Fatalf("round %d: refused without exceeding: %v", round, err)
				}
			default:
				t.Fatalf("round %d: %s: %v", round, reqs[i].ApplicationID, err)
			}
		}
		exposure, loans := checkBooks(t, ctx, l, customer)
		if exposure != booked || loans != nBooked {
			t.Fatalf("round %d: exposure %d over %d loans, but bookings reported %d won over %d", round, exposure, loans, booked, nBooked)
		}
		if nRefused == 0 {
			t.Fatalf("round %d: %d won asked against a %d limit and nothing refused", round, asked, limit)
		}
	}
	s := l.Stats()
	t.Logf("%d rounds: %+v", rounds, s)
	if s.Booked+s.Refused != int64(rounds*apps) || s.Exhausted != 0 {
		t.Fatalf("stats do not add up: %+v", s)
	}
}

func TestConcurrentSameCustomerUnderLock(t *testing.T) {
	ctx, e := setup(t)
	concurrentSameCustomer(t, ctx, e.locked(t, Options{}), 20)
}

// Without the Redis lock, the version check alone keeps exposure right; the
// writers just collide and retry.
func TestConcurrentSameCustomerOptimisticOnly(t *testing.T) {
	ctx, e := setup(t)
	l := e.optimistic(t, Options{MaxAttempts: 1000})
	concurrentSameCustomer(t, ctx, l, 20)
	if l.Stats().Conflicts == 0 {
		t.Fatal("50 concurrent writers without the lock never conflicted: the test no longer tests the version check")
	}
}

// Holder A reads the customer, then pauses (no lease keeper runs: a frozen
// process) until its lease has expired. B takes the lock and commits. A's
// write is refused by the fencing token in the booking UPDATE, cleanly, and
// A's next booking under a new lock succeeds.
func TestLeaseExpiryStaleHolderRefused(t *testing.T) {
	ctx, e := setup(t)
	const ttl = 200 * time.Millisecond
	a := e.locked(t, Options{Lock: dlock.Options{TTL: ttl}})
	b := e.locked(t, Options{})
	const customer = "C00000001"
	if err := a.SetLimit(ctx, customer, 100_000_000); err != nil {
		t.Fatal(err)
	}
	readDone, resume := make(chan struct{}), make(chan struct{})
	a.afterRead = func(_ context.Context, attempt int) {
		if attempt == 1 {
			close(readDone)
			<-resume
		}
	}

	lk, err := a.locker.Acquire(ctx, a.opts.LockKey(customer))
	if err != nil {
		t.Fatal(err)
	}
	reqA := request("app-a", customer, 30_000_000)
	var bookingA Booking
	var errA error
	done := make(chan struct{})
	go func() {
		defer close(done)
		errA = a.book(ctx, reqA, lk, &bookingA)
	}()
	<-readDone
	time.Sleep(ttl + 100*time.Millisecond) // A's lease runs out while it is paused

	bb, err := b.Book(ctx, request("app-b", customer, 50_000_000))
	if err != nil {
		t.Fatalf("B could not book after A's lease expired: %v", err)
	}
	if bb.Loan.FencingToken <= lk.Token() {
		t.Fatalf("B's token %d is not newer than A's %d", bb.Loan.FencingToken, lk.Token())
	}
	close(resume)
	<-done

	if !errors.Is(errA, ErrStaleFence) {
		t.Fatalf("A's stale write: got %v, want ErrStaleFence", errA)
	}
	if bookingA.Conflicts != 0 || bookingA.Attempts != 1 {
		t.Fatalf("A made %d attempts with %d conflicts, want the booking UPDATE's fence to refuse the first", bookingA.Attempts, bookingA.Conflicts)
	}
	t.Logf("A refused cleanly: %v", errA)
	if _, err := a.Loan(ctx, "app-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("A's refused booking left a loan: %v", err)
	}
	if exp, _ := checkBooks(t, ctx, a, customer); exp != 50_000_000 {
		t.Fatalf("exposure %d, want only B's 50,000,000", exp)
	}

	// What Temporal would do next: retry A's activity, which takes a new lock.
	a.afterRead = nil
	ba, err := a.Book(ctx, reqA)
	if err != nil {
		t.Fatalf("A's retry: %v", err)
	}
	if ba.Loan.FencingToken <= bb.Loan.FencingToken {
		t.Fatalf("A's retry booked with token %d, not newer than B's %d", ba.Loan.FencingToken, bb.Loan.FencingToken)
	}
	if exp, loans := checkBooks(t, ctx, a, customer); exp != 80_000_000 || loans != 2 {
		t.Fatalf("exposure %d over %d loans, want 80,000,000 over 2", exp, loans)
	}
	if s := a.Stats(); s.StaleFences != 1 || s.Conflicts != 0 {
		t.Fatalf("A's stats %+v, want one stale fence and no conflict", s)
	}
}

// The same pause without the lock: the version check refuses A's write and A
// retries against the new exposure.
func TestPausedWriterRetriesOptimistically(t *testing.T) {
	ctx, e := setup(t)
	a := e.optimistic(t, Options{})
	b := e.optimistic(t, Options{})
	const customer = "C00000002"
	if err := a.SetLimit(ctx, customer, 100_000_000); err != nil {
		t.Fatal(err)
	}
	readDone, resume := make(chan struct{}), make(chan struct{})
	a.afterRead = func(_ context.Context, attempt int) {
		if attempt == 1 {
			close(readDone)
			<-resume
		}
	}
	var ba Booking
	var errA error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ba, errA = a.Book(ctx, request("app-a", customer, 60_000_000))
	}()
	<-readDone
	if _, err := b.Book(ctx, request("app-b", customer, 30_000_000)); err != nil {
		t.Fatal(err)
	}
	close(resume)
	<-done
	if errA != nil {
		t.Fatalf("A after a conflict: %v", errA)
	}
	if ba.Attempts != 2 || ba.Conflicts != 1 {
		t.Fatalf("A: %d attempts, %d conflicts; want 2 and 1", ba.Attempts, ba.Conflicts)
	}
	if exp, loans := checkBooks(t, ctx, a, customer); exp != 90_000_000 || loans != 2 {
		t.Fatalf("exposure %d over %d loans, want 90,000,000 over 2", exp, loans)
	}

	// And when the pause hid a write that uses up the limit, A is refused.
	readDone, resume = make(chan struct{}), make(chan struct{})
	done = make(chan struct{})
	go func() {
		defer close(done)
		_, errA = a.Book(ctx, request("app-c", customer, 10_000_000))
	}()
	<-readDone
	if _, err := b.Book(ctx, request("app-d", customer, 5_000_000)); err != nil {
		t.Fatal(err)
	}
	close(resume)
	<-done
	if !errors.Is(errA, ErrLimitExceeded) {
		t.Fatalf("A after B used the room: got %v, want ErrLimitExceeded", errA)
	}
	if exp, _ := checkBooks(t, ctx, a, customer); exp != 95_000_000 {
		t.Fatalf("exposure %d, want 95,000,000", exp)
	}
}

// When the lease keeper finds the lock gone mid-booking, the booking's
// transaction is cancelled and nothing is written.
func TestLockLostMidBookingWritesNothing(t *testing.T) {
	ctx, e := setup(t)
	l := e.locked(t, Options{Lock: dlock.Options{TTL: 300 * time.Millisecond}})
	const customer = "C00000003"
	l.afterRead = func(ctx context.Context, attempt int) {
		// Someone removes the lock (an operator, a failover): the keeper's
		// next extension finds it gone and cancels the work.
		e.rdb.Del(context.Background(), e.prefix+"lock:{"+l.opts.LockKey(customer)+"}")
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
	}
	_, err := l.Book(ctx, request("app-1", customer, 10_000_000))
	if !errors.Is(err, dlock.ErrLockLost) {
		t.Fatalf("got %v, want ErrLockLost", err)
	}
	if _, err := l.Loan(ctx, "app-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("booking under a lost lock left a loan: %v", err)
	}
	if c, err := l.Customer(ctx, customer); err == nil && c.Exposure != 0 {
		t.Fatalf("exposure %d after a cancelled booking", c.Exposure)
	}
	if s := l.Stats(); s.LockLost != 1 || s.Booked != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A crash between the commit and the caller hearing of it: the retry finds
// the loan and books nothing more.
func TestCrashAfterCommitIsOneLoan(t *testing.T) {
	for _, withLock := range []bool{true, false} {
		t.Run(fmt.Sprintf("lock=%v", withLock), func(t *testing.T) {
			ctx, e := setup(t)
			l := e.optimistic(t, Options{})
			if withLock {
				l = e.locked(t, Options{})
			}
			crashed := false
			l.afterCommit = func(context.Context) error {
				if crashed {
					return nil
				}
				crashed = true
				return errors.New("worker crashed after commit")
			}
			req := request("app-1", "C00000004", 20_000_000)
			if _, err := l.Book(ctx, req); err == nil {
				t.Fatal("the simulated crash did not fail the first call")
			}
			b, err := l.Book(ctx, req)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if !b.Existing {
				t.Fatalf("retry booked a second loan: %+v", b)
			}
			again, err := l.Book(ctx, req)
			if err != nil || again.Loan.ID != b.Loan.ID {
				t.Fatalf("third call: %+v, %v; want loan %d", again, err, b.Loan.ID)
			}
			if exp, loans := checkBooks(t, ctx, l, req.CustomerID); exp != req.Principal || loans != 1 {
				t.Fatalf("exposure %d over %d loans, want %d over 1", exp, loans, req.Principal)
			}
		})
	}
}

// Duplicate bookings of one application at the same moment (a duplicate
// start, an activity retried while the first attempt still runs) make one
// loan.
func TestConcurrentDuplicatesAreOneLoan(t *testing.T) {
	ctx, e := setup(t)
	for _, l := range []*Ledger{e.locked(t, Options{}), e.optimistic(t, Options{MaxAttempts: 100})} {
		customer := "C00000010"
		if !l.Locked() {
			customer = "C00000011"
		}
		req := request("dup-"+customer, customer, 7_000_000)
		const n = 10
		var wg sync.WaitGroup
		ids := make([]int64, n)
		fresh := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				b, err := l.Book(ctx, req)
				if err != nil {
					t.Errorf("duplicate %d: %v", i, err)
				}
				ids[i], fresh[i] = b.Loan.ID, !b.Existing
			})
		}
		wg.Wait()
		newLoans := 0
		for i := range n {
			if ids[i] != ids[0] {
				t.Fatalf("duplicates got loans %v", ids)
			}
			if fresh[i] {
				newLoans++
			}
		}
		if newLoans != 1 {
			t.Fatalf("locked=%v: %d calls reported a new loan, want 1", l.Locked(), newLoans)
		}
		if exp, loans := checkBooks(t, ctx, l, customer); exp != req.Principal || loans != 1 {
			t.Fatalf("exposure %d over %d loans, want %d over 1", exp, loans, req.Principal)
		}
	}
}

func TestLimitAndDefaultLimit(t *testing.T) {
	ctx, e := setup(t)
	l := e.locked(t, Options{DefaultLimit: 20_000_000})
	const customer = "C00000005"
	if _, err := l.Book(ctx, request("a1", customer, 15_000_000)); err != nil {
		t.Fatal(err)
	}
	c, err := l.Customer(ctx, customer)
	if err != nil || c.Limit != 20_000_000 || c.Exposure != 15_000_000 {
		t.Fatalf("first booking made %+v, %v; want limit 20,000,000 and exposure 15,000,000", c, err)
	}
	for range 2 { // refusing writes nothing, so it repeats
		_, err = l.Book(ctx, request("a2", customer, 6_000_000))
		var le *LimitError
		if !errors.As(err, &le) || !errors.Is(err, ErrLimitExceeded) {
			t.Fatalf("got %v, want a *LimitError", err)
		}
		if le.Exposure != 15_000_000 || le.Limit != 20_000_000 || le.Amount != 6_000_000 {
			t.Fatalf("limit error %+v", le)
		}
		for _, s := range []string{"C00000005", "15000000", "6000000", "20000000"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("message %q does not say %s", err, s)
			}
		}
	}
	if _, err := l.Book(ctx, request("a3", customer, 5_000_000)); err != nil {
		t.Fatalf("booking exactly up to the limit: %v", err)
	}
	// Lowering the limit below the exposure stops new loans; raising it makes room.
	if err := l.SetLimit(ctx, customer, 10_000_000); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Book(ctx, request("a4", customer, 1_000_000)); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("after lowering the limit: got %v, want ErrLimitExceeded", err)
	}
	if err := l.SetLimit(ctx, customer, 25_000_000); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Book(ctx, request("a4", customer, 1_000_000)); err != nil {
		t.Fatalf("after raising the limit: %v", err)
	}
	if exp, loans := checkBooks(t, ctx, l, customer); exp != 21_000_000 || loans != 3 {
		t.Fatalf("exposure %d over %d loans", exp, loans)
	}
}

func TestSameApplicationDifferentTerms(t *testing.T) {
	ctx, e := setup(t)
	l := e.locked(t, Options{})
	if _, err := l.Book(ctx, request("app-1", "C00000006", 10_000_000)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		other Request
		field string
	}{
		{request("app-1", "C00000006", 12_000_000), "principal"},
		{request("app-1", "C00000007", 10_000_000), "customer"},
	} {
		_, err := l.Book(ctx, tc.other)
		if !errors.Is(err, ErrLoanConflict) {
			t.Fatalf("%+v: got %v, want ErrLoanConflict", tc.other, err)
		}
		// The SDK logs an activity's error: it names the application and
		// the terms that differ, never a customer id or an amount.
		msg := err.Error()
		_, differ, _ := strings.Cut(msg, "differs from the one asked in: ")
		if !strings.Contains(msg, "app-1") || !slices.Contains(strings.Split(differ, ", "), tc.field) {
			t.Errorf("error %q: want the application and %q named", msg, tc.field)
		}
		for _, personal := range []string{"C00000006", "C00000007", "10000000", "12000000"} {
			if strings.Contains(msg, personal) {
				t.Errorf("error %q carries %s", msg, personal)
			}
		}
	}
	if exp, loans := checkBooks(t, ctx, l, "C00000006"); exp != 10_000_000 || loans != 1 {
		t.Fatalf("exposure %d over %d loans", exp, loans)
	}
}

// If Redis loses its fence counters (a restart without persistence), tokens
// start again below what customers' rows recorded. A holder that still owns
// its lock is not stale: its token is raised above the row's mark (the Redis
// counter is floored by what Postgres has seen), so the booking goes through
// and last_fence never goes backwards.
func TestFenceCounterResetStillBooks(t *testing.T) {
	ctx, e := setup(t)
	l := e.locked(t, Options{})
	const customer = "C00000008"
	if err := l.SetLimit(ctx, customer, 100_000_000); err != nil {
		t.Fatal(err)
	}
	if _, err := l.pool.Exec(ctx, `UPDATE customers SET last_fence = 1000000 WHERE customer_id = $1`, customer); err != nil {
		t.Fatal(err)
	}
	b, err := l.Book(ctx, request("app-1", customer, 10_000_000))
	if err != nil {
		t.Fatalf("booking after a fence reset: %v", err)
	}
	c, _ := l.Customer(ctx, customer)
	if c.LastFence <= 1000000 || c.LastFence != b.Loan.FencingToken || l.Stats().FenceResets != 1 {
		t.Fatalf("last fence %d after booking with token %d (want above 1000000, and equal); stats %+v", c.LastFence, b.Loan.FencingToken, l.Stats())
	}
	// The Redis counter now continues above the mark: the next booking
	// needs no reset.
	b2, err := l.Book(ctx, request("app-2", customer, 10_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if b2.Loan.FencingToken <= b.Loan.FencingToken || l.Stats().FenceResets != 1 {
		t.Fatalf("second token %d after %d; stats %+v", b2.Loan.FencingToken, b.Loan.FencingToken, l.Stats())
	}
}

// Redis restarted empty between two bookings: the counter key is gone and
// tokens would restart at 1. A lower token must never overwrite the row's
// mark.
func TestFenceCounterLossNeverLowersLastFence(t *testing.T) {
	ctx, e := setup(t)
	l := e.locked(t, Options{})
	const customer = "C00000009"
	for i := range 5 {
		if _, err := l.Book(ctx, request(fmt.Sprintf("app-%d", i), customer, 1_000_000)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := l.Customer(ctx, customer)
	if err := e.rdb.Del(ctx, e.prefix+"fence:{"+l.opts.LockKey(customer)+"}").Err(); err != nil {
		t.Fatal(err)
	}
	b, err := l.Book(ctx, request("app-after-loss", customer, 1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := l.Customer(ctx, customer)
	if after.LastFence <= before.LastFence || b.Loan.FencingToken != after.LastFence {
		t.Fatalf("last fence went from %d to %d (loan token %d) after Redis lost the counter", before.LastFence, after.LastFence, b.Loan.FencingToken)
	}
}

// The fence is enforced by the booking UPDATE itself: a holder whose token
// is older than the row's mark cannot book even if the row's version did not
// change (e.g. the mark was raised by a writer the version check cannot see).
func TestStaleFenceCannotBook(t *testing.T) {
	ctx, e := setup(t)
	l := e.locked(t, Options{})
	const customer = "C00000010"
	if err := l.SetLimit(ctx, customer, 100_000_000); err != nil {
		t.Fatal(err)
	}
	lk, err := l.locker.Acquire(ctx, l.opts.LockKey(customer))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lk.Release(context.Background()) }()
	l.afterRead = func(ctx context.Context, _ int) {
		if _, err := e.pool.Exec(ctx, `UPDATE customers SET last_fence = $2 WHERE customer_id = $1`, customer, lk.Token()+10); err != nil {
			t.Error(err)
		}
	}
	var b Booking
	err = l.book(ctx, request("app-stale", customer, 10_000_000), lk, &b)
	if !errors.Is(err, ErrStaleFence) {
		t.Fatalf("booking with token %d under mark %d: got %v, want ErrStaleFence", lk.Token(), lk.Token()+10, err)
	}
	if strings.Contains(err.Error(), customer) {
		t.Errorf("error %q carries the customer id", err)
	}
	if _, err := l.Loan(ctx, "app-stale"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a stale fence booked a loan: %v", err)
	}
	c, _ := l.Customer(ctx, customer)
	if c.Exposure != 0 || c.LastFence != lk.Token()+10 {
		t.Fatalf("customer %+v changed by a stale fence", c)
	}
}

func TestRequestAndOptionsValidated(t *testing.T) {
	ctx, e := setup(t)
	l := e.optimistic(t, Options{})
	for _, r := range []Request{
		{},
		request("a", "C1{x}", 1),
		request("a", "C1", 0),
		{ApplicationID: "a", CustomerID: "C1", Principal: 1, TermMonths: 0},
	} {
		_, err := l.Book(ctx, r)
		if !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: got %v, want ErrInvalidRequest", r, err)
		}
	}
	for _, o := range []Options{{MaxAttempts: -1}, {DefaultLimit: -5}, {TxTimeout: time.Microsecond}, {Lock: dlock.Options{TTL: time.Microsecond}}} {
		if _, err := New(e.pool, e.rdb, o); err == nil {
			t.Errorf("New(%+v) accepted bad options", o)
		} else if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
			t.Errorf("message not lower-case: %q", msg)
		}
	}
	if _, err := New(nil, nil, Options{}); err == nil {
		t.Error("New accepted a nil pool")
	}
}
