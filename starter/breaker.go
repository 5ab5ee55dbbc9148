package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/config"
	"loanflow/flowcontrol"
	"loanflow/loan"
	"loanflow/workflows"
)

const breakerUsage = `usage:
  starter breaker status
  starter breaker open|close|half_open|auto AGENCY --reason "..."`

// breakerCmd shows the breakers or sends an operator override to the flow
// controller, which applies it, publishes it and records it in breaker_events.
func (cl cli) breakerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"breaker: no subcommand\n" + breakerUsage}
	}
	switch args[0] {
	case "status":
		return cl.breakerStatus(ctx, stdout)
	case "open", "close", "half_open", "auto":
		return cl.breakerOverride(ctx, args[0], args[1:], stdout, stderr)
	default:
		return usageError{fmt.Sprintf("breaker: unknown subcommand %q: accepted status, open, close, half_open or auto\n%s", args[0], breakerUsage)}
	}
}

// maxReason bounds an operator's reason, in bytes.
const maxReason = 500

func (cl cli) breakerOverride(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	o, err := parseOverride(verb, args, stderr)
	if err != nil {
		return err
	}
	name, state := o.Agency, o.State
	c, _, err := cl.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SignalWorkflow(ctx, workflows.FlowControllerID, "", workflows.BreakerOverrideSignal, o); err != nil {
		return fmt.Errorf("send the override to the flow controller (is a worker running?): %w", err)
	}
	if verb == "auto" {
		fmt.Fprintf(stdout, "%s breaker handed back to the controller (applied within one control period)\n", name)
	} else {
		fmt.Fprintf(stdout, "%s breaker forced %s (applied within one control period)\n", name, state)
	}
	return nil
}

func (cl cli) breakerStatus(ctx context.Context, stdout io.Writer) error {
	c, tc, err := cl.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, workflows.FlowControllerID, "", workflows.FlowStateQuery)
	if err != nil {
		return fmt.Errorf("query the flow controller (is a worker running?): %w", err)
	}
	var st workflows.FlowControllerStatus
	if err := v.Get(&st); err != nil {
		return fmt.Errorf("decode the flow controller's state: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BREAKER\tSTATE\tSINCE\tLIMIT\tPERIOD\tTPS\tSUCCESS\tP99\tREASON")
	names := make([]string, 0, len(agency.All))
	for _, n := range agency.All {
		names = append(names, string(n))
	}
	slices.Sort(names)
	for _, n := range names {
		m, ok := st.Board.Machines[n]
		if !ok {
			m = breaker.NewMachine(time.Time{})
		}
		s := breaker.StatusOf(n, m, 0)
		o := st.Observations[n]
		success := "-"
		if o.Calls > 0 {
			success = fmt.Sprintf("%.1f%% of %d", 100*float64(o.OK)/float64(o.Calls), o.Calls)
		}
		// The ceiling as Temporal holds the agency's queue to it, not as
		// configured: a worker may not have applied it yet.
		tps := "?"
		if ceil, err := flowcontrol.ReadCeiling(qctx, c.WorkflowService(), cmp.Or(tc.Namespace, config.DefaultNamespace), agency.Name(n).TaskQueue()); err == nil {
			tps = ceil.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", n, s.State, since(s.Since), st.Limits[n], st.Config.PeriodOf(n), tps,
			success, o.LatencyP99.Round(time.Millisecond), loan.CleanText(s.Reason, maxReason))
	}
	e := breaker.StatusOf(breaker.Entry, st.Board.Entry, 0)
	fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t%s\n", breaker.Entry, e.State, since(e.Since), loan.CleanText(e.Reason, maxReason))
	return tw.Flush()
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// parseOverride reads an override's agency and reason. The agency name is
// normalised here, once: "KCB" is the kcb breaker, never a new one.
func parseOverride(verb string, args []string, stderr io.Writer) (workflows.BreakerOverride, error) {
	fs := newFlags("breaker "+verb, stderr)
	reason := fs.String("reason", "", "why (required; kept with the state and in breaker_events)")
	// Accept the agency before or after the flags.
	var name string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return workflows.BreakerOverride{}, err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	state := verb
	if verb == "close" {
		state = string(breaker.Closed)
	}
	o, err := workflows.BreakerOverride{Agency: name, State: state,
		// Free text: bounded and stripped of control characters before it
		// is stored and shown to other operators.
		Reason: loan.CleanText(strings.TrimSpace(*reason), maxReason)}.Normalize()
	if err != nil {
		return o, usageError{"breaker " + verb + ": " + err.Error()}
	}
	return o, nil
}
