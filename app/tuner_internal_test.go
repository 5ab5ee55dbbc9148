package app

import (
	"runtime"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"

	"loanflow/flowcontrol"
)

// The loan worker's tuner is what LoanSlots says: none (the SDK's) when
// nothing is set, fixed suppliers of the sizes given (the SDK's 1000 for the
// others), or resource-based suppliers.
func TestLoanTuner(t *testing.T) {
	tuner, err := (&App{cfg: Config{}}).loanTuner()
	if err != nil || tuner != nil {
		t.Fatalf("nothing set: tuner %v, error %v; want none", tuner, err)
	}
	tuner, err = (&App{cfg: Config{LoanSlots: LoanSlots{Tuner: TunerFixed, Workflow: 4, LocalActivity: 8}}}).loanTuner()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind string
		s    worker.SlotSupplier
		want int
	}{
		{"workflow", tuner.GetWorkflowTaskSlotSupplier(), 4},
		{"activity", tuner.GetActivityTaskSlotSupplier(), 1000},
		{"local activity", tuner.GetLocalActivitySlotSupplier(), 8},
	} {
		if got := c.s.MaxSlots(); got != c.want {
			t.Errorf("fixed %s slots %d, want %d", c.kind, got, c.want)
		}
	}
	if runtime.GOOS != "linux" {
		t.Skip("the resource tuner reads Linux /proc")
	}
	tuner, err = (&App{cfg: Config{LoanSlots: LoanSlots{Tuner: TunerResource, TargetCPU: 0.5}}}).loanTuner()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []worker.SlotSupplier{tuner.GetWorkflowTaskSlotSupplier(), tuner.GetActivityTaskSlotSupplier(), tuner.GetLocalActivitySlotSupplier()} {
		if _, ok := s.(*worker.ResourceBasedSlotSupplier); !ok {
			t.Errorf("resource tuner: supplier %T, want *worker.ResourceBasedSlotSupplier", s)
		}
	}
}

// A Config built in code (the dev stack, the benchmarks) is checked too,
// naming the variable of the field that is wrong.
func TestWithDefaultsChecksTuning(t *testing.T) {
	bad, over := -1, 1.5
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{StickyCacheSize: &bad}, "LOANFLOW_STICKY_CACHE_SIZE=-1: accepted a whole number from 0"},
		{Config{LoanSlots: LoanSlots{Tuner: "pid"}}, `LOANFLOW_LOAN_TUNER="pid": accepted fixed or resource`},
		{Config{LoanSlots: LoanSlots{LocalActivity: -2}}, "LOANFLOW_LOAN_LOCAL_ACTIVITY_SLOTS=-2: accepted a whole number from 1 to 10000"},
		{Config{LoanSlots: LoanSlots{TargetMem: 0.5}}, "LOANFLOW_LOAN_TARGET_MEM=0.5: a target is accepted only with LOANFLOW_LOAN_TUNER=resource"},
		{Config{PostgresMaxConns: 5000}, "LOANFLOW_PG_MAX_CONNS=5000: accepted a whole number from 1 to 1000"},
		{Config{AgencyPrefetch: &over}, "LOANFLOW_AGENCY_PREFETCH=1.5: accepted a fraction from 0 to 1"},
	} {
		if _, err := tc.cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
}

// The agency workers' prefetch is AgencyPrefetch when set, 0 included, and
// flowcontrol's default otherwise.
func TestAgencyPrefetch(t *testing.T) {
	if got := (Config{}).agencyPrefetch(); got != flowcontrol.DefaultPrefetch {
		t.Errorf("unset: %v, want %v", got, flowcontrol.DefaultPrefetch)
	}
	for _, f := range []float64{0, 0.5, 1} {
		if got := (Config{AgencyPrefetch: &f}).agencyPrefetch(); got != f {
			t.Errorf("%v: %v", f, got)
		}
	}
}
