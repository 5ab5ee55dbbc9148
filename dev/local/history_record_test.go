package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/dev/agencysim"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/internal/testenv"
	"loanflow/loan"
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

	// Cancelled through Temporal during the credit check (a slow bureau
	// holds the application there).
	setFaults := func(n agency.Name, f agencysim.Faults) {
		t.Helper()
		if err := env.Sim.SetFaults(n, f); err != nil {
			t.Fatal(err)
		}
	}
	setFaults(agency.KCB, agencysim.Faults{AddedLatency: 2 * time.Second})
	app = loan.Application{ApplicationID: "h-tcancel-" + id, CustomerID: approved, Amount: 5_000_000, TermMonths: 24}
	tr, err := loadgen.Start(ctx, env.Client, app, workflows.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, env.Client, tr.GetID(), loan.StatusCheckingCredit)
	if err := env.Client.CancelWorkflow(ctx, tr.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	_ = tr.Get(ctx, nil)
	writeHistory(ctx, t, env, filepath.Join(dir, "loan_temporal_cancel.json"), tr.GetID(), tr.GetRunID())
	setFaults(agency.KCB, agencysim.Faults{})

	// An operator forces MyData's breaker open: the application takes app
	// scraping.
	override := func(name, state string) {
		t.Helper()
		o := workflows.BreakerOverride{Agency: name, State: state, Reason: "recording histories"}
		if err := env.Client.SignalWorkflow(ctx, workflows.FlowControllerID, "", workflows.BreakerOverrideSignal, o); err != nil {
			t.Fatal(err)
		}
	}
	waitPublished := func(name string, want breaker.State) {
		t.Helper()
		for {
			st, err := env.Breakers.Read(ctx, []string{name})
			if err != nil {
				t.Fatal(err)
			}
			if st[name].State == want {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("breaker %s never %s", name, want)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	override(string(agency.MyData), string(breaker.Open))
	waitPublished(string(agency.MyData), breaker.Open)
	run("scraping", loan.Application{ApplicationID: "h-scrape-" + id, CustomerID: approved, Amount: 5_000_000, TermMonths: 24})
	override(string(agency.MyData), "auto")

	// KCB goes down after the entry check and its breaker opens: the
	// application waits for the bureau, polling the breaker, and is decided
	// once KCB is back.
	setFaults(agency.KCB, agencysim.Faults{Down: true})
	app = loan.Application{ApplicationID: "h-wait-" + id, CustomerID: approved, Amount: 5_000_000, TermMonths: 24}
	wr, err := loadgen.Start(ctx, env.Client, app, workflows.Options{AgencyScheduleToClose: 2 * time.Second, BureauWait: time.Minute, BreakerPoll: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, env.Client, wr.GetID(), loan.StatusCheckingCredit)
	override(string(agency.KCB), string(breaker.Open))
	time.Sleep(5 * time.Second)
	setFaults(agency.KCB, agencysim.Faults{})
	override(string(agency.KCB), string(breaker.Closed))
	var wres loan.Result
	_ = wr.Get(ctx, &wres)
	t.Logf("bureau wait: %s %s", wres.Status, wres.Reason())
	writeHistory(ctx, t, env, filepath.Join(dir, "loan_bureau_wait.json"), wr.GetID(), wr.GetRunID())
	override(string(agency.KCB), "auto")

	// The controller never ends; its history now holds ticks and the
	// operator's overrides.
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

func writeHistory(ctx context.Context, t *testing.T, env *local.Observer, path, workflowID, runID string) {
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
	// Golden histories are replayed without keys: the recorder stores them
	// decoded. They hold only the simulated agencies' made-up customers.
	cdc := env.Config.Temporal.Protection.Codec
	if err := proxy.VisitPayloads(ctx, h, proxy.VisitPayloadsOptions{
		Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return cdc.Decode(p)
		},
	}); err != nil {
		t.Fatalf("decode history of %s: %v", workflowID, err)
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
