package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// tally is one kind's count over scorecard runs: the misses (phases below
// the goodput target or above the errors target, and recoveries, or for a
// lasting kind settlings, over 5 s) and the steps after which the limit
// was not within the band for good within 5 s.
type tally struct {
	Misses, NotConverged, Runs int
}

func (t *tally) add(o tally) {
	t.Misses += o.Misses
	t.NotConverged += o.NotConverged
	t.Runs += o.Runs
}

// summaryLine is TestScorecard's count per kind, e.g.
//
//	misses capacity ½: 18 phases, 17 recoveries (not converged within 5 s: 23 after the load step, 23 after the change, 18 after the recovery, of 36 runs)
var (
	summaryLine = regexp.MustCompile(`misses (.+?)\s*: (\d+) phases, (\d+) (?:recoveries|unsettled) \(not converged within 5 s: (.*), of (\d+) runs\)`)
	afterStep   = regexp.MustCompile(`(\d+) after`)
)

// parseScorecard reads TestScorecard's output and returns its tally per
// kind. It fails when the output holds no summary line: the run did not get
// as far as its counts (a build or flag error, or a panic).
func parseScorecard(r io.Reader) (map[string]tally, error) {
	kinds := map[string]tally{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		m := summaryLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var t tally
		phases, _ := strconv.Atoi(m[2])
		steps, _ := strconv.Atoi(m[3])
		t.Misses = phases + steps
		for _, a := range afterStep.FindAllStringSubmatch(m[4], -1) {
			n, _ := strconv.Atoi(a[1])
			t.NotConverged += n
		}
		t.Runs, _ = strconv.Atoi(m[5])
		k := kinds[m[1]]
		k.add(t)
		kinds[m[1]] = k
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("no scorecard summary in the output")
	}
	return kinds, nil
}
