package local_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"

	"loanflow/app"
	"loanflow/config"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/workflows"
)

// startDev brings up the embedded Temporal server, the simulated agencies
// over HTTP, a fresh Postgres database and a Redis prefix, and the workers.
func startDev(t *testing.T) *local.Observer { return startDevWith(t, nil) }

func startDevWith(t *testing.T, adjust func(*local.Config), got ...func(*local.Stack)) *local.Observer {
	t.Helper()
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, prefix := testenv.Redis(t)
	cfg := local.Config{
		Config: app.Config{
			Temporal:    config.Temporal{Namespace: "default", Protection: testProtection(t)},
			DatabaseURL: testenv.Postgres(t),
			RedisURL:    testenv.RedisURL(),
			RedisPrefix: prefix,
		},
		CodecToken: testCodecToken,
		UIPort:     -1,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	st, err := local.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	for _, g := range got {
		g(st)
	}
	env, err := st.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestEndToEndApplicationsMatchPostgres(t *testing.T) {
	env := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := loadgen.Run(ctx, env.Client, loadgen.Options{Count: 20, Rate: 50, RunID: "e2e-" + testenv.ID(), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := sum.FirstError(); err != nil {
		t.Fatalf("an application failed: %v", err)
	}
	if len(sum.Outcomes) != 20 {
		t.Fatalf("%d outcomes, want 20", len(sum.Outcomes))
	}
	if sum.ByStatus[string(loan.StatusApproved)] == 0 || sum.ByStatus[string(loan.StatusRejected)] == 0 {
		t.Logf("outcomes: %v (a batch of 20 usually holds both approvals and rejections)", sum.ByStatus)
	}
	for _, o := range sum.Outcomes {
		res := o.Result
		rec, err := env.Store.GetApplication(ctx, res.ApplicationID)
		if err != nil {
			t.Fatalf("%s: %v", res.ApplicationID, err)
		}
		if rec.Status != res.Status || rec.CreditPath != res.CreditPath || rec.WorkflowID != o.WorkflowID {
			t.Errorf("%s: postgres has %s/%s/%s, workflow returned %s/%s/%s", res.ApplicationID,
				rec.Status, rec.CreditPath, rec.WorkflowID, res.Status, res.CreditPath, o.WorkflowID)
			continue
		}
		if res.Status == loan.StatusFailed {
			t.Errorf("%s failed: %s", res.ApplicationID, res.Error)
			continue
		}
		if rec.Decision == nil || *rec.Decision != *res.Decision {
			t.Errorf("%s: postgres decision %+v, workflow decision %+v", res.ApplicationID, rec.Decision, res.Decision)
		}
		if len(rec.Reports) != 3 {
			t.Errorf("%s: %d credit reports stored, want 3", res.ApplicationID, len(rec.Reports))
		}
	}
	n, err := env.Store.CountApplications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 20 {
		t.Fatalf("%d applications in postgres, want 20", n)
	}
}

// A duplicate start of the same application joins the first run: one
// workflow, one row.
func TestDuplicateStartIsOneApplication(t *testing.T) {
	env := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := loan.Application{ApplicationID: "dup-" + testenv.ID(), CustomerID: "C00000077", Amount: 10_000_000, TermMonths: 24}
	r1, err := loadgen.Start(ctx, env.Client, app, workflows.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := loadgen.Start(ctx, env.Client, app, workflows.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r1.GetRunID() != r2.GetRunID() {
		t.Fatalf("duplicate start made a second run: %s vs %s", r1.GetRunID(), r2.GetRunID())
	}
	var res loan.Result
	if err := r1.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if n, _ := env.Store.CountApplications(ctx); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

// Bad input started directly fails at once, non-retryable, and writes nothing.
func TestInvalidInputWritesNothing(t *testing.T) {
	env := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := loan.Application{ApplicationID: "bad-" + testenv.ID(), CustomerID: "C00000001", Amount: 0, TermMonths: 24}
	run, err := loadgen.Start(ctx, env.Client, app, workflows.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = run.Get(ctx, nil)
	if err == nil {
		t.Fatal("workflow with amount 0 succeeded")
	}
	if n, _ := env.Store.CountApplications(ctx); n != 0 {
		t.Fatalf("%d rows written for invalid input, want 0", n)
	}
}

// Histories recorded on the real server replay without non-determinism
// against the current workflow code: the loan workflow and the controller.
func TestRecordedHistoriesReplay(t *testing.T) {
	env := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := loadgen.Run(ctx, env.Client, loadgen.Options{Count: 5, Rate: 50, RunID: "replay-" + testenv.ID()})
	if err != nil {
		t.Fatal(err)
	}
	// Histories hold encrypted payloads: the replayer decodes with the codec.
	cdc := env.Config.Temporal.Protection.Codec
	replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: cdc.DataConverter(), FailureConverter: cdc.FailureConverter(),
	})
	if err != nil {
		t.Fatal(err)
	}
	replayer.RegisterWorkflow(workflows.LoanApplicationWorkflow)
	replayer.RegisterWorkflow(workflows.FlowControllerWorkflow)
	ids := []string{workflows.FlowControllerID}
	for _, o := range sum.Outcomes {
		ids = append(ids, o.WorkflowID)
	}
	for _, id := range ids {
		iter := env.Client.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		h := &historypb.History{}
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, ev)
		}
		if len(h.Events) < 5 {
			t.Fatalf("%s: only %d events", id, len(h.Events))
		}
		if err := replayer.ReplayWorkflowHistory(nil, h); err != nil {
			t.Fatalf("replay %s (%d events): %v", id, len(h.Events), err)
		}
	}
}
