package agency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"loanflow/loan"
)

// DefaultTimeout bounds one agency call when ClientConfig.Timeout is zero.
const DefaultTimeout = 3 * time.Second

// maxBody bounds how much of an answer is read; real answers are a few hundred bytes.
const maxBody = 64 << 10

// ClientConfig configures a Client.
type ClientConfig struct {
	// URLs holds the base URL of each agency the client may call, e.g.
	// "http://agencysim:8090/kcb". Agencies left out cannot be called.
	URLs map[Name]string
	// Timeout bounds each call, from sending the request to reading the
	// answer; zero means DefaultTimeout.
	Timeout time.Duration
	// AllowInsecureHTTP accepts plain http URLs for hosts other than
	// loopback, e.g. a simulator on a private network in development. Real
	// agencies carry personal data and must be reached over https; http to
	// 127.0.0.1, ::1 or localhost is always accepted.
	AllowInsecureHTTP bool
	// HTTPClient sends the requests; nil means a client whose transport keeps
	// enough idle connections per agency for a large worker pool (the
	// standard library keeps only 2, which churns connections under load).
	HTTPClient *http.Client
}

// URLsFromBase gives every agency a base URL under one server, e.g.
// base+"/kcb", which is how the simulator (agencysim) serves them.
func URLsFromBase(base string) map[Name]string {
	base = strings.TrimRight(base, "/")
	urls := make(map[Name]string, len(All))
	for _, n := range All {
		urls[n] = base + "/" + string(n)
	}
	return urls
}

// Client calls the agencies over HTTP. It is safe for concurrent use.
type Client struct {
	urls    map[Name]string
	timeout time.Duration
	http    *http.Client
}

// NewClient checks cfg and builds a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("invalid agency client config: URLs is empty: accepted a base URL for at least one of %s", acceptedNames())
	}
	urls := make(map[Name]string, len(cfg.URLs))
	for n, raw := range cfg.URLs {
		if !n.Valid() {
			return nil, fmt.Errorf("invalid agency client config: URLs has agency %s: accepted %s", strconv.Quote(string(n)), acceptedNames())
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("invalid agency client config: URLs[%s] %s: accepted an absolute http or https URL without query, e.g. http://localhost:8090/%s", n, strconv.Quote(raw), n)
		}
		if u.Scheme == "http" && !cfg.AllowInsecureHTTP && !loopback(u.Hostname()) {
			return nil, fmt.Errorf("invalid agency client config: URLs[%s] %s: accepted https only (plain http only for loopback, or with %s=1 for a development network)", n, strconv.Quote(raw), AllowHTTPEnv)
		}
		urls[n] = strings.TrimRight(raw, "/")
	}
	timeout := cfg.Timeout
	if timeout < 0 {
		return nil, fmt.Errorf("invalid agency client config: Timeout %s: accepted a positive duration, or 0 for %s", timeout, DefaultTimeout)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	return &Client{urls: urls, timeout: timeout, http: hc}, nil
}

// AllowHTTPEnv is the environment variable that sets
// ClientConfig.AllowInsecureHTTP in the worker.
const AllowHTTPEnv = "LOANFLOW_AGENCY_ALLOW_HTTP"

// loopback reports whether host is this machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func defaultHTTPClient() *http.Client {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	} else {
		t = t.Clone()
	}
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: t}
}

