package workflows

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/loan"
)

// goldenHistories are workflow histories recorded on a real server by
// earlier builds (see README "Workflow evolution"): one directory per
// release, never edited. Today's code must replay every one of them, or a
// deployment would break the workflows those builds left running.
func goldenHistories(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden histories under testdata/histories")
	}
	return files
}

// supersededHistories are golden histories that today's code is not meant
// to replay, each with the reason and what replaces the replay. Keep this
// list short: every entry is a running workflow a deploy does not carry over.
var supersededHistories = map[string]string{
	// The controller moved to its own task queue and publishes leases; the
	// whole loop changed. A run of these builds stops ticking when new
	// workers deploy (none of them serves its old queue or code), the
	// watchdog schedule terminates it after StalePeriods without a
	// heartbeat, and the new run rebuilds its board from Redis and
	// breaker_events (service: TestControllerTerminatedIsBackWithItsState,
	// TestFreshControllerRebuildsBoardFromPublishedState).
	"6d8bb97/controller.json": "controller before the watchdog: replaced, not replayed",
	"fc325ff/controller.json": "controller before the watchdog: replaced, not replayed",
}

func TestGoldenHistoriesReplay(t *testing.T) {
	for _, f := range goldenHistories(t) {
		name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			if why, ok := supersededHistories[name]; ok {
				t.Skip(why)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(LoanApplicationWorkflow)
			r.RegisterWorkflow(FlowControllerWorkflow)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}

// changedLoanWorkflow is LoanApplicationWorkflow with one extra activity
// call up front and no version guard: the kind of change the golden
// histories exist to catch.
func changedLoanWorkflow(ctx workflow.Context, in Input) (loan.Result, error) {
	var la *activities.LoanActivities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Second})
	_ = workflow.ExecuteActivity(actx, la.SaveApplication, activities.SaveApplicationInput{Application: in.Application}).Get(ctx, nil)
	return LoanApplicationWorkflow(ctx, in)
}

// The replay test is not vacuous: an unguarded change to the command
// sequence fails it.
func TestUnguardedChangeFailsReplay(t *testing.T) {
	for _, f := range goldenHistories(t) {
		if !strings.Contains(filepath.Base(f), "loan_") {
			continue
		}
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(changedLoanWorkflow, workflow.RegisterOptions{Name: "LoanApplicationWorkflow"})
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err == nil {
			t.Errorf("%s replayed against a changed workflow without a version guard", f)
		}
	}
}
