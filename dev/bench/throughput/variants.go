package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"loanflow/app"
	"loanflow/workflows"
)

// variant is one configuration of loanflow's workers in a sweep: its name as
// given to -variants, and the worker's tuning flags it sets (by flag name,
// see app.Config.SetTuningFlags).
type variant struct {
	name  string
	flags map[string]string
}

// variantTerms are the short names a variant is written with, each for one
// or more of the worker's tuning flags.
var variantTerms = map[string][]string{
	"sticky": {"sticky-cache-size"},
	"tuner":  {"loan-tuner"},
	"slots":  {"loan-workflow-slots", "loan-activity-slots", "loan-local-activity-slots"},
	"cpu":    {"loan-target-cpu"},
	"mem":    {"loan-target-mem"},
	"ramp":   {"loan-ramp-throttle"},
	"pg":     {"pg-max-conns"},
}

const variantSyntax = "default, or terms joined by '+': sticky=N, tuner=fixed|resource, slots=N or W/A/L (workflow/activity/local activity), cpu=F, mem=F, ramp=D (a duration), pg=N"

// parseVariants reads -variants: variants separated by commas.
func parseVariants(list string) ([]variant, error) {
	var out []variant
	seen := map[string]bool{}
	for spec := range strings.SplitSeq(list, ",") {
		spec = strings.TrimSpace(spec)
		v, err := parseVariant(spec)
		if err != nil {
			return nil, err
		}
		if seen[v.name] {
			return nil, fmt.Errorf("invalid -variants %q: %q is listed twice", list, v.name)
		}
		seen[v.name] = true
		out = append(out, v)
	}
	return out, nil
}

// parseVariant reads one variant, e.g. "slots=4+pg=8", and checks its values
// as the worker checks its flags.
func parseVariant(spec string) (variant, error) {
	v := variant{name: spec, flags: map[string]string{}}
	if spec == "default" {
		return v, nil
	}
	if spec == "" {
		return v, fmt.Errorf("invalid variant %q: accepted %s", spec, variantSyntax)
	}
	for term := range strings.SplitSeq(spec, "+") {
		key, val, ok := strings.Cut(term, "=")
		flags, known := variantTerms[key]
		if !ok || !known || val == "" {
			return v, fmt.Errorf("invalid variant %q: term %q: accepted %s", spec, term, variantSyntax)
		}
		vals := []string{val}
		if key == "slots" {
			vals = strings.Split(val, "/")
			switch len(vals) {
			case 1:
				vals = []string{val, val, val}
			case 3:
			default:
				return v, fmt.Errorf("invalid variant %q: term %q: accepted slots=N or slots=W/A/L", spec, term)
			}
		}
		for i, f := range flags {
			if _, dup := v.flags[f]; dup {
				return v, fmt.Errorf("invalid variant %q: %s is set twice", spec, key)
			}
			v.flags[f] = vals[i]
		}
	}
	var cfg app.Config
	if err := cfg.SetTuningFlags(v.flags); err != nil {
		return v, fmt.Errorf("invalid variant %q: %w", spec, err)
	}
	return v, nil
}

// settingsText says how loanflow's workers run in cfg: sticky cache, the loan
// queue's slots, the Postgres pool.
func settingsText(cfg app.Config) string {
	sticky := "sticky cache the SDK's (10000)"
	switch n := cfg.StickyCacheSize; {
	case n == nil:
	case *n == 0:
		sticky = "sticky cache 0 (off)"
	default:
		sticky = fmt.Sprintf("sticky cache %d", *n)
	}
	ls := cfg.LoanSlots
	size := func(n int) string {
		if n == 0 {
			return "SDK"
		}
		return strconv.Itoa(n)
	}
	sizes := size(ls.Workflow) + "/" + size(ls.Activity) + "/" + size(ls.LocalActivity)
	slots := "loan slots fixed " + sizes
	if ls.Workflow == 0 && ls.Activity == 0 && ls.LocalActivity == 0 {
		slots = "loan slots the SDK's (fixed 1000 each)"
	}
	if ls.Tuner == app.TunerResource {
		target := func(f, sdk float64) float64 {
			if f == 0 {
				return sdk
			}
			return f
		}
		ramp := "50ms"
		if ls.RampThrottle != nil {
			ramp = ls.RampThrottle.String()
		}
		slots = fmt.Sprintf("loan slots resource-based (CPU %.2g, memory %.2g, ramp %s; most %s)", target(ls.TargetCPU, 0.9), target(ls.TargetMem, 0.8), ramp, sizes)
	}
	n, by := cfg.PostgresPoolSize()
	pool := fmt.Sprintf("Postgres pool %d (%s)", n, by)
	if n == 0 {
		pool = "Postgres pool: " + by
	}
	return sticky + "; " + slots + "; " + pool
}

