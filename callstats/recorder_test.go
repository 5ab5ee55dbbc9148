package callstats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"loanflow/agency"
	"loanflow/internal/testenv"
)

// base is a whole second far from now; the per-test prefix keeps reruns apart.
var base = time.Unix(1_800_000_000, 0)

func newTestRecorder(t testing.TB) (*Recorder, *redis.Client) {
	t.Helper()
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	rec, err := NewRecorder(rdb, RecorderOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return rec, rdb
}

// countHook counts what reaches Redis: single commands and pipelines.
type countHook struct {
	process, pipelines, pipelinedCmds atomic.Int64
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.process.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		h.pipelinedCmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (h *countHook) reset() {
	h.process.Store(0)
	h.pipelines.Store(0)
	h.pipelinedCmds.Store(0)
}

func sample(finished time.Time, lat, qw time.Duration, c agency.Class) Sample {
	started := finished.Add(-lat)
	return Sample{Scheduled: started.Add(-qw), Started: started, Finished: finished, Class: c}
}

func within(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= maxRelErr*float64(want)
}

// N samples over three seconds read back as one window: counts per class
// exact, quantiles within the bucket error.
func TestRecordAndReadWindow(t *testing.T) {
	rec, _ := newTestRecorder(t)
	ctx := context.Background()
	classes := []agency.Class{agency.ClassOK, agency.ClassOK, agency.ClassOK, agency.ClassOK, agency.ClassOK,
		agency.ClassOK, agency.ClassOK, agency.ClassOverload, agency.ClassOverload, agency.ClassTimeout}
	const n = 600
	var lats, qws []time.Duration
	want := map[string]int64{}
	for i := range n {
		// Spread over [base, base+3s); latency 5ms..~400ms, queue wait 0..~60ms.
		finished := base.Add(time.Duration(i) * 3 * time.Second / n)
		lat := time.Duration(float64(5*time.Millisecond) * math.Pow(1.0075, float64(i)))
		qw := time.Duration(i%60) * time.Millisecond
		c := classes[i%len(classes)]
		s := sample(finished, lat, qw, c)
		if i%10 == 9 {
			s.Scheduled = time.Time{} // a retry whose attempt time is unknown
		} else {
			qws = append(qws, qw)
		}
		if err := rec.Record(ctx, "kcb", s); err != nil {
			t.Fatal(err)
		}
		if c == agency.ClassOK {
			lats = append(lats, lat)
		}
		want[string(c)]++
	}
	w, err := rec.Window(ctx, "kcb", base, base.Add(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if w.Calls != n || !maps.Equal(w.ByClass, want) {
		t.Fatalf("calls %d by class %v, want %d %v", w.Calls, w.ByClass, n, want)
	}
	if w.Latency.Count() != int64(len(lats)) || w.QueueWait.Count() != int64(len(qws)) {
		t.Fatalf("latency count %d, queue-wait count %d; want %d (the successful calls), %d", w.Latency.Count(), w.QueueWait.Count(), len(lats), len(qws))
	}
	slices.Sort(lats)
	slices.Sort(qws)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := lats[int(math.Ceil(q*float64(len(lats))))-1]
		if got := w.Latency.Quantile(q); !within(got, exact) {
			t.Errorf("latency p%v = %s, exact %s", 100*q, got, exact)
		}
		exactQW := qws[int(math.Ceil(q*float64(len(qws))))-1]
		if got := w.QueueWait.Quantile(q); exactQW >= HistogramMin && !within(got, exactQW) {
			t.Errorf("queue wait p%v = %s, exact %s", 100*q, got, exactQW)
		}
	}
	var sum time.Duration
	for _, l := range lats {
		sum += l.Truncate(time.Microsecond)
	}
	if want := sum / time.Duration(len(lats)); w.Latency.Mean() != want {
		t.Errorf("latency mean %s, want %s", w.Latency.Mean(), want)
	}
	if got, want := w.SuccessRate(), 0.7; math.Abs(got-want) > 1e-9 {
		t.Errorf("SuccessRate = %v, want %v", got, want)
	}
	if got, want := w.OverloadRate(), 0.2; math.Abs(got-want) > 1e-9 {
		t.Errorf("OverloadRate = %v, want %v", got, want)
	}
	if got, want := w.FailureRate(), 0.3; math.Abs(got-want) > 1e-9 {
		t.Errorf("FailureRate = %v, want %v", got, want)
	}
	if got, want := w.Throughput(), 420.0/3; math.Abs(got-want) > 1e-9 {
		t.Errorf("Throughput = %v, want %v", got, want)
	}
}

// A window holds the calls that finished in [from, to), whole seconds.
func TestWindowBoundaries(t *testing.T) {
	rec, _ := newTestRecorder(t)
	ctx := context.Background()
	for _, f := range []time.Duration{
		-time.Millisecond,           // second base-1: before
		0,                           // first second: in
		1500 * time.Millisecond,     // second base+1: in
		2*time.Second - 1,           // still base+1: in
		2 * time.Second,             // second base+2: after
		2*time.Second + 900*1e6,     // after
		-time.Second + 999*1e6,      // base-1: before
		3 * time.Second,             // after
		500 * time.Millisecond,      // in
		999999999 * time.Nanosecond, // in
	} {
		if err := rec.Record(ctx, "nice", sample(base.Add(f), 10*time.Millisecond, 0, agency.ClassOK)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		from, to time.Time
		want     int64
	}{
		{"whole seconds", base, base.Add(2 * time.Second), 5},
		{"sub-second bounds truncate", base.Add(400 * time.Millisecond), base.Add(2900 * time.Millisecond), 5},
		{"one second", base.Add(time.Second), base.Add(2 * time.Second), 2},
		{"empty", base, base, 0},
		{"all", base.Add(-time.Second), base.Add(4 * time.Second), 10},
	}
	for _, tc := range tests {
		w, err := rec.Window(ctx, "nice", tc.from, tc.to)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if w.Calls != tc.want || w.Count(agency.ClassOK) != tc.want {
			t.Errorf("%s: %d calls, want %d", tc.name, w.Calls, tc.want)
		}
		if !w.From.Equal(tc.from.Truncate(time.Second)) || !w.To.Equal(tc.to.Truncate(time.Second)) {
			t.Errorf("%s: window [%s, %s)", tc.name, w.From, w.To)
		}
	}
	if _, err := rec.Window(ctx, "nice", base.Add(time.Second), base); err == nil {
		t.Error("a window ending before it starts should fail")
	}
	if _, err := rec.Window(ctx, "nice", base, base.Add(2*time.Hour)); err == nil {
		t.Error("a two-hour window should fail")
	}
}

// Each Record is one pipeline and nothing else; so is a multi-agency read.
func TestOneRoundTripPerRecord(t *testing.T) {
	rec, rdb := newTestRecorder(t)
	ctx := context.Background()
	// Warm up: go-redis sends pipelines over connections of their own, and
	// the handshake of a new one (HELLO and a setup pipeline) passes the
	// hooks too. It happens once per connection, not per call.
	if err := rec.Record(ctx, "warmup", sample(base, time.Millisecond, 0, agency.ClassOK)); err != nil {
		t.Fatal(err)
	}
	hook := &countHook{}
	rdb.AddHook(hook)
	for i := range 50 {
		s := sample(base.Add(time.Duration(i)*100*time.Millisecond), time.Duration(i+1)*time.Millisecond, time.Millisecond, agency.ClassOK)
		if i%2 == 0 {
			s.Scheduled = time.Time{}
		}
		hook.reset()
		if err := rec.Record(ctx, "mydata", s); err != nil {
			t.Fatal(err)
		}
		if p, c := hook.pipelines.Load(), hook.process.Load(); p != 1 || c != 0 {
			t.Fatalf("record %d: %d pipelines and %d single commands, want 1 and 0", i, p, c)
		}
	}
	hook.reset()
	ws, err := rec.Windows(ctx, []string{"mydata", "scraping"}, base, base.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if p, c := hook.pipelines.Load(), hook.process.Load(); p != 1 || c != 0 || hook.pipelinedCmds.Load() != 10 {
		t.Fatalf("windows: %d pipelines of %d commands and %d single commands, want 1 of 10 and 0", p, hook.pipelinedCmds.Load(), c)
	}
	if ws[0].Agency != "mydata" || ws[0].Calls != 50 || ws[1].Agency != "scraping" || ws[1].Calls != 0 {
		t.Fatalf("windows: %+v", ws)
	}
	if ws[0].QueueWait.Count() != 25 {
		t.Fatalf("queue wait count %d, want 25", ws[0].QueueWait.Count())
	}
}

func TestBucketsExpire(t *testing.T) {
	rec, rdb := newTestRecorder(t)
	ctx := context.Background()
	if err := rec.Record(ctx, "kcb", sample(base, time.Millisecond, 0, agency.ClassOK)); err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.TTL(ctx, rec.key("kcb", base.Unix())).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= DefaultBucketTTL-time.Minute || ttl > DefaultBucketTTL {
		t.Fatalf("bucket TTL %s, want about %s", ttl, DefaultBucketTTL)
	}
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// silentAddr accepts connections and never answers, like a hung Redis.
func silentAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return l.Addr().String()
}

func TestRedisDownOrHungDropsQuickly(t *testing.T) {
	for name, addr := range map[string]string{"closed port": closedAddr(t), "hung server": silentAddr(t)} {
		// Both write paths: the client honouring context deadlines or not.
		for _, ctxTimeouts := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, ContextTimeoutEnabled=%v", name, ctxTimeouts), func(t *testing.T) {
				redisDown(t, addr, ctxTimeouts)
			})
		}
	}
}

// redisDown records against a Redis at addr that never answers.
func redisDown(t *testing.T, addr string, ctxTimeouts bool) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: ctxTimeouts})
	defer func() { _ = rdb.Close() }()
	rec, err := NewRecorder(rdb, RecorderOptions{Prefix: "x:"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.ctxBounded != ctxTimeouts {
		t.Fatalf("ctxBounded = %v with ContextTimeoutEnabled = %v", rec.ctxBounded, ctxTimeouts)
	}
	ctx := context.Background()
	s := sample(base, 10*time.Millisecond, time.Millisecond, agency.ClassOK)
	start := time.Now()
	err = rec.Record(ctx, "kcb", s)
	took := time.Since(start)
	if err == nil || rec.Dropped() != 1 {
		t.Fatalf("first record: err %v, dropped %d; want an error and 1 dropped", err, rec.Dropped())
	}
	// The record timeout is 50ms; allow scheduling slack on a shared machine.
	if took > 250*time.Millisecond {
		t.Fatalf("first record took %s", took)
	}
	// Within the backoff the next samples drop without touching Redis.
	start = time.Now()
	for range 100 {
		if err := rec.Record(ctx, "kcb", s); !errors.Is(err, ErrSkipped) {
			t.Fatalf("record during backoff: %v, want ErrSkipped", err)
		}
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("100 records during backoff took %s", took)
	}
	if rec.Dropped() != 101 {
		t.Fatalf("dropped %d, want 101", rec.Dropped())
	}
}

// After the backoff a working Redis takes samples again.
func TestRecoversAfterBackoff(t *testing.T) {
	rec, _ := newTestRecorder(t)
	now := time.Now()
	rec.now = func() time.Time { return now }
	rec.downUntil.Store(now.Add(time.Second).UnixNano())
	rec.failing.Store(true)
	ctx := context.Background()
	if err := rec.Record(ctx, "kcb", sample(base, time.Millisecond, 0, agency.ClassOK)); !errors.Is(err, ErrSkipped) {
		t.Fatalf("during backoff: %v", err)
	}
	now = now.Add(time.Second)
	if err := rec.Record(ctx, "kcb", sample(base, time.Millisecond, 0, agency.ClassOK)); err != nil {
		t.Fatalf("after backoff: %v", err)
	}
	if rec.failing.Load() || rec.downUntil.Load() != 0 {
		t.Fatal("recorder still marked failing after a successful write")
	}
	w, err := rec.Window(ctx, "kcb", base, base.Add(time.Second))
	if err != nil || w.Calls != 1 || rec.Dropped() != 1 {
		t.Fatalf("window %+v, err %v, dropped %d", w, err, rec.Dropped())
	}
}

func TestNewRecorderRejectsBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: closedAddr(t)})
	defer func() { _ = rdb.Close() }()
	for name, opts := range map[string]RecorderOptions{
		"brace in prefix":  {Prefix: "a{b}:"},
		"negative TTL":     {BucketTTL: -time.Second},
		"tiny TTL":         {BucketTTL: time.Second},
		"negative timeout": {RecordTimeout: -1},
	} {
		if _, err := NewRecorder(rdb, opts); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := NewRecorder(nil, RecorderOptions{}); err == nil {
		t.Error("nil client: want an error")
	}
	rec, err := NewRecorder(rdb, RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(context.Background(), "a}b", Sample{Class: agency.ClassOK}); err == nil || rec.Dropped() != 1 {
		t.Errorf("brace in agency name: err %v, dropped %d", err, rec.Dropped())
	}
}

// BenchmarkRecord measures one Record against the test Redis: one pipelined
// round trip of six or seven commands, made directly when the client honours
// context deadlines and from a goroutine of its own when it does not.
func BenchmarkRecord(b *testing.B) {
	for _, ctxTimeouts := range []bool{true, false} {
		b.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", ctxTimeouts), func(b *testing.B) {
			rec := benchRecorder(b, ctxTimeouts)
			ctx := context.Background()
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = rec.Record(ctx, "kcb", benchSample(now, i))
				i++
			}
			b.ReportMetric(float64(rec.Dropped())/float64(i), "dropped/op")
		})
	}
}

