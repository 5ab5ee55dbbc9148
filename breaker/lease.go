package breaker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"loanflow/agency"
)

// DefaultHold is how long a Reader keeps answering with the last record it
// read once the record is gone: long enough to bridge a Redis restart or a
// controller restart by the watchdog, short enough that a dead controller's
// view does not steer traffic for long.
const DefaultHold = time.Minute

// FailSafe is the state assumed for a breaker that has had no live record for
// longer than the hold: the side that is safe for money and for the agencies.
//
//   - mydata: open. Applications take app scraping, which needs no MyData
//     call; MyData is spared until the controller speaks again.
//   - kcb, nice: open. A bureau call that fails waits (bounded) instead of
//     being final, and the entry check below refuses new work.
//   - loan_product (the entry): open. New applications are refused at the
//     door (LOAN_PRODUCT_UNAVAILABLE) rather than sent to bureaus nobody
//     watches; applications already admitted go on.
//   - scraping: closed. It is the fallback itself and nothing routes on it.
func FailSafe(name string) State {
	if name == Entry || name == string(agency.MyData) {
		return Open
	}
	if n, err := agency.Parse(name); err == nil && n.Mandatory() {
		return Open
	}
	return Closed
}

// Reader applies the staleness rule to the published records. A live record
// is the answer and is remembered. Without one (expired lease, Redis emptied
// or unreachable) the Reader answers with the last record it read, for at
// most Hold since that read; after that, or when it never read one, with
// FailSafe. Answers that did not come from a live record carry Held.
type Reader struct {
	store *Store
	hold  time.Duration
	now   func() time.Time
	log   *slog.Logger

	mu   sync.Mutex
	last map[string]heldStatus
}

type heldStatus struct {
	st Status
	at time.Time // local clock: only durations are taken from it
}

// NewReader returns a Reader over store holding last records for hold
// (DefaultHold when 0).
func NewReader(store *Store, hold time.Duration, log *slog.Logger) *Reader {
	if hold <= 0 {
		hold = DefaultHold
	}
	if log == nil {
		log = slog.Default()
	}
	return &Reader{store: store, hold: hold, now: time.Now, log: log, last: map[string]heldStatus{}}
}

// Read returns a status for every name; it never fails, because the rule
// decides what a missing record means.
func (r *Reader) Read(ctx context.Context, names []string) map[string]Status {
	live, err := r.store.Read(ctx, names)
	if err != nil {
		r.log.Warn("breaker states unreadable; applying the staleness rule", "error", err)
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Status, len(names))
	for _, n := range names {
		if st, ok := live[n]; ok {
			r.last[n] = heldStatus{st: st, at: now}
			out[n] = st
			continue
		}
		if h, ok := r.last[n]; ok && now.Sub(h.at) < r.hold {
			st := h.st
			st.Held = "last known, read " + now.Sub(h.at).Round(time.Second).String() + " ago"
			out[n] = st
			continue
		}
		s := FailSafe(n)
		out[n] = Status{Name: n, State: s, Machine: s, Reason: "no live record: fail-safe state", Held: "fail-safe"}
	}
	return out
}
