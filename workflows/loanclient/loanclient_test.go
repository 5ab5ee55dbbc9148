package loanclient

import (
	"strings"
	"testing"

	"loanflow/loan"
)

func TestDiffNamesEachField(t *testing.T) {
	a := loan.Application{ApplicationID: "a", CustomerID: "C00000001", Amount: 10_000_000, TermMonths: 24}
	if d := Diff(a, a); len(d) != 0 {
		t.Fatalf("same application differs: %v", d)
	}
	b := loan.Application{ApplicationID: "a", CustomerID: "C00000002", Amount: 20_000_000, TermMonths: 36}
	got := strings.Join(Diff(a, b), "; ")
	for _, want := range []string{"customer_id existing C00000001, given C00000002", "amount existing 10000000, given 20000000", "term_months existing 24, given 36"} {
		if !strings.Contains(got, want) {
			t.Errorf("diff %q lacks %q", got, want)
		}
	}
}
