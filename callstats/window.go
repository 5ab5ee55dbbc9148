package callstats

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"loanflow/agency"
)

// Window is an agency's statistics over whole seconds [From, To): the calls
// that finished in those seconds.
type Window struct {
	Agency   string
	From, To time.Time
	// Calls counts every finished call, whatever its class.
	Calls int64
	// ByClass counts calls per agency.Class name; absent classes read 0.
	ByClass map[string]int64
	// Latency is start to finish of each successful call (a failed or
	// expired call's says nothing of the agency's service time); QueueWait
	// is scheduled to start of every call, recorded only when the
	// attempt's scheduled time was known, so QueueWait.Count() may be
	// below Calls.
	Latency, QueueWait Histogram
}

// Count is the number of calls of class c.
func (w Window) Count(c agency.Class) int64 { return w.ByClass[string(c)] }

// Duration is To − From.
func (w Window) Duration() time.Duration { return w.To.Sub(w.From) }

// SuccessRate is the fraction of calls that succeeded, 0 without calls.
func (w Window) SuccessRate() float64 { return w.rate(agency.ClassOK) }

// OverloadRate is the fraction of calls the agency refused as overloaded
// (429/503), 0 without calls.
func (w Window) OverloadRate() float64 { return w.rate(agency.ClassOverload) }

// FailureRate is the fraction of calls that failed through the agency's
// fault: overload, agency errors (5xx), timeouts and transport failures.
// Client errors and invalid data are the caller's fault (the agency would
// answer the same again), and canceled calls were abandoned by the caller, so
// they count in Calls but not as agency failures. It is 0 without calls.
func (w Window) FailureRate() float64 {
	return w.rate(agency.ClassOverload, agency.ClassAgencyError, agency.ClassTimeout, agency.ClassTransport)
}

// Throughput is successful calls per second over the window, 0 for an empty
// window.
func (w Window) Throughput() float64 {
	secs := w.Duration().Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(w.Count(agency.ClassOK)) / secs
}

func (w Window) rate(classes ...agency.Class) float64 {
	if w.Calls == 0 {
		return 0
	}
	var n int64
	for _, c := range classes {
		n += w.Count(c)
	}
	return float64(n) / float64(w.Calls)
}

// Window reads the agency's statistics for [from, to), both truncated to
// whole seconds, in one pipelined round trip. Truncating makes [now−5s, now)
// the last five complete seconds, leaving out the one still being written.
func (r *Recorder) Window(ctx context.Context, agencyName string, from, to time.Time) (Window, error) {
	ws, err := r.Windows(ctx, []string{agencyName}, from, to)
	if err != nil {
		return Window{}, err
	}
	return ws[0], nil
}

// Windows reads several agencies' statistics for the same [from, to) in one
// pipelined call, returned in the order of agencies. On Redis Cluster the
// pipeline goes to each agency's node in parallel. Unlike Record it waits as
// long as the client does: ctx bounds it only with the go-redis option
// ContextTimeoutEnabled, otherwise the client's read timeout does.
func (r *Recorder) Windows(ctx context.Context, agencies []string, from, to time.Time) ([]Window, error) {
	from, to = from.Truncate(time.Second), to.Truncate(time.Second)
	if to.Before(from) {
		return nil, fmt.Errorf("read call statistics: window end %s is before its start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	secs := to.Unix() - from.Unix()
	if secs > maxWindowSecs {
		return nil, fmt.Errorf("read call statistics: window of %ds is longer than the %ds allowed", secs, maxWindowSecs)
	}
	ws := make([]Window, len(agencies))
	for i, a := range agencies {
		if err := checkAgency(a); err != nil {
			return nil, fmt.Errorf("read call statistics: %w", err)
		}
		ws[i] = Window{Agency: a, From: from, To: to, ByClass: map[string]int64{}}
	}
	if secs == 0 || len(agencies) == 0 {
		return ws, nil
	}
	cmds := make([][]*redis.MapStringStringCmd, len(agencies))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range agencies {
			cmds[i] = make([]*redis.MapStringStringCmd, secs)
			for s := range secs {
				cmds[i][s] = p.HGetAll(ctx, r.key(a, from.Unix()+s))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read call statistics for %s from %s to %s: %w",
			strings.Join(agencies, ","), from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	for i := range agencies {
		for _, cmd := range cmds[i] {
			if err := ws[i].add(cmd.Val()); err != nil {
				return nil, fmt.Errorf("read call statistics from %s: %w", cmd.Args()[1], err)
			}
		}
	}
	return ws, nil
}

// add merges one second's hash into w.
func (w *Window) add(fields map[string]string) error {
	for f, v := range fields {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("field %s: %w", f, err)
		}
		switch {
		case f == fieldCalls:
			w.Calls += n
		case f == fieldLatSum:
			w.Latency.sum += time.Duration(n) * time.Microsecond
		case f == fieldQWSum:
			w.QueueWait.sum += time.Duration(n) * time.Microsecond
		case strings.HasPrefix(f, classPrefix):
			w.ByClass[f[len(classPrefix):]] += n
		case strings.HasPrefix(f, latPrefix):
			addBucket(&w.Latency, f[len(latPrefix):], n)
		case strings.HasPrefix(f, qwPrefix):
			addBucket(&w.QueueWait, f[len(qwPrefix):], n)
		}
	}
	return nil
}

// addBucket adds n to bucket idx; indexes from other histogram parameters
// are ignored rather than misread.
func addBucket(h *Histogram, idx string, n int64) {
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= numBuckets {
		return
	}
	h.counts[i] += n
}
