// Package loan holds the loan application's data types and the validation of
// an application's input. Money is int64 won: KRW has no minor unit.
package loan

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Product limits of the personal-loan product.
const (
	MinAmount     int64 = 1_000_000   // won
	MaxAmount     int64 = 100_000_000 // won
	MinTermMonths       = 6
	MaxTermMonths       = 120
)

// MaxFinancialAmount bounds every figure of Financials (income, debt, debt
// service), in won: 1 trillion won is far above any personal borrower's,
// and small enough that underwriting's arithmetic on it (times 10,000 basis
// points, plus a year of payments) stays far inside int64. Agencies'
// answers outside 0..MaxFinancialAmount are invalid data.
const MaxFinancialAmount int64 = 1_000_000_000_000

var (
	customerIDPattern    = regexp.MustCompile(`^C[0-9]{8}$`)
	applicationIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Application is what a customer submits.
type Application struct {
	ApplicationID string `json:"application_id"`
	CustomerID    string `json:"customer_id"`
	Amount        int64  `json:"amount"` // requested principal, won
	TermMonths    int    `json:"term_months"`
}

// FieldError says which input field is wrong, what it held and what is accepted.
type FieldError struct {
	Field    string
	Value    string
	Accepted string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid %s %s: accepted %s", e.Field, e.Value, e.Accepted)
}

// Validate checks an application against the product's rules and returns the
// first *FieldError found.
func (a Application) Validate() error {
	if !applicationIDPattern.MatchString(a.ApplicationID) {
		return &FieldError{"application_id", strconv.Quote(a.ApplicationID),
			"1 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"}
	}
	if !customerIDPattern.MatchString(a.CustomerID) {
		return &FieldError{"customer_id", strconv.Quote(a.CustomerID), `"C" followed by 8 digits, e.g. C00012345`}
	}
	if a.Amount < MinAmount || a.Amount > MaxAmount {
		return &FieldError{"amount", strconv.FormatInt(a.Amount, 10),
			fmt.Sprintf("%d to %d won", MinAmount, MaxAmount)}
	}
	if a.TermMonths < MinTermMonths || a.TermMonths > MaxTermMonths {
		return &FieldError{"term_months", strconv.Itoa(a.TermMonths),
			fmt.Sprintf("%d to %d months", MinTermMonths, MaxTermMonths)}
	}
	return nil
}

// CreditScore is one bureau's score for a customer.
type CreditScore struct {
	Agency   string `json:"agency"`    // "kcb" or "nice"
	Score    int    `json:"score"`     // 1..1000, higher is better
	ReportID string `json:"report_id"` // the bureau's reference for the inquiry
}

// Financials are a customer's existing debts and income, from MyData or app scraping.
type Financials struct {
	Source            string `json:"source"`              // "mydata" or "scraping"
	AnnualIncome      int64  `json:"annual_income"`       // won
	TotalDebt         int64  `json:"total_debt"`          // outstanding principal, won
	AnnualDebtService int64  `json:"annual_debt_service"` // principal and interest due per year on existing debt, won
	ReportID          string `json:"report_id"`
}

// Status is an application's lifecycle state, as shown in the LoanStatus search attribute.
type Status string

// Application statuses. RECEIVED, CHECKING_CREDIT and UNDERWRITING are
// progress; APPROVED means decided and waiting for disbursement, and moves
// only to DISBURSED, CANCELLED or (when booking it would exceed the
// customer's exposure limit) REJECTED. DISBURSED, REJECTED, FAILED and
// CANCELLED are final: nothing leaves them.
const (
	StatusReceived       Status = "RECEIVED"
	StatusCheckingCredit Status = "CHECKING_CREDIT"
	StatusUnderwriting   Status = "UNDERWRITING"
	StatusApproved       Status = "APPROVED"
	StatusDisbursed      Status = "DISBURSED"
	StatusRejected       Status = "REJECTED"
	StatusFailed         Status = "FAILED"
	StatusCancelled      Status = "CANCELLED"
)

// Final reports whether nothing may follow s: DISBURSED, REJECTED, FAILED or
// CANCELLED.
func (s Status) Final() bool {
	switch s {
	case StatusDisbursed, StatusRejected, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Reason codes of a decision.
const (
	ReasonApproved = "APPROVED"
	// ReasonApprovedReduced: approved for less than requested, to keep DSR under the ceiling.
	ReasonApprovedReduced = "APPROVED_REDUCED"
	ReasonScoreTooLow     = "SCORE_TOO_LOW"
	ReasonDSRTooHigh      = "DSR_TOO_HIGH"
	ReasonAgencyFailed    = "AGENCY_FAILED"
	// ReasonAgencyInvalidData: an agency answered figures that are out of
	// their plausible range (or malformed beyond retrying); the detail names
	// the agency and the field. Final: the same question gets the same answer.
	ReasonAgencyInvalidData = "AGENCY_INVALID_DATA"
	ReasonNoIncome          = "NO_INCOME"
	// ReasonExposureLimitExceeded: approved by underwriting, but booking the
	// loan would take the customer's outstanding exposure past their limit.
	ReasonExposureLimitExceeded = "EXPOSURE_LIMIT_EXCEEDED"
	// ReasonLoanProductUnavailable: refused at entry while a mandatory
	// credit bureau's breaker is open; no agency was called.
	ReasonLoanProductUnavailable = "LOAN_PRODUCT_UNAVAILABLE"
	// ReasonCreditBureauUnavailable: a mandatory bureau stayed unavailable
	// past the workflow's bounded wait (Options.BureauWait).
	ReasonCreditBureauUnavailable = "CREDIT_BUREAU_UNAVAILABLE"
	// ReasonCancelled: the cancel signal arrived before disbursement; the
	// caller's own words are in Result.StatusDetail. A cancel through
	// Temporal (CancelWorkflow, CLI, Web UI) has the same code.
	ReasonCancelled = "CANCELLED"
	// ReasonUnderwritingFailed, ReasonPersistenceFailed and
	// ReasonDisbursementFailed explain a FAILED status reached after the
	// credit check: the decision could not be made, Postgres could not
	// store it in time, or disbursement failed for good (e.g. a loan booked
	// earlier with other terms); Result.Error has the story.
	ReasonUnderwritingFailed = "UNDERWRITING_FAILED"
	ReasonPersistenceFailed  = "PERSISTENCE_FAILED"
	ReasonDisbursementFailed = "DISBURSEMENT_FAILED"
	// ReasonWaitingForAgency is not final: an agency call's budget ended
	// in the agency's queue (a backlog, not a failure) and the call was
	// scheduled again; Result.StatusDetail says which agency and until when.
	ReasonWaitingForAgency = "WAITING_FOR_AGENCY"
	// ReasonAgencyBacklog: an agency's backlog outlasted the workflow's
	// bounded wait for it (Options.AgencyQueueWait); the agency itself
	// never failed the call.
	ReasonAgencyBacklog = "AGENCY_BACKLOG"
)

// CleanText makes free text from outside (a cancel reason, an error from an
// agency) safe to store, log and print: invalid UTF-8 and control
// characters become spaces, and the text is cut to at most max bytes on a
// character boundary, with "…" marking the cut.
func CleanText(s string, max int) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, " ") {
		if unicode.IsControl(r) || r == utf8.RuneError {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > max {
			const ellipsis = "…"
			out := b.String()
			for len(out)+len(ellipsis) > max && len(out) > 0 {
				_, size := utf8.DecodeLastRuneInString(out)
				out = out[:len(out)-size]
			}
			if len(out)+len(ellipsis) <= max {
				out += ellipsis
			}
			return out
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Decision is the underwriting outcome.
type Decision struct {
	Approved        bool   `json:"approved"`
	Reason          string `json:"reason"`
	CombinedScore   int    `json:"combined_score"`
	DSRBasisPoints  int    `json:"dsr_bp"`          // DSR at the approved (or requested, if rejected) amount; 4000 = 40%
	RateBasisPoints int    `json:"rate_bp"`         // annual interest rate; 650 = 6.50%
	ApprovedAmount  int64  `json:"approved_amount"` // won; 0 when rejected
	MonthlyPayment  int64  `json:"monthly_payment"` // won; 0 when rejected
}

// Disbursement is the loan booked against the customer's exposure and paid
// out for an approved application.
type Disbursement struct {
	LoanID         int64     `json:"loan_id"`
	Amount         int64     `json:"amount"`          // principal disbursed, won
	MonthlyPayment int64     `json:"monthly_payment"` // won
	DisbursedAt    time.Time `json:"disbursed_at"`
}

// Result is what LoanApplicationWorkflow returns.
type Result struct {
	ApplicationID string        `json:"application_id"`
	Status        Status        `json:"status"`
	Decision      *Decision     `json:"decision,omitempty"`
	Scores        []CreditScore `json:"scores,omitempty"`
	Financials    *Financials   `json:"financials,omitempty"`
	CreditPath    string        `json:"credit_path,omitempty"` // MYDATA or SCRAPING
	Error         string        `json:"error,omitempty"`
	// StatusReason is the reason code of a status reached after (or instead
	// of) the decision: EXPOSURE_LIMIT_EXCEEDED or CANCELLED. It overrides
	// the decision's reason in Reason.
	StatusReason string `json:"status_reason,omitempty"`
	// StatusDetail says more about StatusReason: the exposure figures, or
	// the reason given with the cancel signal.
	StatusDetail string `json:"status_detail,omitempty"`
	// Disbursement is set once the loan is disbursed.
	Disbursement *Disbursement `json:"disbursement,omitempty"`
}

// Reason is the status's own reason code when it has one (a cancellation, or
// an exposure limit hit at disbursement), else the decision's reason code, or
// AGENCY_FAILED when the credit check failed before a decision could be made.
func (r Result) Reason() string {
	if r.StatusReason != "" {
		return r.StatusReason
	}
	if r.Decision != nil {
		return r.Decision.Reason
	}
	if r.Status == StatusFailed {
		return ReasonAgencyFailed
	}
	return ""
}

// Diff lists the fields in which given differs from stored, each as "field
// <word> X, given Y" (word says where stored comes from, e.g. "existing").
// A duplicate start or save with other content is refused with this list.
func Diff(stored, given Application, word string) []string {
	var out []string
	if stored.CustomerID != given.CustomerID {
		out = append(out, fmt.Sprintf("customer_id %s %s, given %s", word, stored.CustomerID, given.CustomerID))
	}
	if stored.Amount != given.Amount {
		out = append(out, fmt.Sprintf("amount %s %d, given %d", word, stored.Amount, given.Amount))
	}
	if stored.TermMonths != given.TermMonths {
		out = append(out, fmt.Sprintf("term_months %s %d, given %d", word, stored.TermMonths, given.TermMonths))
	}
	return out
}
