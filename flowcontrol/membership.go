package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys, all under a prefix. The agency is the hash tag, so the keys a
// script touches together live in one slot on Redis Cluster:
//
//	<prefix>workers:{<agency>}   sorted set: worker id → expiry (Redis server time, ms)
//	<prefix>inflight:{<agency>}  hash: worker id → calls running at that worker
//	<prefix>claims:{<agency>}    hash: worker id → permits that worker may hold until its next heartbeat
//	<prefix>limit:{<agency>}     string: the agency's global limit, written by the controller
//
// and one channel per agency, on which WriteLimits announces a changed
// limit, so that every worker heartbeats at once instead of on its next
// beat:
//
//	<prefix>limit-changed:{<agency>}
func workersKey(prefix, agency string) string  { return prefix + "workers:{" + agency + "}" }
func inFlightKey(prefix, agency string) string { return prefix + "inflight:{" + agency + "}" }
func claimsKey(prefix, agency string) string   { return prefix + "claims:{" + agency + "}" }
func limitKey(prefix, agency string) string    { return prefix + "limit:{" + agency + "}" }
func changedChannel(prefix, agency string) string {
	return prefix + "limit-changed:{" + agency + "}"
}

// beatScript registers or refreshes one worker for one agency, prunes the
// members whose registration expired, publishes the worker's calls in
// flight, and decides the worker's limit, atomically, so that the claims of
// all live workers never sum above the global limit:
//
//   - share: the global limit split over the live workers in id order, the
//     remainder going one each to global%n of them, starting at a rank that
//     rotates every rotate ms of Redis server time (0: never), so a limit
//     below the number of workers leaves some with 0 but not always the same;
//   - limit: the share, but no more than the global limit less what the
//     other live workers claim, so a worker whose share grew waits until
//     the one whose share shrank has given its permits back;
//   - claim: the most calls this worker may have at the agency until its
//     next heartbeat, the larger of the new limit and held (the calls it has
//     or may still admit under its current limit: SlotSupplier.Held), stored
//     for the others to read.
//
// It returns {limit or false, global or false, share or false}: false when
// there is no global limit (none in Redis and no default), and the worker
// keeps its own. A limit below the share is a hand-off under way: the
// worker beats again soon (see Membership). Expiry is in Redis server
// time, so the workers' clocks need not agree.
//
// A worker that joins, or the expiry of one that died, is announced on the
// agency's channel: the others' shares changed.
//
// KEYS: workers, inflight, claims, limit. ARGV: worker id, TTL in ms, calls
// in flight, held, default global limit (-1: none), rotate in ms, channel.
var beatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
local ttl = tonumber(ARGV[2])
local held = tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
  redis.call('HDEL', KEYS[3], unpack(expired))
end
if redis.call('ZADD', KEYS[1], now + ttl, id) == 1 or #expired > 0 then
  -- The shares changed: every worker beats at once.
  redis.call('PUBLISH', ARGV[7], 'members')
end
redis.call('HSET', KEYS[2], id, ARGV[3])
for i = 1, 3 do
  if redis.call('PTTL', KEYS[i]) < 2 * ttl then
    redis.call('PEXPIRE', KEYS[i], 2 * ttl)
  end
end
local global = tonumber(redis.call('GET', KEYS[4]) or ARGV[5])
if global == nil or global < 0 then
  redis.call('HSET', KEYS[3], id, held)
  return {false, false, false}
end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(ids)
local n = #ids
local rank = 0
for i, v in ipairs(ids) do
  if v == id then
    rank = i - 1
  end
end
local share = math.floor(global / n)
local rotate = tonumber(ARGV[6])
local offset = 0
if rotate > 0 then
  offset = math.floor(now / rotate) % n
end
if (rank - offset) % n < global % n then
  share = share + 1
end
local others = 0
for i, v in ipairs(redis.call('HMGET', KEYS[3], unpack(ids))) do
  if v and ids[i] ~= id then
    others = others + tonumber(v)
  end
end
local limit = math.max(0, math.min(share, global - others))
redis.call('HSET', KEYS[3], id, math.max(limit, held))
return {limit, global, share}
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
	// Heartbeat is the period of the registration refresh. A changed
	// global limit reaches the worker at once, announced; the heartbeat
	// bounds how late it does when an announcement is missed. 0 means 1s.
	Heartbeat time.Duration
	// RotateEvery is how often the remainder of the global limit (the calls
	// left when it does not divide evenly, e.g. all of a limit smaller than
	// the number of workers) moves on to the next workers in id order, so
	// that no worker is left at 0 for good. 0 means 30s; negative never
	// rotates.
	RotateEvery time.Duration
	// Logger receives failed heartbeats; nil means slog.Default().
	Logger *slog.Logger
}

