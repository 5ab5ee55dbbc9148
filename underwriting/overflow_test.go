package underwriting

import (
	"math"
	"testing"

	"loanflow/loan"
)

var goodScores = []loan.CreditScore{{Agency: "kcb", Score: 850}, {Agency: "nice", Score: 830}}

// Absurd financials (an agency's hostile answer, or a bug upstream) must
// never wrap around into an approval: the DSR saturates and the application
// is rejected, or Decide refuses the figures.
func TestDecideHostileFinancialsNeverApprove(t *testing.T) {
	app := loan.Application{ApplicationID: "a", CustomerID: "C00012345", Amount: loan.MaxAmount, TermMonths: 120}
	for _, tc := range []struct {
		name string
		fin  loan.Financials
	}{
		{"debt service wraps the DSR", loan.Financials{AnnualIncome: 50_000_000, AnnualDebtService: math.MaxInt64/10_000 + 1_844_674_407_370_955}},
		{"debt service int64 max", loan.Financials{AnnualIncome: 50_000_000, AnnualDebtService: math.MaxInt64}},
		{"debt service near max", loan.Financials{AnnualIncome: 50_000_000, AnnualDebtService: math.MaxInt64 - 5}},
		{"income 1 won", loan.Financials{AnnualIncome: 1, AnnualDebtService: 5_000_000}},
		{"negative debt service", loan.Financials{AnnualIncome: 50_000_000, AnnualDebtService: -100_000_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(app, goodScores, tc.fin, DefaultPolicy())
			if err != nil {
				return // refused: fine
			}
			if d.Approved {
				t.Fatalf("approved %+v for %+v", d, tc.fin)
			}
			if d.DSRBasisPoints < 0 || d.DSRBasisPoints > MaxDSRBasisPoints {
				t.Fatalf("DSR %d bp outside 0..%d", d.DSRBasisPoints, MaxDSRBasisPoints)
			}
		})
	}
}

// The DSR of annual_income = 1 fits decisions.dsr_bp (a Postgres int).
func TestDSRSaturates(t *testing.T) {
	for _, tc := range []struct {
		service, income int64
		want            int
	}{
		{5_000_000, 1, MaxDSRBasisPoints},
		{math.MaxInt64, 1, MaxDSRBasisPoints},
		{math.MaxInt64, math.MaxInt64, 10_000},
		{20_000_000, 50_000_000, 4000},
		{20_000_001, 50_000_000, 4001}, // rounded up
		{0, 50_000_000, 0},
	} {
		if got := dsr(tc.service, tc.income); got != tc.want {
			t.Errorf("dsr(%d, %d) = %d, want %d", tc.service, tc.income, got, tc.want)
		}
	}
	if MaxDSRBasisPoints > math.MaxInt32 {
		t.Fatalf("MaxDSRBasisPoints %d does not fit a Postgres int", MaxDSRBasisPoints)
	}
}

// FuzzDecide: whatever the figures, Decide never panics, never approves more
// than asked, never approves over the DSR ceiling, and its numbers fit the
// database columns.
func FuzzDecide(f *testing.F) {
	f.Add(int64(30_000_000), 36, 850, 830, int64(70_000_000), int64(5_000_000))
	f.Add(int64(100_000_000), 120, 1000, 1000, int64(1), int64(math.MaxInt64))
	f.Add(int64(1_000_000), 6, 600, 600, int64(math.MaxInt64), int64(0))
	f.Fuzz(func(t *testing.T, amount int64, term, kcb, nice int, income, service int64) {
		app := loan.Application{ApplicationID: "a", CustomerID: "C00012345", Amount: amount, TermMonths: term}
		if app.Validate() != nil || kcb < 1 || kcb > 1000 || nice < 1 || nice > 1000 {
			return
		}
		p := DefaultPolicy()
		d, err := Decide(app, []loan.CreditScore{{Agency: "kcb", Score: kcb}, {Agency: "nice", Score: nice}},
			loan.Financials{AnnualIncome: income, AnnualDebtService: service}, p)
		if err != nil {
			return
		}
		if d.DSRBasisPoints < 0 || d.DSRBasisPoints > MaxDSRBasisPoints {
			t.Fatalf("DSR %d out of range", d.DSRBasisPoints)
		}
		if d.Approved {
			if d.ApprovedAmount < loan.MinAmount || d.ApprovedAmount > amount || d.DSRBasisPoints > p.MaxDSR || d.MonthlyPayment <= 0 {
				t.Fatalf("approved %+v for amount %d income %d service %d", d, amount, income, service)
			}
		}
	})
}
