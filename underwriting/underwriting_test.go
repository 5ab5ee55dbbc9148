package underwriting

import (
	"testing"

	"loanflow/loan"
)

func scores(kcb, nice int) []loan.CreditScore {
	return []loan.CreditScore{{Agency: "kcb", Score: kcb}, {Agency: "nice", Score: nice}}
}

func TestDecide(t *testing.T) {
	app := loan.Application{ApplicationID: "a1", CustomerID: "C00000001", Amount: 30_000_000, TermMonths: 36}
	rich := loan.Financials{AnnualIncome: 80_000_000, AnnualDebtService: 6_000_000}
	tests := []struct {
		name     string
		app      loan.Application
		scores   []loan.CreditScore
		fin      loan.Financials
		approved bool
		reason   string
		rate     int
		amount   int64
		combined int
		maxDSR   int // DSR must not exceed this (0 = not checked)
		exactDSR int // DSR must equal this (0 = not checked)
	}{
		{name: "approve prime", app: app, scores: scores(910, 930), fin: rich,
			approved: true, reason: loan.ReasonApproved, rate: 450, amount: 30_000_000, combined: 920, maxDSR: 4000},
		{name: "approve near-prime band", app: app, scores: scores(720, 690), fin: rich,
			approved: true, reason: loan.ReasonApproved, rate: 700, amount: 30_000_000, combined: 705},
		{name: "long term premium", app: loan.Application{ApplicationID: "a", CustomerID: "C00000001", Amount: 30_000_000, TermMonths: 84},
			scores: scores(820, 800), fin: rich, approved: true, reason: loan.ReasonApproved, rate: 600, amount: 30_000_000, combined: 810},
		{name: "reject combined score", app: app, scores: scores(590, 600), fin: rich,
			reason: loan.ReasonScoreTooLow, combined: 595},
		{name: "reject one bureau below floor", app: app, scores: scores(990, 499), fin: rich,
			reason: loan.ReasonScoreTooLow, combined: 745},
		{name: "reject no income", app: app, scores: scores(800, 800), fin: loan.Financials{},
			reason: loan.ReasonNoIncome, combined: 800, rate: 550},
		{name: "reject DSR: existing debt already at ceiling", app: app, scores: scores(800, 800),
			fin:    loan.Financials{AnnualIncome: 40_000_000, AnnualDebtService: 16_000_000},
			reason: loan.ReasonDSRTooHigh, combined: 800, rate: 550},
		{name: "reduce amount to fit DSR", app: app, scores: scores(800, 800),
			fin:      loan.Financials{AnnualIncome: 40_000_000, AnnualDebtService: 10_000_000},
			approved: true, reason: loan.ReasonApprovedReduced, combined: 800, rate: 550, maxDSR: 4000},
		{name: "exactly at the ceiling is approved", app: loan.Application{ApplicationID: "a", CustomerID: "C00000001", Amount: 12_000_000, TermMonths: 12},
			scores: scores(800, 800), fin: loan.Financials{AnnualIncome: 100_000_000, AnnualDebtService: 40_000_000 - 12*MonthlyPayment(12_000_000, 550, 12)},
			approved: true, reason: loan.ReasonApproved, combined: 800, rate: 550, amount: 12_000_000, exactDSR: 4000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(tc.app, tc.scores, tc.fin, DefaultPolicy())
			if err != nil {
				t.Fatal(err)
			}
			if d.Approved != tc.approved || d.Reason != tc.reason || d.CombinedScore != tc.combined {
				t.Fatalf("got approved=%v reason=%s combined=%d, want %v %s %d", d.Approved, d.Reason, d.CombinedScore, tc.approved, tc.reason, tc.combined)
			}
			if tc.rate != 0 && d.RateBasisPoints != tc.rate {
				t.Errorf("rate = %d bp, want %d", d.RateBasisPoints, tc.rate)
			}
			if tc.amount != 0 && d.ApprovedAmount != tc.amount {
				t.Errorf("amount = %d, want %d", d.ApprovedAmount, tc.amount)
			}
			if tc.maxDSR != 0 && d.DSRBasisPoints > tc.maxDSR {
				t.Errorf("DSR = %d bp, want <= %d", d.DSRBasisPoints, tc.maxDSR)
			}
			if tc.exactDSR != 0 && d.DSRBasisPoints != tc.exactDSR {
				t.Errorf("DSR = %d bp, want %d", d.DSRBasisPoints, tc.exactDSR)
			}
			if !d.Approved && (d.ApprovedAmount != 0 || d.MonthlyPayment != 0) {
				t.Errorf("rejected decision carries money: %+v", d)
			}
			if d.Approved && d.MonthlyPayment != MonthlyPayment(d.ApprovedAmount, d.RateBasisPoints, tc.app.TermMonths) {
				t.Errorf("monthly payment %d does not match amount %d", d.MonthlyPayment, d.ApprovedAmount)
			}
		})
	}
}

func TestReducedAmountIsLargestThatFits(t *testing.T) {
	app := loan.Application{ApplicationID: "a", CustomerID: "C00000001", Amount: 50_000_000, TermMonths: 36}
	fin := loan.Financials{AnnualIncome: 40_000_000, AnnualDebtService: 10_000_000}
	p := DefaultPolicy()
	d, err := Decide(app, scores(800, 800), fin, p)
	if err != nil {
		t.Fatal(err)
	}
	if d.ApprovedAmount%p.AmountStep != 0 || d.ApprovedAmount >= app.Amount {
		t.Fatalf("reduced amount %d: want a multiple of %d below %d", d.ApprovedAmount, p.AmountStep, app.Amount)
	}
	next := d.ApprovedAmount + p.AmountStep
	if dsr(fin.AnnualDebtService+12*MonthlyPayment(next, d.RateBasisPoints, 36), fin.AnnualIncome) <= p.MaxDSR {
		t.Fatalf("amount %d also fits the DSR ceiling, so %d is not the largest", next, d.ApprovedAmount)
	}
}

func TestDecideNeedsBothBureaus(t *testing.T) {
	app := loan.Application{ApplicationID: "a", CustomerID: "C00000001", Amount: 5_000_000, TermMonths: 12}
	if _, err := Decide(app, []loan.CreditScore{{Agency: "kcb", Score: 900}}, loan.Financials{AnnualIncome: 1}, DefaultPolicy()); err == nil {
		t.Fatal("want an error without a NICE score")
	}
}

func TestMonthlyPayment(t *testing.T) {
	tests := []struct {
		principal int64
		rate, n   int
		want      int64
	}{
		{12_000_000, 0, 12, 1_000_000},
		{10_000_000, 1200, 12, 888_488}, // 1% a month: the textbook 888,487.89 rounded up
		{1_000_000, 600, 6, 169_596},
	}
	for _, tc := range tests {
		if got := MonthlyPayment(tc.principal, tc.rate, tc.n); got != tc.want {
			t.Errorf("MonthlyPayment(%d, %d, %d) = %d, want %d", tc.principal, tc.rate, tc.n, got, tc.want)
		}
		if p := MaxPrincipal(tc.want, tc.rate, tc.n); p < tc.principal || MonthlyPayment(p+1, tc.rate, tc.n) <= tc.want {
			t.Errorf("MaxPrincipal(%d) = %d is not the largest principal for that payment", tc.want, p)
		}
	}
}
