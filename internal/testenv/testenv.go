// Package testenv gives integration tests their own Postgres database and
// Redis key prefix, so reruns and packages running in parallel never collide.
//
// Tests reach the services through LOANFLOW_TEST_DATABASE_URL (default: the
// local "test" database) and LOANFLOW_TEST_REDIS_URL (default: local Redis).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"loanflow/internal/rediskeys"
)

const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// ID returns a short random id, unique per call.
func ID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Postgres creates an empty database for the test, drops it when the test
// ends, and returns its URL.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("LOANFLOW_TEST_DATABASE_URL")
	if admin == "" {
		admin = defaultDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to Postgres at %s (set LOANFLOW_TEST_DATABASE_URL): %v", admin, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	name := "loanflow_test_" + ID()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer func() { _ = c.Close(ctx) }()
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse LOANFLOW_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Redis returns a client for the test Redis and a key prefix unique to this
// test; keys under the prefix are deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	raw := os.Getenv("LOANFLOW_TEST_REDIS_URL")
	if raw == "" {
		raw = defaultRedisURL
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("parse LOANFLOW_TEST_REDIS_URL %q: %v", raw, err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("connect to Redis at %s (set LOANFLOW_TEST_REDIS_URL): %v", raw, err)
	}
	prefix := "lftest:" + ID() + ":"
	t.Cleanup(func() {
		_, _ = rediskeys.DeletePrefix(context.Background(), rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// RedisURL returns the URL of the test Redis.
func RedisURL() string {
	if u := os.Getenv("LOANFLOW_TEST_REDIS_URL"); u != "" {
		return u
	}
	return defaultRedisURL
}

// Short skips an integration test under -short.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Postgres and Redis; skipped with -short")
	}
}
