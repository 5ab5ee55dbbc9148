package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"loanflow/activities"
	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/flowcontrol"
	"loanflow/loan"
	"loanflow/store"
)

// controllerHarness runs FlowControllerWorkflow with mocked activities and
// records what it publishes and audits.
type controllerHarness struct {
	env       *testsuite.TestWorkflowEnvironment
	mu        sync.Mutex
	published []activities.PublishInput
	audited   []store.BreakerEvent
	auditErr  error
	probes    []activities.AgencyRequest
}

func newControllerHarness(t *testing.T, board activities.PublishedBoard, obs func() map[string]flowcontrol.Observation) *controllerHarness {
	var s testsuite.WorkflowTestSuite
	h := &controllerHarness{env: s.NewTestWorkflowEnvironment()}
	var ca *activities.ControllerActivities
	var aa *activities.AgencyActivities
	h.env.RegisterActivity(ca)
	h.env.RegisterActivity(aa)
	h.env.OnActivity(ca.ReadLimits, mock.Anything, mock.Anything).Return(map[string]int{}, nil)
	h.env.OnActivity(ca.ReadBoard, mock.Anything, mock.Anything).Return(board, nil)
	h.env.OnActivity(ca.Observe, mock.Anything, mock.Anything).Return(func(context.Context, activities.ObserveInput) (map[string]flowcontrol.Observation, error) {
		if obs == nil {
			return map[string]flowcontrol.Observation{}, nil
		}
		return obs(), nil
	})
	h.env.OnActivity(ca.Publish, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PublishInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.published = append(h.published, in)
		return nil
	})
	h.env.OnActivity(ca.RecordBreakerEvents, mock.Anything, mock.Anything).Return(func(_ context.Context, ev []store.BreakerEvent) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.auditErr != nil {
			return h.auditErr
		}
		h.audited = append(h.audited, ev...)
		return nil
	})
	h.env.OnActivity(aa.FetchCreditScore, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.AgencyRequest) (loan.CreditScore, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.probes = append(h.probes, req)
		return loan.CreditScore{}, errors.New("bureau down")
	}).Maybe()
	return h
}

// last is the last status published for a breaker.
func (h *controllerHarness) last(t *testing.T, name string) breaker.Status {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.published) == 0 {
		t.Fatal("nothing published")
	}
	for _, st := range h.published[len(h.published)-1].Statuses {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("breaker %s not published", name)
	return breaker.Status{}
}

func controllerInput(periods int) FlowControllerInput {
	return FlowControllerInput{Config: flowcontrol.DefaultConfig("kcb", "nice", "mydata", "scraping"), PeriodsPerRun: periods}
}

// canInput decodes the input a run continued as new with.
func canInput(t *testing.T, err error) FlowControllerInput {
	t.Helper()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var in FlowControllerInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// A fresh controller rebuilds its breakers from what was published (an
// operator's override on MyData, live in Redis) and audited (KCB open,
// whose record Redis lost): it publishes neither as closed.
func TestFreshControllerRebuildsBoardFromPublishedState(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	board := activities.PublishedBoard{
		Live: map[string]breaker.Status{"mydata": {Name: "mydata", State: breaker.Open, Machine: breaker.Closed, MachineSince: since,
			Override: &breaker.Override{State: breaker.Open, Reason: "maintenance", Since: since}}},
		Last: map[string]store.BreakerEvent{"kcb": {Breaker: "kcb", From: "half_open", To: "open", Reason: "still failing", Source: "controller", At: time.Now()}},
	}
	h := newControllerHarness(t, board, nil)
	h.env.ExecuteWorkflow(FlowControllerWorkflow, controllerInput(2))
	canInput(t, h.env.GetWorkflowError())
	if st := h.last(t, "mydata"); st.State != breaker.Open || st.Override == nil {
		t.Errorf("mydata override lost by a fresh controller: %+v", st)
	} else if st.Expires.Sub(st.Published) != 5*time.Second {
		t.Errorf("record published %s expiring %s: want a lease of 5 periods", st.Published, st.Expires)
	}
	if st := h.last(t, "kcb"); st.State != breaker.Open {
		t.Errorf("kcb published %s by a fresh controller, want open (from breaker_events)", st.State)
	}
	if st := h.last(t, breaker.Entry); st.State != breaker.Open {
		t.Errorf("entry published %s with kcb open", st.State)
	}
	for _, e := range h.audited {
		if e.To == string(breaker.Closed) {
			t.Errorf("fresh controller audited a transition to closed: %+v", e)
		}
	}
}

// An override signalled during the last period before continue-as-new is
// carried to the next run and applied there; the agency name is normalised.
func TestOverrideInLastPeriodSurvivesContinueAsNew(t *testing.T) {
	h := newControllerHarness(t, activities.PublishedBoard{}, nil)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(BreakerOverrideSignal, BreakerOverride{Agency: "KCB", State: "open", Reason: "bureau maintenance"})
	}, 2500*time.Millisecond) // periods at 0, 1 and 2 s: this lands in the last sleep
	h.env.ExecuteWorkflow(FlowControllerWorkflow, controllerInput(3))
	next := canInput(t, h.env.GetWorkflowError())
	if len(next.Overrides) != 1 || next.Overrides[0].Agency != "kcb" {
		t.Fatalf("override not carried across continue-as-new: %+v", next.Overrides)
	}

	h2 := newControllerHarness(t, activities.PublishedBoard{}, nil)
	h2.env.ExecuteWorkflow(FlowControllerWorkflow, next)
	canInput(t, h2.env.GetWorkflowError())
	if st := h2.last(t, "kcb"); st.State != breaker.Open || st.Override == nil {
		t.Fatalf("carried override not applied: kcb %+v", st)
	}
	for _, p := range h2.published {
		for _, st := range p.Statuses {
			if st.Name == "KCB" {
				t.Fatal("phantom breaker KCB published")
			}
		}
	}
}

