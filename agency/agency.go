// Package agency is the one small type through which loanflow reaches the
// external credit agencies over HTTP: the credit bureaus (KCB, NICE) for
// scores, and MyData or app scraping for a customer's income and debts.
//
// Every call is bounded by a timeout and fails with a *CallError whose Class
// tells the flow controller and the retry policy what kind of failure it was.
package agency

import (
	"fmt"
	"strconv"
	"strings"
)

// Name identifies an external agency.
type Name string

// The agencies loanflow calls.
const (
	KCB      Name = "kcb"
	NICE     Name = "nice"
	MyData   Name = "mydata"
	Scraping Name = "scraping"
)

// All lists every agency, bureaus first.
var All = []Name{KCB, NICE, MyData, Scraping}

// Kind says what an agency answers.
type Kind string

// Agency kinds.
const (
	KindScore      Kind = "score"      // a credit score (KCB, NICE)
	KindFinancials Kind = "financials" // income and debts (MyData, scraping)
)

// TaskQueue is the Temporal task queue in front of the agency, e.g. "agency.kcb".
func (n Name) TaskQueue() string { return "agency." + string(n) }

// Valid reports whether n is one of All.
func (n Name) Valid() bool {
	for _, a := range All {
		if n == a {
			return true
		}
	}
	return false
}

// Mandatory reports whether an application cannot be decided without the
// agency: the bureaus have no substitute, while MyData falls back to scraping.
func (n Name) Mandatory() bool { return n == KCB || n == NICE }

// Kind says whether the agency answers scores or financials; it is empty for
// an unknown name.
func (n Name) Kind() Kind {
	switch n {
	case KCB, NICE:
		return KindScore
	case MyData, Scraping:
		return KindFinancials
	}
	return ""
}

// Path is the request path of the agency's endpoint, relative to its base URL.
func (n Name) Path() string {
	switch n.Kind() {
	case KindScore:
		return ScorePath
	case KindFinancials:
		return FinancialsPath
	}
	return ""
}

// Parse turns a string such as "kcb" (case and surrounding space ignored)
// into a Name.
func Parse(s string) (Name, error) {
	n := Name(strings.ToLower(strings.TrimSpace(s)))
	if n.Valid() {
		return n, nil
	}
	return "", fmt.Errorf("invalid agency %s: accepted %s", strconv.Quote(s), acceptedNames())
}

func acceptedNames() string {
	names := make([]string, len(All))
	for i, a := range All {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
