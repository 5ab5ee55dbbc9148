// Command scorecard runs the flow-control lab's scorecard (flowsim's
// TestScorecard) the way the lab notes report it, and sums its misses: each
// set of shapes (the tuned ones and the three held-out sets) on each range of
// seeds, at both offsets (the changes on a control period's edge and inside
// one), after a warm-up as the real-stack benchmark's, and the capacity lost
// for good on the tuned shapes. The runs are deterministic, so a figure
// moves only with the law; a change is worth keeping when it gains on the
// held-out sets and on the second range of seeds too.
//
// It builds flowsim's test binary once and runs it in -jobs processes, six
// seeds a run. -law pins an earlier law (flowcontrol.State.Law) and -jitter
// spreads the calls by another lognormal σ, so two laws, or a law on calls
// noisier or steadier than the shapes', are compared with the same build.
//
//	go run ./dev/bench/scorecard                       # about 3 minutes on 2 cores
//	go run ./dev/bench/scorecard -law 27 -jitter 0.12  # law 26, calls spread by σ 0.12
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// A part is one row of the report: a set of shapes, or the lasting kinds.
type part struct {
	name, set string
	lasting   bool
}

var parts = []part{
	{"tuned", "tuned", false},
	{"held-out A", "a", false},
	{"held-out B", "b", false},
	{"held-out C", "c", false},
	{"lasting (tuned)", "tuned", true},
}

// job is one run of the test binary: a part on six seeds at one offset.
type job struct {
	part      int
	seedRange int
	from, to  int
	offset    string
}

func main() {
	var (
		seedsFlag = flag.String("seeds", "1-36,37-72", "ranges of seeds, comma-separated, each <from>-<to> with a multiple of 6 seeds (run six at a time)")
		jobs      = flag.Int("jobs", 2, "runs at once, 1 to 64")
		law       = flag.Int("law", 0, "the law to run, as flowcontrol.State.Law pins it (0: the current one)")
		jitter    = flag.Float64("jitter", 0, "the calls' lognormal σ instead of the shapes' 0.25 (0: theirs)")
		warmup    = flag.Duration("warmup", 5*time.Second, "warm-up at half the nominal rate before the load step")
		noLasting = flag.Bool("no-lasting", false, "leave out the capacity lost for good")
	)
	flag.Parse()
	ranges, err := parseRanges(*seedsFlag)
	if err == nil && (*jobs < 1 || *jobs > 64) {
		err = fmt.Errorf("-jobs %d: accepted 1 to 64", *jobs)
	}
	if err == nil && (*jitter < 0 || *jitter > 2) {
		err = fmt.Errorf("-jitter %g: accepted 0 (the shapes' own) or a lognormal σ up to 2", *jitter)
	}
	if err == nil && *law < 0 {
		err = fmt.Errorf("-law %d: accepted 0 (the current law) or a law flowcontrol pins", *law)
	}
	if err == nil && (*warmup < 0 || *warmup > time.Minute) {
		err = fmt.Errorf("-warmup %s: accepted 0 to 1m", *warmup)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scorecard:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, ranges, *jobs, *law, *jitter, *warmup, !*noLasting); err != nil {
		fmt.Fprintln(os.Stderr, "scorecard:", err)
		os.Exit(1)
	}
}

// parseRanges reads -seeds.
func parseRanges(v string) ([][2]int, error) {
	var ranges [][2]int
	for r := range strings.SplitSeq(v, ",") {
		var from, to int
		if _, err := fmt.Sscanf(r, "%d-%d", &from, &to); err != nil || from < 1 || to < from || (to-from+1)%6 != 0 {
			return nil, fmt.Errorf("-seeds %q: accepted ranges <from>-<to>, 1 ≤ from ≤ to, of a multiple of 6 seeds each, e.g. 1-36,37-72", v)
		}
		ranges = append(ranges, [2]int{from, to})
	}
	return ranges, nil
}

