package workflows

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/flowcontrol"
)

// The controller resumes from the persisted limits, cuts an overloaded
// agency's limit, publishes limits and breaker leases every period, and
// continues as new carrying its state.
func TestFlowControllerCutsOverloadedAgencyAndContinuesAsNew(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var ca *activities.ControllerActivities
	env.RegisterActivity(ca)

	var mu sync.Mutex
	var writes []map[string]int
	env.OnActivity(ca.ReadLimits, mock.Anything, mock.Anything).Return(map[string]int{"kcb": 40}, nil)
	env.OnActivity(ca.Observe, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ObserveInput) (map[string]flowcontrol.Observation, error) {
		// KCB answers a third of its calls with 503: overloaded.
		return map[string]flowcontrol.Observation{"kcb": {
			Calls: 300, OK: 200, Overload: 100, LatencyP50: 40 * time.Millisecond, LatencyP90: 80 * time.Millisecond,
			LatencyMean: 45 * time.Millisecond, InFlight: 40, Period: time.Second, Now: time.Unix(1_700_000_000, 0),
		}}, nil
	})
	env.OnActivity(ca.ReadBoard, mock.Anything, mock.Anything).Return(activities.PublishedBoard{}, nil)
	env.OnActivity(ca.RecordBreakerEvents, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ca.Publish, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PublishInput) error {
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, maps.Clone(in.Limits))
		if len(in.Statuses) == 0 || in.Lease <= 0 {
			t.Errorf("period published without breaker leases: %+v", in)
		}
		return nil
	})

	cfg := flowcontrol.DefaultConfig("kcb")
	env.ExecuteWorkflow(FlowControllerWorkflow, FlowControllerInput{Config: cfg, PeriodsPerRun: 5})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new after 5 periods, got %v", err)
	}
	if len(writes) == 0 {
		t.Fatal("no limits written")
	}
	if got := writes[len(writes)-1]["kcb"]; got >= 40 || got < cfg.Agencies["kcb"].MinLimit {
		t.Fatalf("overloaded kcb ended at limit %d, want below the resumed 40 and within bounds", got)
	}
	if len(writes) != 5 {
		t.Fatalf("%d publications in 5 periods, want one a period", len(writes))
	}
}

func TestFlowControllerRejectsBadConfig(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	cfg := flowcontrol.DefaultConfig("kcb")
	ac := cfg.Agencies["kcb"]
	ac.MinLimit, ac.MaxLimit = 10, 5
	cfg.Agencies["kcb"] = ac
	env.ExecuteWorkflow(FlowControllerWorkflow, FlowControllerInput{Config: cfg})
	if env.GetWorkflowError() == nil {
		t.Fatal("min above max accepted")
	}
}

// An agency with a period of its own (scraping, 3 s) is stepped a third as
// often as one on the controller's 1 s period, each of its observations
// covering its own 3 s, and its cursor is carried across continue-as-new.
// Redis's clock is the test's: Observe's due rule (activities.DueSpans) is
// applied to the workflow's time.
func TestFlowControllerStepsAgencyAtItsOwnPeriod(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(time.Unix(1_700_000_000, 500_000_000))
	var ca *activities.ControllerActivities
	env.RegisterActivity(ca)

	var mu sync.Mutex
	observed := map[string][]time.Duration{}
	env.OnActivity(ca.ReadLimits, mock.Anything, mock.Anything).Return(map[string]int{}, nil)
	env.OnActivity(ca.ReadBoard, mock.Anything, mock.Anything).Return(activities.PublishedBoard{}, nil)
	env.OnActivity(ca.RecordBreakerEvents, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ca.Publish, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ca.Observe, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ObserveInput) (map[string]flowcontrol.Observation, error) {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]flowcontrol.Observation{}
		for a, sp := range activities.DueSpans(env.Now(), in) {
			d := sp.To.Sub(sp.From)
			n := int64(20 * d / time.Second)
			out[a] = flowcontrol.Observation{Calls: n, OK: n, LatencyMean: 40 * time.Millisecond, LatencyP50: 40 * time.Millisecond,
				LatencyP90: 60 * time.Millisecond, InFlight: 1, Period: d, Now: sp.To}
			observed[a] = append(observed[a], d)
		}
		return out, nil
	})

	cfg := flowcontrol.DefaultConfig("kcb", "scraping")
	sc := cfg.Agencies["scraping"]
	sc.Period = 3 * time.Second
	cfg.Agencies["scraping"] = sc
	env.ExecuteWorkflow(FlowControllerWorkflow, FlowControllerInput{Config: cfg, PeriodsPerRun: 12})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new after 12 periods, got %v", err)
	}
	if got := observed["kcb"]; len(got) != 12 || slices.ContainsFunc(got, func(d time.Duration) bool { return d != time.Second }) {
		t.Fatalf("kcb observed over %v, want 12 periods of 1s", got)
	}
	if got := observed["scraping"]; len(got) != 4 || slices.ContainsFunc(got, func(d time.Duration) bool { return d != 3*time.Second }) {
		t.Fatalf("scraping observed over %v, want 4 periods of 3s (a third as often)", got)
	}
	var next FlowControllerInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if k, sg := next.State.Agencies["kcb"].Periods, next.State.Agencies["scraping"].Periods; k != 12 || sg != 4 {
		t.Fatalf("stepped kcb %d and scraping %d times, want 12 and 4", k, sg)
	}
	if next.Cursors["scraping"].IsZero() || next.Cursors["kcb"].Sub(next.Cursors["scraping"]) >= 3*time.Second {
		t.Fatalf("cursors carried %v, want scraping's within its period of kcb's", next.Cursors)
	}
}

