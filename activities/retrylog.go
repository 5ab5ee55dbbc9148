package activities

import (
	"sync"
	"time"
)

// retryLogEvery is how often at most a worker process logs, per agency and
// class of failure, an agency call that failed and will be retried. Each line
// counts the failures of that kind left out since the last one: in an
// agency's outage every call fails, each attempt of each, and a line per
// attempt drowns everything else the worker says. The statistics, the
// breakers and the Web UI's history hold every one.
const retryLogEvery = time.Second

// logSampler lets through one line per key per interval and counts the rest.
type logSampler struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*sampled
}

type sampled struct {
	last    time.Time
	dropped int
}

func newLogSampler(every time.Duration) *logSampler {
	return &logSampler{every: every, keys: map[string]*sampled{}}
}

// allow reports whether a line for key may be logged at now and, if so, how
// many lines for key were left out since the last one logged.
func (l *logSampler) allow(key string, now time.Time) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	if s == nil {
		s = &sampled{}
		l.keys[key] = s
	} else if now.Sub(s.last) < l.every {
		s.dropped++
		return false, 0
	}
	dropped, s.last, s.dropped = s.dropped, now, 0
	return true, dropped
}

// retryLogs samples the "agency call failed; will retry" lines of this
// worker process.
var retryLogs = newLogSampler(retryLogEvery)
