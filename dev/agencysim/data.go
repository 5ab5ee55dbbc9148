package agencysim

import (
	"fmt"
	"hash/fnv"

	"loanflow/agency"
)

// The data is derived from a hash of the customer id with integer arithmetic
// only, so every machine (and every architecture) answers the same figures.

// Score is the credit score an agency reports for a customer: about 80% of
// customers score 600 or more, a few percent are near the bottom, and KCB and
// NICE differ by a few tens of points for the same customer.
func Score(name agency.Name, customerID string) int {
	h := hash64("score", customerID)
	var s int64
	if h%100 < 3 { // delinquent customers
		s = 1 + int64((h>>8)%400)
	} else {
		s = 725 + bell(hash64("score-base", customerID))*140/1000
	}
	s += bell(hash64("score-delta", string(name), customerID)) * 15 / 1000
	return int(min(max(s, agency.MinScore), agency.MaxScore))
}

// Financials are a customer's annual income, total debt and annual debt
// service in won. MyData reports them to the 1,000 won; scraping rounds each
// to the nearest 10,000 won. Income is 20M to 150M won, about 30% of
// customers have no debt, and some carry a high DSR.
func Financials(name agency.Name, customerID string) (annualIncome, totalDebt, annualDebtService int64) {
	h := hash64("financials", customerID)
	u := int64(h & 0xFFFF)                                    // 0..65535
	annualIncome = 20_000_000 + 130_000_000*u*u/(65536*65536) // skewed towards lower incomes
	annualIncome = annualIncome / 1000 * 1000
	if (h>>16)%100 >= 30 {
		debtPermille := 200 + int64((h>>24)%2800)  // 0.2× to 3× income
		servicePermille := 80 + int64((h>>40)%271) // 8% to 35% of the debt per year
		totalDebt = annualIncome * debtPermille / 1000 / 1000 * 1000
		annualDebtService = totalDebt * servicePermille / 1000 / 1000 * 1000
	}
	if name == agency.Scraping {
		annualIncome, totalDebt, annualDebtService = round10k(annualIncome), round10k(totalDebt), round10k(annualDebtService)
	}
	return annualIncome, totalDebt, annualDebtService
}

// reportID is the agency's reference for one inquiry, stable per application.
func reportID(name agency.Name, customerID, applicationID string) string {
	return fmt.Sprintf("%s-%016x", name, hash64("report", string(name), customerID, applicationID))
}

func round10k(v int64) int64 { return (v + 5_000) / 10_000 * 10_000 }

// bell turns 64 hash bits into an approximately normal value with mean 0 and
// standard deviation 1000 (the sum of four 16-bit uniforms, Irwin–Hall).
func bell(h uint64) int64 {
	var sum int64
	for range 4 {
		sum += int64(h & 0xFFFF)
		h >>= 16
	}
	// Mean 4×65535/2; standard deviation 65536×sqrt(4/12) ≈ 37837.
	return (sum - 131_070) * 1000 / 37_837
}

// hash64 is FNV-1a over the parts, finished with the splitmix64 mixer so
// that every bit is usable.
func hash64(parts ...string) uint64 {
	f := fnv.New64a()
	for _, p := range parts {
		_, _ = f.Write([]byte(p))
		_, _ = f.Write([]byte{0})
	}
	x := f.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
