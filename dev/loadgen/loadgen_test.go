package loadgen

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"loanflow/loan"
)

// The live line counts an application that finished FAILED as failed at
// once, not only a workflow that ended in error.
func TestProgressCountsFailedApplications(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, 3)
	for _, o := range []Outcome{
		{Result: loan.Result{Status: loan.StatusDisbursed}},
		{Result: loan.Result{Status: loan.StatusFailed, StatusReason: loan.ReasonAgencyFailed}},
		{Err: errors.New("workflow timed out")},
	} {
		p.started()
		p.finished(!o.Failed(), true)
	}
	p.finish()
	line := buf.String()
	if i := strings.LastIndex(line, "\r"); i >= 0 {
		line = line[i:]
	}
	if !strings.Contains(line, "3/3 done, 0 in flight, 2 failed") {
		t.Fatalf("live line %q, want 2 failed (one FAILED status, one error)", line)
	}
}

// A log file or a pipe gets plain lines, not carriage-return frames that
// pile up as one garbled line.
func TestProgressWithoutTerminalWritesPlainLines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, 2)
	p.started()
	p.finished(true, true)
	p.started()
	p.finished(false, true)
	p.finish()
	if strings.Contains(buf.String(), "\r") {
		t.Fatalf("progress into a non-terminal writes \\r frames: %q", buf.String())
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "2/2 done, 0 in flight, 1 failed") {
		t.Fatalf("last line %q, want the final counts", last)
	}
}
