// Package loanclient is the client side of LoanApplicationWorkflow: start an
// application (or attach to the one already started for the same id,
// refusing an id reused with different content), read its status, and find
// a customer's applications by their CustomerRef. The starter, the load
// generator and the tests all go through it.
package loanclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"loanflow/loan"
	"loanflow/workflows"
)

// ErrDifferentContent means the application id is already used by an
// application with a different customer, amount or term.
var ErrDifferentContent = errors.New("application id already used with different content")

// queryTimeout bounds the wait for a worker to answer the existing
// workflow's application query.
const queryTimeout = 10 * time.Second

// Start starts app's workflow, or, when one was already started for the same
// application id (running or closed), returns that run if it holds the same
// application. Existing is true in that case. An id already used with a
// different customer, amount or term returns an error wrapping
// ErrDifferentContent that names each differing field.
func Start(ctx context.Context, c client.Client, app loan.Application, o workflows.Options) (run client.WorkflowRun, existing bool, err error) {
	id := workflows.WorkflowID(app.ApplicationID)
	run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: workflows.TaskQueue,
		// A finished application is never run twice, and a running one is
		// not joined blindly: its content is compared first.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.LoanApplicationWorkflow, workflows.Input{Application: app, Options: o})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err == nil || !errors.As(err, &started) {
		return run, false, err
	}
	stored, err := Application(ctx, c, id)
	if err != nil {
		return nil, true, fmt.Errorf("application %s already exists; reading its content to compare: %w", app.ApplicationID, err)
	}
	if diffs := Diff(stored, app); len(diffs) > 0 {
		return nil, true, fmt.Errorf("application %s: %w: %s", app.ApplicationID, ErrDifferentContent, strings.Join(diffs, ", "))
	}
	return c.GetWorkflow(ctx, id, ""), true, nil
}

// Application asks a loan workflow (running or closed) for the application
// it was started with.
func Application(ctx context.Context, c client.Client, workflowID string) (loan.Application, error) {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, workflowID, "", workflows.ApplicationQuery)
	if err != nil {
		return loan.Application{}, fmt.Errorf("query %s of %s: %w", workflows.ApplicationQuery, workflowID, err)
	}
	var app loan.Application
	if err := v.Get(&app); err != nil {
		return loan.Application{}, fmt.Errorf("decode %s of %s: %w", workflows.ApplicationQuery, workflowID, err)
	}
	return app, nil
}

// Diff lists the fields in which given differs from stored, each as
// "field existing X, given Y".
func Diff(stored, given loan.Application) []string { return loan.Diff(stored, given, "existing") }
