package devstack_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"loanflow/dev/devstack"
	"loanflow/internal/testenv"
)

func greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, greetActivity, name).Get(ctx, &out)
	return out, err
}

func greetActivity(_ context.Context, name string) (string, error) { return "hello " + name, nil }

// startOnPostgres starts the embedded server on the given databases and
// runs a worker for greet on it.
func startOnPostgres(t *testing.T, pg devstack.Postgres) (*devstack.Stack, client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{
		UIPort:           -1,
		Postgres:         &pg,
		SearchAttributes: map[string]enumspb.IndexedValueType{"CustomerId": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: st.Address, Namespace: st.Namespace})
	if err != nil {
		st.Stop()
		t.Fatal(err)
	}
	return st, c
}

// The embedded server runs on Postgres: it creates its two databases and
// their schema, runs a workflow, lists it through the Postgres visibility
// store, and a second start on the same databases finds the run again.
func TestStartOnPostgresCreatesDatabasesAndKeepsHistory(t *testing.T) {
	testenv.Short(t)
	admin := testenv.Postgres(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimPrefix(u.Path, "/")
	pg := devstack.Postgres{URL: admin, Database: base + "_temporal", VisibilityDatabase: base + "_visibility", HistoryShards: 2, MaxConns: 8}
	t.Cleanup(func() { dropDatabases(t, admin, pg.Database, pg.VisibilityDatabase) })

	st, c := startOnPostgres(t, pg)
	w := worker.New(c, "greet", worker.Options{})
	w.RegisterWorkflow(greet)
	w.RegisterActivity(greetActivity)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "greet-1", TaskQueue: "greet"}, greet, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if out != "hello postgres" {
		t.Fatalf("workflow returned %q, want %q", out, "hello postgres")
	}
	waitListed(ctx, t, c, run.GetRunID())
	w.Stop()
	c.Close()
	st.Stop()

	var runs int
	conn, err := pgx.Connect(ctx, dbURL(t, admin, pg.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM executions WHERE workflow_id = 'greet-1'").Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Fatalf("%d rows of greet-1 in %s.executions, want 1", runs, pg.Database)
	}

	// A second start finds the databases set up and the run in them.
	st, c = startOnPostgres(t, pg)
	defer st.Stop()
	defer c.Close()
	desc, err := c.DescribeWorkflowExecution(ctx, "greet-1", run.GetRunID())
	if err != nil {
		t.Fatalf("describe greet-1 after restart: %v", err)
	}
	if s := desc.GetWorkflowExecutionInfo().GetStatus(); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("greet-1 after restart: status %s, want completed", s)
	}
}

// waitListed polls visibility until the run is listed as completed.
func waitListed(ctx context.Context, t *testing.T, c client.Client, runID string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = 'greet'"})
		if err == nil {
			for _, e := range resp.GetExecutions() {
				if e.GetExecution().GetRunId() == runID && e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not listed as completed by the postgres visibility store within 20s (last error: %v)", runID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dbURL(t *testing.T, admin, name string) string {
	t.Helper()
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func dropDatabases(t *testing.T, admin string, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Logf("drop databases %v: %v", names, err)
		return
	}
	defer func() { _ = conn.Close(context.Background()) }()
	for _, n := range names {
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{n}.Sanitize())); err != nil {
			t.Logf("drop database %s: %v", n, err)
		}
	}
}