// Transitions that could not be audited (Postgres down) are still
// published, and are carried across continue-as-new until recorded.
func TestPendingEventsSurviveContinueAsNew(t *testing.T) {
	h := newControllerHarness(t, activities.PublishedBoard{}, nil)
	h.auditErr = errors.New("postgres down")
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(BreakerOverrideSignal, BreakerOverride{Agency: "mydata", State: "open", Reason: "drill"})
	}, 500*time.Millisecond)
	h.env.ExecuteWorkflow(FlowControllerWorkflow, controllerInput(3))
	next := canInput(t, h.env.GetWorkflowError())
	if st := h.last(t, "mydata"); st.State != breaker.Open {
		t.Fatalf("a Postgres outage held back publication: mydata %s", st.State)
	}
	if len(next.Pending) == 0 || next.Pending[0].Breaker != "mydata" {
		t.Fatalf("unaudited transitions not carried: %+v", next.Pending)
	}

	h2 := newControllerHarness(t, activities.PublishedBoard{}, nil)
	h2.env.ExecuteWorkflow(FlowControllerWorkflow, next)
	canInput(t, h2.env.GetWorkflowError())
	if len(h2.audited) == 0 || h2.audited[0].Breaker != "mydata" {
		t.Fatalf("carried transitions not audited by the next run: %+v", h2.audited)
	}
}

// Board rules: the entry stays closed to new applications while a mandatory
// bureau is half open, and the half-open bureau is probed by the
// controller's bounded trickle, not by applications.
func TestEntryStaysClosedWhileBureauHalfOpenAndIsProbed(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := controllerInput(1)
	bc := breaker.DefaultConfig()
	bc.ProbeCalls = 2
	in.Breakers = map[string]breaker.Config{"kcb": bc}
	b := BreakerBoard{Machines: map[string]breaker.Machine{"kcb": {State: breaker.Open, Since: now.Add(-time.Hour)}}}
	// The cool-down is over: kcb goes half open this period.
	_, _ = stepBoard(&b, now, nil, nil, in, nil)
	if b.Machines["kcb"].State != breaker.HalfOpen {
		t.Fatalf("kcb %s after the cool-down, want half_open", b.Machines["kcb"].State)
	}
	if b.Entry.State != breaker.Open {
		t.Fatalf("entry %s while kcb is half open: new applications would reach the bureau", b.Entry.State)
	}
	if got := probes(b, in); len(got) != 2 || got[0] != agency.KCB {
		t.Fatalf("probes %v, want kcb twice (ProbeCalls 2)", got)
	}
	// Healthy probes close kcb; only then does the entry let applications in.
	for i := 1; i <= bc.RecoveryPeriods; i++ {
		_, _ = stepBoard(&b, now.Add(time.Duration(i)*time.Second), map[string]flowcontrol.Observation{"kcb": {Calls: 1, OK: 1}}, nil, in, nil)
	}
	if b.Machines["kcb"].State != breaker.Closed || b.Entry.State != breaker.Closed {
		t.Fatalf("after healthy probes kcb %s, entry %s; want both closed", b.Machines["kcb"].State, b.Entry.State)
	}
	if got := probes(b, in); len(got) != 0 {
		t.Fatalf("probes %v with every bureau closed", got)
	}
}

// The controller probes a half-open bureau itself, a bounded number of
// calls per period.
func TestControllerProbesHalfOpenBureau(t *testing.T) {
	board := activities.PublishedBoard{Live: map[string]breaker.Status{"kcb": {Name: "kcb", State: breaker.HalfOpen, Machine: breaker.HalfOpen, MachineSince: time.Now()}}}
	h := newControllerHarness(t, board, nil)
	h.env.ExecuteWorkflow(FlowControllerWorkflow, controllerInput(4))
	canInput(t, h.env.GetWorkflowError())
	if n := len(h.probes); n < 1 || n > 4 {
		t.Fatalf("%d probe calls in 4 periods, want 1 to 4 (one a period at most)", n)
	}
	for _, p := range h.probes {
		if p.Agency != agency.KCB {
			t.Fatalf("probe sent to %s", p.Agency)
		}
	}
}

