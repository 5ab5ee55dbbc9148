package activities

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"loanflow/agency"
)

type fixedLatency struct {
	d     time.Duration
	known bool
}

func (f fixedLatency) AgencyLatency(string) (time.Duration, bool) { return f.d, f.known }

// reply is what scoreAgency answers: a credit score, or status when it is
// set and not 200, after delay.
type reply struct{ status, delay atomic.Int64 }

// scoreAgency serves r's reply and counts the calls in hits. It returns a
// client of it.
func scoreAgency(t *testing.T, r *reply) (c *agency.Client, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hits.Add(1)
		time.Sleep(time.Duration(r.delay.Load()))
		if code := int(r.status.Load()); code != 0 && code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
		_ = json.NewEncoder(w).Encode(agency.ScoreResponse{CustomerID: req.URL.Query().Get(agency.ParamCustomerID), Score: 700, ReportID: "r"})
	}))
	t.Cleanup(srv.Close)
	c, err := agency.NewClient(agency.ClientConfig{URLs: agency.URLsFromBase(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	return c, hits
}

func TestAdmissionRule(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		deadline time.Time
		need     time.Duration
		expired  bool
	}{
		{"no deadline", time.Time{}, time.Second, false},
		{"ample budget", now.Add(10 * time.Second), time.Second, false},
		{"exactly enough", now.Add(time.Second), time.Second, false},
		{"below the p90", now.Add(900 * time.Millisecond), time.Second, true},
		{"already past", now.Add(-time.Second), time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := admission(agency.KCB, tc.deadline, now, tc.need)
			if got := err != nil; got != tc.expired {
				t.Fatalf("admission = %v, want expired %v", err, tc.expired)
			}
			if err != nil && agency.Classify(err) != agency.ClassExpired {
				t.Fatalf("class %s, want expired", agency.Classify(err))
			}
		})
	}
}

// The client's timeout is asked only of calls whose whole budget exceeds
// it: a workflow giving its calls 3 s against a 3 s client timeout would
// otherwise never send one (every call expired, the agency never asked, its
// breaker never informed).
func TestAdmissionNeed(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		timeout, p90, budget time.Duration
		want                 time.Duration
	}{
		{"long budget: the client's timeout", 3 * time.Second, 40 * time.Millisecond, 2 * time.Minute, 3 * time.Second},
		{"long budget, slow agency: its p90", 3 * time.Second, 5 * time.Second, 2 * time.Minute, 5 * time.Second},
		{"budget equal to the timeout: the p90 only", 3 * time.Second, 40 * time.Millisecond, 3 * time.Second, 40 * time.Millisecond},
		{"budget below the timeout: the p90 only", 3 * time.Second, 40 * time.Millisecond, time.Second, 40 * time.Millisecond},
	} {
		if got := admissionNeed(tc.timeout, tc.p90, tc.budget); got != tc.want {
			t.Errorf("%s: need %s, want %s", tc.name, got, tc.want)
		}
	}
}

// A call whose budget is below the agency's current latency is not sent,
// and the workflow sees its own class, "expired", not an agency failure,
// at once: a retry within the spent budget could only expire again.
func TestFetchNotSentWhenBudgetBelowAgencyLatency(t *testing.T) {
	var refused reply
	refused.status.Store(http.StatusServiceUnavailable)
	c, hits := scoreAgency(t, &refused)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	// The test environment gives every activity a deadline (its test
	// timeout); an agency needing an hour is beyond it.
	acts := &AgencyActivities{Agencies: c, Latency: fixedLatency{time.Hour, true}}
	env.RegisterActivity(acts)
	_, err := env.ExecuteActivity(acts.FetchCreditScore, req)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(agency.ClassExpired) || !appErr.NonRetryable() {
		t.Fatalf("got %v, want a non-retryable application error of type expired (the budget is spent)", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the agency was called %d times; an expired call must not be sent", hits.Load())
	}

	// Unknown latency: the call goes out when the budget covers the
	// client's timeout (3 s by default; the test deadline is longer).
	acts.Latency = fixedLatency{}
	_, _ = env.ExecuteActivity(acts.FetchCreditScore, req)
	if hits.Load() != 1 {
		t.Fatalf("the agency was called %d times with no latency estimate, want 1", hits.Load())
	}
}

// fakeGate admits or refuses every call and notes what it was asked.
type fakeGate struct {
	refuse   bool
	notAfter time.Time
	entered  atomic.Int64
	released atomic.Int64
}

func (g *fakeGate) Enter(_ context.Context, _ string, notAfter time.Time) (func(), error) {
	g.notAfter = notAfter
	if g.refuse {
		return nil, errors.New("no call slot free in time")
	}
	g.entered.Add(1)
	return func() { g.released.Add(1) }, nil
}

// A call waits for a call slot no longer than it can still be sent with
// what the agency needs left of its budget; one that found none in time is
// expired, the workflow's to re-schedule, and the agency never sees it. An
// admitted call gives its slot back once answered.
func TestFetchWaitsForACallSlotWithinItsBudget(t *testing.T) {
	c, hits := scoreAgency(t, new(reply))
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	gate := &fakeGate{refuse: true}
	acts := &AgencyActivities{Agencies: c, Latency: fixedLatency{time.Second, true}, Gate: gate}
	env.RegisterActivity(acts)
	_, err := env.ExecuteActivity(acts.FetchCreditScore, req)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(agency.ClassExpired) {
		t.Fatalf("got %v, want an application error of type expired", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the agency was called %d times; a call with no slot must not be sent", hits.Load())
	}
	// The need is the client's timeout (3 s by default), above the 1 s p90.
	if gate.notAfter.IsZero() {
		t.Fatal("the gate was asked to wait with no bound; want the budget's last moment to send")
	}

	gate.refuse = false
	if _, err := env.ExecuteActivity(acts.FetchCreditScore, req); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 || gate.entered.Load() != 1 || gate.released.Load() != 1 {
		t.Fatalf("agency hits %d, entered %d, released %d; want 1 each", hits.Load(), gate.entered.Load(), gate.released.Load())
	}
}

type fixedPace struct{ d time.Duration }

func (f fixedPace) AgencyMedianLatency(string) (time.Duration, bool) { return f.d, f.d > 0 }

// timedGate admits every call and notes when each slot came back.
type timedGate struct {
	mu       sync.Mutex
	released []time.Time
}

func (g *timedGate) Enter(context.Context, string, time.Time) (func(), error) {
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.released = append(g.released, time.Now())
	}, nil
}

func (g *timedGate) releases() []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.released)
}

