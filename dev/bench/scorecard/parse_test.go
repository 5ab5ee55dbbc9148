package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseScorecard(t *testing.T) {
	out := `=== RUN   TestScorecard
    scorecard_test.go:301: 
        incident   C20 100ms 3w 3x s1 | p1 1.00 err  0.0% limit 19.8/20
        misses incident  : 43 phases, 12 recoveries (not converged within 5 s: 23 after the load step, 30 after the change, 21 after the recovery, of 36 runs)
        misses capacity ½: 18 phases, 17 recoveries (not converged within 5 s: 23 after the load step, 23 after the change, 18 after the recovery, of 36 runs)
        misses no queue lost 70%: 5 phases, 2 unsettled (not converged within 5 s: 4 after the load step, of 12 runs)
--- FAIL: TestScorecard (15.23s)
FAIL
`
	got, err := parseScorecard(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]tally{
		"incident":          {Misses: 55, NotConverged: 74, Runs: 36},
		"capacity ½":        {Misses: 35, NotConverged: 64, Runs: 36},
		"no queue lost 70%": {Misses: 7, NotConverged: 4, Runs: 12},
	}
	if len(got) != len(want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
	if _, err := parseScorecard(strings.NewReader("FAIL\tloanflow/flowcontrol/flowsim [build failed]\n")); err == nil {
		t.Error("output without a summary: no error")
	}
}

func TestReportSumsKindsPerPart(t *testing.T) {
	ranges := [][2]int{{1, 6}, {7, 12}}
	results := make([][]map[string]tally, len(parts))
	for p := range results {
		results[p] = []map[string]tally{{}, {}}
	}
	results[0][0]["incident"] = tally{Misses: 3, NotConverged: 1, Runs: 6}
	results[0][0]["slowdown"] = tally{Misses: 4, NotConverged: 3, Runs: 6}
	results[0][1]["incident"] = tally{Misses: 2, NotConverged: 2, Runs: 6}
	results[2][1]["capacity ½"] = tally{Misses: 5, NotConverged: 6, Runs: 6}
	got := report(ranges, results, 27, 0.12, 5*time.Second, false)
	for _, want := range []string{
		"the law before change 27 (State.Law 27), calls spread by σ 0.12",
		"| part | seeds 1–6 | seeds 7–12 |\n|---|---:|---:|\n",
		"| tuned | 7 / 4 | 2 / 2 |",
		"| held-out A | 0 / 0 | 0 / 0 |",
		"| held-out B | 0 / 0 | 5 / 6 |",
		"| held-out C | 0 / 0 | 0 / 0 |",
		"| part | kind | seeds 1–6 | seeds 7–12 |\n|---|---|---:|---:|\n",
		"| tuned | slowdown | 4 / 3 | 0 / 0 |",
		"| held-out B | capacity ½ | 0 / 0 | 5 / 6 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "lasting") {
		t.Errorf("report without the lasting kinds shows them:\n%s", got)
	}
}