// Timeout is the bound on each call.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Agencies lists the agencies this client has a URL for, in the order of All.
func (c *Client) Agencies() []Name {
	var out []Name
	for _, n := range All {
		if _, ok := c.urls[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// CreditScore asks a bureau (KCB or NICE) for the customer's score. Failures
// are *CallError; an answer whose score is outside 1..1000 is ClassInvalidData.
func (c *Client) CreditScore(ctx context.Context, agency Name, customerID, applicationID string) (loan.CreditScore, error) {
	body, err := c.get(ctx, agency, KindScore, customerID, applicationID)
	if err != nil {
		return loan.CreditScore{}, err
	}
	return decodeScore(agency, customerID, body)
}

// decodeScore checks and decodes a bureau's 200 answer.
func decodeScore(agency Name, customerID string, raw []byte) (loan.CreditScore, error) {
	var body struct {
		CustomerID *string `json:"customer_id"`
		Score      *int64  `json:"score"`
		ReportID   *string `json:"report_id"`
	}
	if err := decode(agency, raw, &body); err != nil {
		return loan.CreditScore{}, err
	}
	if err := checkPresent(agency, []field{{"customer_id", body.CustomerID != nil},
		{"score", body.Score != nil}, {"report_id", body.ReportID != nil}}); err != nil {
		return loan.CreditScore{}, err
	}
	if *body.CustomerID != customerID {
		return loan.CreditScore{}, invalidData(agency, "customer_id %s in answer differs from %s asked", quoteShort(*body.CustomerID), strconv.Quote(customerID))
	}
	if *body.Score < MinScore || *body.Score > MaxScore {
		return loan.CreditScore{}, invalidData(agency, "score %d out of range %d..%d", *body.Score, MinScore, MaxScore)
	}
	if err := checkReportID(agency, *body.ReportID); err != nil {
		return loan.CreditScore{}, err
	}
	return loan.CreditScore{Agency: string(agency), Score: int(*body.Score), ReportID: *body.ReportID}, nil
}

// Financials asks MyData or app scraping for the customer's income and
// debts. Failures are *CallError; an amount outside 0..MaxAnnualAmount is
// ClassInvalidData.
func (c *Client) Financials(ctx context.Context, agency Name, customerID, applicationID string) (loan.Financials, error) {
	body, err := c.get(ctx, agency, KindFinancials, customerID, applicationID)
	if err != nil {
		return loan.Financials{}, err
	}
	return decodeFinancials(agency, customerID, body)
}

// decodeFinancials checks and decodes a financials agency's 200 answer.
func decodeFinancials(agency Name, customerID string, raw []byte) (loan.Financials, error) {
	var body struct {
		CustomerID        *string `json:"customer_id"`
		AnnualIncome      *int64  `json:"annual_income"`
		TotalDebt         *int64  `json:"total_debt"`
		AnnualDebtService *int64  `json:"annual_debt_service"`
		ReportID          *string `json:"report_id"`
	}
	if err := decode(agency, raw, &body); err != nil {
		return loan.Financials{}, err
	}
	if err := checkPresent(agency, []field{{"customer_id", body.CustomerID != nil},
		{"annual_income", body.AnnualIncome != nil}, {"total_debt", body.TotalDebt != nil},
		{"annual_debt_service", body.AnnualDebtService != nil}, {"report_id", body.ReportID != nil}}); err != nil {
		return loan.Financials{}, err
	}
	if *body.CustomerID != customerID {
		return loan.Financials{}, invalidData(agency, "customer_id %s in answer differs from %s asked", quoteShort(*body.CustomerID), strconv.Quote(customerID))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"annual_income", *body.AnnualIncome}, {"total_debt", *body.TotalDebt}, {"annual_debt_service", *body.AnnualDebtService}} {
		if f.v < 0 || f.v > MaxAnnualAmount {
			return loan.Financials{}, invalidData(agency, "%s %d won out of range 0..%d", f.name, f.v, MaxAnnualAmount)
		}
	}
	if err := checkReportID(agency, *body.ReportID); err != nil {
		return loan.Financials{}, err
	}
	return loan.Financials{
		Source:            string(agency),
		AnnualIncome:      *body.AnnualIncome,
		TotalDebt:         *body.TotalDebt,
		AnnualDebtService: *body.AnnualDebtService,
		ReportID:          *body.ReportID,
	}, nil
}

// decode parses a 200 answer; a body that is not the expected JSON (wrong
// types, a number that does not fit int64) is a malformed answer.
func decode(agency Name, raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return &CallError{Agency: agency, Class: ClassAgencyError, StatusCode: http.StatusOK,
			Err: fmt.Errorf("malformed answer: %w", err)}
	}
	return nil
}

// checkReportID refuses an empty, overlong or unprintable report reference:
// it is stored and shown to operators as it is.
func checkReportID(agency Name, id string) error {
	if id == "" || len(id) > MaxReportIDLength || !utf8.ValidString(id) {
		return invalidData(agency, "report_id %s: accepted 1 to %d bytes of printable UTF-8", quoteShort(id), MaxReportIDLength)
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return invalidData(agency, "report_id %s: accepted 1 to %d bytes of printable UTF-8", quoteShort(id), MaxReportIDLength)
		}
	}
	return nil
}

