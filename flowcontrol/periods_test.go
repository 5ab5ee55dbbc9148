package flowcontrol

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// With every agency due and one period for all, StepDue decides exactly
// what Step does, step after step: the controller's loop is unchanged for
// agencies without a period of their own.
func TestStepDueAllDueIsStep(t *testing.T) {
	cfg := DefaultConfig(agencyA, "nice")
	a, b := State{}, State{}
	limits := map[string]int{agencyA: 10, "nice": 10}
	for i := range 40 {
		agencies := map[string]fluid{agencyA: {C: 20, S: svc, Q: 40}, "nice": {C: 8 + i%5, S: 2 * svc, Q: 10}}
		obs := map[string]Observation{}
		for n, f := range agencies {
			o := f.observe(limits[n])
			o.Now = time.Unix(1_700_000_000+int64(i), 0)
			obs[n] = o
		}
		var da, db []Decision
		a, da = Step(a, obs, cfg)
		b, db = StepDue(b, obs, cfg, []string{"nice", agencyA})
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(da, db) {
			t.Fatalf("step %d: StepDue differs from Step:\n%+v\n%+v\n%+v\n%+v", i, a, b, da, db)
		}
		for _, d := range da {
			limits[d.Agency] = d.Limit
		}
	}
}

// An agency that is not due keeps its state as it was (no counter ages on
// the controller's ticks), and a due agency is stepped over its own period.
func TestStepDueStepsOnlyDueAgenciesOverTheirPeriod(t *testing.T) {
	cfg := DefaultConfig(agencyA, "scraping")
	sc := cfg.Agencies["scraping"]
	sc.Period = 3 * time.Second
	cfg.Agencies["scraping"] = sc
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.PeriodOf("scraping"); got != 3*time.Second {
		t.Fatalf("PeriodOf(scraping) = %s, want 3s", got)
	}
	if got := cfg.PeriodOf(agencyA); got != time.Second {
		t.Fatalf("PeriodOf(kcb) = %s, want the controller's 1s", got)
	}
	cooling := warm(8)
	cooling.Cooldown = 2
	st := State{Agencies: map[string]AgencyState{agencyA: warm(10), "scraping": cooling}, Steps: 4}

	next, ds := StepDue(st, map[string]Observation{agencyA: healthy()}, cfg, []string{agencyA})
	if len(ds) != 1 || ds[0].Agency != agencyA {
		t.Fatalf("decisions %+v, want kcb's only", ds)
	}
	if !reflect.DeepEqual(next.Agencies["scraping"], cooling) {
		t.Fatalf("scraping, not due, changed:\n%+v\nwant\n%+v", next.Agencies["scraping"], cooling)
	}
	if next.Steps != 5 {
		t.Fatalf("steps %d, want 5", next.Steps)
	}

	// A thin observation without its own length is taken to cover the
	// agency's period (3 s), not the controller's.
	thin := Observation{Calls: 2, OK: 2, LatencyMean: svc, LatencyP50: svc, LatencyP90: svc, InFlight: 1}
	next, ds = StepDue(next, map[string]Observation{"scraping": thin}, cfg, []string{"scraping"})
	if len(ds) != 1 || ds[0].Agency != "scraping" {
		t.Fatalf("decisions %+v, want scraping's only", ds)
	}
	s := next.Agencies["scraping"]
	if s.Evidence == nil || s.Evidence.Period != 3*time.Second {
		t.Fatalf("scraping's evidence %+v (%s), want a thin period held as evidence over 3s", s.Evidence, ds[0].Reason)
	}
	if s.Cooldown >= cooling.Cooldown {
		t.Fatalf("cooldown %d, want it aged by scraping's own step (was %d)", s.Cooldown, cooling.Cooldown)
	}
}

func TestConfigValidatesAgencyPeriod(t *testing.T) {
	for _, tc := range []struct {
		period time.Duration
		want   string
	}{
		{1500 * time.Millisecond, "period 1.5s: accepted 0 (the controller's period) or a whole number of seconds up to 1m0s"},
		{-time.Second, "period -1s"},
		{2 * time.Minute, "period 2m0s"},
	} {
		err := cfgWith(func(c *AgencyConfig) { c.Period = tc.period }).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "agency kcb") {
			t.Errorf("period %s: Validate() = %v, want an error naming agency kcb and %q", tc.period, err, tc.want)
		}
	}
	cfg := cfgWith(func(c *AgencyConfig) { c.Period = 3 * time.Second })
	cfg.Period = 2 * time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "multiple of the controller's period 2s") {
		t.Errorf("3s agency period under a 2s controller: Validate() = %v, want it refused", err)
	}
}
