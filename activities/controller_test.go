package activities

import (
	"context"
	"testing"
	"time"

	"loanflow/agency"
	"loanflow/callstats"
	"loanflow/internal/testenv"
)

// observer is the controller's activities on the test's Redis, their
// recorder, and Redis's time now.
func observer(t *testing.T) (*ControllerActivities, *callstats.Recorder, time.Time) {
	t.Helper()
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	rec, err := callstats.NewRecorder(rdb, callstats.RecorderOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	server, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return &ControllerActivities{Stats: rec, Redis: rdb, Prefix: prefix}, rec, server
}

// Observe judges by Redis's clock and reads only complete buckets, each
// exactly once across ticks, however the ticks drift: the cursor it returns
// (the window end, as Observation.Now) is where the next read starts.
func TestObserveReadsCompleteBucketsOnceByServerTime(t *testing.T) {
	ctx := context.Background()
	a, rec, server := observer(t)
	// One call in each of the last eight whole seconds, by server time, and
	// one in the current, incomplete second.
	cur := server.Truncate(time.Second)
	for i := 0; i <= 8; i++ {
		fin := cur.Add(-time.Duration(i) * time.Second).Add(100 * time.Millisecond)
		if err := rec.Record(ctx, "kcb", callstats.Sample{Started: fin.Add(-10 * time.Millisecond), Finished: fin, Class: agency.ClassOK}); err != nil {
			t.Fatal(err)
		}
	}
	in := ObserveInput{Agencies: []string{"kcb"}, Period: time.Second}
	first, err := a.Observe(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	o := first["kcb"]
	end := WindowEnd(server)
	if o.Now.After(end.Add(time.Second)) || o.Now.Before(end) || !o.Now.Equal(o.Now.Truncate(time.Second)) {
		t.Fatalf("window end %s, want the last complete second by server time (%s)", o.Now, end)
	}
	if o.Calls != 1 || o.Period != time.Second {
		t.Fatalf("fresh start read %d calls over %s, want the last complete second: 1 call", o.Calls, o.Period)
	}
	// A tick three seconds late catches up on the three buckets it missed
	// (bounded by maxCatchUp), not just the last one.
	in.After = o.Now.Add(-3 * time.Second)
	late, err := a.Observe(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := late["kcb"]; got.Calls < 3 || got.Period < 3*time.Second {
		t.Fatalf("after a gap of 3 s read %d calls over %s, want every complete bucket since the cursor", got.Calls, got.Period)
	}
	// Two ticks in the same second: nothing new, nothing read twice.
	in.After = late["kcb"].Now
	again, err := a.Observe(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := again["kcb"]; ok && o.Now.Equal(in.After) {
		t.Fatalf("read the window ending %s twice", o.Now)
	}
}

// An agency with a period of its own is due once that whole period has
// completed since its cursor, and is then observed over whole periods of its
// own, so its cursor stays on its period; the others keep the controller's.
func TestDueSpansPerAgencyPeriod(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return base.Add(time.Duration(s)*time.Second + 500*time.Millisecond) } // WindowEnd = base+s
	sec := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	in := ObserveInput{Agencies: []string{"kcb", "scraping"}, Period: time.Second,
		Periods: map[string]time.Duration{"scraping": 3 * time.Second}}

	fresh := DueSpans(at(10), in)
	if fresh["kcb"] != (Span{sec(9), sec(10)}) || fresh["scraping"] != (Span{sec(7), sec(10)}) {
		t.Fatalf("fresh start %+v, want each agency's last period", fresh)
	}
	in.After = sec(10)
	in.Cursors = map[string]time.Time{"scraping": sec(10)}
	for s, want := range map[int]bool{11: false, 12: false, 13: true} {
		got, ok := DueSpans(at(s), in)["scraping"]
		if ok != want {
			t.Errorf("at +%ds scraping due %v, want %v", s, ok, want)
		}
		if ok && got != (Span{sec(10), sec(13)}) {
			t.Errorf("at +%ds scraping window %+v, want [+10s, +13s)", s, got)
		}
		if k := DueSpans(at(s), in)["kcb"]; k != (Span{sec(10), sec(s)}) {
			t.Errorf("at +%ds kcb window %+v, want every complete second since its cursor", s, k)
		}
	}
	// A late tick (+14 s): the window still ends on scraping's period, the
	// second left over is read with the next one.
	if got := DueSpans(at(14), in)["scraping"]; got != (Span{sec(10), sec(13)}) {
		t.Errorf("late tick: scraping window %+v, want [+10s, +13s)", got)
	}
	// After a long gap: at most maxCatchUp periods.
	if got := DueSpans(at(100), in)["scraping"]; got != (Span{sec(100 - 3*maxCatchUp), sec(100)}) {
		t.Errorf("after a gap: scraping window %+v, want the last %d periods", got, maxCatchUp)
	}
}

// Observe reads a due agency's own period from Redis and leaves out the
// agencies that are not due.
func TestObserveAgencyOverItsOwnPeriod(t *testing.T) {
	ctx := context.Background()
	a, rec, server := observer(t)
	end := WindowEnd(server)
	// One call a second for the last six complete seconds, at both agencies.
	for i := 1; i <= 6; i++ {
		fin := end.Add(-time.Duration(i) * time.Second).Add(100 * time.Millisecond)
		for _, n := range []string{"kcb", "scraping"} {
			if err := rec.Record(ctx, n, callstats.Sample{Started: fin.Add(-10 * time.Millisecond), Finished: fin, Class: agency.ClassOK}); err != nil {
				t.Fatal(err)
			}
		}
	}
	in := ObserveInput{Agencies: []string{"kcb", "scraping"}, Period: time.Second,
		Periods: map[string]time.Duration{"scraping": 3 * time.Second}}
	obs, err := a.Observe(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// The server's second may have turned between the two reads of its time.
	got := obs["scraping"]
	if got.Period != 3*time.Second || got.Calls < 2 || got.Calls > 3 {
		t.Fatalf("scraping observed %d calls over %s, want its own 3 s period (3 calls)", got.Calls, got.Period)
	}
	if k := obs["kcb"]; k.Period != time.Second || k.Calls > 1 {
		t.Fatalf("kcb observed %d calls over %s, want the controller's 1 s period", k.Calls, k.Period)
	}
	// One second later scraping is not due; kcb is.
	in.After = obs["kcb"].Now.Add(-time.Second)
	in.Cursors = map[string]time.Time{"scraping": got.Now.Add(-time.Second)}
	obs, err = a.Observe(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := obs["scraping"]; ok {
		t.Fatalf("scraping observed one second after its cursor: %+v", obs["scraping"])
	}
	if _, ok := obs["kcb"]; !ok {
		t.Fatal("kcb not observed one second after its cursor")
	}
}
