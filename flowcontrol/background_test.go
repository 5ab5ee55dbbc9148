package flowcontrol

import (
	"math"
	"testing"
	"time"
)

// level is a level read over n calls, f of them refused and e failed, in
// the long counts and the recent ones alike.
func level(limit int, n, f, e float64) Level {
	c := Counts{Calls: n, Refused: f, Errors: e}
	return Level{Limit: limit, Counts: c, Recent: c}
}

// TestBackgroundReadsTheLowestLevels holds the pool of the background's
// levels and the allowance under the law before the Poisson tail
// (LawBeforeBackgroundTail); TestBackgroundTail holds the current law's
// allowance and rate.
func TestBackgroundReadsTheLowestLevels(t *testing.T) {
	const law = LawBeforeBackgroundTail
	s := AgencyState{Levels: []Level{level(5, 300, 3, 9), level(6, 300, 3, 9), level(7, 300, 30, 9)}}
	refused, errors := s.background(8, law)
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
	o := s.denoise(Observation{Calls: 200, OK: 180, Overload: 5, AgencyErrors: 15}, 8, law)
	if o.Overload != 1 || o.AgencyErrors != 6 || o.Calls != 187 {
		t.Errorf("denoised to %d refused, %d errors of %d calls; want 1, 6 of 187", o.Overload, o.AgencyErrors, o.Calls)
	}
	// Below the lowest level there is nothing to read.
	if r, e := s.background(5, law); r != 0 || e != 0 {
		t.Errorf("background at the lowest level %.4f, %.4f; want 0", r, e)
	}
}

func TestBackgroundStopsAtALevelThatFailsMore(t *testing.T) {
	// A capacity of 5: level 6 refuses a call a period (of about 20),
	// levels 4 and 5 nothing. Pooled up to backgroundPool calls, level 6's
	// refusals would pass for background at 7.
	s := AgencyState{Levels: []Level{level(4, 40, 0, 0), level(5, 60, 0, 0), level(6, 120, 6, 0)}}
	if r, _ := s.background(7, 0); r != 0 {
		t.Errorf("refused background %.4f at 7, want 0: level 6 refuses more than those below it", r)
	}
	o := Observation{Calls: 25, OK: 24, Overload: 1}
	if got := s.denoise(o, 7, 0); got != o {
		t.Errorf("denoised %+v to %+v; want it unchanged", o, got)
	}
}

// TestBackgroundReadsAWellReadLevel holds the levels an agency refusing 1%
// of its calls at random left in flowsim's TestRandomRefusals (seed 3): a
// dip's level 4 and level 9 with no refusal in 170 calls, and level 10,
// where the limit held, with 3.7 in 477. Read against the rate of the
// levels below it, 0, level 10's refusals were beyond it, the pool stopped
// there and the background at 11 was nothing: a period at 11 with 2
// refusals in 111 calls was overload, and cut. Read as counts against the
// pool's, they are the background's; the period's refusals are taken out.
// A level visited briefly with a refusal (7, a capacity halved) still
// stops the pool, as under the pinned law.
func TestBackgroundReadsAWellReadLevel(t *testing.T) {
	s := AgencyState{Levels: []Level{level(4, 29, 0, 0), level(9, 141, 0, 0), level(10, 477, 3.7, 0)}}
	o := Observation{Calls: 111, OK: 109, Overload: 2}
	r, _ := s.background(11, LawBeforeBackgroundTail)
	if want := 3.7 / (647 + backgroundPrior); math.Abs(r-want) > 1e-12 {
		t.Errorf("refused background at 11: %.4f, want %.4f (levels 4, 9 and 10)", r, want)
	}
	if got := s.denoise(o, 11, LawBeforeBackgroundTail); got.Overload != 0 || got.Calls != 109 {
		t.Errorf("denoised to %d refused of %d calls; want none of 109", got.Overload, got.Calls)
	}
	if r, _ := s.background(11, LawBeforeWellReadLevel); r != 0 {
		t.Errorf("pinned law: refused background at 11 %.4f, want 0", r)
	}
	if got := s.denoise(o, 11, LawBeforeWellReadLevel); got != o {
		t.Errorf("pinned law: denoised %+v to %+v; want it unchanged", o, got)
	}

	brief := AgencyState{Levels: []Level{level(5, 24, 0, 0), level(6, 70, 0, 0), level(7, 46, 1.3, 0), level(12, 200, 0, 0)}}
	if r, _ := brief.background(13, 0); r != 0 {
		t.Errorf("refused background at 13 %.4f; want 0: level 7, read over 46 calls, stops the pool", r)
	}
}

