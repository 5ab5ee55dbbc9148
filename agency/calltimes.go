package agency

import (
	"context"
	"time"
)

// CallTimes receives, through a context (WithCallTimes), the moment the
// client sent a call to its agency. The call statistics split an activity's
// time there: what came before (a wait for a call slot) is queue wait, what
// came after is the agency's latency.
type CallTimes struct {
	// Sent is when the first request of a call went out; zero if none did
	// (refused by admission, or a request that could not be built).
	Sent time.Time
}

type callTimesKey struct{}

// WithCallTimes returns a context whose calls note their send time in the
// returned CallTimes. Read it once the calls are over.
func WithCallTimes(ctx context.Context) (context.Context, *CallTimes) {
	t := &CallTimes{}
	return context.WithValue(ctx, callTimesKey{}, t), t
}

// markSent notes now as the send time in ctx's CallTimes, if it has one
// and none was noted yet.
func markSent(ctx context.Context) {
	if t, ok := ctx.Value(callTimesKey{}).(*CallTimes); ok && t.Sent.IsZero() {
		t.Sent = time.Now()
	}
}