// peerSummary is one peer's figures over a round or a run.
type peerSummary struct {
	N              int
	Rate           float64
	P50, P99       time.Duration
	CPUPerWorkflow float64
	Cores          float64
	Load           string
}

func summarize(r result) peerSummary {
	return peerSummary{N: r.n, Rate: r.rate, P50: r.p50, P99: r.p99, CPUPerWorkflow: r.cpuPerWorkflow(), Cores: r.cores(), Load: r.load}
}

// summary is what one run measured: the rows of a sweep's table.
type summary struct {
	Variant   string
	Settings  string
	LoadStart string
	Idle      float64
	Rounds    []map[string]peerSummary
	Total     map[string]peerSummary
	// Sticky counts the SDK's sticky cache metrics over the measured rounds,
	// by the worker's task queue, then metric.
	Sticky map[string]map[string]int64
}

// The SDK's sticky cache metrics the benchmark counts, and their columns.
var stickyMetrics = []string{"temporal_sticky_cache_hit", "temporal_sticky_cache_miss", "temporal_sticky_cache_total_forced_eviction"}

// stickyCounts counts the SDK's sticky cache metrics by the task queue of
// the worker that reports them (forced evictions carry no workflow type): a
// sweep shows with them that a variant's cache is the one in force.
type stickyCounts struct {
	mu     sync.Mutex
	counts map[string]map[string]int64
}

func newStickyCounts() *stickyCounts {
	return &stickyCounts{counts: map[string]map[string]int64{}}
}

// snapshot copies the counts so far.
func (s *stickyCounts) snapshot() map[string]map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]int64, len(s.counts))
	for wf, m := range s.counts {
		out[wf] = maps.Clone(m)
	}
	return out
}

// since is the counts now less those of an earlier snapshot.
func (s *stickyCounts) since(before map[string]map[string]int64) map[string]map[string]int64 {
	now := s.snapshot()
	for wf, m := range now {
		for k := range m {
			m[k] -= before[wf][k]
		}
	}
	return now
}

// handler is a client.MetricsHandler that feeds the counts and drops every
// other metric.
func (s *stickyCounts) handler() client.MetricsHandler { return countingHandler{s: s} }

type countingHandler struct {
	s    *stickyCounts
	tags map[string]string
}

func (h countingHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return countingHandler{s: h.s, tags: merged}
}

func (h countingHandler) Counter(name string) client.MetricsCounter {
	if !slices.Contains(stickyMetrics, name) {
		return client.MetricsNopHandler.Counter(name)
	}
	tq := h.tags["task_queue"]
	return counterFunc(func(d int64) {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		if h.s.counts[tq] == nil {
			h.s.counts[tq] = map[string]int64{}
		}
		h.s.counts[tq][name] += d
	})
}

func (h countingHandler) Gauge(name string) client.MetricsGauge {
	return client.MetricsNopHandler.Gauge(name)
}

