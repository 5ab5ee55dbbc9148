// Command starter submits loan applications to loanflow and reads their status.
//
//	starter apply --customer C00012345 --amount 30000000 --term 36 [--id ID] [--wait]
//	starter load --count 200 --rate 20
//	starter status ID
//	starter find --customer C00012345
//	starter breaker status
//	starter breaker open|close|auto AGENCY --reason "..."
//
// Bad input exits with status 2 and a message naming the field. With the
// worker's OTEL_* variables set, its calls to Temporal are traced as the
// worker's are (service loanflow-starter), so a trace begins at the command.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"loanflow/config"
	"loanflow/dev/loadgen"
	"loanflow/loan"
	"loanflow/tracing"
	"loanflow/workflows"
	"loanflow/workflows/loanclient"
)

// usageError is bad input: it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  starter apply --customer C00012345 --amount 30000000 --term 36 [--id ID] [--wait]
  starter load --count N --rate R [--customers K]
  starter status ID
  starter find --customer C00012345 [--limit N]
  starter breaker status
  starter breaker open|close|half_open|auto AGENCY --reason "..."

Temporal is reached through TEMPORAL_ADDRESS (default 127.0.0.1:7233) and
TEMPORAL_NAMESPACE (default "default"); TEMPORAL_UI_URL is used for links.
Payloads are encrypted with LOANFLOW_CODEC_KEYS (or LOANFLOW_CODEC_KEY_FILE) and
customers are tagged with LOANFLOW_SEARCH_KEYS (or LOANFLOW_SEARCH_KEY_FILE);
without them the dev keys in .dev/ are used, when the dev command (go run ./dev/cmd/loanflow-dev) made them.`

// cli runs the commands; dial connects to Temporal (tests give their own).
type cli struct {
	dial func() (client.Client, config.Temporal, error)
}

// flushTimeout bounds the wait for the last spans at exit: a collector that
// is down or unreachable costs the CLI at most 5 seconds, and those spans.
const flushTimeout = 5 * time.Second

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// OpenTelemetry spans, as the worker's, when the OTEL_* variables name an
	// exporter; off otherwise. A command's calls to Temporal begin the trace,
	// and the worker continues it from the header of the workflow started.
	traces, stopTracing, err := tracing.Setup(ctx, "loanflow-starter")
	if err != nil {
		return usageError{"tracing: " + err.Error()}
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		if err := stopTracing(fctx); err != nil {
			fmt.Fprintln(stderr, "starter: tracing: spans not sent:", err)
		}
	}()
	var extra []interceptor.ClientInterceptor
	if traces != nil {
		extra = append(extra, traces)
	}
	dial := func() (client.Client, config.Temporal, error) { return dialEnv(extra...) }
	return cli{dial: dial}.run(ctx, args, stdout, stderr)
}

func (cl cli) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := cl.dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func (cl cli) dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given\n" + usage}
	}
	switch args[0] {
	case "apply":
		return cl.apply(ctx, args[1:], stdout, stderr)
	case "load":
		return cl.load(ctx, args[1:], stdout, stderr)
	case "status":
		return cl.status(ctx, args[1:], stdout, stderr)
	case "find":
		return cl.find(ctx, args[1:], stdout, stderr)
	case "breaker":
		return cl.breakerCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q: accepted apply, load, status, find or breaker\n%s", args[0], usage)}
	}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage:")
		for _, l := range strings.Split(usage, "\n") {
			if strings.HasPrefix(l, "  starter "+name) {
				fmt.Fprintln(stderr, l)
			}
		}
		fs.PrintDefaults()
	}
	return fs
}

// errHelp is -h or --help on a command: its flags were printed, and the
// command succeeds.
var errHelp = errors.New("help requested")

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err.Error()}
	}
	return nil
}

// dialEnv connects with the TEMPORAL_* settings and the payload codec, so what
// the starter sends is encrypted and what it reads (results, status) is
// decoded here, without the codec server. The interceptors (tracing) come
// after the search-key one ClientOptions adds, in the worker's order.
func dialEnv(interceptors ...interceptor.ClientInterceptor) (client.Client, config.Temporal, error) {
	t, err := config.TemporalFromEnv()
	if err != nil {
		return nil, t, usageError{err.Error()}
	}
	// A developer's starter uses the keys a dev worker generated, and says so.
	notes, err := t.LoadProtection(true, false)
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "starter:", n)
	}
	if err != nil {
		return nil, t, usageError{err.Error()}
	}
	opts, err := t.ClientOptions(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, t, err
	}
	opts.Interceptors = append(opts.Interceptors, interceptors...)
	c, err := config.DialOptions(opts)
	return c, t, err
}

func (cl cli) apply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("apply", stderr)
	app := loan.Application{}
	fs.StringVar(&app.ApplicationID, "id", "", "application id (default: generated)")
	fs.StringVar(&app.CustomerID, "customer", "", `customer id, "C" followed by 8 digits`)
	amounts := fmt.Sprintf("%d to %d won", loan.MinAmount, loan.MaxAmount)
	intFlag(fs, &app.Amount, "amount", 0, "requested amount in won, "+amounts, "a whole number of won, "+amounts)
	terms := fmt.Sprintf("%d to %d", loan.MinTermMonths, loan.MaxTermMonths)
	intFlag(fs, &app.TermMonths, "term", 36, "term in months, "+terms, "a whole number of months, "+terms)
	wait := fs.Bool("wait", false, "wait for the decision and print it")
	if err := parse(fs, args); err != nil {
		return err
	}
	if app.ApplicationID == "" {
		app.ApplicationID = newID()
	}
	if err := app.Validate(); err != nil {
		return usageError{err.Error()}
	}
	c, t, err := cl.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	run, existing, err := loanclient.Start(ctx, c, app, workflows.Options{})
	if errors.Is(err, loanclient.ErrDifferentContent) {
		// Bad input: the id belongs to another application.
		return usageError{err.Error() + "; choose another --id, or omit it for a generated one"}
	}
	if err != nil {
		return fmt.Errorf("start application %s: %w", app.ApplicationID, err)
	}
	if existing {
		fmt.Fprintf(stdout, "application %s was already submitted with the same content; showing that one\n", app.ApplicationID)
	}
	fmt.Fprintf(stdout, "application: %s\nworkflow id: %s\nweb ui:      %s\n", app.ApplicationID, run.GetID(), t.WorkflowURL(run.GetID(), run.GetRunID()))
	if !*wait {
		return nil
	}
	var res loan.Result
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("application %s: %w", app.ApplicationID, err)
	}
	return printResult(stdout, res)
}

func (cl cli) load(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load", stderr)
	var o loadgen.Options
	intFlag(fs, &o.Count, "count", 100, "applications to start", "a whole number from 1 to 1000000")
	floatFlag(fs, &o.Rate, "rate", 20, "applications started per second", "a number of applications per second, more than 0 and up to 10000")
	intFlag(fs, &o.Customers, "customers", 0, "distinct customers (default: one per application)", "0 (one per application) or more")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return usageError{err.Error()}
	}
	c, t, err := cl.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	o.Progress = stderr
	o.RunID = loadRunID(time.Now())
	sum, err := loadgen.Run(ctx, c, o)
	sum.Print(stdout)
	fmt.Fprintf(stdout, "web ui:       %s\n", config.ListURL(t.UIURL, t.Namespace, `WorkflowType="LoanApplicationWorkflow"`))
	if err != nil {
		return err
	}
	// A batch with failures is a failed command: scripts and CI see it.
	if n := sum.Failed(); n > 0 {
		return fmt.Errorf("%d of %d applications failed (first: %v)", n, sum.Started, sum.FirstError())
	}
	return nil
}

func (cl cli) status(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Sprintf("status takes one application or workflow id, got %d arguments", fs.NArg())}
	}
	c, t, err := cl.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	id, res, err := loanclient.Status(ctx, c, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "web ui: %s\n", t.WorkflowURL(id, ""))
	return printResult(stdout, res)
}

func printResult(w io.Writer, res loan.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// loadRunID prefixes a load's application ids: the time says when, and a
// random part keeps two loads started in the same second (from two
// terminals or machines) from reusing each other's ids.
func loadRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "load-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "app-" + hex.EncodeToString(b[:])
}
