// Package rediskeys removes every Redis key under a prefix: how tests and the
// benchmark commands clean up after a run (each has a prefix of its own).
package rediskeys

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// batch bounds the keys listed per SCAN step and deleted per DEL.
const batch = 500

// DeletePrefix deletes every key that starts with prefix and says how many it
// found. It stops at the first error, which it returns with the count found.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", batch).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return len(keys), err
	}
	found := len(keys)
	for len(keys) > 0 {
		n := min(len(keys), batch)
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			return found, err
		}
		keys = keys[n:]
	}
	return found, nil
}
