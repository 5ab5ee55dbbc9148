package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"loanflow/config"
	"loanflow/loan"
	"loanflow/workflows"
)

// find lists a customer's applications. The customer id is not stored in
// Temporal; the runs carry CustomerRef, its keyed hash, which find computes
// under every key of the search ring so runs tagged before a rotation show up.
func (cl cli) find(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("find", stderr)
	customer := fs.String("customer", "", `customer id, "C" followed by 8 digits`)
	limit := new(int)
	intFlag(fs, limit, "limit", 50, "most runs to list, 1 to 1000", "a whole number from 1 to 1000")
	if err := parse(fs, args); err != nil {
		return err
	}
	// The application's own rule for customer ids; the other fields are fillers.
	probe := loan.Application{ApplicationID: "find", CustomerID: *customer, Amount: loan.MinAmount, TermMonths: loan.MinTermMonths}
	if err := probe.Validate(); err != nil {
		return usageError{err.Error()}
	}
	if *limit < 1 || *limit > 1000 {
		return usageError{fmt.Sprintf("invalid --limit %d: accepted 1 to 1000", *limit)}
	}
	c, t, err := cl.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	query := customerQuery(t.Protection.Hasher.CustomerRefs(*customer))
	var rows []string
	var token []byte
	for len(rows) < *limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: t.Namespace, Query: query, PageSize: int32(min(*limit, 100)), NextPageToken: token,
		})
		if err != nil {
			return fmt.Errorf("list runs of customer %s: %w", *customer, err)
		}
		for _, e := range resp.Executions {
			if len(rows) == *limit {
				break
			}
			status := "-"
			if p := e.GetSearchAttributes().GetIndexedFields()[workflows.LoanStatusKey.GetName()]; p != nil {
				_ = converter.GetDefaultDataConverter().FromPayload(p, &status)
			}
			rows = append(rows, fmt.Sprintf("%-40s %-10s %-16s %s\n    %s",
				e.GetExecution().GetWorkflowId(), strings.ToLower(e.GetStatus().String()), status,
				e.GetStartTime().AsTime().Local().Format(time.DateTime),
				t.WorkflowURL(e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())))
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	fmt.Fprintf(stdout, "customer %s: %d run(s)\n", *customer, len(rows))
	for _, r := range rows {
		fmt.Fprintln(stdout, r)
	}
	fmt.Fprintf(stdout, "web ui: %s\n", config.ListURL(t.UIURL, t.Namespace, query))
	return nil
}

// customerQuery is the visibility query matching any of refs.
func customerQuery(refs []string) string {
	quoted := make([]string, len(refs))
	for i, r := range refs {
		quoted[i] = strconv.Quote(r)
	}
	if len(quoted) == 1 {
		return fmt.Sprintf("%s = %s", workflows.CustomerRefKey.GetName(), quoted[0])
	}
	return fmt.Sprintf("%s IN (%s)", workflows.CustomerRefKey.GetName(), strings.Join(quoted, ", "))
}
