package agency

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Name
	}{{"kcb", KCB}, {" NICE ", NICE}, {"MyData", MyData}, {"scraping", Scraping}} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	_, err := Parse("equifax")
	if err == nil {
		t.Fatal("Parse(equifax) succeeded")
	}
	for _, want := range []string{`"equifax"`, "kcb, nice, mydata, scraping"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestNameProperties(t *testing.T) {
	for _, tc := range []struct {
		n         Name
		queue     string
		mandatory bool
		kind      Kind
		path      string
	}{
		{KCB, "agency.kcb", true, KindScore, ScorePath},
		{NICE, "agency.nice", true, KindScore, ScorePath},
		{MyData, "agency.mydata", false, KindFinancials, FinancialsPath},
		{Scraping, "agency.scraping", false, KindFinancials, FinancialsPath},
		{"other", "agency.other", false, "", ""},
	} {
		if got := tc.n.TaskQueue(); got != tc.queue {
			t.Errorf("%s.TaskQueue() = %q, want %q", tc.n, got, tc.queue)
		}
		if got := tc.n.Mandatory(); got != tc.mandatory {
			t.Errorf("%s.Mandatory() = %v, want %v", tc.n, got, tc.mandatory)
		}
		if got := tc.n.Kind(); got != tc.kind {
			t.Errorf("%s.Kind() = %q, want %q", tc.n, got, tc.kind)
		}
		if got := tc.n.Path(); got != tc.path {
			t.Errorf("%s.Path() = %q, want %q", tc.n, got, tc.path)
		}
	}
	if len(All) != 4 {
		t.Errorf("All has %d agencies, want 4", len(All))
	}
}
