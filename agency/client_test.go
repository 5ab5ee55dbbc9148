package agency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	testCustomer    = "C00012345"
	testApplication = "app-1"
)

// newTestClient serves every agency from one handler and returns a client for it.
func newTestClient(t *testing.T, timeout time.Duration, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientConfig{URLs: URLsFromBase(srv.URL), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestCreditScoreSuccess(t *testing.T) {
	var gotPath, gotCustomer, gotApp string
	c := newTestClient(t, 0, func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		gotCustomer = r.URL.Query().Get(ParamCustomerID)
		gotApp = r.URL.Query().Get(ParamApplicationID)
		writeJSON(w, 200, ScoreResponse{CustomerID: gotCustomer, Score: 742, ReportID: "kcb-1"})
	})
	got, err := c.CreditScore(context.Background(), KCB, testCustomer, testApplication)
	if err != nil {
		t.Fatal(err)
	}
	if got.Agency != "kcb" || got.Score != 742 || got.ReportID != "kcb-1" {
		t.Errorf("got %+v", got)
	}
	if gotPath != "/kcb/v1/score" || gotCustomer != testCustomer || gotApp != testApplication {
		t.Errorf("request was %s customer=%s application=%s", gotPath, gotCustomer, gotApp)
	}
	if Classify(err) != ClassOK {
		t.Errorf("Classify(nil) = %s", Classify(err))
	}
}

func TestFinancialsSuccess(t *testing.T) {
	var gotPath string
	c := newTestClient(t, 0, func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		writeJSON(w, 200, FinancialsResponse{CustomerID: r.URL.Query().Get(ParamCustomerID),
			AnnualIncome: 52_000_000, TotalDebt: 30_000_000, AnnualDebtService: 7_200_000, ReportID: "s-1"})
	})
	got, err := c.Financials(context.Background(), Scraping, testCustomer, testApplication)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "scraping" || got.AnnualIncome != 52_000_000 || got.TotalDebt != 30_000_000 ||
		got.AnnualDebtService != 7_200_000 || got.ReportID != "s-1" {
		t.Errorf("got %+v", got)
	}
	if gotPath != "/scraping/v1/financials" {
		t.Errorf("path %s", gotPath)
	}
}

func TestFailureClasses(t *testing.T) {
	score := func(v int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, ScoreResponse{CustomerID: r.URL.Query().Get(ParamCustomerID), Score: v, ReportID: "r"})
		}
	}
	status := func(code int, retryAfter string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			writeJSON(w, code, ErrorResponse{Error: fmt.Sprintf("status %d", code)})
		}
	}
	raw := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }
	}
	for _, tc := range []struct {
		name       string
		h          http.HandlerFunc
		class      Class
		retryable  bool
		status     int
		retryAfter time.Duration
		mention    string
	}{
		{"400", status(400, ""), ClassClientError, false, 400, 0, "status 400"},
		{"404", status(404, ""), ClassClientError, false, 404, 0, "status 404"},
		{"429", status(429, "3"), ClassOverload, true, 429, 3 * time.Second, "status 429"},
		{"503", status(503, "1"), ClassOverload, true, 503, time.Second, "status 503"},
		{"503 without retry-after", status(503, ""), ClassOverload, true, 503, 0, ""},
		{"500", status(500, ""), ClassAgencyError, true, 500, 0, "status 500"},
		{"502", status(502, ""), ClassAgencyError, true, 502, 0, ""},
		{"malformed", raw("{not json"), ClassAgencyError, true, 200, 0, "malformed"},
		{"missing score", raw(`{"customer_id":"C00012345","report_id":"r"}`), ClassAgencyError, true, 200, 0, "missing score"},
		{"score 0", score(0), ClassInvalidData, false, 200, 0, "score 0 out of range"},
		{"score 1001", score(1001), ClassInvalidData, false, 200, 0, "score 1001"},
		{"other customer", raw(`{"customer_id":"C99999999","score":700,"report_id":"r"}`), ClassInvalidData, false, 200, 0, "C99999999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, 0, tc.h)
			_, err := c.CreditScore(context.Background(), NICE, testCustomer, testApplication)
			var ce *CallError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *CallError", err, err)
			}
			if ce.Class != tc.class || Classify(err) != tc.class {
				t.Errorf("class %s (Classify %s), want %s; error %v", ce.Class, Classify(err), tc.class, err)
			}
			if ce.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", ce.Retryable(), tc.retryable)
			}
			if ce.StatusCode != tc.status {
				t.Errorf("StatusCode %d, want %d", ce.StatusCode, tc.status)
			}
			if ce.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter %s, want %s", ce.RetryAfter, tc.retryAfter)
			}
			if ce.Agency != NICE || !strings.Contains(err.Error(), "agency nice") || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q should name agency nice and mention %q", err, tc.mention)
			}
		})
	}
}