func TestBackgroundNotAtALevelBeyondACapacity(t *testing.T) {
	// 1% of calls refused at random, read at 5 and 6; 7 is a call beyond the
	// capacity and refuses 6% over its last periods.
	s := AgencyState{Levels: []Level{level(5, 150, 2, 0), level(6, 150, 1, 0), level(7, 200, 12, 0)}}
	o := Observation{Calls: 100, OK: 94, Overload: 6}
	if got := s.denoise(o, 7, 0); got != o {
		t.Errorf("denoised %+v to %+v at a level refusing more than the background; want it unchanged", o, got)
	}
	// At 6 itself the refusals are the background's.
	if got := s.denoise(Observation{Calls: 100, OK: 98, Overload: 2}, 6, 0); got.Overload != 0 {
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

// TestFailCheckUndoesACutOnTheBackground starts an agency at a limit of 10
// with nothing read below it, and a period of 100 calls, 3 of them refused
// at the baseline latency: the failure cut it makes is checked once the
// limits below have read as many calls. Where they refuse about as often
// (2 in 100), the refusals were the agency's background: the cut is undone,
// the limit back at 10 and no capacity remembered. Where they refuse
// nothing over twice the calls, the cut stands. Under the law pinned before
// the check, the cut is not checked.
func TestFailCheckUndoesACutOnTheBackground(t *testing.T) {
	cfg := DefaultConfig("kcb")
	period := func(limit int, n int64, refused int64) Observation {
		return Observation{Calls: n, OK: n - refused, Overload: refused, LatencyMean: svc, LatencyP50: svc,
			LatencyP90: svc * 13 / 10, QueueWaitP90: time.Second, InFlight: limit, Period: time.Second}
	}
	start := AgencyState{Limit: 10, Baseline: svc, BaselineSignal: "mean", BaselinePeriods: warmupPeriods,
		BaselineSamples: 1000, Periods: 10, SinceMove: 5, Rule: ruleGrow}
	for _, tc := range []struct {
		name     string
		law      int
		refusals []int64 // a period's refusals below the cut, of 10 calls a unit of the limit
		undone   bool
	}{
		{"background", 0, []int64{0, 1, 0, 1, 0, 1, 0, 0}, true},
		{"capacity", 0, []int64{0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"pinned law", LawBeforeFailCheck, []int64{1, 0, 1, 0, 1, 0, 0, 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := State{Agencies: map[string]AgencyState{"kcb": start}, Law: tc.law}
			st, ds := Step(st, map[string]Observation{"kcb": period(10, 100, 3)}, cfg)
			cut := st.Agencies["kcb"]
			if ds[0].Limit >= 10 || cut.Capacity == 0 {
				t.Fatalf("limit %d, capacity %.1f (%s); want a cut on the refusals, the capacity set", ds[0].Limit, cut.Capacity, ds[0].Reason)
			}
			if (cut.FailCheck != nil) != (tc.law == 0) {
				t.Fatalf("check %+v under law %d; want one under the current law only", cut.FailCheck, tc.law)
			}
			undone := false
			for i, r := range tc.refusals {
				limit := ds[0].Limit
				st, ds = Step(st, map[string]Observation{"kcb": period(limit, int64(10*limit), r)}, cfg)
				t.Logf("period %d at %d, %d refused: %d (%s)", i+1, limit, r, ds[0].Limit, ds[0].Reason)
				if st.Agencies["kcb"].Rule == ruleUndoFailure {
					undone = true
					break
				}
			}
			s := st.Agencies["kcb"]
			if undone != tc.undone {
				t.Fatalf("undone %v, want %v", undone, tc.undone)
			}
			if undone && (ds[0].Limit != 10 || s.Capacity != 0 || s.Refused) {
				t.Errorf("undone to limit %d, capacity %.1f, refused %v; want 10, none, false", ds[0].Limit, s.Capacity, s.Refused)
			}
			if !undone && (s.Capacity == 0 || s.FailCheck != nil) {
				t.Errorf("capacity %.1f, check %+v; want the cut's capacity kept and the check ended", s.Capacity, s.FailCheck)
			}
		})
	}
}

func TestBinomialTail(t *testing.T) {
	for _, tc := range []struct {
		k, x int
		p    float64
		want float64
	}{
		{3, 3, 0.5, 0.125},
		{6, 5, 0.5, 7.0 / 64},
		{10, 0, 0.3, 1},
		{4, 1, 0.25, 1 - 0.75*0.75*0.75*0.75},
		{5, 6, 0.5, 0},
	} {
		if got := binomialTail(tc.k, tc.x, tc.p); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("P(X ≥ %d) for %d trials of odds %.2f: %.6f, want %.6f", tc.x, tc.k, tc.p, got, tc.want)
		}
	}
	// A cut of 3 refused in 95 calls, none in 99 below: as likely as 1 in 8
	// under one rate, not beyond it; 8 in 95 against none is.
	if beyond(Counts{Calls: 95, Refused: 3}, Counts{Calls: 99}, refusedCount) {
		t.Error("3 of 95 against 0 of 99 read as beyond")
	}
	if !beyond(Counts{Calls: 95, Refused: 8}, Counts{Calls: 99}, refusedCount) {
		t.Error("8 of 95 against 0 of 99 not read as beyond")
	}
}

// TestBackgroundTail holds the current law's allowance and rate. The
// allowance is the Poisson quantile at backgroundTail where the normal
// form floor(e + 2√e) allows one or more, and none where it allows none;
// the rate's prior fades out over backgroundFade failures.
func TestBackgroundTail(t *testing.T) {
	for _, tc := range []struct {
		n, rate      float64
		normal, tail int64
		why          string
	}{
		{100, 0.001, 0, 0, "a trace of a background (e = 0.1): none, a lone refusal stays a probe's answer"},
		{100, 0.005, 1, 2, "e = 0.5: the normal form allows 1, which 9% of such periods pass; the tail 2 (1.4%)"},
		{32, 0.02, 2, 3, "e = 0.64: 2 (2.8% pass), the tail 3"},
		{100, 0.02, 4, 5, "e = 2: 4 (5.3% pass), the tail 5"},
		{1000, 0.05, 64, 65, "e = 50: the two within a call of each other"},
		{10000, 0.1, 1063, 0, "e = 1000, past backgroundTailMax: the normal form (the Poisson's first term underflows)"},
	} {
		if got := allowance(tc.n, tc.rate, LawBeforeBackgroundTail); got != tc.normal {
			t.Errorf("%s: pinned law's allowance %d, want %d", tc.why, got, tc.normal)
		}
		want := max(tc.normal, tc.tail)
		if tc.normal == 0 {
			want = 0
		}
		if got := allowance(tc.n, tc.rate, 0); got != want {
			t.Errorf("%s: allowance %d, want %d", tc.why, got, want)
		}
	}
	// The quantile itself: P(X ≤ 2) = 0.986 at e = 0.5, P(X ≤ 1) = 0.910.
	if k := poissonQuantile(0.5, backgroundTail); k != 2 {
		t.Errorf("Poisson(0.5) quantile at %.3f: %d, want 2", backgroundTail, k)
	}
	if k := poissonQuantile(0, backgroundTail); k != 0 {
		t.Errorf("Poisson(0) quantile: %d, want 0", k)
	}

	// The prior: 4 refusals in 240 calls read 4/290 under the pinned law,
	// 4/(240 + 50/5) now; 6 in 300, past the fade, 6/300.
	refused := func(c Counts) float64 { return c.Refused }
	for _, tc := range []struct {
		c             Counts
		pinned, fades float64
	}{
		{Counts{Calls: 240, Refused: 4}, 4.0 / 290, 4.0 / 250},
		{Counts{Calls: 300, Refused: 6}, 6.0 / 350, 6.0 / 300},
		{Counts{Calls: 40}, 0, 0},
		{Counts{}, 0, 0},
	} {
		if got := rateOf(tc.c, refused, LawBeforeBackgroundTail); math.Abs(got-tc.pinned) > 1e-12 {
			t.Errorf("pinned law: rate of %+v %.5f, want %.5f", tc.c, got, tc.pinned)
		}
		if got := rateOf(tc.c, refused, 0); math.Abs(got-tc.fades) > 1e-12 {
			t.Errorf("rate of %+v %.5f, want %.5f", tc.c, got, tc.fades)
		}
	}

	// The traced levels of TestBackgroundReadsAWellReadLevel under the
	// current law: level 10's 3.7 refusals in 477 calls, with none below,
	// read at 3.7/(647 + 50 × 0.26); the period at 11, 2 refusals in 111
	// calls, all taken out.
	s := AgencyState{Levels: []Level{level(4, 29, 0, 0), level(9, 141, 0, 0), level(10, 477, 3.7, 0)}}
	if r, _ := s.background(11, 0); math.Abs(r-3.7/(647+backgroundPrior*(1-3.7/backgroundFade))) > 1e-12 {
		t.Errorf("refused background at 11: %.5f, want %.5f", r, 3.7/(647+backgroundPrior*(1-3.7/backgroundFade)))
	}
	if got := s.denoise(Observation{Calls: 111, OK: 109, Overload: 2}, 11, 0); got.Overload != 0 {
		t.Errorf("denoised to %d refused; want none", got.Overload)
	}
}