func run(ctx context.Context, ranges [][2]int, jobs, law int, jitter float64, warmup time.Duration, lasting bool) error {
	dir, err := os.MkdirTemp("", "scorecard-")
	if err != nil {
		return err
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "scorecard: remove the test binary's folder:", err)
		}
	}()
	bin := filepath.Join(dir, "flowsim.test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./flowcontrol/flowsim")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build flowsim's tests (run from the module's root): %w", err)
	}
	var todo []job
	for p := range parts {
		if parts[p].lasting && !lasting {
			continue
		}
		for i, r := range ranges {
			for _, off := range []string{"0s", "500ms"} {
				for from := r[0]; from <= r[1]; from += 6 {
					todo = append(todo, job{p, i, from, from + 5, off})
				}
			}
		}
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "%d runs of six seeds, %d at once\n", len(todo), jobs)
	// results[part][seed range][kind]
	results := make([][]map[string]tally, len(parts))
	for p := range results {
		results[p] = make([]map[string]tally, len(ranges))
		for i := range ranges {
			results[p][i] = map[string]tally{}
		}
	}
	var (
		mu    sync.Mutex
		errs  []error
		wg    sync.WaitGroup
		queue = make(chan job)
	)
	for range jobs {
		wg.Go(func() {
			for j := range queue {
				kinds, err := runJob(ctx, bin, j, law, jitter, warmup)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for k, t := range kinds {
					cur := results[j.part][j.seedRange][k]
					cur.add(t)
					results[j.part][j.seedRange][k] = cur
				}
				mu.Unlock()
			}
		})
	}
	for _, j := range todo {
		queue <- j
	}
	close(queue)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Print(report(ranges, results, law, jitter, warmup, lasting))
	fmt.Fprintf(os.Stderr, "took %s\n", time.Since(start).Round(time.Second))
	return nil
}

// runJob runs the test binary on one job and returns its tally per kind.
func runJob(ctx context.Context, bin string, j job, law int, jitter float64, warmup time.Duration) (map[string]tally, error) {
	cmd := exec.CommandContext(ctx, bin, "-test.run", "^TestScorecard$", "-test.v", "-scorecard")
	cmd.Dir = filepath.Join("flowcontrol", "flowsim")
	// The run's settings are all ours: a SCORECARD_SHAPE or _TRACE left in
	// the caller's environment would narrow or lengthen every run.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SCORECARD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"SCORECARD_SET="+parts[j.part].set,
		fmt.Sprintf("SCORECARD_SEEDS=%d-%d", j.from, j.to),
		"SCORECARD_OFFSET="+j.offset,
		"SCORECARD_WARMUP="+warmup.String(),
		fmt.Sprintf("SCORECARD_LAW=%d", law),
	)
	if parts[j.part].lasting {
		cmd.Env = append(cmd.Env, "SCORECARD_LASTING=1")
	}
	if jitter > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("SCORECARD_JITTER=%g", jitter))
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The scorecard reports each miss as a test error, so the run fails
	// whenever there are misses: its summary says whether it got there.
	_ = cmd.Run()
	kinds, err := parseScorecard(&out)
	if err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return nil, fmt.Errorf("%s, seeds %d–%d, offset %s: %w:\n%s", parts[j.part].name, j.from, j.to, j.offset, err, tail)
	}
	return kinds, nil
}

// report is the markdown the lab notes keep: misses / steps not converged
// within 5 s per part and range of seeds, then per kind.
func report(ranges [][2]int, results [][]map[string]tally, law int, jitter float64, warmup time.Duration, lasting bool) string {
	var b strings.Builder
	what := "the current law"
	if law > 0 {
		what = fmt.Sprintf("the law before change %d (State.Law %d)", law, law)
	}
	sigma := "the shapes' σ 0.25"
	if jitter > 0 {
		sigma = fmt.Sprintf("calls spread by σ %g", jitter)
	}
	fmt.Fprintf(&b, "Scorecard, %s, %s: misses / steps not converged within 5 s (both offsets, %s warm-up)\n\n", what, sigma, warmup)
	header(&b, ranges, "part")
	for p, part := range parts {
		if part.lasting && !lasting {
			continue
		}
		fmt.Fprintf(&b, "| %s |", part.name)
		for i := range ranges {
			var sum tally
			for _, t := range results[p][i] {
				sum.add(t)
			}
			fmt.Fprintf(&b, " %d / %d |", sum.Misses, sum.NotConverged)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nPer kind:\n\n")
	header(&b, ranges, "part", "kind")
	for p, part := range parts {
		if part.lasting && !lasting {
			continue
		}
		var kinds []string
		for i := range ranges {
			for k := range results[p][i] {
				if !slices.Contains(kinds, k) {
					kinds = append(kinds, k)
				}
			}
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			fmt.Fprintf(&b, "| %s | %s |", part.name, k)
			for i := range ranges {
				t := results[p][i][k]
				fmt.Fprintf(&b, " %d / %d |", t.Misses, t.NotConverged)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// header writes a table's header: the leading columns, then one per range
// of seeds.
func header(b *strings.Builder, ranges [][2]int, leading ...string) {
	b.WriteString("|")
	for _, l := range leading {
		b.WriteString(" " + l + " |")
	}
	for _, r := range ranges {
		fmt.Fprintf(b, " seeds %d–%d |", r[0], r[1])
	}
	b.WriteString("\n|")
	for range leading {
		b.WriteString("---|")
	}
	for range ranges {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
}
