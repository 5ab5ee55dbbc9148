package loanclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"loanflow/loan"
	"loanflow/workflows"
)

// Status asks the workflow of an application (running or closed) for its
// current result. id is an application id; a loan workflow id is accepted
// too, so an id copied from the Web UI works.
func Status(ctx context.Context, c client.Client, id string) (workflowID string, res loan.Result, err error) {
	workflowID = workflows.WorkflowID(id)
	res, err = status(ctx, c, workflowID)
	var nf *serviceerror.NotFound
	if appID, ok := workflows.ApplicationID(id); ok && errors.As(err, &nf) {
		workflowID = workflows.WorkflowID(appID)
		res, err = status(ctx, c, workflowID)
	}
	return workflowID, res, err
}

func status(ctx context.Context, c client.Client, workflowID string) (loan.Result, error) {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, workflowID, "", workflows.StatusQuery)
	if err != nil {
		return loan.Result{}, fmt.Errorf("query status of %s: %w", workflowID, err)
	}
	var res loan.Result
	if err := v.Get(&res); err != nil {
		return loan.Result{}, fmt.Errorf("decode status of %s: %w", workflowID, err)
	}
	return res, nil
}

// Run is one application run found by Find.
type Run struct {
	WorkflowID, RunID string
	Status            string // the execution's status, e.g. "completed"
	LoanStatus        string // the LoanStatus search attribute, "-" when unset
	Start             time.Time
}

// Find lists up to limit runs whose CustomerRef is any of refs (one per key
// of the search ring), newest first as the server orders them.
func Find(ctx context.Context, c client.Client, namespace string, refs []string, limit int) ([]Run, error) {
	query := CustomerQuery(refs)
	var runs []Run
	var token []byte
	for len(runs) < limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: query, PageSize: int32(min(limit, 100)), NextPageToken: token,
		})
		if err != nil {
			return runs, err
		}
		for _, e := range resp.Executions {
			if len(runs) == limit {
				break
			}
			runs = append(runs, Run{
				WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
				Status:     strings.ToLower(e.GetStatus().String()),
				LoanStatus: keyword(e.GetSearchAttributes().GetIndexedFields()[workflows.LoanStatusKey.GetName()]),
				Start:      e.GetStartTime().AsTime(),
			})
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	return runs, nil
}

func keyword(p *commonpb.Payload) string {
	s := "-"
	if p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &s)
	}
	return s
}

// CustomerQuery is the visibility query matching any of refs.
func CustomerQuery(refs []string) string {
	quoted := make([]string, len(refs))
	for i, r := range refs {
		quoted[i] = strconv.Quote(r)
	}
	if len(quoted) == 1 {
		return fmt.Sprintf("%s = %s", workflows.CustomerRefKey.GetName(), quoted[0])
	}
	return fmt.Sprintf("%s IN (%s)", workflows.CustomerRefKey.GetName(), strings.Join(quoted, ", "))
}
