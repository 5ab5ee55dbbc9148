package breaker

import (
	"strings"
	"testing"
	"time"
)

// The board's rules by table: what one period does to the agency breakers
// and to the loan product's entry, and what it records.
func TestBoardStep(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	names := []string{"nice", "kcb", "scraping", "mydata"} // unsorted on purpose
	cfg := func(string) Config { c := DefaultConfig(); c.FloorPeriods = 1; return c }
	closed := func() Machine { return Machine{State: Closed, Since: now.Add(-time.Hour)} }
	at := func(s State) Machine { return Machine{State: s, Since: now.Add(-time.Hour)} }
	failing := Observed{Calls: 10, AgencyErrors: 10, Limit: 4, MinLimit: 1}
	overloadAboveFloor := Observed{Calls: 10, Overload: 10, Limit: 8, MinLimit: 1}
	overloadAtFloor := Observed{Calls: 10, Overload: 10, Limit: 1, MinLimit: 1}

	for _, tc := range []struct {
		name      string
		board     Board
		obs       map[string]Observed
		overrides []ManualOverride
		wantEntry State
		wantState map[string]State
		wantEvent []string // "breaker from->to source"
	}{
		{name: "all closed, entry closed, nothing recorded",
			board:     Board{Machines: map[string]Machine{"kcb": closed(), "nice": closed()}, Entry: at(Closed)},
			wantEntry: Closed},
		{name: "kcb open closes the entry",
			board:     Board{Machines: map[string]Machine{"kcb": {State: Open, Since: now}}, Entry: at(Closed)},
			wantEntry: Open, wantEvent: []string{"loan_product closed->open controller"}},
		{name: "a half-open bureau keeps the entry closed to new applications",
			board:     Board{Machines: map[string]Machine{"nice": at(HalfOpen)}, Entry: at(Open)},
			wantEntry: Open},
		{name: "mydata open does not touch the entry: scraping substitutes",
			board:     Board{Machines: map[string]Machine{"mydata": {State: Open, Since: now}}, Entry: at(Closed)},
			wantEntry: Closed},
		{name: "bureaus closed again reopen the entry",
			board:     Board{Machines: map[string]Machine{"kcb": closed(), "nice": closed()}, Entry: at(Open)},
			wantEntry: Closed, wantEvent: []string{"loan_product open->closed controller"}},
		{name: "agency errors trip a breaker even above the pool's floor",
			board: Board{Machines: map[string]Machine{"mydata": closed()}, Entry: at(Closed)},
			obs:   map[string]Observed{"mydata": failing},
			// FloorPeriods 1: the first failing period at the floor trips it.
			wantEntry: Closed, wantState: map[string]State{"mydata": HalfOpen},
			wantEvent: []string{"mydata closed->half_open controller"}},
		{name: "overload above the floor shrinks the pool first: no trip",
			board: Board{Machines: map[string]Machine{"mydata": closed()}, Entry: at(Closed)},
			obs:   map[string]Observed{"mydata": overloadAboveFloor}, wantEntry: Closed, wantState: map[string]State{"mydata": Closed}},
		{name: "overload at the floor trips",
			board: Board{Machines: map[string]Machine{"mydata": closed()}, Entry: at(Closed)},
			obs:   map[string]Observed{"mydata": overloadAtFloor}, wantEntry: Closed, wantState: map[string]State{"mydata": HalfOpen},
			wantEvent: []string{"mydata closed->half_open controller"}},
		{name: "an operator forcing kcb open closes the entry in the same period, both recorded",
			board:     Board{Machines: map[string]Machine{"kcb": closed()}, Entry: at(Closed)},
			overrides: []ManualOverride{{Agency: "kcb", State: "open", Reason: "maintenance"}},
			wantEntry: Open, wantState: map[string]State{"kcb": Open},
			wantEvent: []string{"kcb closed->open operator", "loan_product closed->open controller"}},
		{name: "a no-op override is still audited",
			board:     Board{Machines: map[string]Machine{"scraping": closed()}, Entry: at(Closed)},
			overrides: []ManualOverride{{Agency: "scraping", State: Auto, Reason: "nothing to undo"}},
			wantEntry: Closed, wantEvent: []string{"scraping closed->closed operator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.board
			statuses, events := b.Step(now, names, tc.obs, cfg, tc.overrides)
			if b.Entry.State != tc.wantEntry {
				t.Errorf("entry %s, want %s", b.Entry.State, tc.wantEntry)
			}
			for a, want := range tc.wantState {
				if got := b.Machines[a].Effective(); got != want {
					t.Errorf("%s %s, want %s", a, got, want)
				}
			}
			var got []string
			for _, e := range events {
				got = append(got, e.Breaker+" "+e.From+"->"+e.To+" "+e.Source)
			}
			if strings.Join(got, "; ") != strings.Join(tc.wantEvent, "; ") {
				t.Errorf("events %q, want %q", got, tc.wantEvent)
			}
			// One status per agency, sorted, then the entry.
			if len(statuses) != len(names)+1 || statuses[0].Name != "kcb" || statuses[len(statuses)-1].Name != Entry {
				t.Errorf("statuses %v", statuses)
			}
		})
	}
}

func TestBoardProbesHalfOpenMandatoryBureausOnly(t *testing.T) {
	now := time.Now()
	b := Board{Machines: map[string]Machine{
		"kcb": {State: HalfOpen, Since: now}, "nice": {State: Open, Since: now}, "mydata": {State: HalfOpen, Since: now},
	}}
	cfg := func(string) Config { c := DefaultConfig(); c.ProbeCalls = 2; return c }
	got := b.Probes([]string{"kcb", "nice", "mydata", "scraping"}, cfg)
	if len(got) != 2 || got[0] != "kcb" || got[1] != "kcb" {
		t.Fatalf("probes %v, want kcb twice", got)
	}
	if got := b.Probes([]string{"nice"}, cfg); len(got) != 0 {
		t.Fatalf("kcb not under control: probes %v", got)
	}
}

func TestRebuildPrefersLiveRecordThenEvents(t *testing.T) {
	now := time.Now()
	b := Rebuild([]string{"kcb", "nice", "mydata"},
		map[string]Status{"kcb": {Name: "kcb", State: HalfOpen, Machine: HalfOpen, MachineSince: now}},
		map[string]Event{
			"kcb":  {Breaker: "kcb", From: "closed", To: "open", Source: SourceController, At: now.Add(-time.Minute)},
			"nice": {Breaker: "nice", From: "closed", To: "open", Reason: "operator: maintenance", Source: SourceOperator, At: now},
			Entry:  {Breaker: Entry, From: "closed", To: "open", Source: SourceController, At: now},
		})
	if b.Machines["kcb"].State != HalfOpen {
		t.Errorf("kcb %s, want half_open from the live record", b.Machines["kcb"].State)
	}
	if m := b.Machines["nice"]; m.State != Closed || m.Override == nil || m.Override.State != Open || m.Override.Reason != "maintenance" {
		t.Errorf("nice %+v, want closed machine forced open by the operator", m)
	}
	if _, ok := b.Machines["mydata"]; ok {
		t.Error("mydata never tripped: want no machine (closed)")
	}
	if b.Entry.State != Open || b.Entry.Override != nil {
		t.Errorf("entry %+v, want open from its event", b.Entry)
	}
}
