// Package loadgen starts many loan applications at a steady rate, waits for
// their results, and summarises outcomes and latency. The starter's "load"
// command and the demo both use it.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"loanflow/loan"
	"loanflow/workflows"
	"loanflow/workflows/loanclient"
)

// Options describes a batch.
type Options struct {
	Count     int     // applications to start
	Rate      float64 // starts per second
	Customers int     // distinct customers to draw from; default Count
	RunID     string  // prefix of application ids; default a timestamp
	Seed      uint64  // seed of the amounts and customers drawn
	Progress  io.Writer
	// Workflow options passed to every application.
	WorkflowOptions workflows.Options
}

// Outcome is one application's result as the batch saw it.
type Outcome struct {
	WorkflowID string
	Result     loan.Result
	Err        error
	Latency    time.Duration
}

// Failed reports whether the application failed: its workflow ended in
// error, or it finished with the status FAILED. The live line and the
// summary count the same applications.
func (o Outcome) Failed() bool {
	return o.Err != nil || o.Result.Status == loan.StatusFailed
}

// Summary aggregates a batch.
type Summary struct {
	Started    int
	Elapsed    time.Duration
	ByStatus   map[string]int
	ByReason   map[string]int
	ByPath     map[string]int
	Errors     int
	P50, P99   time.Duration
	Throughput float64 // completed applications per second
	Outcomes   []Outcome
}

// Validate checks the options, naming the bad field.
func (o Options) Validate() error {
	if o.Count < 1 || o.Count > 1_000_000 {
		return fmt.Errorf("invalid --count %d: accepted 1 to 1000000", o.Count)
	}
	if !(o.Rate > 0 && o.Rate <= 10_000) { // NaN fails every comparison
		return fmt.Errorf("invalid --rate %g: accepted more than 0 and up to 10000 per second", o.Rate)
	}
	if o.Customers < 0 {
		return fmt.Errorf("invalid --customers %d: accepted 0 (one per application) or more", o.Customers)
	}
	return nil
}

// Application draws the i-th application of a batch.
func Application(runID string, i int, rng *rand.Rand, customers int) loan.Application {
	amounts := []int64{3_000_000, 5_000_000, 10_000_000, 20_000_000, 30_000_000, 50_000_000, 80_000_000}
	terms := []int{12, 24, 36, 60, 84, 120}
	return loan.Application{
		ApplicationID: fmt.Sprintf("%s-%06d", runID, i),
		CustomerID:    fmt.Sprintf("C%08d", 1+rng.IntN(customers)),
		Amount:        amounts[rng.IntN(len(amounts))],
		TermMonths:    terms[rng.IntN(len(terms))],
	}
}

// Run starts the batch and waits for every application to finish.
func Run(ctx context.Context, c client.Client, o Options) (Summary, error) {
	if err := o.Validate(); err != nil {
		return Summary{}, err
	}
	if o.Customers == 0 {
		o.Customers = o.Count
	}
	if o.RunID == "" {
		o.RunID = time.Now().UTC().Format("20060102T150405")
	}
	rng := rand.New(rand.NewPCG(o.Seed, uint64(len(o.RunID))))
	bar := newProgress(o.Progress, o.Count)
	outcomes := make([]Outcome, o.Count)
	var wg sync.WaitGroup
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
	defer tick.Stop()
	started := 0
	for i := 0; i < o.Count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				bar.finish()
				return summarise(outcomes[:started], started, time.Since(start)), ctx.Err()
			case <-tick.C:
			}
		}
		app := Application(o.RunID, i, rng, o.Customers)
		t0 := time.Now()
		run, err := Start(ctx, c, app, o.WorkflowOptions)
		started++
		if err != nil {
			outcomes[i] = Outcome{WorkflowID: workflows.WorkflowID(app.ApplicationID), Err: err}
			bar.finished(false, false)
			continue
		}
		bar.started()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var res loan.Result
			err := run.Get(ctx, &res)
			o := Outcome{WorkflowID: run.GetID(), Result: res, Err: err, Latency: time.Since(t0)}
			outcomes[i] = o
			bar.finished(!o.Failed(), true)
		}(i)
	}
	wg.Wait()
	bar.finish()
	return summarise(outcomes, started, time.Since(start)), nil
}

