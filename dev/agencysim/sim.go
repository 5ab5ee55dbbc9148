package agencysim

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"loanflow/agency"
)

// Faults are injected into a running agency. The zero value injects nothing.
type Faults struct {
	// Capacity overrides Config.Capacity when set; it must be at least 1.
	Capacity *int
	// ErrorRate is the fraction of served requests answered 500, 0..1. Such
	// requests still take their service time, as a failing backend does.
	ErrorRate float64
	// RefuseRate is the fraction of requests answered 503 at once, at
	// random, whatever the load, as a gateway's stray 503s, 0..1. Unlike
	// ErrorRate they take no service slot and no service time.
	RefuseRate float64
	// AddedLatency delays every answer before admission, outside the
	// agency's capacity, like a slow network or gateway.
	AddedLatency time.Duration
	// Down answers every request 503 at once.
	Down bool
	// ServiceTimeFactor multiplies service time (2 = twice as slow, which
	// halves the agency's throughput); 0 means 1.
	ServiceTimeFactor float64
}

// Validate reports the first field that is out of range.
func (f Faults) Validate() error {
	switch {
	case f.Capacity != nil && *f.Capacity < 1:
		return fmt.Errorf("invalid faults: capacity %d: accepted 1 or more, or null for the configured capacity", *f.Capacity)
	case math.IsNaN(f.ErrorRate) || f.ErrorRate < 0 || f.ErrorRate > 1:
		return fmt.Errorf("invalid faults: error_rate %v: accepted 0 to 1", f.ErrorRate)
	case math.IsNaN(f.RefuseRate) || f.RefuseRate < 0 || f.RefuseRate > 1:
		return fmt.Errorf("invalid faults: refuse_rate %v: accepted 0 to 1", f.RefuseRate)
	case f.AddedLatency < 0:
		return fmt.Errorf("invalid faults: added_latency %s: accepted 0 or more", f.AddedLatency)
	case math.IsNaN(f.ServiceTimeFactor) || math.IsInf(f.ServiceTimeFactor, 0) || f.ServiceTimeFactor < 0:
		return fmt.Errorf("invalid faults: service_time_factor %v: accepted 0 (meaning 1) or more", f.ServiceTimeFactor)
	}
	return nil
}

// faultsJSON is the wire form of Faults: durations as Go duration strings.
type faultsJSON struct {
	Capacity          *int    `json:"capacity"`
	ErrorRate         float64 `json:"error_rate"`
	RefuseRate        float64 `json:"refuse_rate"`
	AddedLatency      string  `json:"added_latency"`
	Down              bool    `json:"down"`
	ServiceTimeFactor float64 `json:"service_time_factor"`
}

// MarshalJSON writes every field; added_latency is a duration string such as "50ms".
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{f.Capacity, f.ErrorRate, f.RefuseRate, f.AddedLatency.String(), f.Down, f.ServiceTimeFactor})
}

// UnmarshalJSON reads a full Faults; fields left out are zero.
func (f *Faults) UnmarshalJSON(b []byte) error {
	got, err := patchFaults(Faults{}, b)
	if err != nil {
		return err
	}
	*f = got
	return nil
}

// patchFaults applies a JSON merge patch (RFC 7386) to cur: a field left out
// is unchanged, a null field goes back to its zero value, and an unknown
// field is an error. added_latency is a duration string ("50ms") or a number
// of milliseconds.
func patchFaults(cur Faults, b []byte) (Faults, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return cur, fmt.Errorf("decode faults: %w", err)
	}
	for k, v := range raw {
		null := string(v) == "null"
		var err error
		switch k {
		case "capacity":
			if null {
				cur.Capacity = nil
				continue
			}
			var c int
			if err = json.Unmarshal(v, &c); err == nil {
				cur.Capacity = &c
			}
		case "error_rate":
			cur.ErrorRate = 0
			if !null {
				err = json.Unmarshal(v, &cur.ErrorRate)
			}
		case "refuse_rate":
			cur.RefuseRate = 0
			if !null {
				err = json.Unmarshal(v, &cur.RefuseRate)
			}
		case "added_latency":
			cur.AddedLatency = 0
			if !null {
				cur.AddedLatency, err = parseDuration(v)
			}
		case "down":
			cur.Down = false
			if !null {
				err = json.Unmarshal(v, &cur.Down)
			}
		case "service_time_factor":
			cur.ServiceTimeFactor = 0
			if !null {
				err = json.Unmarshal(v, &cur.ServiceTimeFactor)
			}
		default:
			return cur, fmt.Errorf("unknown faults field %q: accepted capacity, error_rate, refuse_rate, added_latency, down, service_time_factor", k)
		}
		if err != nil {
			return cur, fmt.Errorf("decode faults field %s %s: %w", k, v, err)
		}
	}
	return cur, cur.Validate()
}