func TestFinancialsInvalidData(t *testing.T) {
	c := newTestClient(t, 0, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, FinancialsResponse{CustomerID: r.URL.Query().Get(ParamCustomerID),
			AnnualIncome: 50_000_000, TotalDebt: -1, ReportID: "m"})
	})
	_, err := c.Financials(context.Background(), MyData, testCustomer, testApplication)
	if Classify(err) != ClassInvalidData || !strings.Contains(fmt.Sprint(err), "total_debt -1") {
		t.Fatalf("got %v (class %s), want invalid_data naming total_debt", err, Classify(err))
	}
	var ce *CallError
	if errors.As(err, &ce) && ce.Retryable() {
		t.Error("invalid data must not be retryable")
	}

	c = newTestClient(t, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"customer_id":"C00012345","total_debt":0,"annual_debt_service":0,"report_id":"m"}`))
	})
	_, err = c.Financials(context.Background(), MyData, testCustomer, testApplication)
	if Classify(err) != ClassAgencyError || !strings.Contains(fmt.Sprint(err), "annual_income") {
		t.Fatalf("missing income: got %v, want agency_error naming annual_income", err)
	}
}

func TestTimeout(t *testing.T) {
	c := newTestClient(t, 50*time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	start := time.Now()
	_, err := c.CreditScore(context.Background(), KCB, testCustomer, testApplication)
	if took := time.Since(start); took > time.Second {
		t.Errorf("call took %s with a 50ms timeout", took)
	}
	var ce *CallError
	if !errors.As(err, &ce) || ce.Class != ClassTimeout || !ce.Retryable() {
		t.Fatalf("got %v, want a retryable timeout", err)
	}
	if !strings.Contains(err.Error(), "50ms") {
		t.Errorf("error %q should say the timeout", err)
	}

	// A deadline of the caller's that comes before the agency's timeout is
	// the caller's budget running out, not the agency failing: expired.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	c2 := newTestClient(t, time.Second, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	if _, err := c2.CreditScore(ctx, KCB, testCustomer, testApplication); Classify(err) != ClassExpired || !Classify(err).Retryable() {
		t.Errorf("caller deadline: got %v (class %s), want expired", err, Classify(err))
	}
}

func TestCanceledByCaller(t *testing.T) {
	started := make(chan struct{})
	c := newTestClient(t, time.Second, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.CreditScore(ctx, KCB, testCustomer, testApplication)
	if Classify(err) != ClassCanceled {
		t.Fatalf("got %v (class %s), want canceled", err, Classify(err))
	}
}

func TestTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	c, err := NewClient(ClientConfig{URLs: URLsFromBase(base), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreditScore(context.Background(), KCB, testCustomer, testApplication)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Class != ClassTransport || !ce.Retryable() {
		t.Fatalf("got %v, want a retryable transport error", err)
	}
}

func TestWrongKindOrUnconfigured(t *testing.T) {
	c, err := NewClient(ClientConfig{URLs: map[Name]string{KCB: "http://127.0.0.1:1/kcb"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Agencies(); len(got) != 1 || got[0] != KCB {
		t.Errorf("Agencies() = %v", got)
	}
	if c.Timeout() != DefaultTimeout {
		t.Errorf("Timeout() = %s, want %s", c.Timeout(), DefaultTimeout)
	}
	for _, call := range []func() error{
		func() error {
			_, err := c.Financials(context.Background(), KCB, testCustomer, testApplication)
			return err
		},
		func() error {
			_, err := c.CreditScore(context.Background(), NICE, testCustomer, testApplication)
			return err
		},
		func() error {
			_, err := c.CreditScore(context.Background(), "equifax", testCustomer, testApplication)
			return err
		},
	} {
		err := call()
		var ce *CallError
		if !errors.As(err, &ce) || ce.Class != ClassClientError || ce.Retryable() {
			t.Errorf("got %v, want a non-retryable client error", err)
		}
	}
}

func TestNewClientValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg     ClientConfig
		mention string
	}{
		{ClientConfig{}, "URLs"},
		{ClientConfig{URLs: map[Name]string{"equifax": "http://x"}}, `"equifax"`},
		{ClientConfig{URLs: map[Name]string{KCB: "localhost:8090"}}, `URLs[kcb] "localhost:8090"`},
		{ClientConfig{URLs: map[Name]string{KCB: "ftp://x/kcb"}}, `"ftp://x/kcb"`},
		{ClientConfig{URLs: URLsFromBase("https://x"), Timeout: -time.Second}, "Timeout -1s"},
	} {
		_, err := NewClient(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("NewClient(%+v) = %v, want an error mentioning %s", tc.cfg, err, tc.mention)
		}
	}
	urls := URLsFromBase("http://sim:8090/")
	if urls[MyData] != "http://sim:8090/mydata" || len(urls) != 4 {
		t.Errorf("URLsFromBase = %v", urls)
	}
}