// Membership registers one worker process for its agencies in Redis and
// keeps each agency's SlotSupplier at this worker's share of the agency's
// global limit, so that the calls at the agency across all live workers never
// exceed the global limit, whatever the number of workers: a share may be 0
// (the worker does not poll that agency's queue).
//
// The bound holds through changes because each heartbeat decides the
// worker's limit in one atomic script, against the claims the other live
// workers published (see beatScript): a worker whose share grows waits until
// the worker whose share shrank has released its permits, so a hand-off
// never exceeds the limit. It costs the time the calls still running under
// the old shares take to end, not heartbeats:
//   - a changed limit, a worker that joins or leaves and the expiry of one
//     that died are announced on the agency's channel, and every worker
//     beats at once;
//   - a worker left below its share (the first to beat still sees the
//     others' claims under the old shares), or claiming more than its new
//     limit, beats again every Heartbeat/10 (at most 100 ms) until that is
//     over, so permits are given back and taken as the calls end.
//
// Without them a hand-off took up to two heartbeats, the permits given back
// standing idle meanwhile: a limit cut from 4 to 2 over two workers left
// both at 0 for a second.
//
// A worker that cannot renew its registration fences itself: once
// TTL − Heartbeat has passed since the start of its last successful
// heartbeat, every supplier drops to 0, before its registration expires and
// the others take its share. Calls already running then finish; the bound
// on calls at the agency is strict when they finish within the heartbeat
// left (the agency client's timeout should be below Heartbeat, or the TTL
// raised by it). Each heartbeat also publishes the worker's calls in flight,
// which ReadInFlight sums.
type Membership struct {
	rdb       redis.UniversalClient
	opts      MembershipOptions
	agencies  []string
	suppliers map[string]*SlotSupplier
	// unbounded is each supplier's own limit, used while its agency has
	// no global limit.
	unbounded map[string]int
	defaults  map[string]int
	log       *slog.Logger
	// skipDeregister leaves the registration behind when Run ends, as a
	// crashed process would; for tests.
	skipDeregister bool

	// nudge asks Run for a heartbeat now: a limit change was announced.
	nudge chan struct{}

	mu sync.Mutex
	// renewed is the start of the last heartbeat that succeeded for every
	// agency; zero before the first.
	renewed time.Time
	fenced  bool
	// handingOff: the last heartbeat left some agency below this worker's
	// share, waiting for permits another worker is giving back, or this
	// worker claiming more than its new limit, permits it gives back.
	handingOff bool
}

// NewMembership returns a Membership for the agencies in suppliers, which
// it sets to 0 until the first heartbeat. defaults holds the global limit
// each agency uses until the controller has written one; an agency with
// neither has no bound, and its supplier keeps the limit it is given.
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
	if opts.RotateEvery == 0 {
		opts.RotateEvery = 30 * time.Second
	}
	if opts.TTL <= opts.Heartbeat {
		return nil, fmt.Errorf("new membership: ttl %s: accepted more than the heartbeat %s", opts.TTL, opts.Heartbeat)
	}
	m := &Membership{rdb: rdb, opts: opts, suppliers: make(map[string]*SlotSupplier, len(suppliers)),
		unbounded: make(map[string]int, len(suppliers)),
		defaults:  make(map[string]int, len(defaults)), log: opts.Logger, nudge: make(chan struct{}, 1)}
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
		// Nothing may be issued before the first heartbeat has counted
		// this worker in: its share is unknown until then.
		m.unbounded[a] = s.Limit()
		s.SetLimit(0)
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
// the next beat; while none succeeds, the fence (see Membership) drops the
// suppliers to 0 in time. Run returns an error only if deregistering fails.
func (m *Membership) Run(ctx context.Context) error {
	// The fence is checked apart from the heartbeats, which may hang on a
	// partitioned network for as long as the client's timeouts.
	fctx, stopFence := context.WithCancel(ctx)
	defer stopFence()
	go m.watchFence(fctx)
	go m.listen(fctx, m.subscribe(fctx))
	// Reset needs no draining: the module's Go version (1.23 or later)
	// gives timers no stale ticks.
	next := time.NewTimer(m.opts.Heartbeat)
	defer next.Stop()
	for {
		if err := m.Beat(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("flow control heartbeat failed; slot limits unchanged until the fence",
				"worker_id", m.opts.WorkerID, "error", err)
		}
		wait := m.opts.Heartbeat
		m.mu.Lock()
		if m.handingOff {
			wait = m.handOffRetry()
		}
		m.mu.Unlock()
		next.Reset(wait)
		select {
		case <-ctx.Done():
			return m.leave(ctx)
		case <-next.C:
		case <-m.nudge:
		}
	}
}

