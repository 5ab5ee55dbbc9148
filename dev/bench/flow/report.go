package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// oracleOf finds the oracle's result of a scenario, if it ran.
func oracleOf(results []result, scenario string) (result, bool) {
	for _, r := range results {
		if r.scenario == scenario && r.strategy == stOracle {
			return r, true
		}
	}
	return result{}, false
}

// markdownTable is one row per scenario and strategy.
func markdownTable(results []result, c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | strategy | goodput/s | ÷ capacity | ÷ oracle | agency errors | goodput×(1−err) ÷ capacity | app p50 | app p99 | apps ok / failed | converged after steps (s) | start→call p50 / p99 |\n")
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, r := range results {
		ratio := "–"
		if o, ok := oracleOf(results, r.scenario); ok && o.ok > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.ok)/float64(o.ok))
		}
		conv := make([]string, len(r.converge))
		for i, d := range r.converge {
			if d < 0 {
				conv[i] = "never"
			} else {
				conv[i] = fmt.Sprintf("%.1f", d.Seconds())
			}
		}
		frac := r.goodput() / r.trueRate
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.2f | %s | %.1f%% | %.2f | %s | %s | %d / %d | %s | %s / %s |\n",
			r.scenario, r.strategy, r.goodput(), frac, ratio, 100*r.errorRate(), frac*(1-r.errorRate()),
			ms(r.apps.p50), ms(r.apps.p99), r.apps.ok, r.apps.failed, strings.Join(conv, ", "),
			ms(r.apps.firstP50), ms(r.apps.firstP99))
	}
	return b.String()
}

