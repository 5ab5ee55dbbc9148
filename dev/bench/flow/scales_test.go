package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func scaleNamed(t *testing.T, name string) scale {
	t.Helper()
	for _, s := range defaultScales() {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no default scale %q", name)
	return scale{}
}

// The large scale is issue 12's: at least 10× small's call rate, the same
// client timeout to median ratio, and a surge whose applications start at
// the offered calls ÷ K.
func TestLargeScaleIsTenTimesSmallsCallRate(t *testing.T) {
	small, large := scaleNamed(t, "small"), scaleNamed(t, "large")
	if r := large.nominal() / small.nominal(); r < 10-1e-9 {
		t.Errorf("large's call rate %.1f/s is %.2f× small's %.1f/s, want at least 10×", large.nominal(), r, small.nominal())
	}
	ratio := func(s scale) float64 { return s.clientTimeout.Seconds() / s.serviceTime.Seconds() }
	if d := math.Abs(ratio(large) - ratio(small)); d > 0.1*ratio(small) {
		t.Errorf("client timeout ÷ median: large %.2f, small %.2f; want the same within 10%%", ratio(large), ratio(small))
	}
	if small.calls() != 1 || large.calls() != 8 {
		t.Errorf("calls per application: small %d, large %d; want 1 and 8", small.calls(), large.calls())
	}
	c := config{capacity: large.capacity, serviceTime: large.serviceTime, callsPerApp: large.callsPerApp}
	sc, ok := scenarioOf("surge", large.duration, c)
	if !ok {
		t.Fatal("no surge scenario")
	}
	if got := appRate(sc, time.Second, c); math.Abs(got-25) > 1e-9 {
		t.Errorf("large surge: %.2f applications/s started, want 200 calls/s ÷ 8 = 25", got)
	}
	if got := appRate(sc, -time.Second, c); math.Abs(got-0.5*large.nominal()/8) > 1e-9 {
		t.Errorf("large warm-up: %.2f applications/s started, want half the nominal rate ÷ 8", got)
	}
}

func TestCallsPerAppFlag(t *testing.T) {
	c := config{capacity: 8, serviceTime: time.Second, clientTimeout: 3 * time.Second, duration: 20 * time.Second}
	got, err := scalesOf(c, map[string]bool{}, "small,large,20x300ms", "", 0)
	if err != nil || len(got) != 3 || got[0].calls() != 1 || got[1].calls() != 8 || got[2].calls() != 1 ||
		got[0].autoCalls || got[1].autoCalls || !got[2].autoCalls {
		t.Errorf("no -calls-per-app: %+v, %v; want each preset's own K (1, 8), and a custom scale's chosen by its load", got, err)
	}
	got, err = scalesOf(c, map[string]bool{"capacity": true}, "", "", 0)
	if err != nil || len(got) != 1 || !got[0].autoCalls {
		t.Errorf("-capacity 8, no -calls-per-app: %+v, %v; want K chosen by the load", got, err)
	}
	c.callsPerApp = 4
	set := map[string]bool{"calls-per-app": true}
	got, err = scalesOf(c, set, "small,large,20x300ms", "", 0)
	if err != nil || len(got) != 3 || got[0].calls() != 4 || got[1].calls() != 4 || got[2].calls() != 4 || got[2].autoCalls {
		t.Errorf("-calls-per-app 4: %+v, %v; want K=4 on every scale", got, err)
	}
	got, err = scalesOf(c, set, "", "", 100)
	if err != nil || len(got) != 1 || got[0].name != "probe" || got[0].calls() != 4 {
		t.Errorf("-probe 100 -calls-per-app 4: %+v, %v; want the probe at K=4", got, err)
	}
	for _, bad := range []int{0, -3, maxCallsPerApp + 1} {
		c.callsPerApp = bad
		_, err := scalesOf(c, set, "small", "", 0)
		if err == nil {
			t.Errorf("-calls-per-app %d accepted", bad)
			continue
		}
		for _, want := range []string{"-calls-per-app", ": " + strconv.Itoa(bad) + ":", "1 to 64"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("-calls-per-app %d: %q lacks %q", bad, err, want)
			}
		}
	}
}

// A scale's own K is checked too, before anything starts.
func TestRunRejectsAScaleWithABadK(t *testing.T) {
	for _, bad := range []int{0, maxCallsPerApp + 1} {
		s := scale{name: "odd", capacity: 4, serviceTime: 600 * time.Millisecond, clientTimeout: 2 * time.Second,
			callsPerApp: bad, duration: 30 * time.Second, scenarios: []string{"surge"}, targets: targetsSmall}
		err := run(context.Background(), config{strategies: []string{stOracle}, redisURL: "redis://127.0.0.1:1/0"}, []scale{s})
		if err == nil {
			t.Fatalf("K=%d accepted", bad)
		}
		for _, want := range []string{"scale odd: calls per application", ": " + strconv.Itoa(bad) + ":", "1 to 64"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("K=%d: %q lacks %q", bad, err, want)
			}
		}
	}
}

// Each scale is checked at its capacity rate and, when higher, its
// scenarios' highest offered load, in applications of its own K calls.
func TestCeilingChecksPerScale(t *testing.T) {
	var runs []*scaleRun
	for _, s := range defaultScales() {
		sr := &scaleRun{scale: s}
		for _, name := range s.scenarios {
			sc, _ := scenarioOf(name, s.durationOf(name), config{})
			sr.scs = append(sr.scs, sc)
		}
		runs = append(runs, sr)
	}
	var got []string
	for _, x := range ceilingChecks(runs) {
		got = append(got, fmt.Sprintf("%s %s %.1f/%d", x.scale, x.kind, x.offered, x.k))
	}
	want := "small capacity 6.7/1, small offered 26.7/1, large capacity 66.7/8, large offered 200.0/8"
	if strings.Join(got, ", ") != want {
		t.Errorf("ceiling checks %v, want %s", got, want)
	}
}