// BenchmarkRecordParallel is Record from many concurrent activities.
func BenchmarkRecordParallel(b *testing.B) {
	for _, ctxTimeouts := range []bool{true, false} {
		b.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", ctxTimeouts), func(b *testing.B) {
			rec := benchRecorder(b, ctxTimeouts)
			ctx := context.Background()
			now := time.Now()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					_ = rec.Record(ctx, "kcb", benchSample(now, i))
					i++
				}
			})
			b.ReportMetric(float64(rec.Dropped())/float64(b.N), "dropped/op")
		})
	}
}

// benchRecorder records through a client to the test Redis; a drop (a
// round trip over 50ms on a busy machine) shows in the dropped/op figure.
func benchRecorder(b *testing.B, ctxTimeouts bool) *Recorder {
	b.Helper()
	testenv.Short(b)
	base, prefix := testenv.Redis(b)
	opts := *base.Options()
	opts.ContextTimeoutEnabled = ctxTimeouts
	rdb := redis.NewClient(&opts)
	b.Cleanup(func() { _ = rdb.Close() })
	rec, err := NewRecorder(rdb, RecorderOptions{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	return rec
}

func benchSample(now time.Time, i int) Sample {
	return sample(now.Add(time.Duration(i)*time.Millisecond), time.Duration(1+i%500)*time.Millisecond, time.Duration(i%50)*time.Millisecond, agency.ClassOK)
}

// BenchmarkPingBaseline is one bare PING round trip to the same Redis, the
// floor under BenchmarkRecord's figure.
func BenchmarkPingBaseline(b *testing.B) {
	testenv.Short(b)
	rdb, _ := testenv.Redis(b)
	ctx := context.Background()
	for b.Loop() {
		if err := rdb.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// A failed call's latency is not the agency's service time: a 503 comes back
// at once, a timeout at the client's timeout, and either would pull the
// latency the controller reads (the successful calls', as the control law
// and its simulator take it) toward itself.
func TestFailedCallsStayOutOfLatency(t *testing.T) {
	rec, _ := newTestRecorder(t)
	ctx := context.Background()
	start := base
	record := func(lat time.Duration, c agency.Class) {
		t.Helper()
		if err := rec.Record(ctx, "kcb", Sample{Scheduled: start, Started: start, Finished: start.Add(lat), Class: c}); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 {
		record(400*time.Millisecond, agency.ClassOK)
	}
	for range 3 {
		record(2*time.Second, agency.ClassTimeout)
		record(5*time.Millisecond, agency.ClassOverload)
		record(30*time.Millisecond, agency.ClassAgencyError)
	}
	w, err := rec.Window(ctx, "kcb", base.Add(-time.Second), base.Add(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if w.Calls != 15 || w.Latency.Count() != 6 || w.Latency.Mean() != 400*time.Millisecond {
		t.Fatalf("calls %d, latency samples %d, mean %s; want 15 calls, the 6 successful ones' latency, 400ms",
			w.Calls, w.Latency.Count(), w.Latency.Mean())
	}
}

// An expired call's latency is the caller's budget, not the agency's: it is
// counted by class but kept out of the latency histogram the controller
// reads, and out of the recent latency admission reads.
func TestExpiredCallsStayOutOfLatency(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	rec, err := NewRecorder(rdb, RecorderOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := time.Now().Truncate(time.Second).Add(-2 * time.Second)
	for i := range 6 {
		start := base.Add(time.Duration(i) * time.Millisecond)
		if err := rec.Record(ctx, "kcb", Sample{Scheduled: start, Started: start, Finished: start.Add(40 * time.Millisecond), Class: agency.ClassOK}); err != nil {
			t.Fatal(err)
		}
	}
	// Cut by the caller's budget after 3 s, and one never sent.
	for _, lat := range []time.Duration{3 * time.Second, 0} {
		if err := rec.Record(ctx, "kcb", Sample{Scheduled: base.Add(-time.Minute), Started: base, Finished: base.Add(lat), Class: agency.ClassExpired}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := rec.Window(ctx, "kcb", base.Add(-time.Second), base.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if w.Count(agency.ClassExpired) != 2 || w.Latency.Count() != 6 || w.FailureRate() != 0 {
		t.Fatalf("expired %d, latency samples %d, failure rate %.2f; want 2, 6, 0",
			w.Count(agency.ClassExpired), w.Latency.Count(), w.FailureRate())
	}
	if m := w.Latency.Mean(); m > 50*time.Millisecond {
		t.Fatalf("latency mean %s: expired calls leaked into it", m)
	}
	rec.now = func() time.Time { return base.Add(time.Second) }
	if p90, ok := rec.AgencyLatency("kcb"); !ok || p90 != 40*time.Millisecond {
		t.Fatalf("AgencyLatency = %s, %v; want 40ms, true", p90, ok)
	}
	if p50, ok := rec.AgencyMedianLatency("kcb"); !ok || p50 != 40*time.Millisecond {
		t.Fatalf("AgencyMedianLatency = %s, %v; want 40ms, true (the expired calls left out)", p50, ok)
	}
	if _, ok := rec.AgencyMedianLatency("nice"); ok {
		t.Fatal("AgencyMedianLatency of an agency never called: known; want unknown")
	}
}