// phaseTable is one row per scenario, strategy and phase: goodput ÷ the
// oracle's in the same phase, and the agency's errors, each phase measured
// from flowsim.PhaseSettle after the step that opens it. A phase whose
// service time exceeds the client's timeout is not scored against the
// oracle: no strategy serves it, and it is the breakers' to handle.
func phaseTable(results []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | strategy | phase (s) | goodput/s | ÷ oracle | agency errors | converged after the step (s) |\n")
	fmt.Fprintf(&b, "|---|---|---|---:|---:|---:|---:|\n")
	for _, r := range results {
		o, haveOracle := oracleOf(results, r.scenario)
		for i, p := range r.phases {
			ratio := "–"
			switch {
			case p.unservable:
				ratio = "not scored: service time > client timeout"
			case haveOracle && i < len(o.phases) && o.phases[i].ok > 0:
				ratio = fmt.Sprintf("%.2f", float64(p.ok)/float64(o.phases[i].ok))
			}
			errs := "–"
			if n := p.ok + p.errors; n > 0 {
				errs = fmt.Sprintf("%.1f%%", 100*float64(p.errors)/float64(n))
			}
			conv := "–"
			if i < len(r.converge) {
				if d := r.converge[i]; d < 0 {
					conv = "never"
				} else {
					conv = fmt.Sprintf("%.1f", d.Seconds())
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f–%.0f | %.2f | %s | %s | %s |\n", r.scenario, r.strategy,
				p.from.Seconds(), p.to.Seconds(), p.goodput(), ratio, errs, conv)
		}
	}
	return b.String()
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// writeChart draws one panel per strategy: its limit, the requests present
// at the agency and the agency's true capacity over time, in plain SVG.
func writeChart(w io.Writer, sc scenario, results []result, c config) error {
	var runs []result
	for _, r := range results {
		if r.scenario == sc.name {
			runs = append(runs, r)
		}
	}
	const (
		cols         = 2
		pw, ph       = 440, 180 // panel plot area
		ml, mr       = 50, 20
		mt, mb       = 30, 30
		titleH       = 50
		legendH      = 20
		cellW, cellH = ml + pw + mr, mt + ph + mb
	)
	rows := (len(runs) + cols - 1) / cols
	width, height := cols*cellW, titleH+legendH+rows*cellH
	ymax := 4.5 * float64(c.capacity)
	t0, t1 := -c.warmup.Seconds(), c.duration.Seconds()

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", esc(sc.title))
	fmt.Fprintf(&b, `<text x="10" y="38">C=%d, median service time %s, client timeout %s; sampled every %s; the limit is clipped at %.0f</text>`+"\n",
		c.capacity, c.serviceTime, c.clientTimeout, c.sampleEvery, ymax)
	ly := titleH + 12
	legend := []struct{ color, dash, label string }{
		{"#1f77b4", "", "limit"}, {"#ff7f0e", "", "present at the agency (in service + queued)"}, {"#222", "5,3", "true capacity"},
	}
	x := 10
	for _, l := range legend {
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`, x, ly-4, x+20, ly-4, l.color, l.dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+25, ly, esc(l.label))
		x += 30 + 7*len(l.label)
	}
	for i, r := range runs {
		ox := (i % cols) * cellW
		oy := titleH + legendH + (i/cols)*cellH
		px, py := float64(ox+ml), float64(oy+mt)
		sx := func(t float64) float64 { return px + (t-t0)/(t1-t0)*pw }
		sy := func(v float64) float64 { return py + ph - math.Min(math.Max(v, 0), ymax)/ymax*ph }
		fmt.Fprintf(&b, `<g><text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", px, py-8, esc(r.strategy))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", px, py, pw, ph)
		for _, v := range []float64{0, float64(c.capacity), 2 * float64(c.capacity), 3 * float64(c.capacity), 4 * float64(c.capacity)} {
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
				px, sy(v), px+pw, sy(v), px-4, sy(v)+4, v)
		}
		for t := 0.0; t <= t1+1e-9; t += tickStep(t1) {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#999"/><text x="%.1f" y="%.0f" text-anchor="middle">%.0fs</text>`+"\n",
				sx(t), py+ph, sx(t), py+ph+4, sx(t), py+ph+16, t)
		}
		for _, s := range sc.steps {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#c00" stroke-dasharray="2,3"/>`+"\n", sx(s.Seconds()), py, sx(s.Seconds()), py+ph)
		}
		line := func(color, dash string, value func(sample) float64) {
			var pts []string
			flush := func() {
				if len(pts) > 1 {
					fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="%s" points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
				}
				pts = pts[:0]
			}
			for _, s := range r.trace {
				v := value(s)
				if math.IsNaN(v) {
					flush()
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(s.T.Seconds()), sy(v)))
			}
			flush()
		}
		line("#222", "5,3", func(s sample) float64 { return s.Capacity })
		line("#ff7f0e", "", func(s sample) float64 { return float64(s.Present) })
		line("#1f77b4", "", func(s sample) float64 { return s.Limit })
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func tickStep(d float64) float64 {
	switch {
	case d <= 20:
		return 5
	case d <= 60:
		return 10
	}
	return 20
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// writeDoc writes docs/bench-flow.md: the method, the table and the charts.
func writeDoc(w io.Writer, scs []scenario, results []result, table string, c config, took time.Duration) error {
	var b strings.Builder
	nominal := float64(c.capacity) / c.serviceTime.Seconds()
	fmt.Fprintf(&b, "# Flow control benchmark\n\n")
	fmt.Fprintf(&b, "Produced by `make bench-flow` (`go run ./bench/flow`), run %s, took %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second))
	fmt.Fprintf(&b, "Agency: C=%d calls in service, median service time %s (lognormal jitter σ=0.25, so a mean of %s), "+
		"queue of 2C with a queue timeout of half the client timeout, service time inflated by 1 + 0.5×(present−C)/C past capacity; "+
		"nominal rate C/median = %.0f calls/s. Client timeout %s; the activity's start-to-close is %s; retry policy "+
		"500 ms × 2 up to 5 s, 5 attempts, 30 s schedule-to-close, 503s honour Retry-After (1 s). "+
		"Each scenario is measured for %s after a %s warm-up at 0.5× the nominal load.\n\n",
		c.capacity, c.serviceTime, time.Duration(float64(c.serviceTime)*math.Exp(0.25*0.25/2)).Round(100*time.Microsecond),
		nominal, c.clientTimeout, c.clientTimeout+time.Second, c.duration, c.warmup)
	b.WriteString(methodText)
	b.WriteString(table)
	b.WriteString("\n")
	for _, sc := range scs {
		fmt.Fprintf(&b, "![%s](bench-flow-%s.svg)\n\n", sc.title, sc.name)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// methodText says how each column is measured.
const methodText = `Strategies run one after another on one embedded Temporal (no UI) and one Redis, each on a fresh simulated
agency (over HTTP) and a task queue of its own, with the same Poisson arrivals. Each application is a workflow making
one credit-score call (loanflow's FetchCreditScore activity) on the agency's task queue.

- **goodput/s**: calls the agency answered 200 within the measurement window, counted at the agency; calls still in
  flight at either edge of the window are in neither numerator nor denominator.
- **÷ capacity**: goodput over the agency's true capacity C(t)/mean service time, averaged over the window.
- **÷ oracle**: goodput over the oracle's in the same scenario (a pool always sized to the true capacity).
- **agency errors**: 503s (queue full or queue timeout) and 500s the agency sent, plus calls the client abandoned
  (timeout), over the calls the agency ended in the window.
- **goodput×(1−err) ÷ capacity**: the issue's figure of merit for loanflow against the peer.
- **app p50/p99**: workflow start to completion of the applications that ended in the window; failed applications
  (retries or the 30 s schedule-to-close exhausted) count in the latency and in "failed".
- **converged after steps**: for each step (the load step at 0 s, then the scenario's), the time after which the
  limit (for the unbounded strategy, the requests present at the agency) stayed within ±max(10% of the capacity,
  1 call) of the true capacity until the next step; "never" if it did not.
- **start→call**: from starting the workflow to the first attempt of its activity starting on a worker: Temporal's
  own latency plus any wait for a pool slot.

`
