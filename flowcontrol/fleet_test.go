package flowcontrol

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"loanflow/internal/testenv"
)

// proxy forwards TCP connections to a target until it is cut; after the cut
// it keeps accepting and holding connections but forwards nothing, as a
// network partition that drops packets does.
type proxy struct {
	ln     net.Listener
	target string
	cut    atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) keep(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.keep(in)
		if p.cut.Load() {
			continue // held open, never answered
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.keep(out)
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if err != nil {
					return
				}
				if p.cut.Load() {
					continue // swallowed
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

// client returns a Redis client of its own for one simulated worker process,
// dialling addr (the shared Redis, or a proxy in front of it).
func client(t *testing.T, shared *redis.Client, addr string) *redis.Client {
	t.Helper()
	o := *shared.Options()
	o.Addr = addr
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	c := redis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func startFleetMember(t *testing.T, rdb redis.UniversalClient, prefix, id string, opts MembershipOptions) *member {
	t.Helper()
	s := NewSlotSupplier(1)
	opts.Prefix, opts.WorkerID = prefix, id
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.TTL == 0 {
		opts.TTL, opts.Heartbeat = testTTL, testHeartbeat
	}
	m, err := NewMembership(rdb, opts, map[string]*SlotSupplier{testAgency: s}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &member{m: m, s: s, cancel: cancel, done: make(chan struct{})}
	go func() {
		w.err = m.Run(ctx)
		close(w.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// agencyLoad drives calls through every member's supplier as an agency
// worker's pollers would (reserve a permit, run a call, release it) and
// records the most calls ever in flight at the agency at once.
type agencyLoad struct {
	inFlight, peak, calls atomic.Int64
}

func (l *agencyLoad) run(ctx context.Context, s *SlotSupplier, pollers int, call time.Duration) {
	for range pollers {
		go func() {
			for ctx.Err() == nil {
				p, err := s.ReserveSlot(ctx, nil)
				if err != nil {
					return
				}
				s.MarkSlotUsed(usedInfo{p: p})
				n := l.inFlight.Add(1)
				for {
					old := l.peak.Load()
					if n <= old || l.peak.CompareAndSwap(old, n) {
						break
					}
				}
				l.calls.Add(1)
				time.Sleep(call)
				l.inFlight.Add(-1)
				s.ReleaseSlot(releaseInfo{p: p})
			}
		}()
	}
}

// Four worker processes (each with its own Redis connection) share a
// global limit of 2, smaller than their number: the agency never sees more
// than 2 calls at once, while the share of the remainder rotates, workers
// leave and join.
func TestFleetGlobalLimitBelowWorkerCountIsABound(t *testing.T) {
	testenv.Short(t)
	shared, prefix := testenv.Redis(t)
	ctx := context.Background()
	if err := WriteLimits(ctx, shared, prefix, map[string]int{testAgency: 2}); err != nil {
		t.Fatal(err)
	}
	opts := MembershipOptions{TTL: testTTL, Heartbeat: testHeartbeat, RotateEvery: 400 * time.Millisecond}
	var ws []*member
	for i := range 4 {
		ws = append(ws, startFleetMember(t, client(t, shared, shared.Options().Addr), prefix, fmt.Sprintf("w%d", i), opts))
	}
	var load agencyLoad
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	var stopLoad []context.CancelFunc
	for _, w := range ws {
		wctx, cancel := context.WithCancel(lctx)
		stopLoad = append(stopLoad, cancel)
		load.run(wctx, w.s, 4, 7*time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	// One leaves cleanly (its pollers stop, then its membership, as a
	// worker process shuts down), one crashes (its calls end with it),
	// and a new one joins.
	stopLoad[1]()
	ws[1].stop(t, false)
	stopLoad[2]()
	ws[2].stop(t, true)
	w4 := startFleetMember(t, client(t, shared, shared.Options().Addr), prefix, "w4", opts)
	load.run(lctx, w4.s, 4, 7*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	stop()
	if peak := load.peak.Load(); peak > 2 {
		t.Fatalf("the agency saw %d calls in flight at once under a global limit of 2", peak)
	}
	// A bound that lets nothing through is no bound worth having.
	if calls := load.calls.Load(); calls < 200 {
		t.Fatalf("only %d calls in 3 s: the limit of 2 was not used", calls)
	}
	t.Logf("peak %d in flight, %d calls", load.peak.Load(), load.calls.Load())
}

// A worker cut off from Redis fences itself to 0 before its registration
// expires, so the others' taking its share never exceeds the bound.
func TestFleetPartitionedWorkerFencesToZeroWithinTTL(t *testing.T) {
	testenv.Short(t)
	shared, prefix := testenv.Redis(t)
	if err := WriteLimits(context.Background(), shared, prefix, map[string]int{testAgency: 9}); err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, shared.Options().Addr)
	a := startFleetMember(t, client(t, shared, shared.Options().Addr), prefix, "a", MembershipOptions{})
	b := startFleetMember(t, client(t, shared, shared.Options().Addr), prefix, "b", MembershipOptions{})
	c := startFleetMember(t, client(t, shared, px.addr()), prefix, "c", MembershipOptions{})
	eventually(t, 2*time.Second, "3+3+3", func() bool { return sum(limits([]*member{a, b, c})) == 9 && c.s.Limit() == 3 })

	px.cut.Store(true)
	cutAt := time.Now()
	took := eventually(t, testTTL, "partitioned worker at 0", func() bool { return c.s.Limit() == 0 })
	t.Logf("partitioned worker fenced to 0 in %s (TTL %s)", took.Round(time.Millisecond), testTTL)
	// The others take its share only once it is fenced.
	eventually(t, testTTL+4*testHeartbeat, "5+4 after the partition", func() bool {
		got := limits([]*member{a, b})
		return got[0]+got[1] == 9
	})
	if c.s.Limit() != 0 {
		t.Fatalf("partitioned worker's limit back at %d while cut off", c.s.Limit())
	}
	_ = cutAt

	// Reconnected, it rejoins and gets a share again, within the bound.
	px.cut.Store(false)
	eventually(t, 3*time.Second, "shares 3+3+3 again", func() bool {
		return c.s.Limit() == 3 && sum(limits([]*member{a, b, c})) == 9
	})
}
