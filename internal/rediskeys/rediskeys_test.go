package rediskeys_test

import (
	"context"
	"fmt"
	"testing"

	"loanflow/internal/rediskeys"
	"loanflow/internal/testenv"
)

func TestDeletePrefixDeletesOnlyItsKeys(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	// More keys than one DEL takes, and a neighbour that shares the start.
	for i := range 1203 {
		if err := rdb.Set(ctx, fmt.Sprintf("%srun:%d", prefix, i), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	other := prefix + "other"
	if err := rdb.Set(ctx, other, "keep", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := rediskeys.DeletePrefix(ctx, rdb, prefix+"run:")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1203 {
		t.Fatalf("found %d keys, want 1203", n)
	}
	if left, _ := rdb.Keys(ctx, prefix+"run:*").Result(); len(left) != 0 {
		t.Fatalf("%d keys left under the prefix", len(left))
	}
	if v, _ := rdb.Get(ctx, other).Result(); v != "keep" {
		t.Fatalf("a key outside the prefix was deleted (got %q)", v)
	}
}