func (h countingHandler) Timer(name string) client.MetricsTimer {
	return client.MetricsNopHandler.Timer(name)
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

// runSweep runs each variant in a process of its own (the sticky cache is
// per process, and each variant then starts from a fresh stack and heap),
// each measured against raw Temporal in that process, and prints one table.
func runSweep(ctx context.Context, c benchConfig, variants []variant, out io.Writer) error {
	if !slices.Contains(c.peers, peerRaw) || !slices.Contains(c.peers, peerLoanflow) {
		return fmt.Errorf("invalid -peers %q with -variants: a sweep measures each variant against raw; accepted raw,loanflow", strings.Join(c.peers, ","))
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this benchmark's executable to run the variants: %w", err)
	}
	dir, err := os.MkdirTemp("", "bench-throughput-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	host, _ := os.Hostname()
	start := loadAvg()
	t0 := time.Now()
	var sums []summary
	for i, v := range variants {
		resultFile := fmt.Sprintf("%s/%d.json", dir, i)
		args := []string{"-variant", v.name, "-result", resultFile,
			"-count", strconv.Itoa(c.count), "-inflight", strconv.Itoa(c.inflight), "-rounds", strconv.Itoa(c.rounds),
			"-pollers", strconv.Itoa(c.pollers), "-peers", strings.Join(c.peers, ","),
			"-database-url", c.adminURL, "-redis-url", c.redisURL}
		if c.rawPlain {
			args = append(args, "-raw-plain")
		}
		if c.verbose {
			args = append(args, "-v")
		}
		fmt.Fprintf(os.Stderr, "variant %d of %d: %s (%s elapsed)\n", i+1, len(variants), v.name, time.Since(t0).Round(time.Second))
		cmd := exec.CommandContext(ctx, exe, args...)
		// Ctrl-C lets the variant drop its database and Redis keys.
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = time.Minute
		pw := prefixed(os.Stderr, "  ["+v.name+"] ")
		cmd.Stdout, cmd.Stderr = pw, pw
		err := cmd.Run()
		pw.flush()
		if err != nil {
			return fmt.Errorf("variant %s: %w", v.name, err)
		}
		b, err := os.ReadFile(resultFile)
		if err != nil {
			return fmt.Errorf("variant %s: read its result: %w", v.name, err)
		}
		var s summary
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("variant %s: decode its result: %w", v.name, err)
		}
		sums = append(sums, s)
	}
	fmt.Fprintf(out, "sweep: %d variants, each in a process of its own with a fresh stack; per variant %d workflows per peer per round, %d in flight, %d rounds (raw, then loanflow); pollers per worker: %s\n",
		len(variants), c.count, c.inflight, c.rounds, pollersText(c.pollers))
	fmt.Fprintf(out, "machine: %s, %d CPUs, %s; load average at start %s, at end %s; %s in all\n\n", host, runtime.NumCPU(), runtime.Version(), start, loadAvg(), time.Since(t0).Round(time.Second))
	writeSweepTable(out, sums)
	return nil
}

// writeSweepTable prints one row per variant: both peers' rates, the ratio
// per round and overall, CPU per workflow, loanflow's latency and the sticky
// cache's counts.
func writeSweepTable(out io.Writer, sums []summary) {
	fmt.Fprintf(out, "| variant | loanflow's workers | load average per round | raw /s | loanflow /s | ratio per round | loanflow ÷ raw | CPU ms per workflow raw / loanflow | loanflow CPU ÷ raw | loanflow p50 / p99 | sticky hit / miss / forced eviction: raw; loanflow |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range sums {
		var loads, ratios []string
		for _, r := range s.Rounds {
			loads = append(loads, strings.Fields(r[peerRaw].Load + " ?")[0])
			ratios = append(ratios, rateRatio(r))
		}
		raw, lf := s.Total[peerRaw], s.Total[peerLoanflow]
		cpuRatio := ""
		if raw.CPUPerWorkflow > 0 {
			cpuRatio = fmt.Sprintf("%.2f", lf.CPUPerWorkflow/raw.CPUPerWorkflow)
		}
		fmt.Fprintf(out, "| %s | %s | %s | %.1f | %.1f | %s | **%s** | %.1f / %.1f | %s | %s / %s | %s; %s |\n",
			s.Variant, s.Settings, strings.Join(loads, ", "), raw.Rate, lf.Rate, strings.Join(ratios, ", "), rateRatio(s.Total),
			raw.CPUPerWorkflow, lf.CPUPerWorkflow, cpuRatio, ms(lf.P50), ms(lf.P99),
			stickyText(s.Sticky[rawQueue]), stickyText(s.Sticky[workflows.TaskQueue]))
	}
}

func rateRatio(r map[string]peerSummary) string {
	raw, lf := r[peerRaw], r[peerLoanflow]
	if raw.Rate == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", lf.Rate/raw.Rate)
}

func stickyText(m map[string]int64) string {
	parts := make([]string, len(stickyMetrics))
	for i, k := range stickyMetrics {
		parts[i] = strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, " / ")
}

// writeResult writes a child run's summary for the sweep that started it.
func writeResult(path string, s summary) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// prefixWriter prefixes each line a variant prints, so its progress can be
// told apart on the terminal.
type prefixWriter struct {
	mu     sync.Mutex
	w      *bufio.Writer
	prefix string
	midway bool
}

func prefixed(w io.Writer, prefix string) *prefixWriter {
	return &prefixWriter{w: bufio.NewWriter(w), prefix: prefix}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !p.midway {
			if _, err := p.w.WriteString(p.prefix); err != nil {
				return 0, err
			}
		}
		if _, err := p.w.WriteString(line); err != nil {
			return 0, err
		}
		p.midway = !strings.HasSuffix(line, "\n")
	}
	return len(b), p.w.Flush()
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.w.Flush()
}

// replaceSection puts body under heading in doc: in place of that section
// (up to the next "## " heading) when doc has it, else before the notes, else
// at the end.
func replaceSection(doc, heading, body string) string {
	section := heading + "\n\n" + strings.TrimRight(body, "\n") + "\n"
	if i := strings.Index(doc, heading+"\n"); i >= 0 {
		rest := doc[i+len(heading)+1:]
		if j := strings.Index(rest, "\n## "); j >= 0 {
			return doc[:i] + section + rest[j:]
		}
		return doc[:i] + section
	}
	if i := strings.Index(doc, notesHeading); i >= 0 {
		return doc[:i] + section + "\n" + doc[i:]
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + section
}
