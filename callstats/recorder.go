// Package callstats measures every agency call and keeps per-agency,
// per-second statistics in Redis, where the flow controller reads them back as
// windows: calls by outcome class, and latency and queue-wait histograms from
// which p50/p90/p99 can be read for any window.
//
// An activity interceptor (NewInterceptor) does the measuring, so no agency
// activity records anything itself. Each call costs one pipelined Redis round
// trip. Statistics fail open: when Redis is down or slow the call proceeds,
// the sample is dropped and counted, and money paths are never involved.
//
// # Key layout
//
// One hash per agency and second, named
//
//	<prefix>stats:{<agency>}:<unix-second>
//
// where the second is the one in which the call finished. The {<agency>} hash
// tag puts all of an agency's keys in one Redis Cluster slot. Its fields are
//
//	n             calls
//	c:<class>     calls per outcome class (agency.Class, e.g. c:overload)
//	lat:<i>       calls whose latency fell in histogram bucket i (all
//	              classes but expired, whose latency is the caller's)
//	qw:<i>        calls whose queue wait fell in histogram bucket i
//	lat_sum_us    total latency, microseconds
//	qw_sum_us     total queue wait, microseconds
//
// and the key expires BucketTTL after its last write. See Histogram for the
// bucket indexes.
//
// # Wiring
//
// One Recorder per worker process, shared by its agency workers:
//
//	rec, err := callstats.NewRecorder(rdb, callstats.RecorderOptions{Prefix: "loanflow:"})
//	err = rec.Register(registry) // the worker's own prometheus.Registry
//	// Temporal client: lets retries' queue wait start at their own attempt.
//	opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions,
//		grpc.WithChainUnaryInterceptor(rec.PollInterceptor()))
//	// Each agency worker:
//	worker.Options{Interceptors: []interceptor.WorkerInterceptor{callstats.NewInterceptor(rec)}}
package callstats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"loanflow/agency"
)

// Defaults of RecorderOptions.
const (
	DefaultBucketTTL     = 10 * time.Minute
	DefaultRecordTimeout = 50 * time.Millisecond
	DefaultBackoff       = time.Second
)

// ErrSkipped is wrapped by Record's error when it dropped the sample without
// trying Redis: a write failed less than Backoff ago, or too many writes are
// still waiting for an answer.
var ErrSkipped = errors.New("sample dropped without trying redis: it failed recently or is not answering")

// RecorderOptions configure a Recorder; zero values take the defaults.
type RecorderOptions struct {
	// Prefix starts every key, e.g. "loanflow:". It must not contain braces,
	// which would break the per-agency hash tag.
	Prefix string
	// BucketTTL is how long a second's bucket lives after its last write
	// (default 10m); windows can only look back this far.
	BucketTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RecordTimeout bounds one Record's Redis round trip (default 50ms).
	RecordTimeout time.Duration
	// Backoff is how long, after a failed write, samples are dropped without
	// trying Redis (default 1s), so that a hung Redis costs one timeout per
	// Backoff instead of one per call.
	Backoff time.Duration
	// Logger reports when Redis starts and stops failing (default slog.Default()).
	Logger *slog.Logger
}

// Recorder writes call samples to Redis and reads windows of them back. It is
// safe for concurrent use; one per process is enough.
type Recorder struct {
	rdb     redis.UniversalClient
	prefix  string
	ttl     time.Duration
	now     func() time.Time
	timeout time.Duration
	backoff time.Duration
	log     *slog.Logger

	agencies  sync.Map // agency name → *agencyState
	recent    sync.Map // agency name → *recentLatency
	dropped   atomic.Int64
	downUntil atomic.Int64 // unix nanos; Records before it drop without trying
	failing   atomic.Bool  // Redis failed and has not succeeded since
	pending   atomic.Int64 // pipelines left running in goroutines
	// ctxBounded: the client honours context deadlines, so writes need no
	// goroutine of their own.
	ctxBounded bool
	polls      attemptTimes
	metrics    metrics
}

