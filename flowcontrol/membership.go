package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys, all under a prefix. The agency is the hash tag, so the keys a
// script touches together live in one slot on Redis Cluster:
//
//	<prefix>workers:{<agency>}   sorted set: worker id → expiry (Redis server time, ms)
//	<prefix>inflight:{<agency>}  hash: worker id → calls running at that worker
//	<prefix>limit:{<agency>}     string: the agency's global limit, written by the controller
func workersKey(prefix, agency string) string  { return prefix + "workers:{" + agency + "}" }
func inFlightKey(prefix, agency string) string { return prefix + "inflight:{" + agency + "}" }
func limitKey(prefix, agency string) string    { return prefix + "limit:{" + agency + "}" }

// beatScript registers or refreshes one worker for one agency, prunes the
// members whose registration expired, publishes the worker's calls in
// flight, and returns the global limit (nil when none is set) and the live
// worker ids. Expiry is in Redis server time, so the workers' clocks need
// not agree.
//
// KEYS: workers, inflight, limit. ARGV: worker id, TTL in ms, in flight.
var beatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
for i = 1, 2 do
  if redis.call('PTTL', KEYS[i]) < 2 * ttl then
    redis.call('PEXPIRE', KEYS[i], 2 * ttl)
  end
end
return {redis.call('GET', KEYS[3]), redis.call('ZRANGE', KEYS[1], 0, -1)}
`)

// inFlightScript sums the calls in flight published by the live workers.
//
// KEYS: workers, inflight.
var inFlightScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
if #ids == 0 then
  return 0
end
local sum = 0
for _, v in ipairs(redis.call('HMGET', KEYS[2], unpack(ids))) do
  if v then
    sum = sum + tonumber(v)
  end
end
return sum
`)

// MembershipOptions configures a Membership.
type MembershipOptions struct {
	// Prefix starts every key; it must not contain '{' or '}', which would
	// take the hash tag from the agency.
	Prefix string
	// WorkerID names this worker process; it must be unique among the
	// workers sharing an agency, and is also what orders them for rounding.
	WorkerID string
	// TTL is how long a registration lives without a heartbeat: a worker that
	// dies gives its share back within TTL plus a heartbeat. 0 means 5s.
	TTL time.Duration
	// Heartbeat is the period of the registration refresh, which is also how
	// quickly a new global limit reaches the worker. 0 means 1s.
	Heartbeat time.Duration
	// Logger receives failed heartbeats; nil means slog.Default().
	Logger *slog.Logger
}

// Membership registers one worker process for its agencies in Redis and
// keeps each agency's SlotSupplier at this worker's share of the agency's
// global limit, so that the calls in flight across all live workers stay
// within the global limit (rounding adds at most one per worker, when the
// limit is below the number of workers). Each heartbeat also publishes the
// worker's calls in flight, which ReadInFlight sums.
//
// While a worker joins or leaves, the others learn of it on their next
// heartbeat, so for up to one heartbeat the sum of shares may differ from the
// global limit by the share that moved. When Redis cannot be reached the
// suppliers keep their last limit.
type Membership struct {
	rdb       redis.UniversalClient
	opts      MembershipOptions
	agencies  []string
	suppliers map[string]*SlotSupplier
	defaults  map[string]int
	log       *slog.Logger
	// skipDeregister leaves the registration behind when Run ends, as a
	// crashed process would; for tests.
	skipDeregister bool
}