func parseDuration(v json.RawMessage) (time.Duration, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return time.ParseDuration(s)
	}
	var ms float64
	if err := json.Unmarshal(v, &ms); err != nil {
		return 0, fmt.Errorf("accepted a duration string such as \"50ms\" or a number of milliseconds")
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// Stats are an agency's counters. Each request received ends in exactly one
// of OK, Overload, Errors, Abandoned or ClientErrors.
type Stats struct {
	Agency       agency.Name `json:"agency"`
	Capacity     int         `json:"capacity"`      // effective now, faults included
	Requests     int64       `json:"requests"`      // received
	OK           int64       `json:"ok"`            // answered 200
	Overload     int64       `json:"overload"`      // answered 503: down, refused at random, queue full or queue timeout
	Errors       int64       `json:"errors"`        // answered 500 (ErrorRate)
	Abandoned    int64       `json:"abandoned"`     // the client went away before the answer
	ClientErrors int64       `json:"client_errors"` // answered 400
	InService    int         `json:"in_service"`    // now
	Queued       int         `json:"queued"`        // now
	MaxInService int         `json:"max_in_service"`
	MaxQueued    int         `json:"max_queued"`
	// Served counts requests that started service and ServiceTime sums the
	// service time computed for them, inflation included.
	Served      int64         `json:"served"`
	ServiceTime time.Duration `json:"service_time_ns"`
}

// MeanServiceTime is the mean computed service time of served requests.
func (s Stats) MeanServiceTime() time.Duration {
	if s.Served == 0 {
		return 0
	}
	return s.ServiceTime / time.Duration(s.Served)
}

// AgencyErrors is the error count the benchmarks use: overload answers plus
// calls the client abandoned.
func (s Stats) AgencyErrors() int64 { return s.Overload + s.Abandoned }

// sim is one simulated agency.
type sim struct {
	name agency.Name
	cfg  Config // normalized, never changed

	mu        sync.Mutex
	faults    Faults
	inService int
	queue     list.List // of *waiter, FIFO
	st        Stats
}

type waiter struct {
	ready   chan struct{} // closed when granted
	granted bool
	present int // requests present when service began
}

// outcome is how one request ended.
type outcome int

const (
	outOK outcome = iota
	outError
	outOverload
	outAbandoned
)

func newSim(name agency.Name, cfg Config) *sim {
	a := &sim{name: name, cfg: cfg.normalized(name)}
	a.st.Agency = name
	return a
}

func (a *sim) capacityLocked() int {
	if a.faults.Capacity != nil {
		return *a.faults.Capacity
	}
	return a.cfg.Capacity
}

func (a *sim) stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.st
	s.Capacity = a.capacityLocked()
	s.InService = a.inService
	s.Queued = a.queue.Len()
	return s
}

func (a *sim) resetStats() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st = Stats{Agency: a.name, MaxInService: a.inService, MaxQueued: a.queue.Len()}
}

func (a *sim) getFaults() Faults {
	a.mu.Lock()
	defer a.mu.Unlock()
	return copyFaults(a.faults)
}

func (a *sim) setFaults(f Faults) {
	_, _ = a.updateFaults(func(Faults) (Faults, error) { return f, nil })
}

// updateFaults changes the faults atomically, so concurrent patches of
// different fields all take effect.
func (a *sim) updateFaults(change func(Faults) (Faults, error)) (Faults, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := change(copyFaults(a.faults))
	if err != nil {
		return copyFaults(a.faults), err
	}
	a.faults = copyFaults(f)
	a.dispatchLocked() // a larger capacity admits queued requests at once
	return copyFaults(a.faults), nil
}

// copyFaults detaches the Capacity pointer from the caller's variable.
func copyFaults(f Faults) Faults {
	if f.Capacity != nil {
		c := *f.Capacity
		f.Capacity = &c
	}
	return f
}

func (a *sim) count(c *int64) {
	a.mu.Lock()
	*c++
	a.mu.Unlock()
}

