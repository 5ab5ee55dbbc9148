package flowcontrol

import (
	"testing"
	"time"
)

// level is a level read over n calls, f of them refused and e failed, in
// the long counts and the recent ones alike.
func level(limit int, n, f, e float64) Level {
	c := Counts{Calls: n, Refused: f, Errors: e}
	return Level{Limit: limit, Counts: c, Recent: c}
}

func TestBackgroundReadsTheLowestLevels(t *testing.T) {
	s := AgencyState{Levels: []Level{level(5, 300, 3, 9), level(6, 300, 3, 9), level(7, 300, 30, 9)}}
	refused, errors := s.background(8)
	// Level 5 alone holds backgroundPool calls; level 7's refusals (a
	// capacity) are not read.
	if want := 3.0 / 350; refused != want {
		t.Errorf("refused background %.4f, want %.4f (level 5 alone)", refused, want)
	}
	if want := 9.0 / 350; errors != want {
		t.Errorf("error background %.4f, want %.4f", errors, want)
	}
	// At 8, where nothing was read yet, a period of 200 calls: 1.7 refusals
	// expected, up to 4 taken out; 5.1 errors expected, up to 9.
	o := s.denoise(Observation{Calls: 200, OK: 180, Overload: 5, AgencyErrors: 15}, 8)
	if o.Overload != 1 || o.AgencyErrors != 6 || o.Calls != 187 {
		t.Errorf("denoised to %d refused, %d errors of %d calls; want 1, 6 of 187", o.Overload, o.AgencyErrors, o.Calls)
	}
	// Below the lowest level there is nothing to read.
	if r, e := s.background(5); r != 0 || e != 0 {
		t.Errorf("background at the lowest level %.4f, %.4f; want 0", r, e)
	}
}

func TestBackgroundStopsAtALevelThatFailsMore(t *testing.T) {
	// A capacity of 5: level 6 refuses a call a period (of about 20),
	// levels 4 and 5 nothing. Pooled up to backgroundPool calls, level 6's
	// refusals would pass for background at 7.
	s := AgencyState{Levels: []Level{level(4, 40, 0, 0), level(5, 60, 0, 0), level(6, 120, 6, 0)}}
	if r, _ := s.background(7); r != 0 {
		t.Errorf("refused background %.4f at 7, want 0: level 6 refuses more than those below it", r)
	}
	o := Observation{Calls: 25, OK: 24, Overload: 1}
	if got := s.denoise(o, 7); got != o {
		t.Errorf("denoised %+v to %+v; want it unchanged", o, got)
	}
}

func TestBackgroundNotAtALevelBeyondACapacity(t *testing.T) {
	// 1% of calls refused at random, read at 5 and 6; 7 is a call beyond the
	// capacity and refuses 6% over its last periods.
	s := AgencyState{Levels: []Level{level(5, 150, 2, 0), level(6, 150, 1, 0), level(7, 200, 12, 0)}}
	o := Observation{Calls: 100, OK: 94, Overload: 6}
	if got := s.denoise(o, 7); got != o {
		t.Errorf("denoised %+v to %+v at a level refusing more than the background; want it unchanged", o, got)
	}
	// At 6 itself the refusals are the background's.
	if got := s.denoise(Observation{Calls: 100, OK: 98, Overload: 2}, 6); got.Overload != 0 {
		t.Errorf("at 6, %d refusals left of 2; want none", got.Overload)
	}
}

