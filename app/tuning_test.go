package app_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"

	"loanflow/app"
)

// tuningEnv is a worker environment that loads, for the tuning tests.
func tuningEnv(t *testing.T) {
	t.Helper()
	setKeys(t)
	t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none?sslmode=disable")
}

func TestTuningFromEnv(t *testing.T) {
	tuningEnv(t)
	cfg, err := app.FromEnv(false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StickyCacheSize != nil || cfg.LoanSlots != (app.LoanSlots{}) || cfg.PostgresMaxConns != 0 {
		t.Fatalf("unset: sticky %v, slots %+v, pool %d; want the SDK's and the default", cfg.StickyCacheSize, cfg.LoanSlots, cfg.PostgresMaxConns)
	}
	t.Setenv("LOANFLOW_STICKY_CACHE_SIZE", "0")
	t.Setenv("LOANFLOW_LOAN_TUNER", "resource")
	t.Setenv("LOANFLOW_LOAN_WORKFLOW_SLOTS", "50")
	t.Setenv("LOANFLOW_LOAN_ACTIVITY_SLOTS", "20")
	t.Setenv("LOANFLOW_LOAN_LOCAL_ACTIVITY_SLOTS", "30")
	t.Setenv("LOANFLOW_LOAN_TARGET_CPU", "0.7")
	t.Setenv("LOANFLOW_LOAN_TARGET_MEM", "0.5")
	t.Setenv("LOANFLOW_PG_MAX_CONNS", "24")
	t.Setenv("LOANFLOW_LOAN_RAMP_THROTTLE", "0s")
	t.Setenv("LOANFLOW_POLLERS", "6")
	t.Setenv("LOANFLOW_AGENCY_PREFETCH", "0.5")
	cfg, err = app.FromEnv(false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pollers != 6 {
		t.Fatalf("LOANFLOW_POLLERS=6: pollers %d", cfg.Pollers)
	}
	if f := cfg.AgencyPrefetch; f == nil || *f != 0.5 {
		t.Fatalf("LOANFLOW_AGENCY_PREFETCH=0.5: prefetch %v", f)
	}
	if r := cfg.LoanSlots.RampThrottle; r == nil || *r != 0 {
		t.Fatalf("ramp throttle %v, want 0s set", r)
	}
	cfg.LoanSlots.RampThrottle = nil
	want := app.LoanSlots{Tuner: "resource", Workflow: 50, Activity: 20, LocalActivity: 30, TargetCPU: 0.7, TargetMem: 0.5}
	if cfg.StickyCacheSize == nil || *cfg.StickyCacheSize != 0 || cfg.LoanSlots != want || cfg.PostgresMaxConns != 24 {
		t.Fatalf("sticky %v, slots %+v, pool %d; want 0, %+v, 24", cfg.StickyCacheSize, cfg.LoanSlots, cfg.PostgresMaxConns, want)
	}
}

// The worker's flags win over the variables; the rest still come from the
// environment.
func TestTuningFlagsOverrideEnv(t *testing.T) {
	tuningEnv(t)
	t.Setenv("LOANFLOW_LOAN_WORKFLOW_SLOTS", "50")
	t.Setenv("LOANFLOW_LOAN_LOCAL_ACTIVITY_SLOTS", "30")
	t.Setenv("LOANFLOW_PG_MAX_CONNS", "24")
	t.Setenv("LOANFLOW_POLLERS", "6")
	cfg, err := app.Load([]string{"-metrics-addr", "", "-loan-workflow-slots", "8", "-sticky-cache-size", "128", "-pg-max-conns", "4", "-pollers", "12"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pollers != 12 {
		t.Fatalf("-pollers 12 over LOANFLOW_POLLERS=6: pollers %d", cfg.Pollers)
	}
	if cfg.LoanSlots.Workflow != 8 || cfg.LoanSlots.LocalActivity != 30 || *cfg.StickyCacheSize != 128 || cfg.PostgresMaxConns != 4 {
		t.Fatalf("slots %+v, sticky %d, pool %d; want workflow 8 (flag), local activity 30 (variable), sticky 128, pool 4",
			cfg.LoanSlots, *cfg.StickyCacheSize, cfg.PostgresMaxConns)
	}
}

// Every bad value is refused before anything connects, naming the variable
// or flag, the value and what is accepted.
func TestTuningRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"LOANFLOW_STICKY_CACHE_SIZE": "-1"}, nil, `LOANFLOW_STICKY_CACHE_SIZE="-1": accepted a whole number from 0 (no sticky execution) to 1000000`},
		{map[string]string{"LOANFLOW_STICKY_CACHE_SIZE": "lots"}, nil, `LOANFLOW_STICKY_CACHE_SIZE="lots": accepted a whole number`},
		{nil, []string{"-sticky-cache-size", "2000000"}, `-sticky-cache-size "2000000": accepted a whole number from 0 (no sticky execution) to 1000000`},
		{map[string]string{"LOANFLOW_LOAN_TUNER": "auto"}, nil, `LOANFLOW_LOAN_TUNER="auto": accepted fixed or resource`},
		{nil, []string{"-loan-tuner", "Fixed"}, `-loan-tuner "Fixed": accepted fixed or resource`},
		{map[string]string{"LOANFLOW_LOAN_WORKFLOW_SLOTS": "0"}, nil, `LOANFLOW_LOAN_WORKFLOW_SLOTS="0": accepted a whole number from 1 to 10000`},
		{map[string]string{"LOANFLOW_LOAN_ACTIVITY_SLOTS": "10001"}, nil, `LOANFLOW_LOAN_ACTIVITY_SLOTS="10001": accepted a whole number from 1 to 10000`},
		{nil, []string{"-loan-local-activity-slots", "4.5"}, `-loan-local-activity-slots "4.5": accepted a whole number from 1 to 10000`},
		{map[string]string{"LOANFLOW_LOAN_TUNER": "resource", "LOANFLOW_LOAN_TARGET_CPU": "90%"}, nil, `LOANFLOW_LOAN_TARGET_CPU="90%": accepted a fraction above 0 and at most 1`},
		{map[string]string{"LOANFLOW_LOAN_TUNER": "resource", "LOANFLOW_LOAN_TARGET_MEM": "0"}, nil, `LOANFLOW_LOAN_TARGET_MEM="0": accepted a fraction above 0 and at most 1`},
		{nil, []string{"-loan-tuner", "resource", "-loan-target-cpu", "1.5"}, `-loan-target-cpu "1.5": accepted a fraction above 0 and at most 1`},
		// A target means nothing to fixed slots.
		{map[string]string{"LOANFLOW_LOAN_TARGET_CPU": "0.8"}, nil, `LOANFLOW_LOAN_TARGET_CPU=0.8: a target is accepted only with LOANFLOW_LOAN_TUNER=resource (the tuner is "fixed")`},
		{nil, []string{"-loan-tuner", "fixed", "-loan-target-mem", "0.5"}, `-loan-target-mem 0.5: a target is accepted only with -loan-tuner resource (the tuner is "fixed")`},
		{map[string]string{"LOANFLOW_LOAN_TUNER": "resource", "LOANFLOW_LOAN_RAMP_THROTTLE": "fast"}, nil, `LOANFLOW_LOAN_RAMP_THROTTLE="fast": accepted a duration from 0s to 10s`},
		{nil, []string{"-loan-tuner", "resource", "-loan-ramp-throttle", "-5ms"}, `-loan-ramp-throttle "-5ms": accepted a duration from 0s to 10s`},
		{map[string]string{"LOANFLOW_LOAN_RAMP_THROTTLE": "5ms"}, nil, `LOANFLOW_LOAN_RAMP_THROTTLE=5ms: accepted only with LOANFLOW_LOAN_TUNER=resource (the tuner is "fixed")`},
		{map[string]string{"LOANFLOW_PG_MAX_CONNS": "0"}, nil, `LOANFLOW_PG_MAX_CONNS="0": accepted a whole number from 1 to 1000`},
		{nil, []string{"-pg-max-conns", "1001"}, `-pg-max-conns "1001": accepted a whole number from 1 to 1000`},
		{map[string]string{"LOANFLOW_POLLERS": "-1"}, nil, `LOANFLOW_POLLERS="-1": accepted auto (or 0), or a whole number from 1 to 64`},
		{map[string]string{"LOANFLOW_AGENCY_PREFETCH": "1.5"}, nil, `LOANFLOW_AGENCY_PREFETCH="1.5": accepted a fraction from 0 to 1`},
		{nil, []string{"-agency-prefetch", "quarter"}, `-agency-prefetch "quarter": accepted a fraction from 0 to 1`},
		{nil, []string{"-pollers", "65"}, `-pollers "65": accepted auto (or 0), or a whole number from 1 to 64`},
		// Two sources for the pool's size: refused rather than one silently winning.
		{map[string]string{"LOANFLOW_PG_MAX_CONNS": "8", "DATABASE_URL": "postgres://postgres@127.0.0.1:1/none?pool_max_conns=4"}, nil,
			`LOANFLOW_PG_MAX_CONNS=8: DATABASE_URL sets pool_max_conns too; accepted one of the two`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			tuningEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := app.Load(append([]string{"-metrics-addr", ""}, tc.args...), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The pool follows the loan worker's slots: one connection more than its
// local activities and activities can use at once, at most 16, unless set.
func TestPostgresPoolSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  app.Config
		want int
		by   string
	}{
		{"default", app.Config{}, 16, "the default"},
		{"few slots", app.Config{LoanSlots: app.LoanSlots{Activity: 2, LocalActivity: 4}}, 7, "the loan worker's local-activity and activity slots plus one"},
		{"many slots", app.Config{LoanSlots: app.LoanSlots{Activity: 20, LocalActivity: 20}}, 16, "the default"},
		{"local activities few, activities the SDK's", app.Config{LoanSlots: app.LoanSlots{LocalActivity: 4}}, 16, "the default"},
		{"resource tuner with its maxima", app.Config{LoanSlots: app.LoanSlots{Tuner: app.TunerResource, Activity: 3, LocalActivity: 3}}, 7, "the loan worker's local-activity and activity slots plus one"},
		{"set", app.Config{PostgresMaxConns: 32, LoanSlots: app.LoanSlots{Activity: 2, LocalActivity: 2}}, 32, app.EnvPostgresMaxConns},
		{"in the URL", app.Config{DatabaseURL: "postgres://h/db?pool_max_conns=5"}, 0, "pool_max_conns of DATABASE_URL"},
	} {
		n, by := tc.cfg.PostgresPoolSize()
		if n != tc.want || by != tc.by {
			t.Errorf("%s: %d set by %q, want %d by %q", tc.name, n, by, tc.want, tc.by)
		}
	}
}

// Commands that build a Config in code set the tuning by the worker's flag
// names, with the worker's checks, and the environment stays out of it.
func TestSetTuningFlags(t *testing.T) {
	t.Setenv("LOANFLOW_PG_MAX_CONNS", "3")
	var cfg app.Config
	if err := cfg.SetTuningFlags(map[string]string{"loan-tuner": "resource", "loan-target-cpu": "0.6", "sticky-cache-size": "16"}); err != nil {
		t.Fatal(err)
	}
	if cfg.LoanSlots.Tuner != app.TunerResource || cfg.LoanSlots.TargetCPU != 0.6 || *cfg.StickyCacheSize != 16 || cfg.PostgresMaxConns != 0 {
		t.Fatalf("slots %+v, sticky %d, pool %d; want resource at 0.6, 16, and no pool size from the environment", cfg.LoanSlots, *cfg.StickyCacheSize, cfg.PostgresMaxConns)
	}
	if err := cfg.SetTuningFlags(map[string]string{"loan-slots": "4"}); err == nil || !strings.Contains(err.Error(), `tuning setting "loan-slots": accepted sticky-cache-size, loan-tuner`) {
		t.Fatalf("unknown name: %v, want it named with the accepted ones", err)
	}
	if err := cfg.SetTuningFlags(map[string]string{"pg-max-conns": "-4"}); err == nil || !strings.Contains(err.Error(), `-pg-max-conns "-4": accepted a whole number from 1 to 1000`) {
		t.Fatalf("bad value: %v", err)
	}
}

// Unset, LOANFLOW_POLLERS is auto, as is "auto" (or -pollers auto): the
// SDK's poller autoscaling on every worker. A count sets fixed pollers.
func TestPollersAuto(t *testing.T) {
	tuningEnv(t)
	cfg, err := app.FromEnv(false)
	if err != nil || cfg.Pollers != 0 {
		t.Fatalf("LOANFLOW_POLLERS unset: pollers %d, %v; want 0 (auto)", cfg.Pollers, err)
	}
	t.Setenv("LOANFLOW_POLLERS", "6")
	cfg, err = app.Load([]string{"-metrics-addr", "", "-pollers", "auto"}, &bytes.Buffer{})
	if err != nil || cfg.Pollers != 0 {
		t.Fatalf("-pollers auto over LOANFLOW_POLLERS=6: pollers %d, %v; want 0 (auto)", cfg.Pollers, err)
	}
	t.Setenv("LOANFLOW_POLLERS", "auto")
	cfg, err = app.FromEnv(false)
	if err != nil || cfg.Pollers != 0 {
		t.Fatalf("LOANFLOW_POLLERS=auto: pollers %d, %v; want 0 (auto)", cfg.Pollers, err)
	}

	var auto worker.Options
	app.ApplyPollers(&auto, 0)
	if auto.WorkflowTaskPollerBehavior == nil || auto.ActivityTaskPollerBehavior == nil ||
		auto.MaxConcurrentWorkflowTaskPollers != 0 || auto.MaxConcurrentActivityTaskPollers != 0 {
		t.Fatalf("auto: %+v, want both poller behaviors set and no fixed count", auto)
	}
	var fixed worker.Options
	app.ApplyPollers(&fixed, 6)
	if !reflect.DeepEqual(fixed, worker.Options{MaxConcurrentWorkflowTaskPollers: 6, MaxConcurrentActivityTaskPollers: 6}) {
		t.Fatalf("6: %+v, want 6 fixed pollers of each kind and nothing else", fixed)
	}
}