// From its second tick on, the controller ticks just after a statistics
// bucket ends (tickAfterBucket past a whole second), wherever its start
// fell: each tick reads the freshest complete bucket.
func TestFlowControllerTicksAfterBuckets(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(time.Date(2026, 12, 1, 10, 0, 0, 630_000_000, time.UTC))
	var ca *activities.ControllerActivities
	env.RegisterActivity(ca)
	var mu sync.Mutex
	var ticks []time.Time
	env.OnActivity(ca.ReadLimits, mock.Anything, mock.Anything).Return(map[string]int{}, nil)
	env.OnActivity(ca.ReadBoard, mock.Anything, mock.Anything).Return(activities.PublishedBoard{}, nil)
	env.OnActivity(ca.Publish, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ca.Observe, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ObserveInput) (map[string]flowcontrol.Observation, error) {
		mu.Lock()
		defer mu.Unlock()
		ticks = append(ticks, env.Now())
		return map[string]flowcontrol.Observation{}, nil
	})
	env.ExecuteWorkflow(FlowControllerWorkflow, FlowControllerInput{Config: flowcontrol.DefaultConfig("kcb"), PeriodsPerRun: 6})
	if len(ticks) != 6 {
		t.Fatalf("%d ticks, want 6", len(ticks))
	}
	for i, at := range ticks[1:] {
		if off := at.Sub(at.Truncate(time.Second)); off != tickAfterBucket {
			t.Errorf("tick %d at %s: %s past the second, want %s", i+2, at.Format("15:04:05.000"), off, tickAfterBucket)
		}
		if gap := at.Sub(ticks[i]); gap < 500*time.Millisecond || gap > 1500*time.Millisecond {
			t.Errorf("tick %d %s after the one before, want about a period", i+2, gap)
		}
	}
}

