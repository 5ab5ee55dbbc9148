package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"

	"loanflow/agency"
	"loanflow/agencysim"
	"loanflow/internal/testenv"
	"loanflow/loadgen"
	"loanflow/loan"
	"loanflow/service"
	"loanflow/underwriting"
	"loanflow/workflows"
)

// recordDirEnv names the directory TestRecordHistories writes to; the test
// is skipped without it. See README "Workflow evolution".
const recordDirEnv = "LOANFLOW_RECORD_HISTORIES"

// TestRecordHistories runs each workflow path once on the embedded stack and
// writes its history as JSON, for the replay tests in workflows/. Run it when
// releasing a build whose workflows changed:
//
//	LOANFLOW_RECORD_HISTORIES=$PWD/workflows/testdata/histories/<label> go test ./service -run TestRecordHistories
func TestRecordHistories(t *testing.T) {
	dir := os.Getenv(recordDirEnv)
	if dir == "" {
		t.Skip(recordDirEnv + " not set")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := testenv.ID()
	approved, rejected := customersByOutcome(t)

	run := func(name string, app loan.Application) {
		t.Helper()
		r, err := loadgen.Start(ctx, env.Client, app, workflows.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var res loan.Result
		_ = r.Get(ctx, &res)
		t.Logf("%s: %s %s", name, res.Status, res.Reason())
		writeHistory(ctx, t, env, filepath.Join(dir, "loan_"+name+".json"), r.GetID(), r.GetRunID())
	}
	run("disbursed", loan.Application{ApplicationID: "h-ok-" + id, CustomerID: approved, Amount: 5_000_000, TermMonths: 24})
	run("rejected", loan.Application{ApplicationID: "h-rej-" + id, CustomerID: rejected, Amount: 5_000_000, TermMonths: 24})

	// Cancelled by signal before the credit check: the signal is delivered
	// with the start, so the path is the same on every run.
	app := loan.Application{ApplicationID: "h-cancel-" + id, CustomerID: approved, Amount: 5_000_000, TermMonths: 24}
	r, err := env.Client.SignalWithStartWorkflow(ctx, workflows.WorkflowID(app.ApplicationID), workflows.CancelSignal,
		workflows.CancelRequest{Reason: "customer withdrew"},
		client.StartWorkflowOptions{TaskQueue: workflows.TaskQueue},
		workflows.LoanApplicationWorkflow, workflows.Input{Application: app})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Get(ctx, nil)
	writeHistory(ctx, t, env, filepath.Join(dir, "loan_cancel_signal.json"), r.GetID(), r.GetRunID())

	// The controller never ends; a few seconds of its history hold several
	// ticks.
	time.Sleep(3 * time.Second)
	writeHistory(ctx, t, env, filepath.Join(dir, "controller.json"), workflows.FlowControllerID, "")
}

// customersByOutcome finds, from the simulated agencies' deterministic data,
// a customer approved in full for 5,000,000 won over 24 months and one
// rejected.
func customersByOutcome(t *testing.T) (approved, rejected string) {
	t.Helper()
	for i := 1; i < 10_000 && (approved == "" || rejected == ""); i++ {
		c := fmt.Sprintf("C%08d", i)
		inc, debt, svc := agencysim.Financials(agency.MyData, c)
		d, err := underwriting.Decide(loan.Application{ApplicationID: "x", CustomerID: c, Amount: 5_000_000, TermMonths: 24},
			[]loan.CreditScore{{Agency: "kcb", Score: agencysim.Score(agency.KCB, c)}, {Agency: "nice", Score: agencysim.Score(agency.NICE, c)}},
			loan.Financials{AnnualIncome: inc, TotalDebt: debt, AnnualDebtService: svc}, underwriting.DefaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Approved && d.Reason == loan.ReasonApproved && approved == "":
			approved = c
		case !d.Approved && rejected == "":
			rejected = c
		}
	}
	if approved == "" || rejected == "" {
		t.Fatal("no customer found for each outcome")
	}
	return approved, rejected
}

func writeHistory(ctx context.Context, t *testing.T, env *service.Env, path, workflowID, runID string) {
	t.Helper()
	iter := env.Client.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d events", path, len(h.Events))
}
