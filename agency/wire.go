package agency

import "loanflow/loan"

// The wire protocol, shared by the client and the simulator (agencysim).
//
//	GET {base}/v1/score?customer_id=C00012345&application_id=A-1        (kcb, nice)
//	  200 {"customer_id":"C00012345","score":742,"report_id":"kcb-…"}
//	GET {base}/v1/financials?customer_id=C00012345&application_id=A-1   (mydata, scraping)
//	  200 {"customer_id":"C00012345","annual_income":52000000,"total_debt":30000000,
//	       "annual_debt_service":7200000,"report_id":"mydata-…"}
//
// Failures answer a status code with {"error":"…"}: 400 for a malformed
// request (e.g. a customer id that is not "C" and 8 digits), 429 or 503 when
// overloaded (with Retry-After in seconds), 500 for the agency's own failure.
// Amounts are int64 won.

// Endpoint paths, relative to an agency's base URL.
const (
	ScorePath      = "/v1/score"
	FinancialsPath = "/v1/financials"
)

// Query parameter names.
const (
	ParamCustomerID    = "customer_id"
	ParamApplicationID = "application_id"
)

// ScoreResponse is the body of a successful score inquiry.
type ScoreResponse struct {
	CustomerID string `json:"customer_id"`
	Score      int    `json:"score"`
	ReportID   string `json:"report_id"`
}

// FinancialsResponse is the body of a successful financials inquiry.
type FinancialsResponse struct {
	CustomerID        string `json:"customer_id"`
	AnnualIncome      int64  `json:"annual_income"`
	TotalDebt         int64  `json:"total_debt"`
	AnnualDebtService int64  `json:"annual_debt_service"`
	ReportID          string `json:"report_id"`
}

// ErrorResponse is the body of any non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Score bounds accepted from a bureau.
const (
	MinScore = 1
	MaxScore = 1000
)

// Plausibility bounds on the financials an agency may report. Answers are
// untrusted input: a figure outside these bounds is invalid data (final,
// never retried), not a customer to underwrite.
//
// MaxAnnualAmount (1 trillion won) is far above any personal borrower's
// income, debt or yearly debt service, and small enough that every product
// underwriting forms (a figure times 10,000 basis points, plus a year of a
// new loan's payments) stays far inside int64.
const (
	MaxAnnualAmount = loan.MaxFinancialAmount
	// MaxReportIDLength bounds an agency's report reference; it must also be
	// printable (no control characters), since it is stored and logged.
	MaxReportIDLength = 128
)