// A configuration change reaches a running controller through an Update;
// the same configuration again is refused, leaving no trace in history.
func TestConfigUpdateReachesRunningController(t *testing.T) {
	h := newControllerHarness(t, activities.PublishedBoard{}, nil)
	in := controllerInput(3)
	changed := in.Config
	changed.Agencies = map[string]flowcontrol.AgencyConfig{}
	for k, v := range in.Config.Agencies {
		changed.Agencies[k] = v
	}
	kcb := changed.Agencies["kcb"]
	kcb.MaxLimit = kcb.MaxLimit - 1
	changed.Agencies["kcb"] = kcb
	var accepted, unchanged error = errors.New("not called"), errors.New("not called")
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(ConfigUpdate, "u1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { accepted = err }, OnAccept: func() {}, OnComplete: func(_ any, err error) { accepted = err },
		}, ControllerSettings{Config: changed})
		h.env.UpdateWorkflow(ConfigUpdate, "u2", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { unchanged = err }, OnAccept: func() {}, OnComplete: func(_ any, err error) { unchanged = err },
		}, ControllerSettings{Config: changed})
	}, 1500*time.Millisecond)
	h.env.ExecuteWorkflow(FlowControllerWorkflow, in)
	next := canInput(t, h.env.GetWorkflowError())
	if accepted != nil {
		t.Fatalf("config update: %v", accepted)
	}
	if !IsConfigUnchanged(unchanged) {
		t.Fatalf("the same configuration again: %v, want refused as unchanged", unchanged)
	}
	if next.Config.Agencies["kcb"].MaxLimit != kcb.MaxLimit {
		t.Fatalf("updated config not carried: kcb max %d", next.Config.Agencies["kcb"].MaxLimit)
	}
}

// Agency names are normalised once, at the entry point: "KCB" is the kcb
// breaker; a name that is no agency is refused.
func TestOverrideNormalize(t *testing.T) {
	o, err := BreakerOverride{Agency: " KCB", State: "open", Reason: "r"}.Normalize()
	if err != nil || o.Agency != "kcb" {
		t.Fatalf("KCB normalised to %q, %v", o.Agency, err)
	}
	if _, err := (BreakerOverride{Agency: "equifax", State: "open", Reason: "r"}).Normalize(); err == nil {
		t.Fatal("unknown agency accepted")
	}
}

// Waiting applications are released spread over [0, 2×poll), each at an
// offset fixed by its id: the same on every replay, not all in one instant.
func TestReleaseDelayIsDeterministicAndSpread(t *testing.T) {
	const poll = time.Second
	buckets := make([]int, 4)
	for i := range 400 {
		id := "app-" + string(rune('a'+i%26)) + time.Duration(i).String()
		d := releaseDelay(id, poll)
		if d != releaseDelay(id, poll) {
			t.Fatalf("%s: delay differs between calls", id)
		}
		if d < 0 || d >= 2*poll {
			t.Fatalf("%s: delay %s outside [0, %s)", id, d, 2*poll)
		}
		buckets[int(d/(poll/2))]++
	}
	for i, n := range buckets {
		if n < 60 {
			t.Fatalf("release offsets bunched: quarter %d holds %d of 400 (%v)", i, n, buckets)
		}
	}
}

// An agency down, answering 503s to everything: the law keeps half the
// ceiling for its recovery and says so (Decision.Floor), and the breaker
// takes the pool at that floor as exhausted. Without it the breaker waited
// for a MinLimit the law never cuts to, and a bureau down stayed closed
// (seen on a loaded machine, where the bureau's ceiling had been learnt
// before the outage).
func TestBreakerOpensOnAnAgencyDownAtTheLawsFloor(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := controllerInput(1)
	bc := breaker.DefaultConfig()
	bc.FloorPeriods = 1
	in.Breakers = map[string]breaker.Config{"kcb": bc}
	down := map[string]flowcontrol.Observation{"kcb": {Calls: 40, Overload: 40}}
	for _, tc := range []struct {
		floor int
		want  breaker.State
	}{{0, breaker.Closed}, {8, breaker.HalfOpen}} {
		b := BreakerBoard{Machines: map[string]breaker.Machine{"kcb": {State: breaker.Closed, Since: now.Add(-time.Hour)}}}
		decisions := []flowcontrol.Decision{{Agency: "kcb", Limit: 8, Previous: 16, Floor: tc.floor}}
		_, _ = stepBoard(&b, now, down, decisions, in, nil)
		if got := b.Machines["kcb"].State; got != tc.want {
			t.Errorf("kcb refusing every call at limit 8, the law's floor %d: breaker %s, want %s", tc.floor, got, tc.want)
		}
	}
}
