package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"loanflow/codec"
)

// sha256Name is the unkeyed lock name, spelled out here so that a change of
// its format is a deliberate one.
func sha256Name(customerID string) string {
	sum := sha256.Sum256([]byte("loanflow/ledger-lock/v1\x00" + customerID))
	return hex.EncodeToString(sum[:])
}

func testHasher(t *testing.T) *codec.Hasher {
	t.Helper()
	k, err := codec.NewKey("test-s1")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := codec.NewKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	return codec.NewHasher(ring)
}

func TestLockKeyUsesLockName(t *testing.T) {
	const customer = "C00000042"
	h := testHasher(t)
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"unkeyed default", Options{}, "customer:" + sha256Name(customer)},
		{"configured", Options{LockName: func(id string) string { return "n-" + strings.ToLower(id) }}, "customer:n-c00000042"},
		{"keyed hash", Options{LockName: h.CustomerRef}, "customer:" + h.CustomerRef(customer)},
	} {
		if got := c.opts.LockKey(customer); got != c.want {
			t.Errorf("%s: LockKey(%q) = %q, want %q", c.name, customer, got, c.want)
		}
	}
	if DefaultLockName(customer) != sha256Name(customer) {
		t.Errorf("DefaultLockName(%q) = %q, want %q", customer, DefaultLockName(customer), sha256Name(customer))
	}
	if DefaultLockName("C1") == DefaultLockName("C2") {
		t.Error("two customers share a lock name")
	}
}

// redisDuringBooking books one loan for customer and returns the keys under
// the test's Redis prefix, with their string values, as seen while the
// booking held the lock and after it returned.
func redisDuringBooking(t *testing.T, ctx context.Context, e *env, l *Ledger, customer string) (during, after map[string]string) {
	t.Helper()
	var once sync.Once
	l.afterRead = func(ctx context.Context, _ int) {
		once.Do(func() { during = redisKeys(t, ctx, e) })
	}
	if _, err := l.Book(ctx, request("app-"+customer, customer, 10_000_000)); err != nil {
		t.Fatal(err)
	}
	if during == nil {
		t.Fatal("the booking never read the customer row")
	}
	return during, redisKeys(t, ctx, e)
}

func redisKeys(t *testing.T, ctx context.Context, e *env) map[string]string {
	t.Helper()
	keys := map[string]string{}
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		v, err := e.rdb.Get(ctx, k).Result()
		if err != nil {
			v = "" // not a string, or expired since the scan
		}
		keys[k] = v
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func assertNoCustomerID(t *testing.T, when string, keys map[string]string, customer string) {
	t.Helper()
	for k, v := range keys {
		if strings.Contains(k, customer) || strings.Contains(v, customer) {
			t.Errorf("%s: Redis key %q (value %q) carries customer id %s", when, k, v, customer)
		}
	}
}

// No customer id reaches Redis: not in the lock's key, the fence counter's
// key, nor their values, while the booking holds the lock or after.
func TestLockKeyNamesNoCustomer(t *testing.T) {
	ctx, e := setup(t)
	l := e.locked(t, Options{})
	const customer = "C00000042"
	during, after := redisDuringBooking(t, ctx, e, l, customer)
	assertNoCustomerID(t, "during the booking", during, customer)
	assertNoCustomerID(t, "after the booking", after, customer)

	name := sha256Name(customer)
	lockKey, fenceKey := e.prefix+"lock:{customer:"+name+"}", e.prefix+"fence:{customer:"+name+"}"
	if _, ok := during[lockKey]; !ok {
		t.Errorf("during the booking Redis holds %v, want the lock %s", slices.Sorted(maps.Keys(during)), lockKey)
	}
	if _, ok := after[fenceKey]; !ok {
		t.Errorf("after the booking Redis holds %v, want the fence counter %s", slices.Sorted(maps.Keys(after)), fenceKey)
	}
	if _, ok := after[lockKey]; ok {
		t.Errorf("the lock %s outlived the booking", lockKey)
	}
}

// The configured LockName keys the lock: with the keyed hash the worker
// passes, the lock is named by the customer's CustomerRef.
func TestConfiguredLockNameKeysTheLock(t *testing.T) {
	ctx, e := setup(t)
	h := testHasher(t)
	var mu sync.Mutex
	var asked []string
	l := e.locked(t, Options{LockName: func(id string) string {
		mu.Lock()
		asked = append(asked, id)
		mu.Unlock()
		return h.CustomerRef(id)
	}})
	const customer = "C00000043"
	during, after := redisDuringBooking(t, ctx, e, l, customer)
	assertNoCustomerID(t, "during the booking", during, customer)
	assertNoCustomerID(t, "after the booking", after, customer)

	lockKey := e.prefix + "lock:{customer:" + h.CustomerRef(customer) + "}"
	if _, ok := during[lockKey]; !ok {
		t.Errorf("during the booking Redis holds %v, want the lock %s", slices.Sorted(maps.Keys(during)), lockKey)
	}
	if _, ok := during[e.prefix+"lock:{customer:"+sha256Name(customer)+"}"]; ok {
		t.Error("the booking took the unkeyed lock name although LockName is set")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) == 0 || slices.ContainsFunc(asked, func(id string) bool { return id != customer }) {
		t.Errorf("LockName was asked for %q, want only %s", asked, customer)
	}
}