// A refusal keeps its call slot until the agency's median latency, and
// one at the agency's door (sooner than that) its control period too, have
// passed since the send, so a slot beyond the capacity of an agency that
// refuses at once does not turn over a refusal per round trip, but about
// one per period, the controller's. The refusal itself is returned at once
// (counted and retried as before), and every other outcome gives the slot
// back at once.
func TestRefusalKeepsItsSlotForTheAgencyLatency(t *testing.T) {
	var r reply
	c, _ := scoreAgency(t, &r)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	gate := &timedGate{}
	acts := &AgencyActivities{Agencies: c, Gate: gate}
	env.RegisterActivity(acts)
	period := func(d time.Duration) func(string) time.Duration {
		if d == 0 {
			return nil
		}
		return func(string) time.Duration { return d }
	}

	for _, tc := range []struct {
		name           string
		median, period time.Duration
		want           time.Duration
	}{
		{"the median latency", 300 * time.Millisecond, 0, 300 * time.Millisecond},
		{"the control period, above the median latency", 50 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond},
		{"the control period, latency unknown", 0, 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		acts.Pace, acts.RefusalPeriod = fixedPace{tc.median}, period(tc.period)
		r.status.Store(http.StatusServiceUnavailable)
		before := len(gate.releases())
		sent := time.Now()
		_, err := env.ExecuteActivity(acts.FetchCreditScore, req)
		returned := time.Now()
		if agency.Classify(err) != agency.ClassOverload {
			t.Fatalf("%s: got %v (class %s), want the agency's refusal, class overload", tc.name, err, agency.Classify(err))
		}
		if got := gate.releases()[before:]; len(got) != 0 {
			t.Fatalf("%s: the refused call's slot came back %s after the send, with the activity's return; want it kept %s",
				tc.name, got[0].Sub(sent), tc.want)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(gate.releases()) == before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		got := gate.releases()[before:]
		if len(got) != 1 {
			t.Fatalf("%s: the refused call's slot came back %d times, want once", tc.name, len(got))
		}
		if held := got[0].Sub(sent); held < tc.want {
			t.Fatalf("%s: the refused call's slot came back %s after the send, want no sooner than %s", tc.name, held, tc.want)
		}
		if returned.Sub(sent) >= tc.want {
			t.Logf("%s: the activity itself took %s to return the refusal (a loaded machine)", tc.name, returned.Sub(sent))
		}
	}

	// Served, failed by the agency, refused with neither the latency nor
	// the period known, or refused after a wait in the agency's queue
	// longer than the median latency (it has held its slot that long):
	// the slot comes back as the activity returns.
	for _, tc := range []struct {
		name                  string
		status                int
		median, period, delay time.Duration
	}{
		{"served", http.StatusOK, 300 * time.Millisecond, 0, 0},
		{"agency error", http.StatusInternalServerError, 300 * time.Millisecond, 0, 0},
		{"refused, latency unknown", http.StatusServiceUnavailable, 0, 0, 0},
		{"refused after a wait in the agency's queue", http.StatusServiceUnavailable, 50 * time.Millisecond, time.Minute, 200 * time.Millisecond},
	} {
		r.status.Store(int64(tc.status))
		r.delay.Store(int64(tc.delay))
		acts.Pace, acts.RefusalPeriod = fixedPace{tc.median}, period(tc.period)
		before := len(gate.releases())
		_, _ = env.ExecuteActivity(acts.FetchCreditScore, req)
		if n := len(gate.releases()) - before; n != 1 {
			t.Fatalf("%s: %d slots back as the activity returned, want 1", tc.name, n)
		}
	}
}