// Start starts one application's workflow through the client API: an id
// already started with the same content attaches to that run; with other
// content it is refused (loanclient.ErrDifferentContent).
func Start(ctx context.Context, c client.Client, app loan.Application, wo workflows.Options) (client.WorkflowRun, error) {
	run, _, err := loanclient.Start(ctx, c, app, wo)
	return run, err
}

func summarise(outcomes []Outcome, started int, elapsed time.Duration) Summary {
	s := Summary{Started: started, Elapsed: elapsed, ByStatus: map[string]int{}, ByReason: map[string]int{}, ByPath: map[string]int{}, Outcomes: outcomes}
	var lat []time.Duration
	for _, o := range outcomes {
		if o.Err != nil {
			s.Errors++
			s.ByStatus["ERROR"]++
			continue
		}
		s.ByStatus[string(o.Result.Status)]++
		s.ByReason[o.Result.Reason()]++
		if o.Result.CreditPath != "" {
			s.ByPath[o.Result.CreditPath]++
		}
		lat = append(lat, o.Latency)
	}
	slices.Sort(lat)
	s.P50, s.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if elapsed > 0 {
		s.Throughput = float64(len(lat)) / elapsed.Seconds()
	}
	return s
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Failed counts the applications that failed: their workflow ended in
// error, or they finished with the status FAILED.
func (s Summary) Failed() int {
	n := 0
	for _, o := range s.Outcomes {
		if o.Failed() {
			n++
		}
	}
	return n
}

// FirstError returns the first failed outcome's error, if any.
func (s Summary) FirstError() error {
	for _, o := range s.Outcomes {
		if o.Err != nil {
			return fmt.Errorf("%s: %w", o.WorkflowID, o.Err)
		}
	}
	return nil
}

// Print writes the summary as a short report.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "applications: %d started, %d finished in %s (%.1f/s)\n",
		s.Started, s.Started-s.Errors, s.Elapsed.Round(time.Millisecond), s.Throughput)
	fmt.Fprintf(w, "outcomes:     %s\n", counts(s.ByStatus))
	fmt.Fprintf(w, "reasons:      %s\n", counts(s.ByReason))
	if len(s.ByPath) > 0 {
		fmt.Fprintf(w, "credit path:  %s\n", counts(s.ByPath))
	}
	fmt.Fprintf(w, "latency:      p50 %s, p99 %s\n", s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond))
	if err := s.FirstError(); err != nil {
		fmt.Fprintf(w, "first error:  %v\n", err)
	}
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// progress draws a one-line bar redrawn in place on a terminal; into a file
// or a pipe (a log) it writes a plain line every plainEvery instead, so the
// log holds readable lines and no carriage returns.
type progress struct {
	mu                            sync.Mutex
	w                             io.Writer
	tty                           bool
	total, inFlight, done, failed int
	last                          time.Time
}

// plainEvery is the period of the progress lines written to a non-terminal.
const plainEvery = 5 * time.Second

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, tty: isTerminal(w), last: time.Now()}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) started() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight++
	p.draw(false)
}

// finished records an application that ended; wasStarted is false for one
// whose start itself failed.
func (p *progress) finished(ok, wasStarted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if wasStarted {
		p.inFlight--
	}
	if !ok {
		p.failed++
	}
	p.draw(false)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(true)
	if p.w != nil && p.tty {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw(force bool) {
	every := 100 * time.Millisecond
	if !p.tty {
		every = plainEvery
	}
	if p.w == nil || (!force && time.Since(p.last) < every) {
		return
	}
	p.last = time.Now()
	if !p.tty {
		fmt.Fprintf(p.w, "progress: %d/%d done, %d in flight, %d failed\n", p.done, p.total, p.inFlight, p.failed)
		return
	}
	const width = 30
	filled := width * p.done / max(p.total, 1)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d done, %d in flight, %d failed ",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.done, p.total, p.inFlight, p.failed)
}
