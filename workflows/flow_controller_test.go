package workflows

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
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
