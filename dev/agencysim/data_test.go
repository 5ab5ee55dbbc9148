package agencysim

import (
	"fmt"
	"testing"

	"loanflow/agency"
)

func TestDataIsDeterministicAndShaped(t *testing.T) {
	const n = 5000
	var ge600, noDebt, highDSR, bureausDiffer int
	for i := range n {
		id := fmt.Sprintf("C%08d", i*7919)
		kcb, nice := Score(agency.KCB, id), Score(agency.NICE, id)
		if kcb != Score(agency.KCB, id) || nice != Score(agency.NICE, id) {
			t.Fatalf("%s: score changes between calls", id)
		}
		for _, s := range []int{kcb, nice} {
			if s < 1 || s > 1000 {
				t.Fatalf("%s: score %d out of 1..1000", id, s)
			}
		}
		if kcb >= 600 {
			ge600++
		}
		if kcb != nice {
			bureausDiffer++
		}
		if d := kcb - nice; d > 120 || d < -120 {
			t.Errorf("%s: kcb %d and nice %d differ by more than a little", id, kcb, nice)
		}

		inc, debt, svc := Financials(agency.MyData, id)
		if i2, d2, s2 := Financials(agency.MyData, id); i2 != inc || d2 != debt || s2 != svc {
			t.Fatalf("%s: financials change between calls", id)
		}
		if inc < 20_000_000 || inc > 150_000_000 || debt < 0 || svc < 0 {
			t.Fatalf("%s: income %d, debt %d, debt service %d out of range", id, inc, debt, svc)
		}
		si, sd, ss := Financials(agency.Scraping, id)
		if si != round10k(inc) || sd != round10k(debt) || ss != round10k(svc) || si%10_000 != 0 {
			t.Fatalf("%s: scraping %d/%d/%d is not mydata %d/%d/%d rounded to 10,000 won", id, si, sd, ss, inc, debt, svc)
		}
		if debt == 0 {
			noDebt++
		}
		if svc*100 > inc*40 {
			highDSR++
		}
	}
	frac := func(k int) float64 { return float64(k) / n }
	if f := frac(ge600); f < 0.72 || f > 0.88 {
		t.Errorf("%.2f of customers score 600 or more, want about 0.80", f)
	}
	if f := frac(bureausDiffer); f < 0.5 {
		t.Errorf("kcb and nice differ for only %.2f of customers", f)
	}
	if f := frac(noDebt); f < 0.2 || f > 0.4 {
		t.Errorf("%.2f of customers have no debt, want about 0.30", f)
	}
	if f := frac(highDSR); f < 0.05 || f > 0.4 {
		t.Errorf("%.2f of customers have a DSR above 40%%, want some but not most", f)
	}
}

func TestReportIDStablePerApplication(t *testing.T) {
	a := reportID(agency.KCB, "C00000001", "app-1")
	if a != reportID(agency.KCB, "C00000001", "app-1") {
		t.Error("report id changes between calls")
	}
	if a == reportID(agency.KCB, "C00000001", "app-2") || a == reportID(agency.NICE, "C00000001", "app-1") {
		t.Error("report id does not depend on the application and agency")
	}
}
