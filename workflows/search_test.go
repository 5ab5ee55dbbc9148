package workflows

import (
	"testing"

	"go.temporal.io/sdk/worker"

	"loanflow/loan"
)

func TestAmountBand(t *testing.T) {
	for amount, want := range map[int64]string{
		loan.MinAmount - 1: "UNDER-1M",
		loan.MinAmount:     "1M-5M",
		4_999_999:          "1M-5M",
		5_000_000:          "5M-10M",
		10_000_000:         "10M-30M",
		29_999_999:         "10M-30M",
		30_000_000:         "30M-50M",
		50_000_000:         "50M-100M",
		loan.MaxAmount:     "50M-100M",
		loan.MaxAmount + 1: "OVER-100M",
	} {
		if got := AmountBand(amount); got != want {
			t.Errorf("AmountBand(%d) = %q, want %q", amount, got, want)
		}
	}
}

// A run recorded before the search attributes lost their personal data
// (it upserted CustomerId and RequestedAmount, with plaintext payloads)
// replays against today's code: GetVersion keeps it on its old branch.
func TestReplayRunFromBeforeSearchAttributeChange(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(LoanApplicationWorkflow)
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/loan_before_search_change.json"); err != nil {
		t.Fatal(err)
	}
}
