package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// heartbeatKey holds the controller's last tick, in Redis server time.
func heartbeatKey(prefix string) string { return prefix + "controller:heartbeat" }

// heartbeatScript stamps the tick with Redis's clock, so the age a watcher
// computes compares two readings of one clock.
//
// KEYS: heartbeat. ARGV: period in ms.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], now .. ' ' .. ARGV[1])
return now
`)

// ageScript returns the server time and the heartbeat.
var ageScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, redis.call('GET', KEYS[1])}
`)

// WriteHeartbeat records that the controller ticked now.
func WriteHeartbeat(ctx context.Context, rdb redis.UniversalClient, prefix string, period time.Duration) error {
	if err := heartbeatScript.Run(ctx, rdb, []string{heartbeatKey(prefix)}, period.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("write controller heartbeat: %w", err)
	}
	return nil
}

// Heartbeat is the controller's last tick as a watcher sees it.
type Heartbeat struct {
	// Found is false when the controller never ticked (or Redis lost it).
	Found bool
	// Age is the time since the last tick, by Redis's clock.
	Age time.Duration
	// Period is the controller's period at that tick.
	Period time.Duration
}

// MissedPeriods is how many whole periods passed without a tick.
func (h Heartbeat) MissedPeriods() int {
	if !h.Found || h.Period <= 0 {
		return 0
	}
	return int(h.Age / h.Period)
}

// ReadHeartbeat reads the controller's last tick.
func ReadHeartbeat(ctx context.Context, rdb redis.UniversalClient, prefix string) (Heartbeat, error) {
	v, err := ageScript.Run(ctx, rdb, []string{heartbeatKey(prefix)}).Slice()
	if err != nil {
		return Heartbeat{}, fmt.Errorf("read controller heartbeat: %w", err)
	}
	if len(v) < 2 || v[1] == nil {
		return Heartbeat{}, nil
	}
	now, _ := v[0].(int64)
	raw, _ := v[1].(string)
	tick, period, ok := strings.Cut(raw, " ")
	t, err1 := strconv.ParseInt(tick, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if !ok || errors.Join(err1, err2) != nil {
		return Heartbeat{}, fmt.Errorf("read controller heartbeat: key %s holds %q: accepted \"<ms> <period ms>\"", heartbeatKey(prefix), raw)
	}
	return Heartbeat{Found: true, Age: time.Duration(now-t) * time.Millisecond, Period: time.Duration(p) * time.Millisecond}, nil
}