// quoteShort quotes an untrusted string for an error message, cut to a
// length an operator can read.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.QuoteToASCII(s)
}

// get sends one inquiry and returns the body of a 200 answer.
func (c *Client) get(ctx context.Context, agency Name, kind Kind, customerID, applicationID string) ([]byte, error) {
	base, ok := c.urls[agency]
	if !ok {
		if !agency.Valid() {
			return nil, &CallError{Agency: agency, Class: ClassClientError,
				Err: fmt.Errorf("unknown agency %s: accepted %s", strconv.Quote(string(agency)), acceptedNames())}
		}
		return nil, &CallError{Agency: agency, Class: ClassClientError, Err: fmt.Errorf("no URL configured for agency %s", agency)}
	}
	if agency.Kind() != kind {
		return nil, &CallError{Agency: agency, Class: ClassClientError,
			Err: fmt.Errorf("agency %s answers %s, not %s", agency, agency.Kind(), kind)}
	}
	q := url.Values{}
	q.Set(ParamCustomerID, customerID)
	q.Set(ParamApplicationID, applicationID)

	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodGet, base+agency.Path()+"?"+q.Encode(), nil)
	if err != nil {
		return nil, &CallError{Agency: agency, Class: ClassClientError, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	markSent(ctx)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.noAnswer(ctx, callCtx, agency, 0, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, c.noAnswer(ctx, callCtx, agency, resp.StatusCode, fmt.Errorf("read answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &CallError{
			Agency:     agency,
			Class:      classForStatus(resp.StatusCode),
			StatusCode: resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Err:        errors.New(errorMessage(resp.StatusCode, body)),
		}
	}
	if len(body) > maxBody {
		return nil, &CallError{Agency: agency, Class: ClassAgencyError, StatusCode: resp.StatusCode,
			Err: fmt.Errorf("answer longer than %d bytes", maxBody)}
	}
	return body, nil
}

// noAnswer classes a failure to get a complete answer. The contexts decide
// first, because the transport's own error text varies by where it stopped.
func (c *Client) noAnswer(parent, call context.Context, agency Name, status int, err error) error {
	class := Classify(err)
	switch {
	case errors.Is(parent.Err(), context.Canceled):
		class = ClassCanceled
	case parent.Err() == nil && errors.Is(call.Err(), context.DeadlineExceeded):
		class = ClassTimeout
		err = fmt.Errorf("no answer within %s: %w", c.timeout, err)
	case errors.Is(parent.Err(), context.DeadlineExceeded):
		// The caller's deadline came before the agency's timeout: the
		// caller's budget cut the call, not the agency.
		class = ClassExpired
		err = fmt.Errorf("caller's deadline passed before the %s timeout: %w", c.timeout, err)
	case errors.Is(call.Err(), context.DeadlineExceeded):
		class = ClassTimeout
	}
	return &CallError{Agency: agency, Class: class, StatusCode: status, Err: err}
}

func invalidData(agency Name, format string, args ...any) error {
	return &CallError{Agency: agency, Class: ClassInvalidData, StatusCode: http.StatusOK, Err: fmt.Errorf(format, args...)}
}

// field is an answer field and whether it was present.
type field struct {
	name    string
	present bool
}

// checkPresent fails when a field is missing: a missing amount must not read
// as zero won.
func checkPresent(agency Name, fields []field) error {
	var missing []string
	for _, f := range fields {
		if !f.present {
			missing = append(missing, f.name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &CallError{Agency: agency, Class: ClassAgencyError, StatusCode: http.StatusOK,
		Err: fmt.Errorf("malformed answer: missing %s", strings.Join(missing, ", "))}
}

// errorMessage extracts the agency's message from an error answer.
func errorMessage(status int, body []byte) string {
	var e ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return quoteShort(e.Error) // untrusted: never echoed raw to logs or terminals
	}
	s := strings.TrimSpace(string(body))
	if s == "" {
		return strings.ToLower(http.StatusText(status))
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
