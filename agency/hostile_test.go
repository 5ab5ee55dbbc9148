package agency

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
)

// Hostile or broken answers: each must end as a final invalid_data (or
// malformed agency_error) naming the field, never reach underwriting.
func TestHostileFinancialsAnswers(t *testing.T) {
	body := func(income, debt, service string) string {
		return fmt.Sprintf(`{"customer_id":%q,"annual_income":%s,"total_debt":%s,"annual_debt_service":%s,"report_id":"m-1"}`,
			testCustomer, income, debt, service)
	}
	maxPlus := fmt.Sprint(MaxAnnualAmount + 1)
	for _, tc := range []struct {
		name, body string
		class      Class
		mention    string
	}{
		{"debt service near int64 max", body("50000000", "0", fmt.Sprint(int64(math.MaxInt64/1000))), ClassInvalidData, "annual_debt_service"},
		{"debt service int64 max", body("50000000", "0", fmt.Sprint(int64(math.MaxInt64))), ClassInvalidData, "annual_debt_service"},
		{"debt service above bound", body("50000000", "0", maxPlus), ClassInvalidData, "annual_debt_service"},
		{"income above bound", body(maxPlus, "0", "0"), ClassInvalidData, "annual_income"},
		{"debt above bound", body("50000000", maxPlus, "0"), ClassInvalidData, "total_debt"},
		{"negative income", body("-1", "0", "0"), ClassInvalidData, "annual_income"},
		{"income overflows int64", body("9223372036854775808", "0", "0"), ClassAgencyError, "malformed"},
		{"fractional income", body("5e7", "0", "0"), ClassAgencyError, "malformed"},
		{"income as string", body(`"50000000"`, "0", "0"), ClassAgencyError, "malformed"},
		{"null income", body("null", "0", "0"), ClassAgencyError, "annual_income"},
		{"empty report id", strings.Replace(body("50000000", "0", "0"), `"m-1"`, `""`, 1), ClassInvalidData, "report_id"},
		{"report id with control characters", strings.Replace(body("50000000", "0", "0"), `"m-1"`, `"m\u001b[2J"`, 1), ClassInvalidData, "report_id"},
		{"report id too long", strings.Replace(body("50000000", "0", "0"), `"m-1"`, `"`+strings.Repeat("r", MaxReportIDLength+1)+`"`, 1), ClassInvalidData, "report_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, 0, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(tc.body)) })
			f, err := c.Financials(context.Background(), MyData, testCustomer, testApplication)
			if err == nil {
				t.Fatalf("accepted %+v", f)
			}
			if got := Classify(err); got != tc.class || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v (class %s), want class %s naming %s", err, got, tc.class, tc.mention)
			}
			if tc.class == ClassInvalidData && Classify(err).Retryable() {
				t.Fatal("invalid data must be final")
			}
		})
	}
}

func TestHostileScoreAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		class      Class
		mention    string
	}{
		{"score int64 max", `{"customer_id":"C00012345","score":9223372036854775807,"report_id":"k"}`, ClassInvalidData, "score"},
		{"score negative", `{"customer_id":"C00012345","score":-5,"report_id":"k"}`, ClassInvalidData, "score"},
		{"score overflows int64", `{"customer_id":"C00012345","score":99999999999999999999,"report_id":"k"}`, ClassAgencyError, "malformed"},
		{"report id with newline", `{"customer_id":"C00012345","score":700,"report_id":"k\nFAKE LOG LINE"}`, ClassInvalidData, "report_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, 0, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(tc.body)) })
			s, err := c.CreditScore(context.Background(), KCB, testCustomer, testApplication)
			if err == nil {
				t.Fatalf("accepted %+v", s)
			}
			if got := Classify(err); got != tc.class || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v (class %s), want class %s naming %s", err, got, tc.class, tc.mention)
			}
		})
	}
}

// Agency URLs must be https, except on loopback or with the documented
// opt-out.
func TestAgencyURLsMustBeHTTPS(t *testing.T) {
	for _, tc := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://bureau.example/kcb", false, true},
		{"http://bureau.example/kcb", false, false},
		{"http://10.0.0.5:8090/kcb", false, false},
		{"http://127.0.0.1:8090/kcb", false, true},
		{"http://localhost:8090/kcb", false, true},
		{"http://[::1]:8090/kcb", false, true},
		{"http://agencysim:8090/kcb", true, true},
	} {
		_, err := NewClient(ClientConfig{URLs: map[Name]string{KCB: tc.url}, AllowInsecureHTTP: tc.insecure})
		if (err == nil) != tc.ok {
			t.Errorf("NewClient(%s, insecure=%v) = %v, want ok=%v", tc.url, tc.insecure, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "https") {
			t.Errorf("error %q should say https is required", err)
		}
	}
}

// FuzzDecodeFinancials: whatever the agency sends, the client either
// refuses it or returns figures within the documented bounds.
func FuzzDecodeFinancials(f *testing.F) {
	f.Add(`{"customer_id":"C00012345","annual_income":52000000,"total_debt":30000000,"annual_debt_service":7200000,"report_id":"mydata-1"}`)
	f.Add(`{"customer_id":"C00012345","annual_income":1,"total_debt":0,"annual_debt_service":9223372036854775807,"report_id":"x"}`)
	f.Add(`{"customer_id":"C00012345","annual_income":-1,"total_debt":1e3,"annual_debt_service":null,"report_id":""}`)
	f.Fuzz(func(t *testing.T, body string) {
		fin, err := decodeFinancials(MyData, testCustomer, []byte(body))
		if err != nil {
			return
		}
		for name, v := range map[string]int64{"annual_income": fin.AnnualIncome, "total_debt": fin.TotalDebt, "annual_debt_service": fin.AnnualDebtService} {
			if v < 0 || v > MaxAnnualAmount {
				t.Fatalf("accepted %s %d from %q", name, v, body)
			}
		}
		if fin.ReportID == "" || len(fin.ReportID) > MaxReportIDLength {
			t.Fatalf("accepted report_id %q", fin.ReportID)
		}
	})
}

// FuzzDecodeScore: an accepted score is always within the bureau's range.
func FuzzDecodeScore(f *testing.F) {
	f.Add(`{"customer_id":"C00012345","score":742,"report_id":"kcb-1"}`)
	f.Add(`{"customer_id":"C00012345","score":0,"report_id":"kcb-1"}`)
	f.Fuzz(func(t *testing.T, body string) {
		s, err := decodeScore(KCB, testCustomer, []byte(body))
		if err != nil {
			return
		}
		if s.Score < MinScore || s.Score > MaxScore || s.ReportID == "" {
			t.Fatalf("accepted %+v from %q", s, body)
		}
	})
}