// NewRecorder returns a Recorder writing through rdb. A client made with the
// go-redis option ContextTimeoutEnabled lets Record wait on the round trip
// directly; any other client costs a goroutine hand-off per Record (see write).
func NewRecorder(rdb redis.UniversalClient, opts RecorderOptions) (*Recorder, error) {
	if rdb == nil {
		return nil, errors.New("new call-stats recorder: redis client is nil")
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("new call-stats recorder: RecorderOptions.Prefix %q contains a brace; braces are reserved for the agency hash tag", opts.Prefix)
	}
	for name, d := range map[string]time.Duration{"BucketTTL": opts.BucketTTL, "RecordTimeout": opts.RecordTimeout, "Backoff": opts.Backoff} {
		if d < 0 {
			return nil, fmt.Errorf("new call-stats recorder: RecorderOptions.%s is %s; want a positive duration, or 0 for the default", name, d)
		}
	}
	if opts.BucketTTL != 0 && opts.BucketTTL < 2*time.Second {
		return nil, fmt.Errorf("new call-stats recorder: RecorderOptions.BucketTTL is %s; want at least 2s", opts.BucketTTL)
	}
	r := &Recorder{
		rdb:     rdb,
		prefix:  opts.Prefix,
		ttl:     cmpOr(opts.BucketTTL, DefaultBucketTTL),
		now:     opts.Now,
		timeout: cmpOr(opts.RecordTimeout, DefaultRecordTimeout),
		backoff: cmpOr(opts.Backoff, DefaultBackoff),
		log:     opts.Logger,
		metrics: newMetrics(),

		ctxBounded: honoursDeadlines(rdb),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.polls.m = make(map[string]polledTask)
	return r, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Sample is one finished agency call.
type Sample struct {
	// Scheduled is when the call's current attempt was scheduled; zero when
	// unknown, and then no queue wait is recorded.
	Scheduled time.Time
	// Started is when the call was sent to the agency: the attempt's start
	// on a worker, plus any wait there for a call slot.
	Started time.Time
	// Finished is when the call returned; it picks the per-second bucket.
	Finished time.Time
	// Class is the outcome.
	Class agency.Class
}

// Latency is Finished − Started.
func (s Sample) Latency() time.Duration { return max(0, s.Finished.Sub(s.Started)) }

// QueueWait is Started − Scheduled, and false when Scheduled is unknown.
func (s Sample) QueueWait() (time.Duration, bool) {
	if s.Scheduled.IsZero() {
		return 0, false
	}
	return max(0, s.Started.Sub(s.Scheduled)), true
}

// Record adds s to the agency's bucket for the second s finished in, in one
// pipelined round trip bounded by RecordTimeout, and updates the Prometheus
// metrics. It never blocks longer than RecordTimeout, and ctx being canceled
// (as it is after an activity timed out) does not stop it. On failure the
// sample is dropped and counted in Dropped; the error is for tests and logs,
// and callers on the activity path ignore it.
func (r *Recorder) Record(ctx context.Context, agencyName string, s Sample) error {
	if err := checkAgency(agencyName); err != nil {
		r.dropped.Add(1)
		return fmt.Errorf("record call sample: %w", err)
	}
	if s.Class == "" {
		r.dropped.Add(1)
		return fmt.Errorf("record call sample for agency %s: sample has no outcome class", agencyName)
	}
	st := r.state(agencyName)
	lat := s.Latency()
	qw, qwKnown := s.QueueWait()
	st.observe(s.Class, lat, qw, qwKnown)
	r.noteRecent(agencyName, s)

	if until := r.downUntil.Load(); until != 0 && r.now().UnixNano() < until {
		r.drop(st)
		return fmt.Errorf("record call sample for agency %s: %w", agencyName, ErrSkipped)
	}
	if r.pending.Load() >= maxPendingWrites {
		r.drop(st)
		return fmt.Errorf("record call sample for agency %s: %w", agencyName, ErrSkipped)
	}
	err := r.write(ctx, agencyName, s.Finished.Unix(), s.Class, lat, qw, qwKnown)
	if err != nil {
		r.drop(st)
		r.downUntil.Store(r.now().Add(r.backoff).UnixNano())
		if r.failing.CompareAndSwap(false, true) {
			r.log.Warn("call statistics: redis write failed; dropping samples until it recovers",
				"agency", agencyName, "backoff", r.backoff, "error", err)
		}
		return fmt.Errorf("record call sample for agency %s: %w", agencyName, err)
	}
	if r.failing.CompareAndSwap(true, false) {
		r.downUntil.Store(0)
		r.log.Info("call statistics: redis writes recovered", "dropped_total", r.dropped.Load())
	}
	return nil
}

// write sends one sample's pipeline and waits for it at most RecordTimeout.
// A go-redis client honours a context's deadline only with the option
// ContextTimeoutEnabled; otherwise a hung server would hold the caller for the
// client's read timeout (3s by default). So unless the client honours it, the
// pipeline runs in a goroutine of its own that the caller stops waiting for;
// that costs a goroutine hand-off per call, and at most maxPendingWrites such
// abandoned pipelines exist at once.
func (r *Recorder) write(ctx context.Context, agencyName string, sec int64, c agency.Class, lat, qw time.Duration, qwKnown bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	key := r.key(agencyName, sec)
	send := func() error {
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.HIncrBy(ctx, key, fieldCalls, 1)
			p.HIncrBy(ctx, key, classField(c), 1)
			// The latency the controller reads is the agency's service
			// time: the successful calls'. A failed call's is not (a 503
			// comes back at once, a timeout at the client's timeout), nor
			// an expired one's (the caller's budget, or 0 when it was
			// never sent): either would pull it toward itself.
			if c == agency.ClassOK {
				p.HIncrBy(ctx, key, latField(bucketOf(lat)), 1)
				p.HIncrBy(ctx, key, fieldLatSum, lat.Microseconds())
			}
			if qwKnown {
				p.HIncrBy(ctx, key, qwField(bucketOf(qw)), 1)
				p.HIncrBy(ctx, key, fieldQWSum, qw.Microseconds())
			}
			p.Expire(ctx, key, r.ttl)
			return nil
		})
		return err
	}
	var err error
	if r.ctxBounded {
		err = send()
		cancel()
	} else {
		done := make(chan error, 1)
		r.pending.Add(1)
		go func() {
			defer r.pending.Add(-1)
			defer cancel()
			done <- send()
		}()
		select {
		case err = <-done:
		case <-ctx.Done():
			// The goroutine cancels ctx as it finishes, so an answer may be here.
			select {
			case err = <-done:
			default:
				return fmt.Errorf("write %s: no answer within %s: %w", key, r.timeout, ctx.Err())
			}
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// honoursDeadlines reports whether the client stops a command at its
// context's deadline.
func honoursDeadlines(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Dropped is the number of samples that could not be written since the
// Recorder was created.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// InFlight is the number of the agency's calls running now under this
// Recorder's interceptors.
func (r *Recorder) InFlight(agencyName string) int64 {
	if v, ok := r.agencies.Load(agencyName); ok {
		return v.(*agencyState).inFlight.Load()
	}
	return 0
}

func (r *Recorder) drop(st *agencyState) {
	r.dropped.Add(1)
	st.dropped.Inc()
}

// state returns the agency's counters, creating them on first use.
func (r *Recorder) state(agencyName string) *agencyState {
	if v, ok := r.agencies.Load(agencyName); ok {
		return v.(*agencyState)
	}
	v, _ := r.agencies.LoadOrStore(agencyName, r.metrics.newAgencyState(agencyName))
	return v.(*agencyState)
}

// key is the agency's bucket for one unix second.
func (r *Recorder) key(agencyName string, sec int64) string {
	return r.prefix + "stats:{" + agencyName + "}:" + strconv.FormatInt(sec, 10)
}

// checkAgency rejects names that would break the key layout.
func checkAgency(name string) error {
	if name == "" {
		return errors.New("agency name is empty")
	}
	if strings.ContainsAny(name, "{}") {
		return fmt.Errorf("agency name %q contains a brace", name)
	}
	return nil
}

// Hash field names; see the package doc.
const (
	fieldCalls    = "n"
	fieldLatSum   = "lat_sum_us"
	fieldQWSum    = "qw_sum_us"
	classPrefix   = "c:"
	latPrefix     = "lat:"
	qwPrefix      = "qw:"
	maxWindowSecs = 3600

	// maxPendingWrites bounds the pipelines left running after their Record
	// gave up on them; beyond it samples drop without trying.
	maxPendingWrites = 256
)

func classField(c agency.Class) string { return classPrefix + string(c) }
func latField(i int) string            { return latPrefix + strconv.Itoa(i) }
func qwField(i int) string             { return qwPrefix + strconv.Itoa(i) }
