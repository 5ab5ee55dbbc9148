package agencysim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"loanflow/agency"
)

// start serves a simulator with the given KCB config (others default) and
// returns it with a client for it.
func start(t *testing.T, kcb Config, timeout time.Duration) (*Server, *agency.Client, string) {
	t.Helper()
	s := New(map[agency.Name]Config{agency.KCB: kcb})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c, err := agency.NewClient(agency.ClientConfig{URLs: agency.URLsFromBase(srv.URL), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func callError(t *testing.T, err error) *agency.CallError {
	t.Helper()
	var ce *agency.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not an *agency.CallError", err, err)
	}
	return ce
}

func TestEveryAgencyAnswersDeterministically(t *testing.T) {
	s, c, _ := start(t, Config{}, 0)
	ctx := context.Background()
	const id = "C00012345"
	for _, n := range []agency.Name{agency.KCB, agency.NICE} {
		a, err := c.CreditScore(ctx, n, id, "app-1")
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.CreditScore(ctx, n, id, "app-1")
		if err != nil {
			t.Fatal(err)
		}
		if a != b || a.Score != Score(n, id) || a.Agency != string(n) || !strings.HasPrefix(a.ReportID, string(n)+"-") {
			t.Errorf("%s: answers %+v and %+v, want the same with score %d", n, a, b, Score(n, id))
		}
	}
	for _, n := range []agency.Name{agency.MyData, agency.Scraping} {
		f, err := c.Financials(ctx, n, id, "app-1")
		if err != nil {
			t.Fatal(err)
		}
		inc, debt, svc := Financials(n, id)
		if f.AnnualIncome != inc || f.TotalDebt != debt || f.AnnualDebtService != svc || f.Source != string(n) {
			t.Errorf("%s: got %+v, want %d/%d/%d", n, f, inc, debt, svc)
		}
	}
	if st := s.Stats(agency.KCB); st.Requests != 2 || st.OK != 2 || st.Served != 2 || st.InService != 0 {
		t.Errorf("kcb stats %+v, want 2 requests served ok", st)
	}
}

func TestMalformedCustomerIsClientError(t *testing.T) {
	s, c, base := start(t, Config{}, 0)
	_, err := c.CreditScore(context.Background(), agency.KCB, "12345", "app-1")
	ce := callError(t, err)
	if ce.Class != agency.ClassClientError || ce.StatusCode != 400 || ce.Retryable() || !strings.Contains(err.Error(), `12345`) {
		t.Errorf("got %v, want a non-retryable 400 naming the id", err)
	}
	if st := s.Stats(agency.KCB); st.ClientErrors != 1 || st.Requests != 1 || st.Served != 0 {
		t.Errorf("stats %+v, want one client error and nothing served", st)
	}
	// The wrong endpoint for the agency's kind does not exist.
	resp, err := http.Get(base + "/kcb/v1/financials?customer_id=C00012345")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("kcb financials answered %d, want 404", resp.StatusCode)
	}
}

func TestCapacityBoundsInService(t *testing.T) {
	s, c, _ := start(t, Config{Capacity: 5, MedianServiceTime: 20 * time.Millisecond, Jitter: -1,
		QueueLimit: 100, QueueTimeout: 5 * time.Second}, 5*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			_, err := c.CreditScore(context.Background(), agency.KCB, fmt.Sprintf("C%08d", i), "app")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := s.Stats(agency.KCB)
	if st.MaxInService > 5 {
		t.Errorf("max in service %d exceeds capacity 5", st.MaxInService)
	}
	if st.MaxInService < 5 || st.MaxQueued == 0 {
		t.Errorf("max in service %d, max queued %d: 30 concurrent requests should fill 5 slots and queue", st.MaxInService, st.MaxQueued)
	}
	if st.OK != 30 || st.InService != 0 || st.Queued != 0 {
		t.Errorf("stats %+v, want 30 ok and nothing left", st)
	}

	s.ResetStats(agency.KCB)
	if st := s.Stats(agency.KCB); st.MaxInService != 0 || st.OK != 0 || st.Requests != 0 {
		t.Errorf("after reset %+v", st)
	}
}

func TestCapacityFaultTakesEffectLive(t *testing.T) {
	s, c, _ := start(t, Config{Capacity: 5, MedianServiceTime: 20 * time.Millisecond, Jitter: -1,
		QueueLimit: 100, QueueTimeout: 5 * time.Second}, 5*time.Second)
	one := 1
	if err := s.SetFaults(agency.KCB, Faults{Capacity: &one}); err != nil {
		t.Fatal(err)
	}
	one = 99 // the server keeps its own copy
	if got := s.Faults(agency.KCB).Capacity; got == nil || *got != 1 {
		t.Fatalf("faults capacity %v, want 1", got)
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() { _, _ = c.CreditScore(context.Background(), agency.KCB, fmt.Sprintf("C%08d", i), "app") })
	}
	waitFor(t, "requests to queue behind capacity 1", func() bool { return s.Stats(agency.KCB).Queued >= 3 })
	three := 3
	if err := s.SetFaults(agency.KCB, Faults{Capacity: &three}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	st := s.Stats(agency.KCB)
	if st.MaxInService != 3 || st.OK != 6 || st.Capacity != 3 {
		t.Errorf("stats %+v: raising capacity to 3 should admit queued requests up to 3 at once", st)
	}
}

func TestQueueFullAnswers503(t *testing.T) {
	s, c, _ := start(t, Config{Capacity: 1, MedianServiceTime: 5 * time.Second, QueueLimit: 1,
		QueueTimeout: 5 * time.Second, RetryAfter: 2 * time.Second}, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _, _ = c.CreditScore(ctx, agency.KCB, "C00000001", "a") })
	waitFor(t, "one in service", func() bool { return s.Stats(agency.KCB).InService == 1 })
	wg.Go(func() { _, _ = c.CreditScore(ctx, agency.KCB, "C00000002", "a") })
	waitFor(t, "one queued", func() bool { return s.Stats(agency.KCB).Queued == 1 })

	began := time.Now()
	_, err := c.CreditScore(ctx, agency.KCB, "C00000003", "a")
	ce := callError(t, err)
	if ce.Class != agency.ClassOverload || ce.StatusCode != 503 || ce.RetryAfter != 2*time.Second || !strings.Contains(err.Error(), "queue full") {
		t.Errorf("got %v (retry after %s), want 503 queue full with Retry-After 2s", err, ce.RetryAfter)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("a full queue took %s to answer; it should answer at once", took)
	}
	if st := s.Stats(agency.KCB); st.Overload != 1 {
		t.Errorf("overload %d, want 1", st.Overload)
	}
}

func TestQueueTimeoutAnswers503(t *testing.T) {
	s, c, _ := start(t, Config{Capacity: 1, MedianServiceTime: 5 * time.Second, QueueLimit: 10,
		QueueTimeout: 30 * time.Millisecond}, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _, _ = c.CreditScore(ctx, agency.KCB, "C00000001", "a") })
	waitFor(t, "one in service", func() bool { return s.Stats(agency.KCB).InService == 1 })
	_, err := c.CreditScore(ctx, agency.KCB, "C00000002", "a")
	if ce := callError(t, err); ce.Class != agency.ClassOverload || !strings.Contains(err.Error(), "queue timeout 30ms") {
		t.Errorf("got %v, want 503 after the queue timeout", err)
	}
	if st := s.Stats(agency.KCB); st.Overload != 1 || st.Queued != 0 {
		t.Errorf("stats %+v, want one overload and an empty queue", st)
	}
}