func TestRecordReadsHealthySettledPeriods(t *testing.T) {
	var s AgencyState
	s.record(Observation{Calls: 100, OK: 99, Overload: 1}, 10)
	s.record(Observation{Calls: 100, OK: 97, AgencyErrors: 3}, 10)
	if len(s.Levels) != 1 {
		t.Fatalf("levels %+v, want one at 10", s.Levels)
	}
	l := s.Levels[0]
	if want := 100*backgroundDecay + 100; l.Limit != 10 || l.Counts.Calls != want || l.Counts.Refused != backgroundDecay || l.Counts.Errors != 3 {
		t.Errorf("level %+v, want 10 with %.1f calls, %.2f refused, 3 errors", l, want, backgroundDecay)
	}
	if want := 100*recentDecay + 100; l.Recent.Calls != want {
		t.Errorf("recent calls %.1f, want %.1f", l.Recent.Calls, want)
	}
	before := l.Counts.Calls
	// A period that shows a change of the limit in part, one in which the
	// agency failed a fifth of the calls or more, and one in which nothing
	// succeeded are not read; the counts only decay.
	s.Moved = true
	s.record(Observation{Calls: 100, OK: 100}, 11)
	s.Moved = false
	s.record(Observation{Calls: 100, OK: 70, Overload: 30}, 10)
	s.record(Observation{Calls: 5, Timeouts: 5}, 10)
	if len(s.Levels) != 1 || s.Levels[0].Counts.Calls >= before {
		t.Errorf("levels %+v after unread periods; want level 10 alone, decayed below %.1f calls", s.Levels, before)
	}
	// The levels stay in order of the limit, and at most maxLevels of them.
	for l := 40; l > 0; l-- {
		s.record(Observation{Calls: int64(l), OK: int64(l)}, l)
	}
	if len(s.Levels) != maxLevels {
		t.Errorf("%d levels, want at most %d", len(s.Levels), maxLevels)
	}
	for i := 1; i < len(s.Levels); i++ {
		if s.Levels[i-1].Limit >= s.Levels[i].Limit {
			t.Fatalf("levels out of order: %d before %d", s.Levels[i-1].Limit, s.Levels[i].Limit)
		}
	}
}

// TestStepTakesOutTheBackground runs Step at a limit of 20 whose lower
// levels read 1% of calls refused at random: a period with 2 refusals in
// 200 calls (1%, as often as at any limit) is read as healthy and the
// limit grows. Under the law pinned before the background
// (LawBeforeBackground), as a controller recorded under it replays, the same
// period holds the limit. The input state is not modified.
func TestStepTakesOutTheBackground(t *testing.T) {
	cfg := DefaultConfig("kcb")
	s := AgencyState{Limit: 20, Baseline: 100 * time.Millisecond, BaselineSignal: "mean", BaselinePeriods: warmupPeriods,
		BaselineSamples: 1000, Periods: 50, SinceMove: 10, Rule: ruleGrow, Capacity: 30,
		Levels: []Level{level(15, 400, 4, 0), level(18, 400, 4, 0)}}
	o := Observation{Calls: 200, OK: 198, Overload: 2, LatencyMean: 100 * time.Millisecond, LatencyP50: 100 * time.Millisecond,
		LatencyP90: 130 * time.Millisecond, QueueWaitP90: time.Second, InFlight: 20, Period: time.Second, Now: time.Unix(100, 0)}
	in := State{Agencies: map[string]AgencyState{"kcb": s}}
	next, ds := Step(in, map[string]Observation{"kcb": o}, cfg)
	if ds[0].Limit <= 20 {
		t.Errorf("limit %d (%s); want growth: the refusals are the agency's background", ds[0].Limit, ds[0].Reason)
	}
	if got := next.Agencies["kcb"].Levels; len(got) != 3 || got[2].Limit != 20 {
		t.Errorf("levels %+v, want the period read at 20", got)
	}
	if len(in.Agencies["kcb"].Levels) != 2 || in.Agencies["kcb"].Levels[0].Counts.Calls != 400 {
		t.Errorf("input levels modified: %+v", in.Agencies["kcb"].Levels)
	}

	t.Logf("current law: %d (%s)", ds[0].Limit, ds[0].Reason)
	in.Law = LawBeforeBackground
	next, ds = Step(in, map[string]Observation{"kcb": o}, cfg)
	if ds[0].Limit != 20 || next.Law != LawBeforeBackground {
		t.Errorf("pinned law: limit %d (%s), law %d; want 20 held on the refusals, the law kept", ds[0].Limit, ds[0].Reason, next.Law)
	}
	t.Logf("pinned law: %d (%s)", ds[0].Limit, ds[0].Reason)
	if got := next.Agencies["kcb"].Levels; len(got) != 2 {
		t.Errorf("pinned law recorded levels %+v; want them as they were", got)
	}
}