// handOffRetry is how soon a worker in a hand-off (below its share, or
// claiming more than its new limit) beats again: Heartbeat/10, within 10
// to 100 ms.
func (m *Membership) handOffRetry() time.Duration {
	return min(max(m.opts.Heartbeat/10, 10*time.Millisecond), 100*time.Millisecond)
}

// subscribe subscribes to the announcements of this worker's agencies and
// waits, up to a heartbeat, for Redis to confirm, so that a change written
// after the first heartbeat is not missed. Unconfirmed, the client goes on
// trying in the background; the heartbeats carry the limits meanwhile.
func (m *Membership) subscribe(ctx context.Context) *redis.PubSub {
	channels := make([]string, len(m.agencies))
	for i, a := range m.agencies {
		channels[i] = changedChannel(m.opts.Prefix, a)
	}
	sub := m.rdb.Subscribe(ctx, channels...)
	rctx, cancel := context.WithTimeout(ctx, m.opts.Heartbeat)
	defer cancel()
	if _, err := sub.Receive(rctx); err != nil && ctx.Err() == nil {
		m.log.Warn("flow control limit announcements not subscribed yet; heartbeats carry the limits",
			"worker_id", m.opts.WorkerID, "error", err)
	}
	return sub
}

// listen nudges Run whenever WriteLimits announces a changed limit of one
// of this worker's agencies, until ctx ends. A missed announcement (Redis
// unreachable, the subscription reconnecting) costs only the wait for the
// next heartbeat.
func (m *Membership) listen(ctx context.Context, sub *redis.PubSub) {
	defer func() { _ = sub.Close() }()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			select {
			case m.nudge <- struct{}{}:
			default: // a heartbeat is already due
			}
		}
	}
}

// fenceAfter is how long after the start of the last successful heartbeat
// the suppliers drop to 0: a heartbeat before the registration can expire.
func (m *Membership) fenceAfter() time.Duration { return m.opts.TTL - m.opts.Heartbeat }