// A run recorded before any of the control law's changes (lawChanges: no
// background-law marker in its history, no probe-bound-law marker, and so
// on to the timeouts-checked-law marker) keeps the law before that change
// to its end, so that it replays its decisions; a new run takes the
// current one, and reads the agency's levels. Each change has a case: the
// markers before it in its history, its own not.
func TestFlowControllerKeepsTheLawItWasRecordedUnder(t *testing.T) {
	type recorded struct {
		name    string
		markers int // the first markers of lawChanges in the history
		law     int
	}
	// The laws pinned, in the order the changes were made: written out
	// here, not read from lawChanges, so that a change filed under the
	// wrong law or out of order fails.
	pinned := []int{flowcontrol.LawBeforeBackground, flowcontrol.LawBeforeProbeBound, flowcontrol.LawBeforeWarmCheck,
		flowcontrol.LawBeforeFailCheck, flowcontrol.LawBeforeFastBaseline, flowcontrol.LawBeforeLoneWarmRefusal,
		flowcontrol.LawBeforeServedFloor, flowcontrol.LawBeforeDrainedCheck, flowcontrol.LawBeforeFailureCutShown,
		flowcontrol.LawBeforeBaselineNoise, flowcontrol.LawBeforeSettledFailures, flowcontrol.LawBeforeLostAt,
		flowcontrol.LawBeforeLostAtCleared, flowcontrol.LawBeforeCeilingStop, flowcontrol.LawBeforeHeldRecovery,
		flowcontrol.LawBeforeCheckWaitBound, flowcontrol.LawBeforeTimeoutsChecked, flowcontrol.LawBeforeCheckEvidence,
		flowcontrol.LawBeforeFloorTest, flowcontrol.LawBeforeRefusedLatencyCut, flowcontrol.LawBeforeBackAtSpeedRecovery,
		flowcontrol.LawBeforeSlowStartCapacity, flowcontrol.LawBeforeFloorTestRead, flowcontrol.LawBeforeProbeRefused,
		flowcontrol.LawBeforeRefusedHeld, flowcontrol.LawBeforeStepRefused, flowcontrol.LawBeforeProbeTaken,
		flowcontrol.LawBeforeWellReadLevel, flowcontrol.LawBeforeBackgroundTail, flowcontrol.LawBeforeFreshEvidence}
	if len(pinned) != len(lawChanges) {
		t.Fatalf("%d law changes marked, %d laws pinned here: give the new change its case", len(lawChanges), len(pinned))
	}
	cases := make([]recorded, 0, len(lawChanges)+1)
	for i, l := range lawChanges {
		cases = append(cases, recorded{"recorded before " + l.marker, i, pinned[i]})
	}
	cases = append(cases, recorded{"new run", len(lawChanges), 0})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			var ca *activities.ControllerActivities
			env.RegisterActivity(ca)
			for i, l := range lawChanges {
				v := workflow.DefaultVersion
				if i < tc.markers {
					v = 1
				}
				env.OnGetVersion(l.marker, workflow.DefaultVersion, 1).Return(v)
			}
			env.OnActivity(ca.ReadLimits, mock.Anything, mock.Anything).Return(map[string]int{"kcb": 20}, nil)
			env.OnActivity(ca.ReadBoard, mock.Anything, mock.Anything).Return(activities.PublishedBoard{}, nil)
			env.OnActivity(ca.RecordBreakerEvents, mock.Anything, mock.Anything).Return(nil)
			env.OnActivity(ca.Publish, mock.Anything, mock.Anything).Return(nil)
			n := 0
			env.OnActivity(ca.Observe, mock.Anything, mock.Anything).Return(func(context.Context, activities.ObserveInput) (map[string]flowcontrol.Observation, error) {
				n++
				return map[string]flowcontrol.Observation{"kcb": {Calls: 200, OK: 198, Overload: 2, LatencyMean: 40 * time.Millisecond,
					LatencyP50: 40 * time.Millisecond, LatencyP90: 60 * time.Millisecond, InFlight: 20, Period: time.Second,
					Now: time.Unix(1_700_000_000+int64(n), 0)}}, nil
			})
			// The state a run continued as new under the old law carries.
			st := flowcontrol.Resume(map[string]int{"kcb": 20}, flowcontrol.DefaultConfig("kcb"))
			st.Law = flowcontrol.LawBeforeBackground
			env.ExecuteWorkflow(FlowControllerWorkflow, FlowControllerInput{Config: flowcontrol.DefaultConfig("kcb"), State: &st, PeriodsPerRun: 4})
			var can *workflow.ContinueAsNewError
			if err := env.GetWorkflowError(); !errors.As(err, &can) {
				t.Fatalf("want continue-as-new after 4 periods, got %v", err)
			}
			var next FlowControllerInput
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatal(err)
			}
			if next.State.Law != tc.law {
				t.Errorf("law %d carried, want %d", next.State.Law, tc.law)
			}
			if levels := next.State.Agencies["kcb"].Levels; (len(levels) > 0) != (tc.law != flowcontrol.LawBeforeBackground) {
				t.Errorf("levels %+v under law %d; want them read under every law since the background law", levels, tc.law)
			}
		})
	}
}
