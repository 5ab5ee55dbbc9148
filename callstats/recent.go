package callstats

import (
	"slices"
	"sync"
	"time"

	"loanflow/agency"
)

// Recent latency: what admission asks "how long does the agency need now".
const (
	recentSize   = 128              // successful calls kept per agency
	recentMaxAge = 30 * time.Second // older ones say nothing about now
	recentMin    = 5                // fewer than this and there is no estimate
)

// recentLatency is a ring of an agency's last successful calls' latency in
// this process. Every worker sees the same agency, so its own calls are a
// fair sample, and reading them costs no round trip on the call path.
type recentLatency struct {
	mu   sync.Mutex
	at   [recentSize]time.Time
	lat  [recentSize]time.Duration
	next int
	n    int
}

func (r *recentLatency) add(at time.Time, lat time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at[r.next], r.lat[r.next] = at, lat
	r.next = (r.next + 1) % recentSize
	r.n = min(r.n+1, recentSize)
}

func (r *recentLatency) quantile(now time.Time, q float64) (time.Duration, bool) {
	r.mu.Lock()
	lats := make([]time.Duration, 0, r.n)
	for i := range r.n {
		if now.Sub(r.at[i]) <= recentMaxAge {
			lats = append(lats, r.lat[i])
		}
	}
	r.mu.Unlock()
	if len(lats) < recentMin {
		return 0, false
	}
	slices.Sort(lats)
	return lats[min(len(lats)-1, int(q*float64(len(lats))))], true
}

// AgencyLatency is the agency's current p90 latency as this process saw it:
// over its last 128 successful calls that finished within the last 30 s,
// and false with fewer than 5 of them. Admission compares a call's
// remaining budget with it.
func (r *Recorder) AgencyLatency(agencyName string) (time.Duration, bool) {
	return r.recentQuantile(agencyName, 0.9)
}

// AgencyMedianLatency is the agency's current median latency over the same
// calls as AgencyLatency: how long a call it serves takes now. A refused
// call keeps its call slot that long (see activities.RefusalPace).
func (r *Recorder) AgencyMedianLatency(agencyName string) (time.Duration, bool) {
	return r.recentQuantile(agencyName, 0.5)
}

func (r *Recorder) recentQuantile(agencyName string, q float64) (time.Duration, bool) {
	v, ok := r.recent.Load(agencyName)
	if !ok {
		return 0, false
	}
	return v.(*recentLatency).quantile(r.now(), q)
}

// noteRecent keeps a successful call's latency for AgencyLatency.
func (r *Recorder) noteRecent(agencyName string, s Sample) {
	if s.Class != agency.ClassOK {
		return
	}
	v, ok := r.recent.Load(agencyName)
	if !ok {
		v, _ = r.recent.LoadOrStore(agencyName, &recentLatency{})
	}
	v.(*recentLatency).add(s.Finished, s.Latency())
}