// watchFence drops every supplier to 0 once the registration could not be
// renewed in time.
func (m *Membership) watchFence(ctx context.Context) {
	t := time.NewTicker(max(m.opts.Heartbeat/10, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.mu.Lock()
		if !m.renewed.IsZero() && !m.fenced && time.Since(m.renewed) >= m.fenceAfter() {
			m.fenced = true
			for _, s := range m.suppliers {
				s.SetLimit(0)
			}
			m.log.Error("flow control registration not renewed in time; this worker stops calling the agencies until it is",
				"worker_id", m.opts.WorkerID, "last_renewed", m.renewed, "ttl", m.opts.TTL)
		}
		m.mu.Unlock()
	}
}

// Beat runs one heartbeat: one pipelined round trip registers this worker
// for every agency, publishes its calls in flight and claims, and decides
// each supplier's limit (see beatScript).
func (m *Membership) Beat(ctx context.Context) error {
	start := time.Now()
	pipe := m.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(m.agencies))
	helds := make([]int, len(m.agencies))
	ttl := strconv.FormatInt(m.opts.TTL.Milliseconds(), 10)
	rotate := strconv.FormatInt(max(m.opts.RotateEvery.Milliseconds(), 0), 10)
	for i, a := range m.agencies {
		keys := []string{workersKey(m.opts.Prefix, a), inFlightKey(m.opts.Prefix, a), claimsKey(m.opts.Prefix, a), limitKey(m.opts.Prefix, a)}
		def, ok := m.defaults[a]
		if !ok {
			def = -1
		}
		s := m.suppliers[a]
		// Until the reply is applied the supplier may issue up to its
		// current limit, so that much is claimed whatever the new limit.
		held := s.Held()
		cmds[i] = beatScript.Eval(ctx, pipe, keys, m.opts.WorkerID, ttl, s.InFlight(), held, def, rotate, changedChannel(m.opts.Prefix, a))
		helds[i] = held
	}
	// Exec reports the first failed command; each command carries its own
	// error, so one agency's failure does not hold back the others.
	_, _ = pipe.Exec(ctx)
	var errs []error
	limits := make(map[string]int, len(m.agencies))
	handingOff := false
	for i, a := range m.agencies {
		limit, share, ok, err := m.limitOf(a, cmds[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("heartbeat of worker %s, agency %s: %w", m.opts.WorkerID, a, err))
			continue
		}
		if !ok {
			limit = m.unbounded[a]
		}
		limits[a] = limit
		// Waiting for permits another worker gives back, or claiming more
		// than the new limit (the old one, or calls still running beyond
		// it), which the next beat gives back.
		handingOff = handingOff || ok && (limit < share || helds[i] > limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handingOff = handingOff
	if len(errs) == 0 {
		if time.Since(start) >= m.fenceAfter() {
			// Too late to rely on: the registration may already be about
			// to expire. The next heartbeat decides again.
			return fmt.Errorf("heartbeat of worker %s took %s: accepted less than %s (ttl − heartbeat)",
				m.opts.WorkerID, time.Since(start).Round(time.Millisecond), m.fenceAfter())
		}
		if m.fenced {
			m.log.Info("flow control registration renewed; calling the agencies again", "worker_id", m.opts.WorkerID)
		}
		m.renewed, m.fenced = start, false
	}
	if m.fenced {
		return errors.Join(errs...)
	}
	for a, l := range limits {
		m.suppliers[a].SetLimit(l)
	}
	return errors.Join(errs...)
}

// limitOf reads this worker's limit and share for the agency from a
// heartbeat's reply; ok is false when there is no global limit to share.
func (m *Membership) limitOf(agency string, cmd *redis.Cmd) (limit, share int, ok bool, err error) {
	reply, err := cmd.Slice()
	if err != nil {
		return 0, 0, false, err
	}
	if len(reply) != 3 {
		return 0, 0, false, fmt.Errorf("heartbeat reply has %d elements, want 3", len(reply))
	}
	if reply[0] == nil {
		return 0, 0, false, nil
	}
	l, isInt := reply[0].(int64)
	sh, shareInt := reply[2].(int64)
	if !isInt || l < 0 || !shareInt || sh < 0 {
		return 0, 0, false, fmt.Errorf("heartbeat reply: limit %v, share %v: accepted integers 0 or more (key %s)", reply[0], reply[2], limitKey(m.opts.Prefix, agency))
	}
	return int(l), int(sh), true, nil
}

func parseLimit(s string) (int, error) {
	l, err := strconv.Atoi(s)
	if err != nil || l < 0 {
		return 0, fmt.Errorf("limit %q: accepted an integer 0 or more", s)
	}
	return l, nil
}

// leave deregisters this worker from every agency, after ctx has ended. Its
// claims may go only once nothing is held under them: it stops issuing
// permits and waits, up to TTL − Heartbeat, for those held to be released
// (the workers are meant to stop before the membership); if they are not,
// the registration is left to expire instead.
func (m *Membership) leave(ctx context.Context) error {
	if m.skipDeregister {
		return nil
	}
	for _, s := range m.suppliers {
		s.SetLimit(0)
	}
	held := func() int {
		n := 0
		for _, s := range m.suppliers {
			n += s.InUse()
		}
		return n
	}
	deadline := time.Now().Add(m.fenceAfter())
	for held() > 0 {
		if time.Now().After(deadline) {
			m.log.Warn("flow control permits still held at shutdown; leaving the registration to expire",
				"worker_id", m.opts.WorkerID, "held", held(), "ttl", m.opts.TTL)
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.opts.Heartbeat+time.Second)
	defer cancel()
	pipe := m.rdb.Pipeline()
	for _, a := range m.agencies {
		pipe.ZRem(ctx, workersKey(m.opts.Prefix, a), m.opts.WorkerID)
		pipe.HDel(ctx, inFlightKey(m.opts.Prefix, a), m.opts.WorkerID)
		pipe.HDel(ctx, claimsKey(m.opts.Prefix, a), m.opts.WorkerID)
		pipe.Publish(ctx, changedChannel(m.opts.Prefix, a), "members") // the others take the share at once
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
// restarted controller or worker finds the last one, and announces each
// changed one to the workers (see Membership). One pipelined round trip.
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
		writeLimitScript.Eval(ctx, pipe, []string{limitKey(prefix, a)}, limits[a], changedChannel(prefix, a))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write limits of %s: %w", strings.Join(agencies, ", "), err)
	}
	return nil
}

// writeLimitScript stores an agency's global limit and, when it changed,
// announces it on the agency's channel, so that the workers heartbeat at
// once (see Membership).
//
// KEYS: limit. ARGV: limit, channel.
var writeLimitScript = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if old ~= ARGV[1] then
  redis.call('PUBLISH', ARGV[2], ARGV[1])
end
return 0
`)

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