// ceilingResult is a check whose calls were answered at share × the offered
// rate, with the given latencies.
func ceilingResult(kind string, offered float64, k int, share float64, firstP99, appP99 time.Duration) ceilingCheck {
	// The Poisson draw asked for 5% fewer calls than the rate.
	asked := 0.95 * offered * 10
	r := result{window: 10 * time.Second, ok: int64(math.Round(share * asked)), callsPerApp: k,
		apps: appStats{ok: 10, started: int(math.Round(asked / float64(k))), firstP99: firstP99, p99: appP99}}
	return ceilingCheck{scale: "large", kind: kind, of: "large " + kind, offered: offered, k: k, r: r}
}

func TestCeilingCarried(t *testing.T) {
	for _, tc := range []struct {
		name             string
		share            float64
		firstP99, appP99 time.Duration
		want             bool
	}{
		{"all answered fast", 0.97, 300 * time.Millisecond, 3 * time.Second, true},
		{"85% of the calls asked answered", 0.85, 300 * time.Millisecond, 3 * time.Second, false},
		{"first call late", 0.97, 1200 * time.Millisecond, 3 * time.Second, false},
		{"the K calls late", 0.97, 300 * time.Millisecond, 9 * time.Second, false},
	} {
		if got := ceilingResult(ceilingCapacity, 66.7, 8, tc.share, tc.firstP99, tc.appP99).carried(); got != tc.want {
			t.Errorf("%s: carried %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A capacity rate Temporal did not carry is said at the top of the report
// and again at the top of the scale's section; an offered load it did not
// carry is said once, naming both rates.
func TestReportSaysWhatTheCeilingChecksMean(t *testing.T) {
	large := scaleNamed(t, "large")
	doc := func(capShare, offShare float64) string {
		checks := []ceilingCheck{
			ceilingResult(ceilingCapacity, large.nominal(), 8, capShare, 300*time.Millisecond, 3*time.Second),
			ceilingResult(ceilingOffered, 3*large.nominal(), 8, offShare, 300*time.Millisecond, 3*time.Second),
		}
		var b strings.Builder
		if err := writeDoc(&b, []*scaleRun{fakeRuns(large, 1)}, checks, config{warmup: time.Second, ceiling: 10 * time.Second}, time.Minute); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	short := doc(0.5, 0.3)
	if n := strings.Count(short, "did NOT carry the agency's capacity rate (66.7 calls/s, 8.3 applications/s of 8 calls)"); n != 2 {
		t.Errorf("capacity not carried: said %d times, want twice (ceiling section and the scale's):\n%s", n, short)
	}
	if i, j := strings.Index(short, "## Scale large"), strings.LastIndex(short, "did NOT carry"); j < i {
		t.Errorf("the scale's section does not open with the warning")
	}
	partly := doc(0.97, 0.5)
	if !strings.Contains(partly, "the highest offered load (200.0 calls/s, 25.0 applications/s of 8 calls) was **not**") ||
		strings.Contains(partly, "did NOT carry") {
		t.Errorf("offered load not carried: the report does not say so, or says the capacity was not carried:\n%s", partly)
	}
	if carried := doc(0.97, 0.95); !strings.Contains(carried, "were both carried") || !strings.Contains(carried, "| large | capacity | 66.7 | 8 | 8.3 | 63.2 | 61.4 |") {
		t.Errorf("both carried: the report does not say so or lacks the check's row:\n%s", carried)
	}
}

// A custom scale without -calls-per-app starts at most maxAppRate
// applications/s at its scenarios' highest offered load: one call per
// application at 10 × 200 ms surged 3× started 150 workflows/s, and most
// starts timed out.
func TestCustomScaleCallsKeepTheApplicationRateCarried(t *testing.T) {
	s := scale{name: "10x200ms", capacity: 10, serviceTime: 200 * time.Millisecond, clientTimeout: 2 * time.Second, duration: 30 * time.Second}
	c := config{capacity: s.capacity, serviceTime: s.serviceTime, clientTimeout: s.clientTimeout}
	var scs []scenario
	for _, name := range []string{"capacity", "surge", "slowdown"} {
		sc, ok := scenarioOf(name, s.duration, c)
		if !ok {
			t.Fatalf("no %s scenario", name)
		}
		scs = append(scs, sc)
	}
	peak, of := peakOffered(s, scs)
	if math.Abs(peak-150) > 1e-9 || of != "surge" {
		t.Fatalf("peak offered %.1f calls/s by %q, want 150 by the surge (3 × 50)", peak, of)
	}
	if k := callsFor(peak); k != 6 || peak/float64(k) > maxAppRate {
		t.Errorf("K for 150 calls/s: %d, want 6 (25 applications/s)", k)
	}
	for _, tc := range []struct {
		peak float64
		want int
	}{{1, 1}, {20, 1}, {25, 1}, {25.1, 2}, {26.7, 2}, {200, 8}, {1e6, maxCallsPerApp}} {
		if got := callsFor(tc.peak); got != tc.want {
			t.Errorf("callsFor(%.1f) = %d, want %d", tc.peak, got, tc.want)
		}
	}
}