func TestDownAnswers503AtOnce(t *testing.T) {
	s, c, _ := start(t, Config{MedianServiceTime: 5 * time.Second}, 10*time.Second)
	if err := s.SetFaults(agency.NICE, Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err := c.CreditScore(context.Background(), agency.NICE, "C00000001", "a")
	if ce := callError(t, err); ce.Class != agency.ClassOverload || ce.StatusCode != 503 || ce.RetryAfter != time.Second {
		t.Errorf("got %v, want 503 with Retry-After 1s", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("down agency took %s to answer", took)
	}
	if st := s.Stats(agency.NICE); st.Overload != 1 || st.Served != 0 {
		t.Errorf("stats %+v, want one overload and nothing served", st)
	}
	if st := s.Stats(agency.KCB); st.Requests != 0 {
		t.Errorf("kcb saw %d requests; faults must be per agency", st.Requests)
	}
	if err := s.SetFaults(agency.NICE, Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreditScore(context.Background(), agency.NICE, "C00000001", "a"); err != nil {
		t.Errorf("after clearing faults: %v", err)
	}
}

func TestErrorRateAnswers500(t *testing.T) {
	s, c, _ := start(t, Config{}, 0)
	if err := s.SetFaults(agency.MyData, Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := c.Financials(context.Background(), agency.MyData, "C00000001", "a")
		if ce := callError(t, err); ce.Class != agency.ClassAgencyError || ce.StatusCode != 500 || !ce.Retryable() {
			t.Errorf("got %v, want a retryable 500", err)
		}
	}
	if st := s.Stats(agency.MyData); st.Errors != 3 || st.OK != 0 || st.Served != 3 {
		t.Errorf("stats %+v, want 3 errors after service", st)
	}
}

// TestRefuseRateAnswers503AtOnce: a request refused at random is answered
// 503 at once, holds no service slot and is counted as overload; at a rate
// of 0.5 some are and some are not.
func TestRefuseRateAnswers503AtOnce(t *testing.T) {
	s, c, _ := start(t, Config{MedianServiceTime: time.Millisecond, Jitter: -1}, 0)
	if err := s.SetFaults(agency.KCB, Faults{RefuseRate: 1}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := c.CreditScore(context.Background(), agency.KCB, "C00000001", "a")
		if ce := callError(t, err); ce.Class != agency.ClassOverload || ce.StatusCode != 503 || !strings.Contains(err.Error(), "refused at random") {
			t.Errorf("got %v, want 503 refused at random", err)
		}
	}
	if st := s.Stats(agency.KCB); st.Overload != 3 || st.Served != 0 || st.MaxInService != 0 {
		t.Errorf("stats %+v, want 3 overload answers and nothing served", st)
	}
	if err := s.SetFaults(agency.KCB, Faults{RefuseRate: 0.5}); err != nil {
		t.Fatal(err)
	}
	var ok, refused int
	for range 40 {
		if _, err := c.CreditScore(context.Background(), agency.KCB, "C00000001", "a"); err == nil {
			ok++
		} else if ce := callError(t, err); ce.StatusCode == 503 {
			refused++
		}
	}
	if ok == 0 || refused == 0 || ok+refused != 40 {
		t.Errorf("at a refuse rate of 0.5: %d served, %d refused of 40; want some of each", ok, refused)
	}
}

func TestAbandonedWhenClientGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(s *Server, c *agency.Client) func()
	}{
		{"in service", func(*Server, *agency.Client) func() { return func() {} }},
		{"queued", func(s *Server, c *agency.Client) func() {
			// Fill the only slot with a request that outlives the test's.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _, _ = c.CreditScore(ctx, agency.KCB, "C00000009", "a") }()
			return func() { cancel(); <-done }
		}},
		{"added latency", func(s *Server, _ *agency.Client) func() {
			_ = s.SetFaults(agency.KCB, Faults{AddedLatency: 5 * time.Second})
			return func() {}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, _ := start(t, Config{Capacity: 1, MedianServiceTime: 5 * time.Second, QueueTimeout: 5 * time.Second}, 10*time.Second)
			cleanup := tc.setup(s, c)
			if tc.name == "queued" {
				waitFor(t, "the slot to fill", func() bool { return s.Stats(agency.KCB).InService == 1 })
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := c.CreditScore(ctx, agency.KCB, "C00000001", "a")
			// The caller's deadline came before the client's timeout: the
			// caller cut the call (expired), as the agency sees abandoned.
			if agency.Classify(err) != agency.ClassExpired {
				t.Errorf("got %v, want expired (the caller's deadline)", err)
			}
			waitFor(t, "the agency to count the abandoned call", func() bool { return s.Stats(agency.KCB).Abandoned == 1 })
			cleanup()
			waitFor(t, "every slot to be freed", func() bool {
				st := s.Stats(agency.KCB)
				return st.InService == 0 && st.Queued == 0
			})
			if st := s.Stats(agency.KCB); st.OK != 0 || st.Overload != 0 {
				t.Errorf("stats %+v: abandoned calls must not count as ok or overload", st)
			}
		})
	}
}

func TestServiceTimeModel(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name                      string
		jitter, factor, inflation float64
		present, capacity         int
		z                         float64
		want                      time.Duration
	}{
		{"median", 0.25, 0, 0.5, 5, 10, 0, 20 * ms},
		{"at capacity", 0.25, 1, 0.5, 10, 10, 0, 20 * ms},
		{"twice capacity", 0.25, 1, 0.5, 20, 10, 0, 30 * ms},
		{"four times capacity", 0.25, 1, 0.5, 40, 10, 0, 50 * ms},
		{"no inflation", 0.25, 1, 0, 40, 10, 0, 20 * ms},
		{"slowed by fault", 0.25, 3, 0.5, 1, 10, 0, 60 * ms},
		{"one sigma", 0.25, 1, 0.5, 1, 10, 1, time.Duration(float64(20*ms) * math.Exp(0.25))},
		{"tail clipped", 0.25, 1, 0.5, 1, 10, 100, time.Duration(float64(20*ms) * math.Exp(1))},
		{"zero capacity", 0.25, 1, 0.5, 5, 0, 0, 20 * ms},
	} {
		got := serviceTime(20*ms, tc.jitter, tc.factor, tc.inflation, tc.present, tc.capacity, tc.z)
		if d := got - tc.want; d > time.Microsecond || d < -time.Microsecond {
			t.Errorf("%s: serviceTime = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestOverloadInflatesServiceTime offers 1× and then 4× the capacity in
// concurrent clients and compares the simulator's own computed service time,
// so the assertion does not depend on the machine's timing.
func TestOverloadInflatesServiceTime(t *testing.T) {
	const capacity = 4
	s, c, _ := start(t, Config{Capacity: capacity, MedianServiceTime: 10 * time.Millisecond, Jitter: -1,
		InflationPerOverload: 1, QueueLimit: 100, QueueTimeout: 10 * time.Second}, 10*time.Second)
	run := func(clients int) Stats {
		s.ResetStats(agency.KCB)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				for j := range 3 {
					if _, err := c.CreditScore(context.Background(), agency.KCB, fmt.Sprintf("C%04d%04d", i, j), "a"); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		return s.Stats(agency.KCB)
	}
	base := run(capacity)
	loaded := run(4 * capacity)
	t.Logf("mean service time at 1x: %s, at 4x: %s", base.MeanServiceTime(), loaded.MeanServiceTime())
	if base.MeanServiceTime() != 10*time.Millisecond {
		t.Errorf("at 1x capacity the mean service time is %s, want the median 10ms", base.MeanServiceTime())
	}
	if ratio := float64(loaded.MeanServiceTime()) / float64(base.MeanServiceTime()); ratio < 1.5 {
		t.Errorf("at 4x capacity service time is only %.2fx the unloaded one; overload must inflate it", ratio)
	}
	if loaded.MaxInService > capacity {
		t.Errorf("max in service %d exceeds capacity %d", loaded.MaxInService, capacity)
	}
}

func TestAdminAPI(t *testing.T) {
	s, _, base := start(t, Config{}, 0)
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := do("PUT", "/admin/agencies/mydata/faults", `{"error_rate":0.5,"added_latency":"15ms","capacity":3}`)
	if code != 200 {
		t.Fatalf("PUT faults: %d %s", code, body)
	}
	code, body = do("PUT", "/admin/agencies/mydata/faults", `{"down":true,"capacity":null}`)
	if code != 200 {
		t.Fatalf("PUT faults: %d %s", code, body)
	}
	f := s.Faults(agency.MyData)
	if f.ErrorRate != 0.5 || f.AddedLatency != 15*time.Millisecond || !f.Down || f.Capacity != nil {
		t.Errorf("faults %+v: absent fields must stay, null must reset", f)
	}
	code, body = do("GET", "/admin/agencies/mydata/faults", "")
	var got Faults
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || got.ErrorRate != 0.5 || got.AddedLatency != 15*time.Millisecond {
		t.Errorf("GET faults: %d %s (%v)", code, body, err)
	}
	if !strings.Contains(body, `"added_latency":"15ms"`) {
		t.Errorf("GET faults %s should show the latency as a duration string", body)
	}

	for _, tc := range []struct{ body, mention string }{
		{`{"error_rate":1.5}`, "error_rate 1.5"},
		{`{"refuse_rate":-1}`, "refuse_rate -1"},
		{`{"capacity":0}`, "capacity 0"},
		{`{"added_latency":"soon"}`, "added_latency"},
		{`{"colour":"red"}`, "unknown faults field"},
		{`not json`, "decode faults"},
	} {
		if code, body := do("PUT", "/admin/agencies/mydata/faults", tc.body); code != 400 || !strings.Contains(body, tc.mention) {
			t.Errorf("PUT %s: %d %s, want 400 mentioning %s", tc.body, code, body, tc.mention)
		}
	}
	if s.Faults(agency.MyData).ErrorRate != 0.5 {
		t.Error("a rejected patch changed the faults")
	}

	if code, _ := do("DELETE", "/admin/agencies/mydata/faults", ""); code != 200 || s.Faults(agency.MyData) != (Faults{}) {
		t.Errorf("DELETE faults: %d, faults now %+v", code, s.Faults(agency.MyData))
	}
	if code, body := do("GET", "/admin/agencies/equifax/stats", ""); code != 404 || !strings.Contains(body, "kcb, nice, mydata, scraping") {
		t.Errorf("unknown agency: %d %s", code, body)
	}

	code, body = do("GET", "/admin/agencies/kcb/stats", "")
	var st Stats
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Agency != agency.KCB || st.Capacity != 20 {
		t.Errorf("GET stats: %d %s (%v)", code, body, err)
	}
	if code, _ := do("POST", "/admin/agencies/kcb/stats/reset", ""); code != 200 {
		t.Errorf("reset stats: %d", code)
	}
	if code, body := do("GET", "/admin/agencies", ""); code != 200 || strings.Count(body, `"agency":"scraping"`) != 2 {
		t.Errorf("GET agencies: %d %s", code, body)
	}
}

func TestSetFaultsRejectsBadValues(t *testing.T) {
	s := New(nil)
	zero := 0
	for _, tc := range []struct {
		name    agency.Name
		f       Faults
		mention string
	}{
		{agency.KCB, Faults{ErrorRate: -0.1}, "error_rate -0.1"},
		{agency.KCB, Faults{ErrorRate: math.NaN()}, "error_rate"},
		{agency.KCB, Faults{RefuseRate: 1.5}, "refuse_rate 1.5"},
		{agency.KCB, Faults{Capacity: &zero}, "capacity 0"},
		{agency.KCB, Faults{AddedLatency: -time.Second}, "added_latency -1s"},
		{agency.KCB, Faults{ServiceTimeFactor: -1}, "service_time_factor -1"},
		{"equifax", Faults{}, `"equifax"`},
	} {
		if err := s.SetFaults(tc.name, tc.f); err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("SetFaults(%s, %+v) = %v, want an error mentioning %s", tc.name, tc.f, err, tc.mention)
		}
	}
	if s.Faults(agency.KCB) != (Faults{}) {
		t.Error("a rejected SetFaults changed the faults")
	}
}

func TestConfigNormalization(t *testing.T) {
	s := New(map[agency.Name]Config{
		agency.KCB:  {Capacity: -3, MedianServiceTime: -time.Second, Jitter: math.NaN(), QueueTimeout: -1},
		agency.NICE: {Capacity: 7, Jitter: -1, QueueLimit: -1, InflationPerOverload: -1},
		"equifax":   {Capacity: 1},
	})
	kcb, _ := s.Config(agency.KCB)
	if want := DefaultConfig(agency.KCB); kcb != want {
		t.Errorf("kcb config %+v, want the defaults %+v", kcb, want)
	}
	nice, _ := s.Config(agency.NICE)
	if nice.Capacity != 7 || nice.Jitter != 0 || nice.QueueLimit != 0 || nice.InflationPerOverload != 0 ||
		nice.MedianServiceTime != 20*time.Millisecond {
		t.Errorf("nice config %+v: negative values must turn features off", nice)
	}
	scraping, _ := s.Config(agency.Scraping)
	if scraping != DefaultConfig(agency.Scraping) || scraping.QueueLimit != 20 {
		t.Errorf("scraping config %+v, want defaults", scraping)
	}
	if _, err := s.Config("equifax"); err == nil {
		t.Error("Config(equifax) succeeded")
	}
	if c := (Config{Capacity: 6}).normalized(agency.KCB); c.QueueLimit != 12 {
		t.Errorf("default queue limit %d, want 2x capacity", c.QueueLimit)
	}
}

func TestStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(nil)
	base, stop, err := s.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := agency.NewClient(agency.ClientConfig{URLs: agency.URLsFromBase(base), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreditScore(ctx, agency.KCB, "C00000001", "a"); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if _, err := c.CreditScore(ctx, agency.KCB, "C00000001", "a"); agency.Classify(err) != agency.ClassTransport {
		t.Errorf("after stop: %v, want a transport error", err)
	}
	if _, _, err := s.Start(ctx, "256.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "256.0.0.1:0") {
		t.Errorf("Start on a bad address: %v", err)
	}
}