// NewMembership returns a Membership for the agencies in suppliers. defaults
// holds the global limit each agency uses until the controller has written
// one; an agency with neither keeps its supplier's limit.
func NewMembership(rdb redis.UniversalClient, opts MembershipOptions, suppliers map[string]*SlotSupplier, defaults map[string]int) (*Membership, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("new membership: redis client is nil")
	case opts.WorkerID == "":
		return nil, errors.New("new membership: worker id is empty: accepted a name unique among the workers")
	case strings.ContainsAny(opts.Prefix, "{}"):
		return nil, fmt.Errorf("new membership: prefix %q: accepted a prefix without '{' or '}'", opts.Prefix)
	case opts.TTL < 0:
		return nil, fmt.Errorf("new membership: ttl %s: accepted 0 (5s) or more", opts.TTL)
	case opts.Heartbeat < 0:
		return nil, fmt.Errorf("new membership: heartbeat %s: accepted 0 (1s) or more", opts.Heartbeat)
	case len(suppliers) == 0:
		return nil, errors.New("new membership: no slot suppliers: accepted at least one agency")
	}
	if opts.TTL == 0 {
		opts.TTL = 5 * time.Second
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = time.Second
	}
	if opts.TTL <= opts.Heartbeat {
		return nil, fmt.Errorf("new membership: ttl %s: accepted more than the heartbeat %s", opts.TTL, opts.Heartbeat)
	}
	m := &Membership{rdb: rdb, opts: opts, suppliers: make(map[string]*SlotSupplier, len(suppliers)),
		defaults: make(map[string]int, len(defaults)), log: opts.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	for a, s := range suppliers {
		if err := checkAgency(a); err != nil {
			return nil, fmt.Errorf("new membership: %w", err)
		}
		if s == nil {
			return nil, fmt.Errorf("new membership: agency %s: slot supplier is nil", a)
		}
		m.suppliers[a] = s
		m.agencies = append(m.agencies, a)
	}
	sort.Strings(m.agencies)
	for a, l := range defaults {
		if l < 1 {
			return nil, fmt.Errorf("new membership: agency %s: default limit %d: accepted 1 or more", a, l)
		}
		m.defaults[a] = l
	}
	return m, nil
}

func checkAgency(a string) error {
	if a == "" || strings.ContainsAny(a, "{}") {
		return fmt.Errorf("agency name %q: accepted a non-empty name without '{' or '}'", a)
	}
	return nil
}

// Run heartbeats until ctx ends, then deregisters so a clean shutdown frees
// this worker's share at once. A failed heartbeat is logged and retried on
// the next beat; Run returns an error only if deregistering fails.
func (m *Membership) Run(ctx context.Context) error {
	t := time.NewTicker(m.opts.Heartbeat)
	defer t.Stop()
	for {
		if err := m.Beat(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("flow control heartbeat failed; slot limits unchanged",
				"worker_id", m.opts.WorkerID, "error", err)
		}
		select {
		case <-ctx.Done():
			return m.leave(ctx)
		case <-t.C:
		}
	}
}

// Beat runs one heartbeat: one pipelined round trip registers this worker
// for every agency, publishes its calls in flight, reads the global limits
// and live workers, and sets each supplier to this worker's share.
func (m *Membership) Beat(ctx context.Context) error {
	pipe := m.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(m.agencies))
	ttl := strconv.FormatInt(m.opts.TTL.Milliseconds(), 10)
	for i, a := range m.agencies {
		keys := []string{workersKey(m.opts.Prefix, a), inFlightKey(m.opts.Prefix, a), limitKey(m.opts.Prefix, a)}
		cmds[i] = beatScript.Eval(ctx, pipe, keys, m.opts.WorkerID, ttl, m.suppliers[a].Running())
	}
	// Exec reports the first failed command; each command carries its own
	// error, so one agency's failure does not hold back the others.
	_, _ = pipe.Exec(ctx)
	var errs []error
	for i, a := range m.agencies {
		share, ok, err := m.share(a, cmds[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("heartbeat of worker %s, agency %s: %w", m.opts.WorkerID, a, err))
			continue
		}
		if ok {
			m.suppliers[a].SetLimit(share)
		}
	}
	return errors.Join(errs...)
}

// share computes this worker's share of the agency's global limit from a
// heartbeat's reply; ok is false when there is no limit to share.
func (m *Membership) share(agency string, cmd *redis.Cmd) (share int, ok bool, err error) {
	reply, err := cmd.Slice()
	if err != nil {
		return 0, false, err
	}
	if len(reply) != 2 {
		return 0, false, fmt.Errorf("heartbeat reply has %d elements, want 2", len(reply))
	}
	global, found := m.defaults[agency]
	if s, isString := reply[0].(string); isString {
		if global, err = parseLimit(s); err != nil {
			return 0, false, fmt.Errorf("key %s: %w", limitKey(m.opts.Prefix, agency), err)
		}
		found = true
	}
	if !found {
		return 0, false, nil
	}
	raw, _ := reply[1].([]any)
	ids := make([]string, 0, len(raw))
	for _, id := range raw {
		if s, isString := id.(string); isString {
			ids = append(ids, s)
		}
	}
	return shareOf(global, m.opts.WorkerID, ids), true, nil
}

