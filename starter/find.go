package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"loanflow/config"
	"loanflow/loan"
	"loanflow/workflows/loanclient"
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
	refs := t.Protection.Hasher.CustomerRefs(*customer)
	runs, err := loanclient.Find(ctx, c, t.Namespace, refs, *limit)
	if err != nil {
		return fmt.Errorf("list runs of customer %s: %w", *customer, err)
	}
	rows := make([]string, len(runs))
	for i, r := range runs {
		rows[i] = fmt.Sprintf("%-40s %-10s %-16s %s\n    %s", r.WorkflowID, r.Status, r.LoanStatus,
			r.Start.Local().Format(time.DateTime), t.WorkflowURL(r.WorkflowID, r.RunID))
	}
	fmt.Fprintf(stdout, "customer %s: %d run(s)\n", *customer, len(rows))
	for _, r := range rows {
		fmt.Fprintln(stdout, r)
	}
	fmt.Fprintf(stdout, "web ui: %s\n", config.ListURL(t.UIURL, t.Namespace, loanclient.CustomerQuery(refs)))
	return nil
}
