package workflows

import (
	"fmt"
	"testing"
	"time"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/loan"
)

func TestEntryBreakerOpenRejectsWithoutAgencyCalls(t *testing.T) {
	fa := goodCustomer()
	fa.breakers = map[string]breaker.Status{breaker.Entry: {Name: breaker.Entry, State: breaker.Open, Reason: "mandatory bureau [kcb] open"}}
	res := newHarness(t, fa).run(t, validApp)
	if res.Status != loan.StatusRejected || res.Reason() != loan.ReasonLoanProductUnavailable {
		t.Fatalf("got %s/%s, want REJECTED/LOAN_PRODUCT_UNAVAILABLE", res.Status, res.Reason())
	}
	if n := fa.calls.Load(); n != 0 {
		t.Fatalf("%d agency calls made with the entry closed", n)
	}
}

func TestMyDataOpenRoutesToScraping(t *testing.T) {
	fa := goodCustomer()
	fa.breakers = map[string]breaker.Status{"mydata": {Name: "mydata", State: breaker.Open}}
	res := newHarness(t, fa).run(t, validApp)
	if res.CreditPath != CreditPathScraping || fa.finSource.Load() != agency.Scraping {
		t.Fatalf("path %s, source %v: want SCRAPING", res.CreditPath, fa.finSource.Load())
	}
	if res.Financials == nil || res.Financials.Source != "scraping" {
		t.Fatalf("financials not from scraping: %+v", res.Financials)
	}
}

// Half open, the probe fraction keyed by application id goes to MyData and
// the rest to scraping; the choice is the same every time for one id.
func TestMyDataHalfOpenProbesAFraction(t *testing.T) {
	var probe, rest string
	for i := 0; probe == "" || rest == ""; i++ {
		id := fmt.Sprintf("app-%d", i)
		if breaker.UsesProbe(id, 0.1) {
			probe = id
		} else if rest == "" {
			rest = id
		}
	}
	for _, tc := range []struct{ id, want string }{{probe, CreditPathMyData}, {rest, CreditPathScraping}} {
		fa := goodCustomer()
		fa.breakers = map[string]breaker.Status{"mydata": {Name: "mydata", State: breaker.HalfOpen, ProbeFraction: 0.1}}
		app := validApp
		app.ApplicationID = tc.id
		res := newHarness(t, fa).run(t, app)
		if res.CreditPath != tc.want {
			t.Fatalf("application %s took %s, want %s", tc.id, res.CreditPath, tc.want)
		}
	}
}

// MyData failing while its breaker has opened: the application is answered
// by app scraping instead of failing.
func TestMyDataFailingMidFlightFallsBackToScraping(t *testing.T) {
	fa := goodCustomer()
	fa.mydataDown.Store(true)
	fa.downUnseenAtEntry = true
	res := newHarness(t, fa).run(t, validApp)
	if res.Status == loan.StatusFailed || res.CreditPath != CreditPathScraping {
		t.Fatalf("got %s via %s: want a decision via SCRAPING", res.Status, res.CreditPath)
	}
}

func TestBureauOpensMidFlightAndRecovers(t *testing.T) {
	fa := goodCustomer()
	fa.kcbDown.Store(true)
	h := newHarness(t, fa)
	h.env.RegisterDelayedCallback(func() { fa.kcbDown.Store(false) }, 6*time.Minute)
	start := h.env.Now()
	res := h.run(t, validApp)
	if res.Status != loan.StatusDisbursed {
		t.Fatalf("got %s/%s, want the application to wait for KCB and finish DISBURSED", res.Status, res.Reason())
	}
	if waited := h.env.Now().Sub(start); waited < 6*time.Minute {
		t.Fatalf("finished after %s, before KCB recovered at 6m", waited)
	}
}

func TestBureauOpensMidFlightAndDoesNotRecover(t *testing.T) {
	fa := goodCustomer()
	fa.kcbDown.Store(true)
	res := newHarness(t, fa).run(t, validApp)
	if res.Status != loan.StatusFailed || res.Reason() != loan.ReasonCreditBureauUnavailable {
		t.Fatalf("got %s/%s, want FAILED/CREDIT_BUREAU_UNAVAILABLE", res.Status, res.Reason())
	}
}
