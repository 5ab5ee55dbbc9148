// Package underwriting decides a loan application from its bureau scores and
// the customer's financials. It is pure and deterministic, so the workflow can
// call it directly and tests can cover it by table.
//
// The rules:
//   - the combined score is the rounded mean of the KCB and NICE scores; either
//     bureau below MinBureauScore, or the combined score below MinCombinedScore,
//     rejects with SCORE_TOO_LOW;
//   - the annual rate comes from the combined score's band, plus a premium for
//     terms longer than LongTermMonths;
//   - DSR = (existing annual debt service + the new loan's annual payment) /
//     annual income, in basis points. Above MaxDSR the amount is reduced to
//     the largest that fits (rounded down to AmountStep); if that is below the
//     product minimum the application is rejected with DSR_TOO_HIGH.
package underwriting

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"loanflow/loan"
)

// MaxDSRBasisPoints is the largest DSR Decide reports (10,000,000%): any
// higher ratio (income of a few won, say) is reported as this cap, which is
// far above every policy's ceiling and fits the decisions.dsr_bp column.
const MaxDSRBasisPoints = 1_000_000_000

// ErrInvalidFinancials means the financials are outside what underwriting
// accepts (negative, or above loan.MaxFinancialAmount); no decision is made.
var ErrInvalidFinancials = errors.New("financials out of range")

// Band maps a minimum combined score to an annual rate.
type Band struct {
	MinScore        int
	RateBasisPoints int
}

// Policy holds the underwriting thresholds.
type Policy struct {
	MinBureauScore   int
	MinCombinedScore int
	MaxDSR           int    // basis points of annual income
	Bands            []Band // highest MinScore first
	LongTermMonths   int
	LongTermPremium  int   // basis points added above LongTermMonths
	AmountStep       int64 // a reduced amount is a multiple of this, won
}

// DefaultPolicy is the personal-loan product's policy: DSR at most 40%.
func DefaultPolicy() Policy {
	return Policy{
		MinBureauScore:   500,
		MinCombinedScore: 600,
		MaxDSR:           4000,
		Bands: []Band{
			{MinScore: 900, RateBasisPoints: 450},
			{MinScore: 800, RateBasisPoints: 550},
			{MinScore: 700, RateBasisPoints: 700},
			{MinScore: 600, RateBasisPoints: 950},
		},
		LongTermMonths:  60,
		LongTermPremium: 50,
		AmountStep:      10_000,
	}
}

// Decide underwrites app. scores must hold one KCB and one NICE score.
func Decide(app loan.Application, scores []loan.CreditScore, fin loan.Financials, p Policy) (loan.Decision, error) {
	byAgency := map[string]int{}
	for _, s := range scores {
		byAgency[s.Agency] = s.Score
	}
	kcb, okK := byAgency["kcb"]
	nice, okN := byAgency["nice"]
	if !okK || !okN {
		return loan.Decision{}, fmt.Errorf("underwrite %s: need kcb and nice scores, got %d score(s)", app.ApplicationID, len(scores))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"annual_income", fin.AnnualIncome}, {"total_debt", fin.TotalDebt}, {"annual_debt_service", fin.AnnualDebtService}} {
		if f.v < 0 || f.v > loan.MaxFinancialAmount {
			return loan.Decision{}, fmt.Errorf("underwrite %s: %w: %s %d won: accepted 0 to %d",
				app.ApplicationID, ErrInvalidFinancials, f.name, f.v, loan.MaxFinancialAmount)
		}
	}
	combined := (kcb + nice + 1) / 2
	d := loan.Decision{CombinedScore: combined}
	if kcb < p.MinBureauScore || nice < p.MinBureauScore || combined < p.MinCombinedScore {
		d.Reason = loan.ReasonScoreTooLow
		return d, nil
	}
	rate := rateFor(combined, app.TermMonths, p)
	d.RateBasisPoints = rate
	if fin.AnnualIncome <= 0 {
		d.Reason = loan.ReasonNoIncome
		return d, nil
	}
	payment := MonthlyPayment(app.Amount, rate, app.TermMonths)
	d.DSRBasisPoints = dsr(fin.AnnualDebtService+12*payment, fin.AnnualIncome)
	amount := app.Amount
	if d.DSRBasisPoints > p.MaxDSR {
		// The yearly budget left for the new loan at the DSR ceiling.
		budget := fin.AnnualIncome*int64(p.MaxDSR)/10_000 - fin.AnnualDebtService
		amount = MaxPrincipal(budget/12, rate, app.TermMonths)
		amount -= amount % p.AmountStep
		for amount > 0 && dsr(fin.AnnualDebtService+12*MonthlyPayment(amount, rate, app.TermMonths), fin.AnnualIncome) > p.MaxDSR {
			amount -= p.AmountStep
		}
		if amount < loan.MinAmount {
			d.Reason = loan.ReasonDSRTooHigh
			return d, nil
		}
		payment = MonthlyPayment(amount, rate, app.TermMonths)
		d.DSRBasisPoints = dsr(fin.AnnualDebtService+12*payment, fin.AnnualIncome)
		d.Reason = loan.ReasonApprovedReduced
	} else {
		d.Reason = loan.ReasonApproved
	}
	d.Approved = true
	d.ApprovedAmount = amount
	d.MonthlyPayment = payment
	return d, nil
}

func rateFor(score, term int, p Policy) int {
	rate := 0
	for _, b := range p.Bands {
		if score >= b.MinScore {
			rate = b.RateBasisPoints
			break
		}
	}
	if term > p.LongTermMonths {
		rate += p.LongTermPremium
	}
	return rate
}

// dsr is debt service over income in basis points, rounded up so that a
// ratio a hair above the ceiling never rounds down to it, and capped at
// MaxDSRBasisPoints. It computes in 128 bits, so no input wraps around: a
// negative debt service counts as 0 and an income below 1 won as 1.
func dsr(annualDebtService, annualIncome int64) int {
	service := uint64(max(annualDebtService, 0))
	income := uint64(max(annualIncome, 1))
	hi, lo := bits.Mul64(service, 10_000)
	lo, carry := bits.Add64(lo, income-1, 0)
	hi += carry
	if hi >= income { // the quotient needs more than 64 bits
		return MaxDSRBasisPoints
	}
	q, _ := bits.Div64(hi, lo, income)
	if q > MaxDSRBasisPoints {
		return MaxDSRBasisPoints
	}
	return int(q)
}

// MonthlyPayment is the level (annuity) monthly payment of principal over
// term months at an annual rate in basis points, rounded up to the won.
func MonthlyPayment(principal int64, rateBasisPoints, term int) int64 {
	if rateBasisPoints == 0 {
		return (principal + int64(term) - 1) / int64(term)
	}
	r := float64(rateBasisPoints) / 10_000 / 12
	f := math.Pow(1+r, float64(term))
	return int64(math.Ceil(float64(principal) * r * f / (f - 1)))
}

// MaxPrincipal is the largest principal whose monthly payment fits in
// monthly won, rounded down to the won.
func MaxPrincipal(monthly int64, rateBasisPoints, term int) int64 {
	if monthly <= 0 {
		return 0
	}
	if rateBasisPoints == 0 {
		return monthly * int64(term)
	}
	r := float64(rateBasisPoints) / 10_000 / 12
	f := math.Pow(1+r, float64(term))
	return int64(math.Floor(float64(monthly) * (f - 1) / (r * f)))
}