// serve runs one request through the agency and says how it ended; the
// counters are updated here. reason explains an overload answer.
func (a *sim) serve(ctx context.Context) (out outcome, reason string) {
	a.mu.Lock()
	a.st.Requests++
	f := a.faults
	if f.Down {
		a.st.Overload++
		a.mu.Unlock()
		return outOverload, "agency is down"
	}
	if f.RefuseRate > 0 && rand.Float64() < f.RefuseRate {
		a.st.Overload++
		a.mu.Unlock()
		return outOverload, "refused at random"
	}
	a.mu.Unlock()

	if f.AddedLatency > 0 && !sleep(ctx, f.AddedLatency) {
		a.count(&a.st.Abandoned)
		return outAbandoned, ""
	}
	present, out, reason := a.acquire(ctx)
	if out != outOK {
		return out, reason
	}

	a.mu.Lock()
	f = a.faults
	d := serviceTime(a.cfg.MedianServiceTime, a.cfg.Jitter, f.ServiceTimeFactor, a.cfg.InflationPerOverload,
		present, a.capacityLocked(), rand.NormFloat64())
	fail := f.ErrorRate > 0 && rand.Float64() < f.ErrorRate
	a.st.Served++
	a.st.ServiceTime += d
	a.mu.Unlock()

	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		if a.cfg.WorkAfterAbandon {
			<-t.C
		} else {
			t.Stop()
		}
		a.release(&a.st.Abandoned)
		return outAbandoned, ""
	}
	if fail {
		a.release(&a.st.Errors)
		return outError, ""
	}
	a.release(&a.st.OK)
	return outOK, ""
}

// acquire takes a service slot, waiting in the FIFO queue if needed. It
// returns outOK with the number of requests present when service began, or
// the outcome that ended the request (already counted).
func (a *sim) acquire(ctx context.Context) (present int, out outcome, reason string) {
	a.mu.Lock()
	if a.inService < a.capacityLocked() && a.queue.Len() == 0 {
		a.inService++
		a.st.MaxInService = max(a.st.MaxInService, a.inService)
		present = a.inService
		a.mu.Unlock()
		return present, outOK, ""
	}
	if a.queue.Len() >= a.cfg.QueueLimit {
		a.st.Overload++
		a.mu.Unlock()
		return 0, outOverload, "queue full"
	}
	w := &waiter{ready: make(chan struct{})}
	el := a.queue.PushBack(w)
	a.st.MaxQueued = max(a.st.MaxQueued, a.queue.Len())
	a.mu.Unlock()

	t := time.NewTimer(a.cfg.QueueTimeout)
	defer t.Stop()
	select {
	case <-w.ready:
		return w.present, outOK, ""
	case <-t.C:
		a.mu.Lock()
		defer a.mu.Unlock()
		if w.granted { // the slot came as the timer fired: take it
			return w.present, outOK, ""
		}
		a.queue.Remove(el)
		a.st.Overload++
		return 0, outOverload, fmt.Sprintf("no slot within queue timeout %s", a.cfg.QueueTimeout)
	case <-ctx.Done():
		a.mu.Lock()
		defer a.mu.Unlock()
		if w.granted {
			a.inService--
			a.dispatchLocked()
		} else {
			a.queue.Remove(el)
		}
		a.st.Abandoned++
		return 0, outAbandoned, ""
	}
}

// release frees a slot, counts the request's outcome and admits the next.
func (a *sim) release(counter *int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	*counter++
	a.inService--
	a.dispatchLocked()
}

// dispatchLocked hands free slots to queued requests in arrival order.
func (a *sim) dispatchLocked() {
	capacity := a.capacityLocked()
	for a.inService < capacity && a.queue.Len() > 0 {
		w := a.queue.Remove(a.queue.Front()).(*waiter)
		a.inService++
		w.granted = true
		w.present = a.inService + a.queue.Len()
		close(w.ready)
	}
	a.st.MaxInService = max(a.st.MaxInService, a.inService)
}

// serviceTime is one request's service time: lognormal around the median
// (z is a standard normal draw, clipped to ±4), times the fault factor,
// inflated while more requests are present than the capacity.
func serviceTime(median time.Duration, jitter, factor, inflation float64, present, capacity int, z float64) time.Duration {
	if factor <= 0 {
		factor = 1
	}
	z = min(max(z, -4), 4)
	d := float64(median) * math.Exp(jitter*z) * factor
	if over := present - capacity; over > 0 && inflation > 0 && capacity > 0 {
		d *= 1 + inflation*float64(over)/float64(capacity)
	}
	return time.Duration(d)
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
