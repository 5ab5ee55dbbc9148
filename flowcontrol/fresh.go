package flowcontrol

import (
	"fmt"
	"math"
)

// LawBeforeFreshEvidence pins the control law as it was before the
// evidence gathered over several thin periods was read without its earlier
// periods once the last one reads faster than they do beyond the noise of
// both (State.Law): the merged evidence was read whole.
//
// An agency coming back from a slowdown at a few calls a second is read on
// evidence gathered over several periods, and the last of them may hold the
// first calls at the old speed while the earlier ones hold the slow calls.
// Read whole, such evidence is slow: the limit was cut on calls the agency
// no longer takes that long over, and from one call the recovery waited
// for evidence gathered at one call a second. On the real stack (bench-flow's
// small incident: capacity to 3/8 and calls ×3, both back at 40 s) the
// gathered evidence read 2.02× the baseline at 42 s, 4 calls at 1.6 s and
// the period's own 3 at 569 ms (0.98×): the limit went 2 → 1, and slow
// start came only at 51 s; in one run of the committed report the limit
// held 1 call of 4 for the whole phase after the recovery (0.24 × the
// oracle).
//
// The evidence is read without its earlier periods (on the last one alone
// when it is enough, gathered anew from it when not). Where the last period
// reads slower, nothing changes: the rules read it whole, and a latency cut
// waits for none of it.
const LawBeforeFreshEvidence = 30

// LastLaw is the latest law a State can pin (State.Law): the one before the
// last change. The session that adds a law moves it on.
const LastLaw = LawBeforeFreshEvidence

// changedFaster reports whether raw, the last period of the evidence o
// gathered over several, reads faster than the periods gathered before it,
// beyond the noise of both: the mean latency of the earlier periods' calls
// (o's less raw's) against raw's, each of at least two successful calls,
// the noise at noiseSigmas standard errors of their difference and at
// least defaultSigma of spread (the spread of merged evidence is a
// weighted mean of its periods' quantiles, not a reading). It says why.
func changedFaster(o, raw Observation) (bool, string) {
	n := o.OK - raw.OK
	if raw.OK < 2 || n < 2 || o.LatencyMean <= 0 || raw.LatencyMean <= 0 {
		return false, ""
	}
	before := (float64(o.LatencyMean)*float64(o.OK) - float64(raw.LatencyMean)*float64(raw.OK)) / float64(n)
	if before <= 0 {
		return false, ""
	}
	fell := 1 - float64(raw.LatencyMean)/before
	noise := noiseSigmas * max(spread(o), defaultSigma) * math.Sqrt(1/float64(n)+1/float64(raw.OK))
	if fell <= noise {
		return false, ""
	}
	return true, fmt.Sprintf("the last period's %d calls read %.0f%% faster than the %d gathered before it (noise %.0f%%)",
		raw.OK, 100*fell, n, 100*noise)
}