// shareOf splits global among the workers ids: each gets global/n, and the
// first global%n in id order one more; never less than 1. A worker missing
// from ids (its registration just expired) counts as one more.
func shareOf(global int, self string, ids []string) int {
	sort.Strings(ids)
	rank := sort.SearchStrings(ids, self)
	n := len(ids)
	if rank == n || ids[rank] != self {
		n++ // not registered (yet): count ourselves, last
		rank = n - 1
	}
	share := global / n
	if rank < global%n {
		share++
	}
	return max(share, 1)
}

func parseLimit(s string) (int, error) {
	l, err := strconv.Atoi(s)
	if err != nil || l < 0 {
		return 0, fmt.Errorf("limit %q: accepted an integer 0 or more", s)
	}
	return l, nil
}

// leave deregisters this worker from every agency, after ctx has ended.
func (m *Membership) leave(ctx context.Context) error {
	if m.skipDeregister {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.opts.Heartbeat+time.Second)
	defer cancel()
	pipe := m.rdb.Pipeline()
	for _, a := range m.agencies {
		pipe.ZRem(ctx, workersKey(m.opts.Prefix, a), m.opts.WorkerID)
		pipe.HDel(ctx, inFlightKey(m.opts.Prefix, a), m.opts.WorkerID)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("deregister worker %s: %w", m.opts.WorkerID, err)
	}
	return nil
}

// ReadInFlight sums the calls in flight that the live workers published for
// an agency on their last heartbeat.
func ReadInFlight(ctx context.Context, rdb redis.UniversalClient, prefix, agency string) (int, error) {
	n, err := inFlightScript.Run(ctx, rdb, []string{workersKey(prefix, agency), inFlightKey(prefix, agency)}).Int()
	if err != nil {
		return 0, fmt.Errorf("read in-flight calls of agency %s: %w", agency, err)
	}
	return n, nil
}

// WriteLimits stores each agency's global limit, without expiry, so a
// restarted controller or worker finds the last one. One pipelined round
// trip.
func WriteLimits(ctx context.Context, rdb redis.UniversalClient, prefix string, limits map[string]int) error {
	agencies := make([]string, 0, len(limits))
	for a, l := range limits {
		if err := checkAgency(a); err != nil {
			return fmt.Errorf("write limits: %w", err)
		}
		if l < 0 {
			return fmt.Errorf("write limits: agency %s: limit %d: accepted 0 or more", a, l)
		}
		agencies = append(agencies, a)
	}
	if len(agencies) == 0 {
		return nil
	}
	sort.Strings(agencies)
	pipe := rdb.Pipeline()
	for _, a := range agencies {
		pipe.Set(ctx, limitKey(prefix, a), limits[a], 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write limits of %s: %w", strings.Join(agencies, ", "), err)
	}
	return nil
}

// ReadLimits reads the global limits of the agencies; an agency without one
// is absent from the map. One pipelined round trip.
func ReadLimits(ctx context.Context, rdb redis.UniversalClient, prefix string, agencies []string) (map[string]int, error) {
	out := make(map[string]int, len(agencies))
	if len(agencies) == 0 {
		return out, nil
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(agencies))
	for i, a := range agencies {
		cmds[i] = pipe.Get(ctx, limitKey(prefix, a))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read limits of %s: %w", strings.Join(agencies, ", "), err)
	}
	for i, a := range agencies {
		s, err := cmds[i].Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read limit of agency %s: %w", a, err)
		}
		l, err := parseLimit(s)
		if err != nil {
			return nil, fmt.Errorf("read limit of agency %s: key %s: %w", a, limitKey(prefix, a), err)
		}
		out[a] = l
	}
	return out, nil
}
