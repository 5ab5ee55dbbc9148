package activities

import (
	"context"
	"testing"
	"time"

	"loanflow/agency"
	"loanflow/callstats"
	"loanflow/internal/testenv"
)

// Observe judges by Redis's clock and reads only complete buckets, each
// exactly once across ticks, however the ticks drift: the cursor it returns
// (the window end, as Observation.Now) is where the next read starts.
func TestObserveReadsCompleteBucketsOnceByServerTime(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	rec, err := callstats.NewRecorder(rdb, callstats.RecorderOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	a := &ControllerActivities{Stats: rec, Redis: rdb, Prefix: prefix}
	server, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
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
