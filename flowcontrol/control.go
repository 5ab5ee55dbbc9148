package flowcontrol

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Observation is one agency's statistics over one control period. Client
// errors (4xx other than 429) are left out: they say nothing about the
// agency's condition.
type Observation struct {
	// Calls counts the calls that ended in the period; OK, Overload (429/503),
	// AgencyErrors (other 5xx, transport failures) and Timeouts break it down.
	Calls, OK, Overload, AgencyErrors, Timeouts int64
	// Expired counts the calls our own deadline ended: not sent because
	// the budget left was below the agency's latency, or cut by the
	// caller's deadline before the agency's timeout. They are not in
	// Calls, and neither Step nor the breakers count them: they say
	// nothing about the agency's condition.
	Expired int64
	// LatencyP50 and LatencyP90 are the agency latency of the calls that
	// completed in the period.
	LatencyP50, LatencyP90 time.Duration
	// LatencyP99 is reported to operators; the control law does not use it.
	LatencyP99 time.Duration
	// LatencyMean is their exact mean latency. When set it is the latency
	// signal instead of LatencyP50: it is exact where percentiles read from
	// log buckets are quantised, and it is the latency of Little's law. Set
	// it always or never; the baseline is relearned when the signal changes.
	LatencyMean time.Duration
	// QueueWaitP90 is how long tasks waited in the agency's task queue before
	// a worker took them: the backlog, i.e. demand.
	QueueWaitP90 time.Duration
	// InFlight is the number of calls running at the agency, summed over the
	// live workers, when the period was sampled.
	InFlight int
	// Period is the length of the period (0 means Config.Period); Now is its
	// end.
	Period time.Duration
	Now    time.Time
}

// Probe records a latency cut whose effect is still to be checked: if the
// latency does not fall with the limit, the agency has become slower rather
// than overloaded, and the cut is undone.
type Probe struct {
	From    float64       `json:"from"`
	To      float64       `json:"to"`
	Latency time.Duration `json:"latency"`
	Ratio   float64       `json:"ratio"`
	Age     int           `json:"age"`
	// Refused counts the overload answers since the cut, its check's
	// period included: an agency that refuses is full, and a latency
	// that stays put then is its queue, capped by its refusals, not a
	// slower agency.
	Refused int64 `json:"refused,omitempty"`
}

// due reports whether a period that read latency lat is the one for the
// probe's check (rule 2): SettlePeriods after the cut, and, for calls
// longer than a period, once the calls the period read were sent after
// the cut (a period's latency is that of the calls that ended in it, sent
// that latency before). At calls of a second, queued to about 2 s at a limit
// past the capacity, the check two periods after the cut read the old limit's
// queue still draining, took it for a slower agency, relearnt it as the
// baseline and restored the old limit, which then read "at the baseline"
// 56% past the capacity (C30 × 1 s from an initial limit of 10; flowsim's
// TestCheckAfterTheQueueDrained). Until then the cut holds: rule 3 waits
// for its check.
func (p Probe) due(c AgencyConfig, period, lat time.Duration, law int) bool {
	if p.Age < c.SettlePeriods {
		return false
	}
	if !lawHas(law, LawBeforeDrainedCheck) || period <= 0 || lat <= 0 {
		return true
	}
	return time.Duration(p.Age-1)*period >= lat
}

// fall is the share by which queueing predicts the latency to fall with
// the cut: the queue the cut's reference read (its ratio to the baseline),
// or the cut's own share of the limit, whichever is smaller.
func (p Probe) fall() float64 {
	return min(1-1/p.Ratio, 1-p.To/p.From)
}

// tells reports whether the probe's check can tell a slower agency from a
// busier one on evidence whose noise is within margin (EvidenceMargin, as
// much as the check gathers): queueing predicts the latency to fall with
// the cut by more than that. After a shallower cut (a call or two back to
// the last good limit, at a limit of dozens) the latency reads the same
// either way within the noise, and rule 2 finds no slower agency in it.
func (p Probe) tells(margin float64) bool {
	return p.fall() > margin
}

// Dip records the limit lowered below the agency's capacity for a few
// periods, to read the agency's own latency, without our queue, and take
// it as the baseline (see AgencyState.Unverified).
type Dip struct {
	From float64 `json:"from"`
	To   float64 `json:"to"`
	Age  int     `json:"age"`
	// Read merges the periods read at To so far, until they hold
	// relearnSamples calls.
	Read *Observation `json:"read,omitempty"`
	// Warm says the dip checks a first baseline learnt with the limit
	// filled (AgencyState.WarmCheck): it ends as soon as its reading tells
	// whether that baseline held a queue (see checkWarmDip).
	Warm bool `json:"warm,omitempty"`
}

// Relearned records a baseline raised because the agency seemed slower. If
// the latency is above tolerance again once the limit is restored, the
// latency was queueing after all, and the old baseline comes back: without
// this check a misread probe would raise the baseline again and again.
type Relearned struct {
	Old time.Duration `json:"old"`
	Age int           `json:"age"`
	// OldUnverified is the old baseline's AgencyState.Unverified.
	OldUnverified bool `json:"old_unverified,omitempty"`
}

// AgencyState is what the controller remembers about one agency between
// steps.
type AgencyState struct {
	// Limit is the agency's global concurrency limit, kept as a float so that
	// small proportional changes accumulate; decisions round it.
	Limit float64 `json:"limit"`
	// Baseline is the learned latency of the agency when it is not queueing,
	// of the signal named by BaselineSignal ("mean" or "p50").
	Baseline       time.Duration `json:"baseline"`
	BaselineSignal string        `json:"baseline_signal,omitempty"`
	// BaselinePeriods counts the periods that made the first baseline, up to
	// warmupPeriods, and BaselineSamples the calls in them.
	BaselinePeriods int   `json:"baseline_periods"`
	BaselineSamples int64 `json:"baseline_samples"`
	// Periods counts the periods observed, Observed their total length.
	Periods  int64         `json:"periods"`
	Observed time.Duration `json:"observed,omitempty"`
	// Capacity is the limit at which the agency was last seen at capacity
	// (0 when never): the limit climbs back to it quickly after a failure cut.
	Capacity float64 `json:"capacity"`
	// HighWater is the highest capacity seen, lowered whenever a latency cut
	// proves the agency cannot take that much any more. When the agency stops
	// queueing at an unchanged limit, its capacity has come back, and the
	// limit jumps back toward HighWater instead of probing for it.
	HighWater float64 `json:"high_water"`
	// Good is the last limit at which the agency was seen in use and
	// healthy (latency below the growth threshold, no failures), 0 when
	// unknown. A cut soon after an increase goes back to it rather than to
	// the Little's-law estimate, which reads low while the agency is
	// inflated by overload, unless the estimate is far below it. A far lower estimate means the
	// agency lost capacity or got slower: the cut goes to the estimate, and
	// its check (rule 2) tells which: Good is forgotten if the latency fell
	// with the cut, and restored with the relearned baseline if it did not.
	Good float64 `json:"good,omitempty"`
	// Refuted counts the consecutive refuted probes: increases beyond Good
	// that the agency could not take, cut back to about Good. Each one sets
	// Backoff, doubling with each (see probeBackoff), so the limit probes
	// beyond a capacity it keeps confirming less and less often: at a
	// capacity of a few calls every probe is 25% or more too many.
	Refuted int `json:"refuted,omitempty"`
	// Backoff counts the periods left in which the limit may grow up to
	// Good but not beyond it. Any other cut (the capacity changed), a
	// relearned baseline after refusals or a regrow clears it; a relearned
	// baseline without refusals (a slower agency) sets one of its own.
	Backoff int `json:"backoff,omitempty"`
	// Ceiling is the highest limit at which the agency was seen in use and
	// healthy. An incident's cuts leave it alone (the agency's trouble is
	// not a smaller capacity of ours to learn), so once the latency is back
	// at the baseline the limit climbs back to it by doubling (slow start)
	// rather than by steps; a cut right after such a doubling lowers it,
	// since the agency could not take it.
	Ceiling float64 `json:"ceiling,omitempty"`
	// Recovering says the agency is coming back from an outage (a failure
	// cut in a period in which nothing succeeded, e.g. calls slower than
	// the client's timeout) or from a slowdown (its latency fell well below
	// the baseline at a steady limit, or came back to the baseline from
	// before the slowdown far below the ceiling the slowdown set aside):
	// slow start applies until a cut or a
	// period at capacity ends it (not a step's cut for timeouts: the agency
	// is still in trouble, its recovery still to come). After a mere loss
	// of capacity it does
	// not, or the limit would double into that capacity again and again:
	// a period in which nothing succeeded is such a loss still showing
	// while a call's life spans back to one that served (see Unserved).
	Recovering bool `json:"recovering,omitempty"`
	// Slowed is the (rounded) limit at which the latency was last read
	// above the tolerance, beyond its noise, on calls all sent under that
	// limit; 0 when none since the last slow start. Read back at the
	// baseline at that limit or a higher one, far below the ceiling, the
	// agency has recovered (heldRecovery): our queue only grows with the
	// limit.
	Slowed int `json:"slowed,omitempty"`
	// Refused says the agency refused calls (overload answers cut the
	// limit) since the limit was last seen healthy: it lost capacity, so
	// a latency cut found to be a slowdown (rule 2) is undone to the
	// cut's own limit only, not to Good.
	Refused bool `json:"refused,omitempty"`
	// Unserved counts the periods observed in a row, up to the last one,
	// in which no call succeeded. A period with no success is an outage
	// only when those before it had none either for as long as a call
	// takes (twice the baseline latency, at least one period): at a slow
	// agency the calls of one period end in the next ones.
	Unserved int `json:"unserved,omitempty"`
	// Floor is the limit a failure cut of an agency in trouble held this
	// period (half the ceiling), 0 when none did: an output of one step,
	// reported in its Decision, not state carried to the next.
	Floor float64 `json:"-"`
	// Peak is the ceiling before an incident lowered it (a slow start
	// refused with overload answers, or a slowdown found after refusals:
	// the agency's capacity was lower then), 0 when none was lowered or
	// the limit has regained it. An
	// agency seen back from a slowdown gets it back as its ceiling, so
	// slow start regains its capacity from before the incident.
	Peak float64 `json:"peak,omitempty"`
	// PeakBaseline is the baseline the agency had when rule 2 found it
	// slower and set its ceiling aside as the Peak, 0 when none did: a
	// latency back within the growth threshold of it is the agency back
	// at its old speed, and the Peak its ceiling again.
	PeakBaseline time.Duration `json:"peak_baseline,omitempty"`
	// FastBaseline is the baseline the agency had when rule 2 found it
	// slower without refusals (it kept its capacity), 0 when none did or
	// the agency was seen at that speed again. It rests on many more calls
	// than the slow one relearnt from a check's few: a reading back within
	// its noise, well below the slow baseline, is the agency back at its
	// old speed, and takes it back at once (see slowStart).
	FastBaseline time.Duration `json:"fast_baseline,omitempty"`
	// SlowFrom is the limit before slow start's last step; it is read
	// only by a cut right after that step (endSlowStart), which shows how
	// far the agency could go.
	SlowFrom float64 `json:"slow_from,omitempty"`
	// LostAt is the lowest limit of a probe refuted while the limit was
	// held below the ceiling (a capacity lost, or an agency in trouble),
	// 0 when none was: the agency could not take it lately. Held at the
	// lost capacity, the agency reads the same whether that capacity has
	// come back or not; a probe that reaches LostAt again and reads it
	// healthy, with nothing refused, says it has, and the limit goes back
	// toward the ceiling as a regrow does, instead of by grow-back's steps.
	LostAt float64 `json:"lost_at,omitempty"`
	// LostRefused says the probe at LostAt was refused at once: a lone
	// refusal answered it (LawBeforeProbeRefused, LawBeforeStepRefused)
	// with the latency not read slow. Such an agency refuses beyond its
	// capacity rather than queueing, so a period at LostAt with nothing
	// refused says the capacity is back (LawBeforeProbeTaken). Read only
	// while LostAt is set; settle clears it when it sets LostAt.
	LostRefused bool `json:"lost_refused,omitempty"`
	// Cooldown counts the periods left in which the limit may not grow.
	Cooldown int `json:"cooldown"`
	// Streak counts consecutive increases; each one doubles the next step.
	Streak int `json:"streak"`
	// Saturated counts consecutive periods held at capacity, at one limit
	// or at the increases from it (an increase keeps the count; any other
	// decision clears it).
	Saturated int `json:"saturated"`
	// Probe is a latency cut waiting to be checked, nil when none is.
	Probe *Probe `json:"probe,omitempty"`
	// Relearned is a baseline relearned after a probe, waiting to be
	// confirmed, nil when none is.
	Relearned *Relearned `json:"relearned,omitempty"`
	// Rule names the rule the last decision applied (see the package doc);
	// a period spent gathering evidence leaves it as it was.
	Rule string `json:"rule,omitempty"`
	// Evidence holds the statistics of the periods since the last decision
	// while they are too few to decide on (fewer than MinSamples successful
	// calls, or too few for the latency's noise; see the package doc),
	// merged; nil when none are held.
	Evidence *Observation `json:"evidence,omitempty"`
	// Moved says the last step changed the (rounded) limit: the period that
	// follows shows the change only in part, so it does not start the
	// evidence gathered across periods.
	Moved bool `json:"moved,omitempty"`
	// MovedFrom is the (rounded) limit the last step moved from, when
	// Moved: the limit the period that follows was partly still under.
	MovedFrom int `json:"moved_from,omitempty"`
	// SinceMove counts the periods observed since the rounded limit last
	// changed, the current one included (0 right after a change).
	SinceMove int `json:"since_move,omitempty"`
	// Held merges the periods observed at the limit since it last moved,
	// in use and without failures: the evidence of a trim (rule 3), whose
	// queue of a call or two is within a single period's noise. Nil when
	// none is held.
	Held *Observation `json:"held,omitempty"`
	// Trimmed says the last change of the limit was a trim (rule 3):
	// no other trim until the limit has grown again, so a slower agency,
	// whose latency no trim lowers, is trimmed once, not down a ratchet.
	Trimmed bool `json:"trimmed,omitempty"`
	// Unverified says the baseline was last taken from one period's
	// latency (an agency seen slower by rule 2, or faster in slow start)
	// rather than averaged over the warm-up or read in a Dip. One period
	// reads within its noise of the truth, and a host slow for a second
	// reads slow: a baseline 10% low holds the limit a quarter below the
	// capacity for good, as every period in use then reads "at capacity",
	// and a baseline relearnt at a limit past the capacity hides its
	// queue. Under demand nothing else corrects it: the baseline rises
	// only while our load cannot be the cause. Once the limit has held for
	// two periods, a Dip reads the latency below the capacity and clears
	// the flag.
	Unverified bool `json:"unverified,omitempty"`
	// Averaged says the baseline is the warm-up's mean over
	// BaselineSamples calls, since followed down or drifted up but not
	// replaced by another reading, and that the limit has not been cut
	// since the warm-up: the climb from the warm-up, in which the law
	// reads the latency within that mean's own noise (baselineNoise).
	Averaged bool `json:"averaged,omitempty"`
	// Dip is the dip in progress, nil when none is.
	Dip *Dip `json:"dip,omitempty"`
	// WarmCheck says the first baseline was averaged over periods in which
	// our calls filled the limit (a backlog, or failures): if the limit was
	// past the agency's capacity, they queued at the agency, and the
	// baseline holds that queue. Nothing under demand shows it afterwards:
	// every period at that limit reads the baseline, "at capacity", and
	// the limit stays past the capacity for good (an initial limit of 16 at
	// a capacity of 10 learnt a baseline 1.6× the agency's own latency and
	// held the limit there, at 0.64–0.72 × the oracle's goodput). The
	// first period that could grow dips to warmDipFraction of the limit
	// instead and reads the agency's own latency there (see warmDip).
	WarmCheck bool `json:"warm_check,omitempty"`
	// WarmLimit is the highest limit the first baseline was learnt at,
	// with WarmCheck: a limit beyond it read healthy shows the baseline
	// was learnt below the capacity, and clears the check undipped.
	WarmLimit int `json:"warm_limit,omitempty"`
	// WarmCut says a cut came after the warm-up while WarmCheck held: the
	// limit could not grow past the warm-up's, which may have been past
	// the capacity. Only then does the check dip.
	WarmCut bool `json:"warm_cut,omitempty"`
	// WarmBaseline is the first baseline as the warm-up left it, with
	// WarmCheck: a baseline that has since followed lower readings a
	// fifth below it has read the agency without the warm-up's queue.
	WarmBaseline time.Duration `json:"warm_baseline,omitempty"`
	// Levels are the calls, refusals and errors read at each limit, in
	// order of the limit, decayed a little every period: the lowest ones
	// give the agency's background rates, the failures it answers at any
	// load, which the law does not count against the limit (see
	// AgencyState.denoise).
	Levels []Level `json:"levels,omitempty"`
	// FailCheck is a failure cut made with the background rates unknown,
	// waiting to be checked against them, nil when none is.
	FailCheck *FailCheck `json:"fail_check,omitempty"`
	// FloorTest is the trouble floor's test under way, nil when none is
	// (see LawBeforeFloorTest). FloorHeld counts the failure cuts the
	// floor held, FloorTested says a test was read and FloorOurs that it
	// found the failures ours (the floor lifted), each since the agency
	// was last seen healthy.
	FloorTest   *FloorTest `json:"floor_test,omitempty"`
	FloorHeld   int        `json:"floor_held,omitempty"`
	FloorTested bool       `json:"floor_tested,omitempty"`
	FloorOurs   bool       `json:"floor_ours,omitempty"`
	// The last period's signals, kept for the audit trail.
	LatencyRatio float64 `json:"latency_ratio"`
	FailureRate  float64 `json:"failure_rate"`
	Goodput      float64 `json:"goodput"`
}

// State is the controller's memory, carried from one Step to the next. It is
// plain data, so it can be JSON-encoded into a workflow's state and its
// continue-as-new input.
type State struct {
	Agencies map[string]AgencyState `json:"agencies,omitempty"`
	Steps    int64                  `json:"steps"`
	Now      time.Time              `json:"now"`
	// Law pins an earlier version of the control law (LawBeforeBackground,
	// LawBeforeProbeBound, LawBeforeWarmCheck, LawBeforeFailCheck,
	// LawBeforeFastBaseline, LawBeforeLoneWarmRefusal, LawBeforeServedFloor,
	// LawBeforeDrainedCheck, LawBeforeFailureCutShown,
	// LawBeforeBaselineNoise, LawBeforeSettledFailures, LawBeforeLostAt,
	// LawBeforeLostAtCleared, LawBeforeCeilingStop, LawBeforeHeldRecovery,
	// LawBeforeCheckWaitBound, LawBeforeTimeoutsChecked,
	// LawBeforeCheckEvidence, LawBeforeFloorTest,
	// LawBeforeRefusedLatencyCut, LawBeforeBackAtSpeedRecovery,
	// LawBeforeSlowStartCapacity, LawBeforeFloorTestRead,
	// LawBeforeProbeRefused, LawBeforeRefusedHeld, LawBeforeStepRefused,
	// LawBeforeProbeTaken, LawBeforeWellReadLevel, LawBeforeBackgroundTail)
	// for a workflow run
	// recorded under it, which must replay its decisions; 0 runs the
	// current law.
	Law int `json:"law,omitempty"`
}

// LawBeforeProbeBound pins the control law as it was before the back-off
// of probes beyond a confirmed capacity was bounded at a minute's periods
// (maxBackoff): it doubled up to 256 periods (State.Law).
const LawBeforeProbeBound = 2

// LawBeforeWarmCheck pins the control law as it was before a first
// baseline learnt with the limit filled was checked by a dip
// (AgencyState.WarmCheck).
const LawBeforeWarmCheck = 3

// LawBeforeFastBaseline pins the control law as it was before the baseline
// a slower agency had (AgencyState.FastBaseline) was taken back once it
// read at that speed again: the slow one came down by steps, and a
// limit past the capacity read as room under it meanwhile.
const LawBeforeFastBaseline = 5

// LawBeforeLoneWarmRefusal pins the control law as it was before a lone
// refusal in the warm-up stopped arming the warm-up's check
// (AgencyState.WarmCheck): any failure did.
const LawBeforeLoneWarmRefusal = 6

// LawBeforeServedFloor pins the control law as it was before a failure cut
// of an agency in trouble kept at most what the agency still served at once
// (its successful calls × their latency) while it answered: it kept half the
// Ceiling.
const LawBeforeServedFloor = 7

// LawBeforeDrainedCheck pins the control law as it was before a latency
// cut's check (rule 2) waited for a period whose calls were sent after the
// cut (Probe.due): it read the agency SettlePeriods after the cut, whatever
// the latency.
const LawBeforeDrainedCheck = 8

// LawBeforeFailureCutShown pins the control law as it was before a latency
// cut (rule 3) waited for a failure cut to show: it cut again on the period
// right after it, whose calls were mostly sent under the old limit.
const LawBeforeFailureCutShown = 9

// LawBeforeBaselineNoise pins the control law as it was before the climb
// from the warm-up read the latency within the warm-up baseline's own
// sampling noise (baselineNoise): the growth threshold, and following a
// lower latency, went by the period's noise alone.
const LawBeforeBaselineNoise = 10

// LawBeforeSettledFailures pins the control law as it was before rule 1
// held refusals and errors after a cut only for SettlePeriods after the
// limit moved: it held every failure for as long as the cut's cooldown
// lasted, which doubles after refuted probes at a few calls (up to 8 ×
// SettlePeriods).
const LawBeforeSettledFailures = 11

// LawBeforeLostAt pins the control law as it was before a probe below the
// ceiling that read healthy at a limit refuted lately (AgencyState.LostAt)
// went back toward the ceiling at once: it grew back by grow-back's steps.
const LawBeforeLostAt = 12

// LawBeforeLostAtCleared pins the control law as it was before a period
// whose refusals the agency's background rates accounted for stopped
// reading as AgencyState.LostAt taken, and a period run at the ceiling
// cleared LostAt. Held a call or two beyond a capacity lost for good, the
// limit read a period whose one or two refusals the background took out as
// the earlier capacity back; and a limit that passed LostAt by a rule other
// than growth within the threshold (slow start, a regrow, grow-back's
// doubled steps) kept it, to read one healthy period above it, after a
// later loss, as that capacity back.
const LawBeforeLostAtCleared = 13

// LawBeforeCeilingStop pins the control law as it was before slow start
// ended at the ceiling: back at it, it took one more step of 12.5%
// (beyondCeiling, at least a call) as a probe that the ceiling was not
// learnt low. The ceiling is already the capacity and the Headroom's call
// of queue, so that step went a call or two past ±10% of the capacity at
// every capacity below 20 after every recovery, and was cut back a period
// or two later.
const LawBeforeCeilingStop = 14

// LawBeforeHeldRecovery pins the control law as it was before a recovery
// read at a limit far below the ceiling was slow-started: the limit cut
// deep by an incident (a capacity lost together with a slowdown, the
// latency read as our queue) and the latency read slow at that limit,
// then back at the baseline there or at a higher one. Slow start was only
// for an agency back from an outage or found faster than a relearnt
// baseline, and the limit climbed back by single calls, each waiting for
// its evidence: at a few slow calls a second, 15–25 s from a limit of 1
// or 2 to a capacity of 6 or 8.
const LawBeforeHeldRecovery = 15

// LawBeforeCheckWaitBound pins the control law as it was before rule 1
// held failures for a pending latency cut's check only if the check could
// tell a slower agency from a busier one (Probe.tells). Rule 1 reads each
// period before rule 2, so while failures went on every period the check
// never read one, and the hold had no end: at C60 × 1 s with its capacity
// halved, a cut of 5% (59 → 56) held the limit at 56 of a capacity of 30
// for 11 periods while 13–38% of the calls timed out (flowsim's
// TestCheckWaitIsBounded).
const LawBeforeCheckWaitBound = 16

// LawBeforeTimeoutsChecked pins the control law as it was before a failure
// cut on timeouts was checked as a latency cut is (rule 2), and before a
// check due was let read its period whatever failed in it. A cut on calls
// that timed out, with nothing refused and the latency above the tolerance,
// reads a slower agency as readily as a busier one: the latency cut that
// followed it was checked, the timeouts cut never, and an agency slowed ×2
// whose slow tail passed the client's timeout (C40 × 50 ms, 150 ms timeout)
// was cut to half its capacity and held there: every period's timeouts,
// 4–8% (the oracle's own 5%), were cut again or held for the check, which
// rule 1, reading each period first, never let read one. The slowed phase
// ran at 0.52 × the oracle (flowsim's TestSlowdownPastTimeout).
const LawBeforeTimeoutsChecked = 17

// LawBeforeCheckEvidence pins the control law as it was before two changes
// to what a reading of the latency is taken on.
//
// A latency cut's check (rule 2) now decides on evidence whose noise is
// within half the fall queueing predicts for the cut (Probe.fall), at an
// agency that refused nothing since it was last healthy: its verdicts turn
// on half that fall (a latency that stayed within half of it is a slower
// agency; one that fell by more is the queue the cut took away), so that is
// the precision it needs. It waited instead for the noise to be within the
// evidence margin (15%, or half a call), as a decision to grow or hold at a
// capacity does: an agency of C20 × 300 ms slowed ×1.85, the limit cut from
// 21 to 12 on the first slow period, read 22 calls at 1.97× the old
// baseline on the period its check was due, and waited a period more for
// the margin's evidence, the limit at about half the capacity meanwhile.
// The limit converged within 5 s of the slowdown in 37 of 72 scorecard runs
// of bench large's shape before, in 55 after (flowsim's
// TestSlowdownCheckedOnItsEvidence). At an agency that refused calls (it
// lost capacity too) the check still waits for the margin: decided sooner,
// its verdict of a slower agency restored limits into the capacity lost
// (bench large's incident, 6.1% errors against the oracle's 2.1%).
//
// And at a limit of one call, a latency above the tolerance on evidence
// gathered over several periods is taken as the agency's own (one call does
// not queue behind another of ours) only if the last period, read alone,
// is slow too: otherwise the slow calls may be an incident's, ended after
// the agency came back, and relearnt as its baseline they held the limit at
// one call while a queue of ours read as room (flowsim's bench small
// incident, seed 2: 22 s to regain 90% of the capacity, 7 s now; the real
// stack's small incident relearnt 615 → 931 ms six seconds after the
// recovery; TestPhaseSlowOnlyInGatheredEvidence).
const LawBeforeCheckEvidence = 18

// lawHas reports whether the law in force includes the change that the
// pinned law before predates: the current law (0) has every change, a
// pinned one those made before it.
func lawHas(law, before int) bool { return law == 0 || law > before }

// Resume starts a State from limits persisted earlier (ReadLimits), clamped to
// each agency's bounds, so a new controller run continues from where the last
// one left off instead of from InitialLimit. Each limit is taken as the last
// capacity seen; the baselines are learned again.
func Resume(limits map[string]int, cfg Config) State {
	st := State{Agencies: make(map[string]AgencyState, len(limits))}
	for a, l := range limits {
		c := cfg.agency(a)
		l := clamp(float64(l), c)
		st.Agencies[a] = AgencyState{Limit: l, Capacity: l, HighWater: l}
	}
	return st
}

// Decision is one agency's outcome of one Step. Limit may equal Previous.
type Decision struct {
	Agency   string `json:"agency"`
	Limit    int    `json:"limit"`
	Previous int    `json:"previous"`
	// Reason says which rule applied and with which numbers, e.g.
	// "overload 12.0% > 1.0%: to goodput×baseline 14.2 (x0.71)".
	Reason string `json:"reason"`
	// Floor, when set, is the lowest limit the law holds for the agency
	// this period, above MinLimit: a failure cut of an agency in trouble
	// keeps half the ceiling (see the package doc, rule 1). Shrinking the
	// pool further is not the law's answer, so the breakers take the
	// limit at this floor as at MinLimit.
	Floor int `json:"floor,omitempty"`
}

// Shape of the control law that is not worth a knob.
const (
	incFraction    = 1.0 / 3 // grow only while latency is within this share of the tolerance margin
	minStep        = 0.05    // additive step as a fraction of the limit (at least 1)
	maxStreak      = 3       // the additive step doubles at most 3 times: ×8
	maxStep        = 0.15    // but stays within 15% of the limit (at least 1)
	nearCapacity   = 0.1     // and does not double within 10% of the last capacity
	searchFactor   = 1.5     // growth while no saturation has been seen yet
	regrowMargin   = 0.05    // jump back toward HighWater while more than 5% below it
	maxLatencyCut  = 0.5     // a latency cut keeps at least half the limit
	refusedCut     = 0.75    // and three quarters at an agency that refused since it was last healthy (latencyCutKeeps)
	maxTrim        = 0.85    // a trim keeps at least 85% of the limit
	maxGather      = 8       // periods of evidence gathered at most before deciding
	goodFloor      = 0.7     // a cut returns to Good if the estimate is at least this share of it
	goodputSamples = 45      // successful calls for goodput to be known within ±30% (2σ)
	probeBackoff   = 16      // periods without a probe beyond Good after the first refuted one
	maxBackoff     = 64      // and after each further one twice as many, at most this many
	maxBackoffWas  = 256     // the bound before LawBeforeProbeBound's change
	maxSettleShift = 3       // settling after a cut back to Good below 10: ×2, ×4, then ×8
	failureCut     = 0.9     // a failure cut removes at least 10%
	minFailures    = 2       // one failure in a handful of calls is not a rate
	// probeRefusalCalls is the most calls a period may hold for one
	// refusal alone to refute a probe (LawBeforeProbeRefused): one call
	// in eight is far beyond the failure target.
	probeRefusalCalls = 8
	baselineDown      = 0.3 // how fast the baseline follows lower latency
	warmupPeriods     = 3   // periods averaged into the first baseline
	// warmupLatencies: the first baseline is learnt only from this many
	// latencies after the first observation, once the calls that end are
	// no longer mostly the short ones of those sent at the start.
	warmupLatencies = 3
	baselineDrift   = 0.05 // how fast it follows higher latency while unloaded
	busyFraction    = 0.9  // in flight at 90% of the limit counts as demand
	// inUseFraction of the limit in use (Little's law's concurrency over
	// the period) makes a queue wait demand.
	inUseFraction = 0.75
	noiseSigmas   = 2.5  // thresholds widen by this many standard errors
	defaultSigma  = 0.25 // lognormal sigma assumed when p90 is unknown
	// slowStartSamples successful calls in a period (and no failure), one
	// below a limit of 4, are enough to double toward the ceiling.
	slowStartSamples  = 2
	beyondCeiling     = 0.125   // slow start's last step, from the ceiling, before LawBeforeCeilingStop
	troubleFloor      = 0.5     // an agency in trouble keeps this share of the ceiling
	heldRecoveryDepth = 3       // a recovery read at a third of the ceiling or less is slow-started
	growBackFrom      = 2.0 / 3 // growth toward the ceiling accelerates from this share of it
	growBackMin       = 4       // but not below a limit of this many calls
	// relearnSamples successful calls in one period, at a latency well
	// below the baseline, are its mean within ±10% (2.5σ at σ=0.25): the
	// baseline is taken from them at once.
	relearnSamples = 40
	// dipFraction of the limit is what a Dip keeps: a limit held at the
	// capacity keeps the Headroom's call or so of queue, so 90% of it is
	// below the capacity, and within the ±10% band convergence is
	// measured by.
	dipFraction = 0.9
	// warmDipFraction of the limit is what the warm-up's check keeps
	// (AgencyState.WarmCheck): half of an initial limit up to twice the
	// capacity is at or below it; one further past it refuses calls, and
	// the failure cuts have brought it to within about twice.
	warmDipFraction = 0.5
	// warmDipFall is the fall of the latency a warm-up's check looks for:
	// a baseline learnt with the limit a quarter or more past the capacity
	// reads at least this much below it at the dip. A reading that rules
	// such a fall out beyond its noise ends the check at once. A limit this
	// share above the warm-up's read healthy, or a baseline that has
	// followed lower readings this share below the warm-up's, clears the
	// check without a dip.
	warmDipFall = 0.2
	// A latency that rose after a latency cut is read as a slowdown (rule
	// 2) when queueing predicted a fall of at least riseMinFall and the
	// rise is less than riseMaxFactor times that fall.
	riseMinFall   = 1.0 / 3
	riseMaxFactor = 2.0
)

// Step runs one control period: for every agency that is configured,
// observed or remembered, it updates the state and decides the new limit.
// It is pure and deterministic (agencies are visited in name order, time
// comes from the observations), so a Temporal workflow may call it directly.
// The input state is not modified.
func Step(st State, obs map[string]Observation, cfg Config) (State, []Decision) {
	names := make(map[string]struct{}, len(cfg.Agencies)+len(obs)+len(st.Agencies))
	for a := range cfg.Agencies {
		names[a] = struct{}{}
	}
	for a := range obs {
		names[a] = struct{}{}
	}
	for a := range st.Agencies {
		names[a] = struct{}{}
	}
	sorted := make([]string, 0, len(names))
	for a := range names {
		sorted = append(sorted, a)
	}
	sort.Strings(sorted)

	next := State{Agencies: make(map[string]AgencyState, len(sorted)), Steps: st.Steps + 1, Now: st.Now, Law: st.Law}
	decisions := make([]Decision, 0, len(sorted))
	for _, a := range sorted {
		c := cfg.agency(a)
		o, observed := obs[a]
		if observed && o.Now.After(next.Now) {
			next.Now = o.Now
		}
		s, had := st.Agencies[a]
		if !had || s.Limit <= 0 {
			s = AgencyState{Limit: float64(c.InitialLimit)}
		}
		prev := roundLimit(s.Limit)
		s, reason := stepAgency(s, o, observed, c, cfg.Period, st.Law)
		if s.WarmCheck && (s.Rule == ruleCutLatency || s.Rule == ruleCutFailure || s.Rule == ruleTrim) {
			s.WarmCut = true
		}
		s.Limit = clamp(s.Limit, c)
		s.Moved, s.MovedFrom = roundLimit(s.Limit) != prev, 0
		if s.Moved {
			s.MovedFrom, s.SinceMove = prev, 0
			// Any other change of the limit allows the next trim.
			// (A dip and its return leave it: the limit did not grow.)
			s.Trimmed = s.Trimmed && (s.Rule == ruleTrim || s.Rule == ruleDip || s.Rule == ruleDipDone)
			s.Held = nil
		}
		next.Agencies[a] = s
		d := Decision{Agency: a, Limit: roundLimit(s.Limit), Previous: prev, Reason: reason}
		if s.Floor > 0 && roundLimit(s.Floor) > c.MinLimit {
			d.Floor = roundLimit(s.Floor)
		}
		decisions = append(decisions, d)
	}
	return next, decisions
}

// The rules, as recorded in AgencyState.Rule.
const (
	ruleNoData     = "no-data"
	ruleLearn      = "hold-learn"
	ruleCutFailure = "cut-failure"
	ruleNotLoad    = "hold-not-load"
	ruleRelearn    = "relearn"
	ruleCutLatency = "cut-latency"
	ruleTrim       = "trim"
	ruleWaitCut    = "hold-wait-cut"
	ruleNotOurs    = "hold-not-ours"
	ruleIdle       = "hold-idle"
	ruleSettle     = "hold-settle"
	ruleAtCapacity = "hold-capacity"
	ruleRefused    = "hold-refused"
	ruleFewSamples = "grow-few-samples"
	ruleRecover    = "recover"
	ruleRegrow     = "regrow"
	ruleSearch     = "search"
	ruleGrow       = "grow"
	ruleGrowBack   = "grow-back"
	ruleWaitGrow   = "hold-wait-grow"
	ruleSlowStart  = "slow-start"
	ruleBackoff    = "hold-backoff"
	ruleDip        = "dip"
	ruleDipDone    = "dip-done"
)

// ruleUndoFailure names a failure cut undone by its check (FailCheck).
const ruleUndoFailure = "undo-failure"

// stepAgency applies the control law to one agency; see the package doc.
// It runs the law's phases in order, each a method below: age the state's
// counters, slow start, gather evidence, read the period's signals (and
// learn the baseline), then the rules, the first that applies deciding:
// cut for failures, check the last latency cut, cut for latency, grow.
func stepAgency(s AgencyState, o Observation, observed bool, c AgencyConfig, period time.Duration, law int) (_ AgencyState, reason string) {
	s.Limit = clamp(s.Limit, c) // the bounds may have changed since the last step
	s.age()
	lastRule, saturated, unserved := s.Rule, s.Saturated, s.Unserved
	s.Saturated, s.Floor = 0, 0
	if !observed {
		s.Streak, s.Rule = 0, ruleNoData
		return s, "hold: no statistics"
	}
	if o.Period <= 0 {
		o.Period = period
	}
	s.Periods++
	s.SinceMove++
	s.Observed += o.Period
	s.Unserved = 0
	if o.OK == 0 {
		s.Unserved = unserved + 1
	}
	var takenOut Counts // the refusals and errors the background accounts for
	if lawHas(law, LawBeforeBackground) {
		// The agency's background refusals and errors, those it answers
		// at any limit, are not its capacity: the law reads what is left.
		limit := roundLimit(s.Limit)
		s.record(o, limit)
		read := s.denoise(o, limit, law)
		if read != o {
			left := fmt.Sprintf("background: %d of %d refused, %d of %d errors left out; ",
				o.Overload-read.Overload, o.Overload, o.AgencyErrors-read.AgencyErrors, o.AgencyErrors)
			defer func() { reason = left + reason }()
		}
		takenOut = Counts{Calls: float64(o.Calls - read.Calls), Refused: float64(o.Overload - read.Overload), Errors: float64(o.AgencyErrors - read.AgencyErrors)}
		o = read
	}
	if lawHas(law, LawBeforeFailCheck) {
		if reason, ok := s.checkFailCut(law); ok {
			return s, reason
		}
	}

	// Gather evidence across periods while they are thin: a decision on a
	// handful of calls is mostly noise, and growing on backlog alone, with
	// no latency to show the agency has room, overshoots until calls fail.
	// The limit holds meanwhile, so every period gathered saw the same one.
	// Failures are not waited for.
	raw := o
	// Slow start reads this period alone: evidence gathered across the
	// outage still holds its failures.
	back, started := s.slowStart(raw, c, law)
	if started {
		return s, back
	}
	if back != "" {
		// Found back at its old speed (backToFast): the rules read on.
		defer func() { reason = back + reason }()
	}
	fresh := s.Evidence == nil
	if !fresh {
		o = s.Evidence.merge(o)
		s.Evidence = nil
	}
	s.beforeCut(raw, c, period, law)
	if reason, held := s.gather(o, fresh, saturated, c, period, law); held {
		return s, reason
	}
	if !fresh && lawHas(law, LawBeforeFreshEvidence) {
		// The agency got faster while the evidence was gathered: its
		// earlier periods are calls it no longer takes that long over
		// (LawBeforeFreshEvidence).
		if faster, why := changedFaster(o, raw); faster {
			if ok, _ := enough(raw, s, c, law); !ok {
				ev := raw
				s.Evidence, s.Saturated = &ev, saturated
				return s, "hold: " + why + "; gathering anew from it"
			}
			o = raw
			defer func() { reason = why + "; read alone: " + reason }()
		}
	}
	learnt := s.BaselinePeriods
	sig, note := s.read(o, c, law)
	// The warm-up filled its limit: a backlog, or failures. A lone refusal
	// is no rate (see gather), and one in the warm-up of an agency that
	// refuses a share of its calls at random, whatever the load, armed
	// the check on a limit never filled: its dip to half, and the refusals
	// read there with nothing below, held the limit at half the capacity
	// through the first phase (LawBeforeLoneWarmRefusal).
	failed := sig.failures > 0
	if lawHas(law, LawBeforeLoneWarmRefusal) {
		failed = sig.failures >= minFailures
	}
	if lawHas(law, LawBeforeWarmCheck) && s.BaselinePeriods > learnt && (sig.demand || failed) {
		s.WarmCheck, s.WarmLimit, s.WarmBaseline = true, max(s.WarmLimit, roundLimit(sig.limit)), s.Baseline
	}
	if lawHas(law, LawBeforeBackground) && o.AgencyErrors > 0 && o.Overload == 0 && sig.latOK && sig.ratio <= sig.growBelow {
		// Errors at the baseline latency, with nothing refused, are not
		// the load's (rule 1 holds on them, "not load"), nor reason to
		// hold growth: the rules read on without them. Held there, a limit
		// that started at or above a capacity lost and regained, with
		// nothing read below it to give the background, never grew again
		// at 5% of calls answered 500 (the real stack's large scale).
		note += fmt.Sprintf("%d errors at the baseline latency, nothing refused: not load; ", o.AgencyErrors)
		o.Calls -= o.AgencyErrors
		sig.failures -= o.AgencyErrors
		o.AgencyErrors = 0
		sig.failRate = 0
		if o.Calls > 0 {
			sig.failRate = float64(sig.failures) / float64(o.Calls)
		}
		s.FailureRate = sig.failRate
	}
	sig.servedWithin = unserved < callPeriods(s.Baseline, period)
	sig.slowBefore = !fresh && !(raw.OK > 0 && s.Baseline > 0 &&
		float64(raw.latency())/float64(s.Baseline) > c.LatencyTolerance+latencyNoise(raw))
	sig.leftOut = takenOut.Refused
	sig.shown = s.shown(o, raw)
	s.hold(o, sig)
	if reason, held := s.checkFloorTest(sig, o, c, period); held {
		return s, note + reason
	} else {
		note += reason
	}
	before := s
	for _, rule := range []func() (string, bool){
		func() (string, bool) {
			reason, ok := s.cutForFailures(sig, o, c, lastRule)
			if ok && s.Rule == ruleCutFailure && lawHas(law, LawBeforeFailCheck) {
				s.armFailCheck(before, o, takenOut, sig, law)
			}
			return reason, ok
		},
		func() (string, bool) { return s.checkDip(sig, o, c) },
		func() (string, bool) { return s.warmDip(sig, o, c, period) },
		func() (string, bool) { return s.checkLatencyCut(sig, o, c, period) },
		func() (string, bool) { return s.cutForLatency(sig, o, c, lastRule) },
		func() (string, bool) { return s.trim(sig, o, c, lastRule) },
		func() (string, bool) { return s.dip(o, c, period) },
	} {
		if reason, ok := rule(); ok {
			return s, note + reason
		}
	}
	return s, note + s.grow(sig, o, c, lastRule, saturated)
}

// age counts one more period on the state's timers: the settling after a
// cut, the probe back-off, the latency cut and the relearned baseline
// waiting for their checks.
func (s *AgencyState) age() {
	if s.Cooldown > 0 {
		s.Cooldown--
	}
	if s.Backoff > 0 {
		s.Backoff--
	}
	if s.Probe != nil {
		p := *s.Probe // the input state shares the pointer
		p.Age++
		s.Probe = &p
	}
	if s.Relearned != nil {
		r := *s.Relearned
		r.Age++
		s.Relearned = &r
	}
	if s.Dip != nil {
		d := *s.Dip
		d.Age++
		s.Dip = &d
	}
	if s.FloorTest != nil {
		f := *s.FloorTest
		f.Age++
		s.FloorTest = &f
	}
	if s.FailCheck != nil {
		f := *s.FailCheck
		f.Age++
		s.FailCheck = &f
	}
}

// slowStart applies slow start (see slowStartLimit) to the period raw. When
// it does not, it may still have found the agency back at the speed it had
// before a slowdown (backToFast); note then says so.
func (s *AgencyState) slowStart(raw Observation, c AgencyConfig, law int) (note string, ok bool) {
	if s.FastBaseline > 0 && s.Baseline <= s.FastBaseline {
		s.FastBaseline = 0 // the baseline came down to it by other paths
	}
	if s.Moved && s.Rule == ruleSlowStart && s.Limit >= s.Ceiling-0.5 {
		// At the ceiling, the last step has not shown yet: the period
		// read holds mostly calls sent under the limit before it, so it
		// cannot confirm the ceiling, which the step beyond it takes as
		// the agency's good limit.
		return "", false
	}
	if lawHas(law, LawBeforeHeldRecovery) {
		s.noteSlowed(raw, c)
	}
	next, why, faster, ok := slowStartLimit(*s, raw, c, law)
	peak := *s
	peak.Ceiling, peak.Peak = s.Peak, 0
	held := !faster && s.Peak > s.Ceiling && s.Baseline > 0 &&
		heldRecovery(peak, raw, float64(raw.latency())/float64(s.Baseline), c, law)
	if (faster || held) && s.Peak > s.Ceiling {
		// Back from a slowdown, or back at the baseline where an
		// incident had it slow (heldRecovery, read against that
		// ceiling): the ceiling the incident lowered (its capacity
		// then) is the agency's own again, unless it refuses it, which
		// lowers it once more. Whether slow start climbs is read
		// against that ceiling: the lowered one is often the limit
		// itself, with nothing to regain. (A slow start during the
		// incident, refused, lowers the ceiling to a call or two; read
		// against it, the recovery was not deep, and the limit climbed
		// from there a call at a time.)
		if n, w, f, k := slowStartLimit(peak, raw, c, law); k || raw.OK >= relearnSamples {
			s.Ceiling, s.Peak = peak.Ceiling, 0
			next, why, faster, ok = n, w, f, k
		}
	}
	if faster && !ok {
		// Back from a slowdown at a limit the ceiling does not exceed:
		// nothing to regain, but the baseline is still the slow agency's,
		// against which a queue at this limit would pass for room to grow
		// (and the baseline, following the latency down, would settle on
		// that queue). Read below the growth threshold, the latency is
		// the agency's own again. One period of a few calls is too noisy
		// to take as the baseline outright: at a low rate the baseline
		// follows the lower latency by steps instead (see read), unless
		// it reads the agency back at the speed it had before rule 2
		// found it slower (backToFast).
		if raw.OK >= relearnSamples {
			s.relearnFaster(raw, c, law)
		} else if lawHas(law, LawBeforeFastBaseline) {
			return s.backToFast(raw, c), false
		}
	}
	if !ok {
		return "", false
	}
	from := s.Limit
	// Until the ceiling, slow start goes on. Beyond it, it is over, the
	// ceiling the good limit: under the law before LawBeforeCeilingStop it
	// took one step beyond, a probe from the ceiling that a cut sends back
	// to it. Now it ends at the ceiling, read healthy, and growth beyond it
	// is the normal rules', as beyond any capacity seen: a call at a time
	// near it, backed off once refuted. The ceiling is the capacity with
	// the Headroom's call of queue; the probe of 12.5% from it went past
	// ±10% of the capacity after every recovery below a capacity of 20, to
	// be cut back a period or two later.
	s.Recovering = next <= s.Ceiling
	if !s.Recovering {
		s.Good = max(s.Good, from)
		if lawHas(law, LawBeforeSlowStartCapacity) {
			// The ceiling read healthy is the capacity as far as is
			// known: growth beyond it starts gently, as beyond any
			// capacity seen (LawBeforeSlowStartCapacity).
			s.Capacity = max(s.Capacity, from)
		}
	}
	if faster {
		// After a slowdown the baseline is still the slow agency's; read
		// at a limit below the capacity, the latency is the agency's own
		// again.
		s.relearnFaster(raw, c, law)
	}
	if !s.Recovering && lawHas(law, LawBeforeCeilingStop) {
		return "", false
	}
	// An agency back from a slowdown during a dip: slow start's step
	// ends it. What was read slow before is over.
	s.Limit, s.Streak, s.Saturated, s.Evidence, s.Rule, s.SlowFrom, s.Dip, s.Slowed = next, 0, 0, nil, ruleSlowStart, from, nil, 0
	return fmt.Sprintf("slow start (%s): %.1f→%.1f, ceiling %.1f", why, from, next, s.Ceiling), true
}

// LawBeforeSlowStartCapacity pins the control law as it was before slow
// start, ended at the ceiling read healthy, took that ceiling as the
// capacity seen (State.Law). The capacity the law knew was still the one
// an incident's cuts had set, far below the ceiling, so growth beyond the
// ceiling was not "near a capacity": its steps doubled with each increase,
// as in a search, instead of a call at a time. Where the demand did not
// fill the limit, so that the latency at the ceiling read at the baseline,
// the limit went past the capacity by a third before the latency cut it
// back (the real stack's C25 × 250 ms incident, after the recovery:
// 25 → 26 → 29 → 33 at a capacity of 25 in three periods, cut back to 25
// three periods later; 11.6 s to converge). In flowsim's scorecard (seeds
// 1–36, both offsets, 5 s warm-up) the steps not converged within 5 s went from
// 3,450 to 3,426 (seeds 37–72: 3,476 to 3,450), and on the twelve shapes
// the law was not tuned on from 3,316 to 3,291 and 2,981 to 2,934 (seeds
// 37–72: 3,313 to 3,289, 2,963 to 2,919), all after the incident's
// recovery; the misses moved by 2 at most.
const LawBeforeSlowStartCapacity = 22

// noteSlowed records the limit as Slowed when raw, a period whose calls
// were all sent under the limit as it is (as many periods since it moved
// as the period's latency spans, and at least one), reads the latency above
// the tolerance beyond its noise. At such a limit the latency is not a
// queue left from a higher one: it is the agency's own, or a queue of ours
// at a capacity below the limit. Either way, read back at the baseline at
// that limit or a higher one, the agency has recovered: our queue only
// grows with the limit.
func (s *AgencyState) noteSlowed(raw Observation, c AgencyConfig) {
	lat := raw.latency()
	if s.Moved || raw.OK == 0 || lat <= 0 || raw.Period <= 0 || s.Baseline <= 0 || s.BaselinePeriods < warmupPeriods {
		return
	}
	if s.SinceMove-1 < max(1, int(math.Ceil(float64(lat)/float64(raw.Period)))) {
		return // calls sent before the limit moved end in this period
	}
	if float64(lat)/float64(s.Baseline) > c.LatencyTolerance+latencyNoise(raw) {
		s.Slowed = roundLimit(s.Limit)
	}
}

// backToFast takes back the baseline the agency had before rule 2 found it
// slower without refusals (FastBaseline) when the period raw, which slow
// start read well below the slow baseline, is within its noise of it (or
// of the growth threshold): the agency is back at its old speed. The slow
// baseline was relearnt from a check's few calls; the fast one rests on
// many more, so the reading need only agree with it, not measure it.
// Before, at a few calls a second the slow baseline came down by steps
// only (it is relearnt outright on relearnSamples calls), and the queue of
// a limit past the capacity read as room under it: bench small's slowdown
// (C4 × 600 ms, ×2 for 20 s) grew the limit to 5–6 of 4 once the agency
// was back, for 20 s and more. It returns the note for the step's reason,
// "" when nothing changed.
func (s *AgencyState) backToFast(raw Observation, c AgencyConfig) string {
	fast := s.FastBaseline
	// Slow start read raw "faster": MinSamples calls or more, no refusal
	// and no error among them.
	if fast <= 0 || !nearFast(raw, fast, c) {
		return ""
	}
	was := s.Baseline
	// The evidence gathered so far holds the slow agency's calls: read
	// against the fast baseline they pass for a queue.
	s.Baseline, s.Unverified, s.Relearned, s.FastBaseline, s.Evidence, s.Averaged = fast, false, nil, 0, nil, false
	return fmt.Sprintf("agency back at its old speed: latency %s on %d calls, baseline %s→%s; ",
		raw.latency().Round(time.Microsecond), raw.OK, was.Round(time.Microsecond), fast.Round(time.Microsecond))
}

// nearFast reports whether raw's latency is within its noise, or the growth
// threshold, of the baseline fast.
func nearFast(raw Observation, fast time.Duration, c AgencyConfig) bool {
	lat := raw.latency()
	return lat > 0 && math.Abs(float64(lat)/float64(fast)-1) <= max((c.LatencyTolerance-1)*incFraction, latencyNoise(raw))
}

// relearnFaster takes the latency of raw, well below the baseline, as the
// baseline: the agency is back from a slowdown. The baseline it had before
// rule 2 found it slower (FastBaseline) rests on more calls, and is taken
// instead when raw reads within its noise of it.
func (s *AgencyState) relearnFaster(raw Observation, c AgencyConfig, law int) {
	s.Baseline = raw.LatencyMean
	if s.Baseline <= 0 {
		s.Baseline = raw.LatencyP50
	}
	s.Relearned, s.Unverified, s.Averaged = nil, true, false
	if old := s.PeakBaseline; old > 0 && s.Peak == 0 {
		// Back from the slowdown that set the ceiling aside: a reading
		// within its noise of the baseline from before it is the agency
		// at its old speed, and that baseline rests on more calls.
		noise := latencyNoise(raw)
		if math.Abs(float64(s.Baseline)/float64(old)-1) <= noise {
			s.Baseline = old
		}
		s.PeakBaseline = 0
	}
	if fast := s.FastBaseline; fast > 0 && lawHas(law, LawBeforeFastBaseline) {
		if nearFast(raw, fast, c) {
			s.Baseline, s.Unverified = fast, false
		}
		if s.Baseline <= fast {
			s.FastBaseline = 0
		}
	}
}

// gather holds the limit and keeps o as evidence while it is too thin to
// decide on (see enough) and fewer than minFailures calls failed, for at
// most maxGather periods; held says it did.
func (s *AgencyState) gather(o Observation, fresh bool, saturated int, c AgencyConfig, period time.Duration, law int) (reason string, held bool) {
	failures := o.Overload + o.AgencyErrors + o.Timeouts
	// A lone refusal (no other failure) is not a rate yet, but no reason
	// to grow either: the period is read with the next one, whatever its
	// calls. At an agency that refuses at once beyond its capacity, a call
	// too many is refused about once a period (a refused call keeps its
	// slot that long), never the two a rate needs in one period: the limit
	// sat a call beyond the capacity, refused every period.
	lone := fresh && o.Overload > 0 && failures < minFailures
	if lone && lawHas(law, LawBeforeProbeRefused) && o.Calls <= probeRefusalCalls && s.Good > 0 && s.Probe == nil &&
		(roundLimit(s.Limit) == roundLimit(s.Good)+1 || roundLimit(s.Limit) > roundLimit(s.Good) && lawHas(law, LawBeforeStepRefused)) {
		// The limit is beyond Good, the last limit seen in use and
		// healthy, and the agency refused a call of a few: that is the
		// answer to the increase, not a rate still to gather. Read with
		// the next period, as a lone refusal is, a probe had two or three
		// periods refused, each a share of calls far beyond the failure
		// target (LawBeforeProbeRefused). With more calls a period, a
		// lone refusal is too small a share to tell a limit beyond the
		// capacity from a call's slot turning over a moment early at it,
		// and two refusals, a rate, come within the period.
		//
		// A probe of one call goes back to Good at once, refuted
		// (settle). A step of several calls (a search's ×1.5, a regrow)
		// goes back one call: a single refusal says the limit passed the
		// capacity by about a call, and back to Good undid the calls
		// below it (the issue's shape from a limit of 4: 6 → 9 refused
		// at a capacity of 8, back to 6, and the search over). Under
		// LawBeforeStepRefused such a step was read with the next
		// period, and a search at a few slow calls a second drew four
		// to six refusals before its cut.
		limit := s.Limit
		to, via := s.Good, viaGood
		if roundLimit(limit) > roundLimit(s.Good)+1 {
			to, via = float64(roundLimit(limit)-1), viaEstimate
		}
		s.Refused = true
		if s.Capacity == 0 || to < s.Capacity {
			s.Capacity = to
		}
		s.Limit, s.Cooldown, s.Probe, s.Dip, s.Rule = to, s.settle(limit, to, via, law, c), nil, nil, ruleCutFailure
		if s.LostAt == float64(roundLimit(limit)) && s.Baseline > 0 && o.OK > 0 &&
			float64(o.latency())/float64(s.Baseline) <= c.LatencyTolerance+latencyNoise(o) {
			// Refused with the latency not read slow: refused at the
			// door, not after a queue (LawBeforeProbeTaken).
			s.LostRefused = true
		}
		if via == viaEstimate {
			return fmt.Sprintf("refused %d of %d calls at %d, a step beyond %.1f: a call back, to %.0f", o.Overload, o.Calls, roundLimit(limit), s.Good, to), true
		}
		return fmt.Sprintf("refused %d of %d calls at a probe beyond %.1f: back to it", o.Overload, o.Calls, s.Good), true
	}
	if reason, ok := s.probeTaken(o, fresh, failures, c, law); ok {
		return reason, true
	}
	if ok, need := enough(o, *s, c, law); failures < minFailures && o.Period < maxGather*period && (!ok || lone) {
		s.Saturated = saturated
		switch {
		case s.Periods == 1:
			// After a cold start only the calls short enough to end
			// within the first period are seen: leave them out.
			return "hold: first period", true
		case fresh && (s.Moved || s.Probe != nil && (s.Probe.Age <= c.SettlePeriods || !s.Probe.due(c, period, o.latency(), law))):
			// Mostly calls sent under the previous limit; a latency cut's
			// check must not see them at all, or the agency's queue still
			// draining passes for a slower agency.
			return fmt.Sprintf("hold: %d samples, waiting for the new limit to show", o.OK), true
		}
		ev := o
		s.Evidence = &ev
		if ok {
			return fmt.Sprintf("hold: %d refused, reading the next period with it", o.Overload), true
		}
		return fmt.Sprintf("hold: gathering evidence, %d samples in %s (need %d)", o.OK, o.Period, need), true
	}
	return "", false
}

// probeTaken regrows the limit from a period run at LostAt, the limit of a
// probe refused at once lately (LostRefused), with nothing refused and
// nothing failed: the period's own calls (the limit not just moved), the
// limit filled (every call slot in flight at the period's end), demand
// beyond it, no latency cut's check pending, and the latency neither read
// slow at this limit (Slowed) nor above the growth threshold widened by
// its noise. Such an agency refuses at once beyond its capacity, as it
// refused the probe, so a period at that limit without a refusal says the
// capacity lost is back: three quarters of the way back to the earlier
// capacity at once, as the regrow goes (see grow), without waiting for the
// latency evidence a queueing agency needs. That evidence, MinSamples
// calls and more, took one to three periods more at a few calls a second,
// and the restored capacity was regained 5–7 s after its return
// (LawBeforeProbeTaken). The latency guards keep an agency that queues and
// refused the probe from its full queue (a queue timeout) out of it: not
// refused there is no news.
func (s *AgencyState) probeTaken(o Observation, fresh bool, failures int64, c AgencyConfig, law int) (string, bool) {
	if !lawHas(law, LawBeforeProbeTaken) || !fresh || s.LostAt <= 0 || !s.LostRefused || s.Moved || failures > 0 ||
		o.OK == 0 || s.Baseline <= 0 || s.Probe != nil || s.Cooldown > 0 {
		return "", false
	}
	limit := s.Limit
	to := s.regrowTo()
	if s.inEffect() < s.LostAt-0.5 || o.InFlight < roundLimit(limit) || !demanded(o, s.inEffect(), c) ||
		to <= (1+regrowMargin)*limit || s.Slowed == roundLimit(limit) ||
		float64(o.latency())/float64(s.Baseline) > 1+max((c.LatencyTolerance-1)*incFraction, latencyNoise(o)) {
		return "", false
	}
	lost := s.LostAt
	s.Good, s.Refused = max(s.Good, float64(roundLimit(limit))), false
	s.Limit = limit + 0.75*(to-limit)
	s.Capacity = max(s.Capacity, s.Limit)
	s.Streak, s.LostAt, s.LostRefused, s.Rule = 0, 0, false, ruleRegrow
	return fmt.Sprintf("nothing refused at %d, where %.0f was refused at once lately: 75%% of the way to earlier capacity %.1f",
		roundLimit(limit), lost, to), true
}

// LawBeforeProbeRefused pins the control law as it was before a lone
// refusal at a probe beyond Good, in a period of probeRefusalCalls calls or
// fewer, refuted the probe at once (State.Law). Read with the next period,
// as any lone refusal, the probe stood two or three periods, refused once
// in each: at an agency that refuses at once beyond its capacity, held at a
// capacity it lost, every probe toward the one it had before cost three
// refusals of a dozen calls (the issue's shape, C8 × 1.34 s halved to 4:
// 7–15% of the calls refused through the loss, against a target of 2%).
// Now 8.3–9.5% there, and 12–13% → 6.4% at C4 × 600 ms (seeds 1–36, both
// offsets, 5 s warm-up). Only a probe of one call: back to Good from a
// search step several calls beyond it undid the calls below the refusal
// (the issue's shape from a limit of 4: 6 → 9 refused at a capacity of 8,
// back to 6, and the search over). In flowsim's scorecard the misses went
// from 2,465 to 2,357 (seeds 37–72: 2,546 to 2,405), on the twelve shapes
// the law was not tuned on from 2,553 to 2,533 and 1,779 to 1,751 (seeds
// 37–72: 2,568 to 2,535, 1,757 to 1,734), and on the lasting kinds from
// 1,580 to 1,540 (1,622 to 1,568); the steps not converged within 5 s rose
// from 3,426 to 3,487 (3,451 to 3,495), at the agencies with no queue,
// whose probes now come every four periods or so rather than six.
const LawBeforeProbeRefused = 24

// LawBeforeRefusedHeld pins the control law as it was before a limit held
// in use with a few refusals, too few to cut, the latency normal and no
// other failure, counted the limit a call below it as seen healthy: Good
// and the Ceiling (State.Law). Only a period with no failure at all did.
// At an agency with no queue and a high call rate, held a call beyond its
// capacity, a period was never without a refusal, so Good and the Ceiling
// stayed where the search had passed them; every cut from beyond the
// capacity then counted as a probe refuted beyond Good, and once a loss was
// over the limit regrew to that low ceiling and held there on the back-off
// (C40 × 150 ms: 30 of 40 for the rest of the run). In flowsim's scorecard
// (seeds 1–36, both offsets, 5 s warm-up), at the agencies with no queue,
// the restored capacity's phase went from 0.87 to 0.99 × the oracle at
// C40 × 150 ms, 0.89 to 0.99 at C50 × 200 ms and 0.92 to 0.99 at
// C100 × 100 ms, runs never back at 90% of it from 25 and 14 of 72 to none;
// the misses on the twelve shapes the law was not tuned on from 2,533 to
// 2,462 and 1,751 to 1,666 (seeds 37–72: 2,535 to 2,478, 1,734 to 1,662),
// and the steps not converged within 5 s from 3,284 to 3,254 and 2,932 to
// 2,896; the tuned shapes and the lasting kinds moved by 1 at most.
const LawBeforeRefusedHeld = 25

// LawBeforeStepRefused pins the control law as it was before a lone
// refusal at a step of several calls beyond Good, in a period of
// probeRefusalCalls calls or fewer, took the limit back one call below the
// refused one at once (State.Law); only a one-call probe's was answered at
// once (LawBeforeProbeRefused). At a few slow calls a second a search's
// ×1.5 step beyond the capacity of an agency with no queue drew four to six
// refusals before a rate showed. In flowsim's scorecard (seeds 1–36, both
// offsets, 5 s warm-up) the misses went from 2,357 to 2,324 (seeds 37–72:
// 2,406 to 2,385), on the twelve shapes the law was not tuned on from
// 2,462 to 2,429 and 1,666 to 1,667 (seeds 37–72: 2,478 to 2,461, 1,662 to
// 1,661), and on the lasting kinds from 1,540 to 1,446 (1,568 to 1,475);
// the steps not converged within 5 s from 3,487 to 3,475, 3,254 to 3,178
// and 2,896 to 2,892 (seeds 37–72: 3,495 to 3,485, 3,250 to 3,174, 2,883
// to 2,880; lasting 604 to 590, 638 to 624). No shape lost more than one
// miss.
const LawBeforeStepRefused = 26

// LawBeforeProbeTaken pins the control law as it was before a period run
// at the limit of a probe refused at once lately (LostAt, LostRefused),
// with nothing refused, regrew the limit at once (probeTaken), State.Law:
// the regrow waited for the latency evidence a queueing agency needs,
// MinSamples calls and more, one to three periods more at a few calls a
// second. At an agency with no queue the capacity lost was regained 5–7 s
// after its return at 3–6 calls/s. In flowsim's scorecard (seeds 1–36,
// both offsets, 5 s warm-up) the misses went from 2,324 to 2,258 (seeds
// 37–72: 2,385 to 2,310), on the twelve shapes the law was not tuned on
// from 2,429 to 2,384 and 1,667 to 1,619 (seeds 37–72: 2,461 to 2,443,
// 1,661 to 1,606), and on the lasting kinds from 1,446 to 1,448 (1,475 to
// 1,475); the steps not converged within 5 s from 3,475 to 3,449, 3,178
// to 3,161 and 2,892 to 2,879 (seeds 37–72: 3,485 to 3,460, 3,174 to
// 3,158, 2,880 to 2,867). Every shape that gained was a capacity halved at
// an agency with no queue (C5 × 300 ms −42, bench small −35, C6 × 2 s
// −24); none lost more than 2.
const LawBeforeProbeTaken = 27

// signals are one decision's reading of its (gathered) period.
type signals struct {
	limit, failRate, goodput float64
	failures                 int64
	lat                      time.Duration
	// latOK: enough successful calls, and a baseline, to judge the
	// latency by; sampled: enough calls, baseline or not.
	latOK, sampled, demand bool
	// noise is the latency's sampling noise as a fraction; ratio the
	// latency over the baseline; growBelow and cutAbove the thresholds,
	// widened by the noise; room 1 at the baseline, 0 at growBelow;
	// estimate the Little's-law concurrency the agency served.
	noise, ratio, growBelow, cutAbove, room, estimate float64
	// servedWithin: a call succeeded in one of the periods before this
	// one that a call's life spans (see AgencyState.Unserved).
	servedWithin bool
	// slowBefore: the evidence holds earlier periods, and the last one,
	// read alone, does not read the latency above the tolerance beyond
	// its own noise.
	slowBefore bool
	// shown: every period of the evidence was read after the last change
	// of the limit had shown (see AgencyState.shown).
	shown bool
	// leftOut: the period's refusals that its background rates accounted
	// for (see AgencyState.denoise), read as none by the rules.
	leftOut float64
	// law is the law in force (State.Law).
	law int
}

// shown reports whether the evidence o, whose last period is raw, was all
// read once the last change of the limit had shown: none of its periods is
// the one right after the change, which mostly holds calls sent before it,
// nor, for calls longer than a period, one that began within a call's
// latency (the baseline) of the change: calls that end in it were sent
// before the change too.
func (s AgencyState) shown(o, raw Observation) bool {
	if raw.Period <= 0 {
		return false
	}
	periods := int(math.Round(float64(o.Period) / float64(raw.Period)))
	lag := max(1, int(math.Ceil(float64(s.Baseline)/float64(raw.Period))))
	return s.SinceMove-periods >= lag
}

// baselineNoise is the sampling noise of a baseline that is the warm-up's
// mean (Averaged), as a fraction, at o's spread: noiseSigmas standard
// errors of its BaselineSamples calls; 0 for any other baseline, once the
// limit has been cut, or under a law before LawBeforeBaselineNoise.
//
// That mean rests on a few dozen calls at a slow agency, and one read low
// held the limit below the capacity for good: at C60 × 500 ms from a limit
// of 10 it read 487 ms for the agency's 516 (1.8 standard errors), the
// search stopped at 15 on a reading of 1.08×, every later period read
// 1.06–1.16× "at capacity" against a growth threshold of about 1.11, and
// the limit crawled a call every two or three periods, to 30 of 60 at the
// end (0.31, 0.48, 0.50 × the oracle). Nothing under demand raises a
// baseline. So, on the climb from the warm-up, a reading is compared with
// it within the noise of both:
//
//   - to follow a lower latency: one within the baseline's own noise is
//     not followed lower still;
//   - to grow, once the search has ended (a capacity seen), where one call
//     of queue is within the growth threshold already (1 ÷ the limit below
//     its margin). In the search, a wider threshold compounds over ×1.5
//     steps (C8 × 1.34 s: 9 → 14 at a capacity of 8, 4.3% timeouts); where
//     a call of queue shows above the threshold (a capacity of 4 or 8), the
//     wider one hides it (probes beyond a capacity of 4 went unrefuted).
//
// The first cut (rule 1 or 3, or a trim) ends the climb: the agency has
// shown where its capacity is, and near it, or growing back toward it after
// a loss, the threshold must see the queue. A limit past the capacity
// queues far beyond the baseline's noise and is cut as before: the cut
// threshold does not widen (a slowdown's check would wait longer).
func (s AgencyState) baselineNoise(o Observation, law int) float64 {
	if !lawHas(law, LawBeforeBaselineNoise) || !s.Averaged || s.BaselinePeriods < warmupPeriods || s.BaselineSamples <= 0 {
		return 0
	}
	return noiseSigmas * spread(o) / math.Sqrt(float64(s.BaselineSamples))
}

// callPeriods is how many periods a call's life spans at an agency whose
// baseline latency is baseline: twice the latency, at least one period.
func callPeriods(baseline, period time.Duration) int {
	if period <= 0 {
		return 1
	}
	return max(1, int(math.Ceil(float64(2*baseline)/float64(period))))
}

// read computes the period's signals, learns the baseline from it, and
// checks a relearned baseline; note prefixes the reason when that check
// reverts it.
func (s *AgencyState) read(o Observation, c AgencyConfig, law int) (sig signals, note string) {
	period := o.Period
	failures := o.Overload + o.AgencyErrors + o.Timeouts
	limit := s.Limit
	failRate := 0.0
	if o.Calls > 0 {
		failRate = float64(failures) / float64(o.Calls)
	}
	goodput := float64(o.OK) / period.Seconds()
	s.FailureRate, s.Goodput = failRate, goodput

	lat, signal := o.LatencyMean, "mean"
	if lat <= 0 {
		lat, signal = o.LatencyP50, "p50"
	}
	latOK := o.OK >= c.MinSamples && lat > 0
	demand := demanded(o, s.inEffect(), c)

	// The sampling noise of the period's latency, as a fraction, estimated
	// from the spread of the calls (lognormal: p90/p50 = e^(1.28σ)); the
	// thresholds below widen by it.
	noise := 0.0
	if latOK {
		noise = latencyNoise(o)
	}
	// Learn the baseline. The first one is the mean of a few periods during
	// which the limit holds (at InitialLimit, meant to be below capacity),
	// leaving out the very first period: after a cold start only the calls
	// short enough to end within it are seen. Then it follows a
	// significantly lower latency quickly (following every lower reading
	// would settle on the low end of the noise), and a higher one only
	// slowly and only while our own load cannot be the cause.
	if latOK && s.BaselineSignal != signal {
		s.Baseline, s.BaselineSignal, s.BaselinePeriods, s.BaselineSamples, s.Averaged = 0, signal, 0, 0, false
	}
	if latOK && s.Periods > 1 {
		switch {
		case s.BaselinePeriods < warmupPeriods:
			if s.Observed < warmupLatencies*lat {
				// Too soon after a cold start: the calls that ended so
				// far are the shorter ones of those sent at the start.
				break
			}
			n := s.BaselineSamples + o.OK
			s.Baseline = time.Duration((float64(s.Baseline)*float64(s.BaselineSamples) + float64(lat)*float64(o.OK)) / float64(n))
			s.BaselinePeriods++
			s.BaselineSamples, s.Averaged = n, true
		case float64(lat) < float64(s.Baseline)*(1-math.Hypot(noise, s.baselineNoise(o, law))/noiseSigmas):
			// Lower beyond the noise of the reading and of the baseline
			// (a warm-up's mean, read low, is not followed lower still
			// on a reading within its own noise).
			s.Baseline -= time.Duration(baselineDown * float64(s.Baseline-lat))
		case lat > s.Baseline && !demand && failRate <= c.FailureTarget && 2*o.InFlight < roundLimit(limit):
			s.Baseline += time.Duration(baselineDrift * float64(lat-s.Baseline))
		}
	}
	if latOK && s.Peak > s.Ceiling && s.PeakBaseline > 0 &&
		float64(lat) <= float64(s.PeakBaseline)*(1+max((c.LatencyTolerance-1)*incFraction, noise)) {
		// Back at the speed it had before the slowdown: the ceiling set
		// aside is the agency's again, and so is its baseline. Far below
		// it, the agency is recovering: slow start climbs back to it
		// (LawBeforeBackAtSpeedRecovery).
		s.Ceiling, s.Peak, s.Baseline, s.PeakBaseline, s.Relearned, s.Averaged = s.Peak, 0, s.PeakBaseline, 0, nil, false
		if s.Ceiling > (1+regrowMargin)*limit && lawHas(law, LawBeforeBackAtSpeedRecovery) {
			s.Recovering = true
		}
	}
	ratio := 0.0
	warm := s.BaselinePeriods >= warmupPeriods
	if latOK && warm {
		ratio = float64(lat) / float64(s.Baseline)
	}
	// Check a relearned baseline once the restored limit has had time to
	// show.
	if s.Relearned != nil && s.Relearned.Age >= c.SettlePeriods && latOK {
		if ratio > c.LatencyTolerance+noise {
			reverted := fmt.Sprintf("baseline %s reverted to %s (latency rose with the restored limit); ",
				s.Baseline.Round(time.Microsecond), s.Relearned.Old.Round(time.Microsecond))
			note = reverted
			s.Baseline, s.Unverified, s.Averaged = s.Relearned.Old, s.Relearned.OldUnverified, false
			if s.FastBaseline == s.Baseline {
				s.FastBaseline = 0 // the agency was not slower after all
			}
			ratio = float64(lat) / float64(s.Baseline)
		}
		s.Relearned = nil
	}
	s.LatencyRatio = ratio
	// The growth threshold widens by the reading's noise, and by the
	// baseline's own while it is the warm-up's mean (baselineNoise), once
	// the search has ended (a capacity seen) and where one call of queue
	// is within the threshold already. The cut threshold does not widen.
	growNoise := noise
	if latOK && s.Capacity > 0 && 1/float64(max(roundLimit(limit), 1)) < max((c.LatencyTolerance-1)*incFraction, noise) {
		growNoise = math.Hypot(noise, s.baselineNoise(o, law))
	}
	growBelow := 1 + max((c.LatencyTolerance-1)*incFraction, growNoise)
	cutAbove := c.LatencyTolerance + noise
	// Room is 1 while the latency is at the baseline and 0 at growBelow.
	room := 0.0
	if latOK {
		room = min(max((growBelow-ratio)/((growBelow-1)/2), 0), 1)
	}
	// Little's law: the concurrency the agency served, had every call taken
	// the baseline latency. At saturation this is its capacity.
	estimate := 0.0
	if s.Baseline > 0 {
		estimate = goodput * s.Baseline.Seconds()
	}
	// Without a baseline the latency says nothing yet: only failures count.
	sampled := latOK
	latOK = latOK && warm

	return signals{law: law, limit: limit, failRate: failRate, goodput: goodput, failures: failures, lat: lat,
		latOK: latOK, sampled: sampled, demand: demand, noise: noise, ratio: ratio,
		growBelow: growBelow, cutAbove: cutAbove, room: room, estimate: estimate}, note
}

// LawBeforeBackAtSpeedRecovery pins the control law as it was before an
// agency read back at the speed it had before a slowdown, with the limit
// more than regrowMargin below the ceiling that slowdown set aside, was
// taken as recovering (State.Law). The ceiling and the baseline came back,
// but slow start only began on a period read well below the slow baseline
// (faster) or back at the baseline at the limit read slow (heldRecovery):
// where the first period after the recovery mixed slow and fast calls, its
// spread widened the noise past "faster", the ceiling and baseline came
// back in read on that period, and the next period, at the restored
// baseline, was neither. The limit then grew by the normal rules, a call
// or a doubling increment a period, and a dip to check a baseline read on
// the first fast period could come first (bench large's incident, seed 1:
// 9 → 8 → 18 of 20 in 11 s after the recovery; now 9 → 17.8 → 21 in 3 s).
// In flowsim's scorecard (seeds 1–36, both offsets, 5 s warm-up) the misses
// went from 2,474 to 2,467 (seeds 37–72: 2,550 to 2,548), and on the twelve
// shapes the law was not tuned on from 2,583 to 2,571 and 1,819 to 1,818
// (seeds 37–72: 2,606 to 2,593 and 1,790 to 1,782); no recovery at offset 0
// took longer, ten were faster (bench large 11 s and 16 s to 3 s; a
// held-out C25 × 250 ms slowed ×2 at a third of its capacity, 7, 11 and
// 7 s to 4 s).
const LawBeforeBackAtSpeedRecovery = 21

// cutForFailures is rule 1: failures caused by load cut the limit at once
// to what the agency delivered (see the package doc).
func (s *AgencyState) cutForFailures(sig signals, o Observation, c AgencyConfig, lastRule string) (string, bool) {
	limit, failRate, failures, estimate := sig.limit, sig.failRate, sig.failures, sig.estimate
	// 1. Failures caused by load: cut at once to what the agency delivered.
	if failRate > c.FailureTarget && failures >= minFailures {
		s.Streak = 0
		// Nothing refused and the latency normal: not load. Errors alone
		// (500s) are not load up to the tolerance: a latency a little
		// above the growth threshold, within its noise, cut the limit on
		// an agency's background errors (5% of its calls) again and again.
		if o.Overload == 0 && sig.latOK && (sig.ratio <= sig.growBelow ||
			lawHas(sig.law, LawBeforeBackground) && o.Timeouts == 0 && sig.ratio <= sig.cutAbove) {
			s.Rule = ruleNotLoad
			return fmt.Sprintf("hold: failures %.1f%% but latency normal and no overload answers: not load", 100*failRate), true
		}
		if s.Cooldown > 0 && o.OK > 0 && (s.SinceMove <= c.SettlePeriods || 2*o.Timeouts >= failures || !lawHas(sig.law, LawBeforeSettledFailures)) {
			// The last cut has not shown yet: these failures are most
			// likely its cause still draining; cutting again compounds.
			// Refusals and errors answer the calls sent lately: they are
			// held for SettlePeriods after the limit moved, not for as
			// long as the cooldown lasts. After a refuted probe at a few
			// calls the settling doubles (settle), and a capacity lost
			// meanwhile was refused a third to two thirds of its calls
			// for seven periods, read as the cut still draining (C4 ×
			// 600 ms halved; LawBeforeSettledFailures). Timeouts are
			// calls sent a client's timeout ago, which may be longer:
			// those are held for the whole settling.
			s.Rule = ruleWaitCut
			return fmt.Sprintf("hold: %s %.1f%% while the last cut settles", failureKind(o), 100*failRate), true
		}
		if s.Probe != nil && o.Overload == 0 && o.OK > failures &&
			(!lawHas(sig.law, LawBeforeCheckWaitBound) || s.Probe.tells(EvidenceMargin(c, limit))) {
			// A latency cut waits for its check (rule 2), and nothing was
			// refused: the failures are the slow tail of calls mostly
			// served, as a slower agency's are. Cutting again would drop
			// the check, whose reading tells a slower agency from a
			// busier one, and compound the cut on a slowdown. Not for a
			// check that cannot tell them apart (Probe.tells): the
			// failures held for it, every period, kept it from ever
			// reading one, and the limit held on them with no end.
			if lawHas(sig.law, LawBeforeTimeoutsChecked) && sig.latOK && s.Probe.due(c, o.Period, sig.lat, sig.law) &&
				o.InFlight <= roundLimit(s.Probe.To)+1 {
				// The check is due and this period ran under the cut:
				// it is the check's to read (rule 2). Held here, a
				// slower agency's tail past the client's timeout,
				// failing a few calls in every period, kept the check
				// from ever reading one.
				return "", false
			}
			s.Rule = ruleWaitCut
			return fmt.Sprintf("hold: %s %.1f%% with no overload answers, the last latency cut's check pending", failureKind(o), 100*failRate), true
		}
		s.endSlowStart(lastRule, 2*o.Overload >= failures)
		if o.Overload > 0 {
			s.Refused = true
		}
		if o.OK == 0 && !sig.servedWithin {
			// An outage: nothing has succeeded for as long as a call
			// takes. Whatever was refuted before says nothing about the
			// agency that comes back. Not while a call's life spans back
			// to a period that served: at a few slow calls a period, or
			// several in a row at calls longer than a period, a capacity
			// lost with the limit still above it shows periods of nothing
			// but its refusals and the timeouts of the calls it queued,
			// whether or not it refused any before; slow start would
			// double the limit into that capacity again. (Counted as an
			// outage at once unless the agency had refused calls before,
			// the capacity halvings of the issue's shape and of C4 ×
			// 600 ms slow-started 32 times over the scorecard's 36 seeds
			// at both offsets; now once.)
			s.Recovering, s.Refuted, s.Backoff = true, 0, 0
		}
		target, via := s.backTo(estimate*c.Headroom, limit, o.OK < goodputSamples)
		next := min(limit, target)
		if o.OK > 0 || failures < c.MinSamples {
			// Some calls succeed (or too few failed to call it an
			// outage): the agency is overloaded, not down, and goodput
			// read while it is overloaded, or over a handful of calls,
			// reads low; keep at least half the limit.
			next = max(next, limit*maxLatencyCut)
		}
		if s.Cooldown == 0 {
			next = min(next, limit*failureCut)
		}
		tested := false
		if s.Ceiling > 0 && !s.floorLifted(sig.law) && (o.OK == 0 || 2*o.Timeouts >= failures || sig.lat > time.Duration(c.LatencyTolerance*float64(s.Baseline))) {
			// Nothing succeeds, the failures are mostly calls slower
			// than the client's timeout, or the calls that succeed are
			// slow: the agency is in trouble, which is the breakers'
			// case, not a capacity of ours to learn, and the goodput
			// read now says nothing about the capacity it will have
			// once it is back. Keep half the highest limit it took
			// healthy, so that its recovery shows at once and slow
			// start regains the limit in one doubling. A call that
			// times out holds its slot for the client's timeout, so
			// the calls sent meanwhile are few.
			floor := min(limit, s.Ceiling*troubleFloor)
			if lawHas(sig.law, LawBeforeServedFloor) && o.OK > 0 && 2*o.Timeouts < failures {
				// Still answering, slowly, and not mostly past the
				// client's timeout: it serves its successful calls ×
				// their latency at once, its queue included, and no
				// more. Half the ceiling was five times that at a
				// capacity lost to a tenth, refused 84–92% of the time
				// for as long as the loss lasted.
				floor = min(floor, max(o.concurrency(), 1))
			}
			if floor >= next {
				// Held at the floor twice in a row with calls
				// succeeding, the floor is tested (LawBeforeFloorTest):
				// the failures may be our own queue's.
				if below, ok := s.testFloor(limit, floor, failRate, o, sig.law); ok {
					next, tested = below, true
				} else {
					next, s.Floor = floor, floor
				}
			}
		}
		next = max(next, float64(c.MinLimit))
		if (o.OK > 0 || sig.servedWithin) && (2*o.Overload >= failures || s.Refused) {
			// Refused while serving: the agency's capacity is below the
			// limit. Growth does not jump back to the capacity seen
			// before (the recover rule, for an agency back from an
			// outage); a capacity that comes back is found by the
			// regrow and grow-back rules, toward the Ceiling. The cuts
			// that follow the refusals, until the agency is seen
			// healthy again, are the same lost capacity, whatever
			// failed: at a few slow calls a period it shows as the
			// timeouts of the calls it queued, or as a period in which
			// nothing ended well. Left at the first cut's limit, the
			// capacity remembered had the recover rule double the limit
			// back into the loss (4 → 8 at a capacity of 4, 1.34 s a
			// call). With none remembered yet, the cut's limit is the
			// first: an agency that refuses at once beyond its capacity
			// never queues, so the limit is never seen "at capacity",
			// and growth searched ×1.5 beyond the refusals again every
			// few periods (20 → 30 → 21 → 28 at a capacity of 20).
			if s.Capacity == 0 || next < s.Capacity {
				s.Capacity = next
			}
			if s.HighWater > 0 {
				s.HighWater = min(s.HighWater, limit)
			}
		}
		s.Limit, s.Cooldown, s.Probe, s.Dip, s.Rule = next, s.settle(limit, next, via, sig.law, c), nil, nil, ruleCutFailure
		if lawHas(sig.law, LawBeforeTimeoutsChecked) && o.Overload == 0 && 2*o.Timeouts >= failures && sig.latOK && sig.ratio > sig.cutAbove {
			// Mostly timeouts, nothing refused, and the calls that
			// succeeded slow: a busier agency (our queue) or a slower
			// one (its calls' tail now past the client's timeout). The
			// cut is checked as a latency cut is (rule 2): if the
			// latency does not fall with the limit, the agency got
			// slower, its baseline is relearnt and the cut undone. Not
			// a cut too shallow for the check to tell (Probe.tells).
			if p := (Probe{From: limit, To: next, Latency: sig.lat, Ratio: sig.ratio}); next < limit-0.5 && p.tells(EvidenceMargin(c, limit)) {
				s.Probe = &p
			}
		}
		if tested {
			return fmt.Sprintf("%s %.1f%% > %.1f%% held at the trouble floor %.1f again: below it to test it (x%.2f)",
				failureKind(o), 100*failRate, 100*c.FailureTarget, limit, next/limit), true
		}
		return fmt.Sprintf("%s %.1f%% > %.1f%%: to %s %.1f (x%.2f)",
			failureKind(o), 100*failRate, 100*c.FailureTarget, via, target, next/limit), true
	}

	return "", false
}

// checkLatencyCut is rule 2: a latency cut is checked SettlePeriods later,
// on a period whose calls were sent after the cut (Probe.due), and undone
// with a relearned baseline if the latency did not fall with the limit: the
// agency got slower, not busier.
func (s *AgencyState) checkLatencyCut(sig signals, o Observation, c AgencyConfig, period time.Duration) (string, bool) {
	limit, lat, ratio, noise := sig.limit, sig.lat, sig.ratio, sig.noise
	// 2. Check the last latency cut: if the latency did not fall with the
	// limit, the agency got slower; relearn the baseline and undo the cut.
	if s.Probe != nil && s.Probe.due(c, period, sig.lat, sig.law) {
		p := *s.Probe
		applied := o.InFlight <= roundLimit(p.To)+1
		if sig.latOK && applied {
			s.Probe = nil
			// Queueing latency falls with the limit. Latency that stayed
			// put was not ours; latency that rose means something else
			// changed meanwhile: a slowdown's onset, read only in part
			// in the cut's reference, or a capacity lost below the new
			// limit, which queues without refusing.
			expected := p.fall()
			observed := 1 - float64(lat)/float64(p.Latency)
			// It stayed put, or fell by less than queueing predicts
			// beyond its noise: the agency got slower, and the cut went
			// below its capacity (or it would still queue, and fall in
			// proportion). The latency read now is the agency's own, and
			// its capacity is the old limit × that latency ÷ the one
			// read there (Little's law), at least the cut's limit.
			stayed := math.Abs(observed) < expected/2
			// It rose, beyond its noise, after a cut deep enough to
			// matter (queueing predicts a fall of riseMinFall or more),
			// by less than riseMaxFactor × that fall: read as the
			// slowdown's onset, as if it stayed. Left as proving
			// nothing, rule 3 cut again by half on the same slowdown,
			// and only that cut's check found it, 16–21.5 s after it
			// began (bench small, C4 × 600 ms slowed ×1.85:
			// TestSlowdownOnsetReadInPart). A rise after a shallower
			// cut (a refuted probe's, which a change at the agency may
			// overtake), or a larger one, still proves nothing: read as
			// a slowdown, a capacity lost at the instant of a probe's
			// cut had its queue relearnt as the baseline. (From a fall
			// of a quarter, TestLowRate's slowdown, seed 5, relearnt the
			// baseline on 5 calls and went back to a limit a call beyond
			// the capacity: 7.5% timeouts.)
			rose := observed <= -max(expected/2, noise) && expected >= riseMinFall && -observed < riseMaxFactor*expected
			stayed = stayed || rose
			partial := observed >= expected/2 && observed < expected-noise
			if ratio > sig.cutAbove && (stayed || partial) && expected > noise && s.Relearned == nil && p.Refused == 0 {
				old := s.Baseline
				restore := p.From
				if partial {
					restore = max(p.To, p.From*float64(lat)/float64(p.Latency))
				}
				s.slower(lat, max(limit, restore), sig.law)
				how := "stayed"
				if rose {
					how = fmt.Sprintf("rose %.0f%% (the cut's reference read the slowdown in part),", -100*observed)
				}
				if partial {
					how = fmt.Sprintf("fell %.0f%% of the %.0f%% queueing predicts,", 100*observed, 100*expected)
				}
				return fmt.Sprintf("agency slower: latency %s %.2f× baseline after cut %.1f→%.1f; baseline %s→%s, limit %.1f",
					how, ratio, p.From, p.To, old.Round(time.Microsecond), lat.Round(time.Microsecond), s.Limit), true
			}
			if observed >= expected/2 && p.To < s.Good-0.5 {
				// A cut below Good helped: the agency did lose capacity,
				// and the probes refuted at the old one say nothing
				// about the new one.
				s.Good, s.Refuted, s.Backoff = 0, 0, 0
			}
		} else if s.Probe.Age > c.SettlePeriods+2 {
			s.Probe = nil // never took effect or no samples: forget it
		}
	}

	return "", false
}

// beforeCut raises the latency read at the last latency cut's limit (the
// reference of rule 2's check) to the period raw's, if higher, while the
// cut has not yet shown: the cut's own period may have straddled a change
// at the agency (a capacity lost mid-period shows in part), and the
// periods until the cut has taken effect still hold calls sent under the
// old limit, queued behind one another at the agency. Without this a
// capacity lost during the cut's period reads, at the lower limit, as a
// latency that stayed put: an agency slower, and the cut undone.
func (s *AgencyState) beforeCut(raw Observation, c AgencyConfig, period time.Duration, law int) {
	if s.Probe != nil && raw.Overload > 0 {
		p := *s.Probe
		p.Refused += raw.Overload
		s.Probe = &p
	}
	if s.Probe == nil || s.Baseline <= 0 || raw.OK < c.MinSamples {
		return
	}
	p := *s.Probe
	if p.due(c, period, raw.latency(), law) && raw.InFlight <= roundLimit(p.To)+1 {
		return // the cut has shown: this period is the check's
	}
	if lat := raw.latency(); lat > p.Latency {
		p.Latency, p.Ratio = lat, max(p.Ratio, float64(lat)/float64(s.Baseline))
		s.Probe = &p
	}
}

// slower takes lat as the agency's baseline, the old one kept for the
// check of Relearned, and restores the limit to restore, or to Good if
// higher and the agency refused nothing since it was healthy.
func (s *AgencyState) slower(lat time.Duration, restore float64, law int) {
	s.slowerLost(lat, restore, s.Refused, law)
}

// slowerLost is slower for an agency that lost capacity too (lost), as one
// that refused calls since it was healthy did: the limit stays at restore
// and the ceiling is set aside.
func (s *AgencyState) slowerLost(lat time.Duration, restore float64, lost bool, law int) {
	if lawHas(law, LawBeforeFastBaseline) && !lost && !s.Unverified && s.FastBaseline == 0 {
		// A slower agency that kept its capacity: its baseline until now
		// is kept for its return (backToFast). One that refused lost
		// capacity too, and keeps it with its Peak (PeakBaseline).
		s.FastBaseline = s.Baseline
	}
	s.Relearned = &Relearned{Old: s.Baseline, OldUnverified: s.Unverified}
	s.Baseline, s.Unverified, s.Averaged = lat, true, false
	// A limit read slow was slow against the old baseline: against this
	// one the slow agency reads at the baseline, no recovery.
	s.Slowed = 0
	// The agency got slower, not smaller: the cut is undone, and its last
	// good limit, if above, still holds as many calls; unless the agency
	// refused calls since (Refused): then it lost capacity too (an
	// incident), and the latency, read against the relearned baseline,
	// grows the limit back from the cut's if it still can.
	s.Limit = restore
	if !lost {
		s.Limit = max(s.Limit, s.Good)
	}
	// The cut took its target as the capacity; the limit restored is the
	// capacity again, so growth from it probes gently instead of
	// accelerating as beyond it.
	s.Capacity = s.Limit
	if lost {
		// It lost capacity as well: the probes refuted at the old one say
		// nothing about the new one, and the ceiling, the highest limit
		// it took before, is a capacity it no longer has. Grow-back
		// toward it would double into the lost capacity. It is kept as
		// the Peak, which the agency gets back once it is seen faster
		// again (slow start) or back at the baseline it had before
		// (PeakBaseline): the one before the incident's first slowdown
		// found, not a slow one relearnt since.
		s.Refuted, s.Backoff = 0, 0
		if s.Ceiling > s.Limit+0.5 && !s.Recovering {
			if s.Peak == 0 || s.PeakBaseline == 0 {
				s.PeakBaseline = s.Relearned.Old
			}
			s.Peak, s.Ceiling = max(s.Peak, s.Ceiling), s.Limit
		}
	} else {
		// Otherwise a slower agency holds as many calls as before, no
		// more: the probes refuted beyond Good still tell its capacity,
		// and none goes beyond the restored limit for a back-off. The
		// baseline just relearnt rests on a few calls; read against it, a
		// call or two queued beyond the capacity passes for room.
		s.Backoff = max(s.Backoff, probeBackoff)
	}
	s.Cooldown, s.Streak, s.Rule = 0, 0, ruleRelearn
}

// cutForLatency is rule 3: latency above the tolerance cuts to the
// Little's-law estimate (or Good, see backTo), by at most half, and starts
// rule 2's check.
func (s *AgencyState) cutForLatency(sig signals, o Observation, c AgencyConfig, lastRule string) (string, bool) {
	limit, lat, ratio, cutAbove, estimate := sig.limit, sig.lat, sig.ratio, sig.cutAbove, sig.estimate
	// 3. Latency above tolerance: the agency is queueing our calls. Cut to
	// the Little's-law estimate, by at most half.
	if sig.latOK && ratio > cutAbove {
		s.Streak = 0
		if lawHas(sig.law, LawBeforeFailureCutShown) && lastRule == ruleCutFailure && !sig.shown {
			// The failure cut has not shown yet: the calls read now were
			// mostly sent under the old limit, and their latency is its
			// queue. Cut again on it, the limit went below the failure
			// cut's floor of half the limit, to the goodput read in
			// overload: at calls of a second (C30 × 1 s halved to 15)
			// 31.7 → 17.7 → 9, and the limit sat at 9 of 15 for 5 s
			// (0.73 × the oracle in that phase; flowsim's
			// TestNoLatencyCutBeforeTheFailureCutShows). A latency cut
			// waits for its own check the same way (rule 2).
			s.Rule = ruleWaitCut
			return fmt.Sprintf("hold: latency %.2f× baseline, waiting for the last failure cut to show", ratio), true
		}
		if s.Probe != nil {
			s.Rule = ruleWaitCut
			return fmt.Sprintf("hold: latency %.2f× baseline, waiting for the last cut to show", ratio), true
		}
		// On a few calls the estimate and the latency are both noise
		// (±40% and ±25% at 6 calls): the cut goes back to Good rather
		// than down to the estimate, and a lost capacity is cut further
		// on the next periods' evidence.
		target, via := s.backTo(max(estimate*c.Headroom, float64(c.MinLimit)), limit, o.OK < goodputSamples)
		next := max(target, limit*latencyCutKeeps(*s, limit, sig.law))
		if next >= limit-0.5 {
			if roundLimit(limit) <= 1 && s.Relearned == nil && sig.slowBefore && lawHas(sig.law, LawBeforeCheckEvidence) {
				// Slow on evidence gathered over several periods, but
				// not in the last one: the slow calls may be those of
				// an incident the agency has come back from since, and
				// relearnt as its baseline they would hold the limit at
				// one call while a queue of ours read as room. The next
				// periods tell.
				s.Rule = ruleNotOurs
				return fmt.Sprintf("hold: latency %.2f× baseline on evidence gathered, not in the last period", ratio), true
			}
			if roundLimit(limit) <= 1 && s.Relearned == nil {
				// One call at a time does not queue behind another of
				// ours: the latency is the agency's own (a slower
				// agency whose latency cut's check read noise). Without
				// this the baseline stays the faster agency's and the
				// limit never grows again. Above one call, a cut of
				// less than half a call is the one refused here: a call
				// or so beyond a small capacity does queue.
				//
				// A slower agency holds as many calls as before: the
				// limit goes back to the highest seen healthy, unless
				// the agency refused calls since; if the latency rises
				// with it, the check of Relearned reverts the baseline.
				old, restore := s.Baseline, limit
				if !s.Refused {
					restore = max(limit, s.Ceiling)
				}
				s.slower(lat, restore, sig.law)
				return fmt.Sprintf("agency slower: latency stayed %.2f× baseline at a limit that cannot be cut; baseline %s→%s, limit %.1f",
					ratio, old.Round(time.Microsecond), lat.Round(time.Microsecond), s.Limit), true
			}
			s.Rule = ruleNotOurs
			return fmt.Sprintf("hold: latency %.2f× baseline but goodput×baseline %.1f is not below the limit", ratio, estimate), true
		}
		s.endSlowStart(lastRule, true)
		s.Probe = &Probe{From: limit, To: next, Latency: lat, Ratio: ratio}
		if s.HighWater > 0 {
			s.HighWater = min(s.HighWater, limit)
			if healthy := max(s.Good, s.Ceiling); limit > healthy+0.5 {
				// A limit never seen healthy, held "at capacity" only
				// while the queue it caused was forming: the cut
				// proves the agency cannot take it, and a regrow
				// toward it would be a probe.
				s.HighWater = min(s.HighWater, max(healthy, next))
			}
		}
		s.Limit, s.Capacity, s.Cooldown, s.Rule = next, next, s.settle(limit, next, via, sig.law, c), ruleCutLatency
		return fmt.Sprintf("latency %.2f× baseline %s > %.2f: to %s %.1f (x%.2f)",
			ratio, s.Baseline.Round(time.Microsecond), cutAbove, via, target, next/limit), true
	}

	return "", false
}

// LawBeforeRefusedLatencyCut pins the control law as it was before a
// latency cut at an agency that refused calls since it was last healthy
// (AgencyState.Refused) kept three quarters of the limit: it kept half, as
// everywhere.
//
// Such an agency is in an incident: it lost capacity, and the failure cuts
// on its refusals have brought the limit to about what it served. A latency
// above the tolerance then is as likely its slowdown (an incident's
// capacity lost together with calls slowed) as a queue of ours, and a cut
// by half on a slowdown went below the capacity left; rule 2's check, at
// the few calls a period an incident leaves, took seconds to find the
// agency slower and restore the limit. A cut by a quarter is still deep
// enough for the check to tell the two apart (queueing predicts a fall of a
// quarter, beyond the evidence margin of 15%), and a queue that remains is
// cut again after it. Not where a quarter is less than a call: at a limit
// of 2 it rounds to the limit, which then holds with the latency at twice
// the baseline, where half goes to one call and rule 3 finds the agency
// slower there (at any limit, C5 × 300 ms slowed ×2 held 2 calls and, after
// the recovery, climbed back a call at a time: recoveries past 5 s in 38 of
// 72 scorecard runs, against 14). In flowsim's scorecard (seeds 1–36, both
// offsets, 5 s warm-up) the incident's phase of C16 × 200 ms (capacity to
// 6, slowed ×2 within the timeout) went from 0.81 to 0.93 × the oracle and
// bench large's from 0.82 to 0.88 (TestLatencyCutAtARefusingAgency); the
// misses from 2,497 to 2,474 (seeds 37–72: 2,578 to 2,550), and on twelve
// shapes it was never tuned on from 2,597 to 2,583 and 1,836 to 1,819.
const LawBeforeRefusedLatencyCut = 20

// latencyCutKeeps is the share of limit a latency cut keeps at least:
// half, and three quarters at an agency that refused calls since it was
// last healthy (Refused), where a quarter of the limit is a call or more
// (see LawBeforeRefusedLatencyCut).
func latencyCutKeeps(s AgencyState, limit float64, law int) float64 {
	if s.Refused && limit*(1-refusedCut) >= 1 && lawHas(law, LawBeforeRefusedLatencyCut) {
		return refusedCut
	}
	return maxLatencyCut
}

// hold adds the period o to the evidence held at this limit (Held), or
// drops that evidence when the period does not belong to it: the first
// one after a move, which mostly holds calls sent under the old limit, or
// one with failures, without a latency to judge by, or in which the limit
// was not in use (Little's law: successful calls × their latency ÷ the
// period below busyFraction of it). Demand alone is not enough: a surge's
// first period is demand, but the limit filled only part of the way
// through it, and its goodput reads low by that share (a trim on it went
// from 20 to 18 at a capacity of 20, and the back-off held it there).
func (s *AgencyState) hold(o Observation, sig signals) {
	inUse := o.concurrency() >= busyFraction*float64(roundLimit(sig.limit))
	if s.Moved || !sig.demand || !inUse || sig.failures > 0 || !sig.latOK {
		s.Held = nil
		return
	}
	h := o
	if s.Held != nil {
		h = s.Held.merge(o)
	}
	s.Held = &h
}

// trim is rule 3's second form: a limit in use whose latency holds
// between the growth and the cut thresholds keeps a queue at the agency
// (at 1.12× the baseline the agency serves limit ÷ 1.12 calls at once, the
// rest wait). Noise raises such a limit by steps (a period read low grows
// it) and nothing lowers it: it sat 1–3 calls above a capacity of 12–20.
// Once the periods held at the limit (Held), read as one, show the queue
// beyond their noise, trim to their goodput × baseline × Headroom,
// rounded up (the capacity plus the queue the Headroom keeps), if that is
// a call or more; checked as a latency cut (rule 2: a slower agency gets
// its limit back) and counted as a refuted probe (the back-off). Only at
// the Ceiling, which the trim lowers (the noise that raised the limit
// raised the Ceiling with it), and once between two increases, so that a
// mild slowdown, which no trim cures, costs one trim, not a ratchet.
func (s *AgencyState) trim(sig signals, o Observation, c AgencyConfig, lastRule string) (string, bool) {
	limit, h := sig.limit, s.Held
	if h == nil || h.Period <= o.Period || sig.ratio <= sig.growBelow || s.Trimmed ||
		s.Cooldown > 0 || s.Probe != nil || s.Relearned != nil || s.Recovering || limit < s.Ceiling-0.5 {
		return "", false
	}
	// The periods held at this limit, this one with them, read as one:
	// their noise is a single period's over the root of their number, so
	// that a queue of a call or two stands out of it and a period that
	// reads high by chance does not.
	lat, ratio, above := s.heldAbove(c)
	if !above {
		return "", false
	}
	// Little's law: the calls in use (goodput × latency) ÷ the latency
	// ratio are what the agency serves at once, the rest wait. Rounded
	// up: the capacity plus at least the Headroom's queue, so that the
	// agency is never left waiting for our next call.
	estimate := float64(h.OK) / h.Period.Seconds() * s.Baseline.Seconds()
	next := max(math.Ceil(estimate*c.Headroom), math.Ceil(limit*maxTrim), float64(c.MinLimit))
	if roundLimit(next) >= roundLimit(limit) {
		return "", false
	}
	s.endSlowStart(lastRule, true)
	s.Probe = &Probe{From: limit, To: next, Latency: lat, Ratio: ratio}
	s.Ceiling = next
	if s.HighWater > 0 {
		s.HighWater = min(s.HighWater, next)
	}
	s.Good = next
	s.Limit, s.Capacity, s.Cooldown = next, next, s.settle(limit, next, viaEstimate, sig.law, c)
	s.Streak, s.Trimmed, s.Rule = 0, true, ruleTrim
	return fmt.Sprintf("latency %.2f× baseline over %s in use: trim to goodput×baseline %.1f (x%.2f)",
		ratio, h.Period, estimate*c.Headroom, next/limit), true
}

// heldAbove reads the periods held at the limit (Held, not nil) as one:
// their latency, its ratio to the baseline, and whether that ratio is above
// the growth threshold beyond their noise (a single period's over the root
// of their number), the evidence of a trim and of a dip.
func (s *AgencyState) heldAbove(c AgencyConfig) (lat time.Duration, ratio float64, above bool) {
	h := s.Held
	lat = h.latency()
	ratio = float64(lat) / float64(s.Baseline)
	noise := latencyNoise(*h)
	return lat, ratio, ratio > 1+max((c.LatencyTolerance-1)*incFraction, noise)
}

// dip starts a Dip once an Unverified baseline has held the limit for two
// periods in use (Held) whose latency, read as one, is above the growth
// threshold beyond their noise, as the trim's is, and no trim acted:
// either a queue the trim leaves (within the Headroom), or a baseline
// that reads low. The limit goes to dipFraction of itself, below the
// agency's capacity, and checkDip reads the agency's own latency there.
// Once per baseline taken from one period: a baseline averaged over the
// warm-up or read in a dip is not dipped for, nor one the latency at the
// limit confirms.
func (s *AgencyState) dip(o Observation, c AgencyConfig, period time.Duration) (string, bool) {
	limit, h := s.Limit, s.Held
	if !s.Unverified || s.Dip != nil || h == nil || h.Period <= o.Period ||
		s.Cooldown > 0 || s.Probe != nil || s.Relearned != nil || s.Recovering {
		return "", false
	}
	if _, _, above := s.heldAbove(c); !above {
		return "", false
	}
	// A dip of a call is a large one at a few calls, and a slow agency's
	// takes many periods to read relearnSamples calls; there, one period's
	// noise is wider than a baseline a tenth off, and the growth threshold
	// widens with it: a low baseline does not stop growth.
	at := float64(roundLimit(limit))
	to := max(math.Floor(at*dipFraction), float64(c.MinLimit))
	perPeriod := float64(h.OK) * period.Seconds() / h.Period.Seconds()
	if to >= at || to < maxTrim*at || perPeriod < relearnSamples/2 {
		return "", false
	}
	s.Dip = &Dip{From: limit, To: to}
	s.Limit, s.Streak, s.Rule = to, 0, ruleDip
	return fmt.Sprintf("dip %.1f→%.1f: the baseline %s was taken from one period; reading the agency's own latency below its capacity",
		limit, to, s.Baseline.Round(time.Microsecond)), true
}

// warmDip checks a first baseline learnt with the limit filled
// (WarmCheck) once a cut has followed the warm-up (WarmCut): at the first
// period after it that would otherwise grow or hold (a backlog, the
// latency read, nothing failed, no cut to settle or check), the limit dips
// to warmDipFraction of itself and checkWarmDip reads the agency's latency
// there. Below the capacity it is the agency's own; the limit goes back,
// and is judged against it: a limit that was past the capacity reads its
// queue at once and the latency cut takes it to goodput × baseline. Once:
// a dip that finds the baseline right costs a few periods at half the
// limit. Not where one call is already half the limit, nor where the dip
// would read fewer than MinSamples calls a period (a slow agency: the dip
// would cost more than the baseline it could correct).
func (s *AgencyState) warmDip(sig signals, o Observation, c AgencyConfig, period time.Duration) (string, bool) {
	if !s.WarmCheck || !s.WarmCut || s.BaselinePeriods < warmupPeriods || !sig.latOK || !sig.demand || sig.failures > 0 ||
		s.Dip != nil || s.Cooldown > 0 || s.Probe != nil || s.Relearned != nil || s.Recovering || s.Moved {
		return "", false
	}
	s.WarmCheck, s.WarmCut = false, false
	if float64(s.Baseline) <= (1-warmDipFall)*float64(s.WarmBaseline) {
		// The baseline has already followed the latency read since the
		// cut down a fifth or more: the warm-up's queue is out of it.
		return "", false
	}
	at := float64(roundLimit(sig.limit))
	to := max(math.Floor(at*warmDipFraction), float64(c.MinLimit))
	perPeriod := float64(o.OK) * period.Seconds() / o.Period.Seconds() * to / at
	if to >= at || perPeriod < float64(c.MinSamples) {
		return "", false
	}
	s.Dip = &Dip{From: sig.limit, To: to, Warm: true}
	s.Limit, s.Streak, s.Rule = to, 0, ruleDip
	return fmt.Sprintf("dip %.1f→%.1f: the baseline %s was learnt with the limit filled; reading the agency's own latency below it",
		sig.limit, to, s.Baseline.Round(time.Microsecond)), true
}

// checkWarmDip decides a warm-up's check (Dip.Warm) on the periods read at
// the dip so far, d.Read, as soon as they tell: a latency below the
// baseline beyond its noise is the agency's own, and the baseline held a
// queue (taken once relearnSamples calls are read); one that cannot be
// warmDipFall below it leaves the baseline as it is. Either way the limit
// goes back, to be judged against the baseline. Undecided after maxGather
// periods, the baseline stays.
func (s *AgencyState) checkWarmDip(d Dip, c AgencyConfig) (string, bool) {
	if d.Read == nil || d.Read.OK < c.MinSamples {
		if d.Age <= c.SettlePeriods+maxGather {
			return fmt.Sprintf("hold: dip to %.1f, waiting for it to show", d.To), true
		}
		s.Limit, s.Dip, s.Rule = max(s.Limit, d.From), nil, ruleDipDone
		return fmt.Sprintf("dip to %.1f read too few calls: limit back to %.1f", d.To, s.Limit), true
	}
	old, lat := s.Baseline, d.Read.latency()
	ratio, noise := float64(lat)/float64(old), latencyNoise(*d.Read)
	switch {
	case ratio+noise < 1 && d.Read.OK < relearnSamples && d.Age <= c.SettlePeriods+maxGather:
		// Lower: the baseline is taken from relearnSamples calls, as a
		// Dip's; fewer read within ±15% of the agency's mean, and a
		// baseline 10% low holds the limit below the capacity for good.
		return fmt.Sprintf("hold: dip to %.1f, %d calls read at %.2f× the baseline (±%.2f), reading on to %d",
			d.To, d.Read.OK, ratio, noise, relearnSamples), true
	case ratio+noise < 1:
		s.Baseline, s.Unverified, s.Relearned, s.Averaged = lat, false, nil, false
		s.Limit, s.Dip, s.Rule = max(s.Limit, d.From), nil, ruleDipDone
		return fmt.Sprintf("dip to %.1f read %s over %d calls (%.2f× the baseline): the warm-up's baseline %s held a queue; baseline %s, limit back to %.1f",
			d.To, lat.Round(time.Microsecond), d.Read.OK, ratio, old.Round(time.Microsecond), lat.Round(time.Microsecond), s.Limit), true
	case ratio-noise > 1-warmDipFall || d.Age > c.SettlePeriods+maxGather:
		s.Limit, s.Dip, s.Rule = max(s.Limit, d.From), nil, ruleDipDone
		return fmt.Sprintf("dip to %.1f read %s over %d calls (%.2f× the baseline): the warm-up's baseline %s stands, limit back to %.1f",
			d.To, lat.Round(time.Microsecond), d.Read.OK, ratio, old.Round(time.Microsecond), s.Limit), true
	}
	return fmt.Sprintf("hold: dip to %.1f, %d calls read at %.2f× the baseline (±%.2f)", d.To, d.Read.OK, ratio, noise), true
}

// checkDip ends a Dip once the periods from SettlePeriods after it began
// hold relearnSamples calls (or maxGather periods have passed): their
// latency, read at a limit that holds no queue of ours, is the baseline,
// and the limit goes back to where it was, to be judged against it.
func (s *AgencyState) checkDip(sig signals, o Observation, c AgencyConfig) (string, bool) {
	if s.Dip == nil {
		return "", false
	}
	d := *s.Dip
	s.Dip, s.Rule = &d, ruleDip
	if d.Age >= c.SettlePeriods && o.InFlight <= roundLimit(d.To)+1 && o.OK > 0 && sig.failures == 0 {
		r := o
		if d.Read != nil {
			r = d.Read.merge(o)
		}
		d.Read = &r
	}
	if d.Warm {
		return s.checkWarmDip(d, c)
	}
	if d.Read == nil || d.Read.OK < relearnSamples {
		if d.Age <= c.SettlePeriods+maxGather {
			return fmt.Sprintf("hold: dip to %.1f, waiting for it to show", d.To), true
		}
		if d.Read == nil || d.Read.OK < c.MinSamples {
			s.Limit, s.Dip, s.Rule = max(s.Limit, d.From), nil, ruleDipDone
			return fmt.Sprintf("dip to %.1f read too few calls: limit back to %.1f", d.To, s.Limit), true
		}
	}
	old, lat := s.Baseline, d.Read.latency()
	s.Baseline, s.Averaged = lat, false
	if noise := latencyNoise(*d.Read); float64(lat) > float64(old)*(1+noise) {
		// The baseline was low: the latency that refuted the probes
		// and trims read against it was the agency's own.
		s.Refuted, s.Backoff = 0, 0
	}
	s.Limit, s.Dip, s.Unverified, s.Relearned, s.Rule = max(s.Limit, d.From), nil, false, nil, ruleDipDone
	return fmt.Sprintf("dip to %.1f read %s over %d calls: baseline %s→%s, limit back to %.1f",
		d.To, lat.Round(time.Microsecond), d.Read.OK, old.Round(time.Microsecond), lat.Round(time.Microsecond), s.Limit), true
}

// grow is rule 4: with demand, no decrease in the last SettlePeriods and
// the latency near the baseline, the limit grows in one of the forms of
// the package doc; otherwise it holds, and the reason says why.
func (s *AgencyState) grow(sig signals, o Observation, c AgencyConfig, lastRule string, saturated int) string {
	limit, ratio, room, demand := sig.limit, sig.ratio, sig.room, sig.demand
	// 4. Grow while healthy and there is demand.
	if sig.latOK && demand && s.Cooldown == 0 && !s.Moved && ratio <= sig.growBelow && sig.failures == 0 {
		if limit > max(s.Good, s.Ceiling)+0.5 {
			// An increase beyond the highest limit seen healthy held:
			// the capacity grew. Climbing back to it after a cut is no
			// news, and leaves the back-off as it is.
			s.Refuted, s.Backoff = 0, 0
		}
		s.Good, s.Refused = limit, false
		s.FloorHeld, s.FloorTested, s.FloorOurs = 0, false, false // healthy: the trouble is over
		s.Ceiling = max(s.Ceiling, limit)
		if limit >= (1+warmDipFall)*float64(s.WarmLimit) {
			// Well beyond the warm-up's limit the latency is the
			// baseline: that limit was below the capacity, its baseline
			// the agency's own. (A call or two beyond it reads the
			// baseline within the noise even past the capacity.)
			s.WarmCheck, s.WarmCut = false, false
		}
		if s.Ceiling >= s.Peak {
			s.Peak, s.PeakBaseline = 0, 0
		}
	}
	if s.LostAt > 0 && lawHas(sig.law, LawBeforeLostAtCleared) && demand && sig.sampled && s.inEffect() >= s.Ceiling-0.5 {
		// A period run at the ceiling and not cut: the agency took it (at
		// capacity, or refusing too few calls to cut), so the capacity lost
		// when the probe was refuted is back, and the probe's limit says
		// nothing of a later loss.
		s.LostAt = 0
	}
	// The limit of a probe refuted lately, taken again (the period ran
	// under it) with the latency within the growth threshold and nothing
	// refused: the capacity lost is back, up to that limit at least. Not
	// below a limit of growBackMin: there a probe is a quarter of the limit
	// or more, and an agency with no queue refuses it only now and then, so
	// a period without a refusal passes for the capacity back by chance.
	// A refusal the background accounts for is not one here: at a limit
	// one call beyond an agency's capacity, a period may hold a single
	// refusal, and a background learnt from such periods takes it out.
	taken := s.LostAt > 0 && lawHas(sig.law, LawBeforeLostAt) && room > 0 && o.Overload == 0 &&
		(sig.leftOut == 0 || !lawHas(sig.law, LawBeforeLostAtCleared)) && s.inEffect() >= max(s.LostAt-0.5, growBackMin)
	switch {
	case !sig.latOK && sig.sampled:
		s.Streak, s.Rule = 0, ruleLearn
		return fmt.Sprintf("hold: learning the baseline latency (%d of %d periods)", s.BaselinePeriods, warmupPeriods)
	case !demand:
		s.Streak, s.Rule = 0, ruleIdle
		return "hold: no backlog"
	case s.Cooldown > 0:
		s.Streak, s.Rule = 0, ruleSettle
		return fmt.Sprintf("hold: settling after a decrease (%d more)", s.Cooldown)
	case o.Overload > 0:
		// Refused, too few to cut: the agency is at its capacity.
		if lawHas(sig.law, LawBeforeRefusedHeld) && sig.latOK && ratio <= sig.growBelow && !s.Moved && o.Overload == sig.failures {
			// Held in use, the latency normal and nothing failed but a
			// few refusals: the agency took all but about a call of the
			// limit. A call below it is a limit seen in use and healthy,
			// Good, and the Ceiling at least, as a period with no
			// refusal would have shown it. At an agency with no queue,
			// held a call beyond its capacity and refused about twice a
			// period at 250 calls/s, no period was ever without one:
			// Good and the Ceiling stayed where the search had passed
			// them (30 at a capacity of 40), every cut back from beyond
			// the capacity counted as a probe refuted beyond them, and
			// after a loss the limit regrew to that ceiling and held
			// there on the back-off (LawBeforeRefusedHeld).
			held := float64(roundLimit(limit) - 1)
			if held > max(s.Good, s.Ceiling)+0.5 {
				s.Refuted, s.Backoff = 0, 0 // beyond the highest seen: the capacity grew
			}
			s.Good, s.Ceiling = max(s.Good, held), max(s.Ceiling, held)
		}
		s.Streak, s.Rule = 0, ruleRefused
		return fmt.Sprintf("hold: %d refused", o.Overload)
	case !sig.latOK:
		s.Limit = limit + 1
		s.Streak, s.Rule = 0, ruleFewSamples
		return fmt.Sprintf("backlog, %d samples (< %d): +1", o.OK, c.MinSamples)
	case room == 0:
		s.Streak, s.Capacity, s.HighWater, s.Rule = 0, limit, max(s.HighWater, limit), ruleAtCapacity
		if limit >= s.Ceiling-0.5 {
			s.Recovering = false // back at capacity: recovered
		}
		s.Saturated = saturated + 1
		return fmt.Sprintf("hold: at capacity (latency %.2f× baseline)", ratio)
	case s.Capacity > 0 && limit < 0.9*s.Capacity && s.Backoff == 0:
		// Not while probes beyond Good are backed off: the capacity
		// read at a refuted probe's limit would be that probe again, on
		// no cadence at all.
		s.Limit = min(s.Capacity, max(2*limit, limit+(s.Capacity-limit)/2))
		s.Streak, s.Rule = 0, ruleRecover
		return fmt.Sprintf("healthy, backlog, below last capacity %.1f: x%.2f", s.Capacity, s.Limit/limit)
	case taken && s.regrowTo() > (1+regrowMargin)*limit:
		// Three quarters of the way back toward the earlier capacity, as
		// a regrow goes, rather than by grow-back's steps: held at a lost
		// capacity the latency reads the same whether it has come back or
		// not, and only a probe shows it. The probes' back-off beyond the
		// ceiling stands: this is the capacity the agency had, not more.
		lost, to := s.LostAt, s.regrowTo()
		s.Limit = limit + 0.75*(to-limit)
		s.Capacity = max(s.Capacity, s.Limit)
		s.Streak, s.LostAt, s.Rule = 0, 0, ruleRegrow
		return fmt.Sprintf("healthy, backlog, at %.0f refuted lately: 75%% of the way to earlier capacity %.1f", lost, to)
	case room >= 0.5 && s.regrowTo() > (1+regrowMargin)*limit &&
		(saturated >= c.SettlePeriods && (lastRule == ruleAtCapacity || lastRule == ruleGrow) || lastRule == ruleRegrow):
		// The queue this limit caused for a while has vanished without a
		// change of ours, or with an increase, which would have made it
		// longer: the agency's capacity came back. Three quarters
		// of the way back to it: halfway took two steps after the period
		// that read the queue gone to regain 90% of a capacity that had
		// doubled (11 → 16 → 18.5 toward 21). Below growBackMin, halfway:
		// there three quarters of the way rounds to the earlier capacity
		// itself (2 → 3.5 → 4), and a reading of a few calls passes for
		// the queue gone by chance.
		to, share := s.regrowTo(), 0.75
		if limit < growBackMin {
			share = 0.5
		}
		s.Limit = limit + share*(to-limit)
		s.Capacity = max(s.Capacity, s.Limit) // so later steps know they are near it
		s.Streak, s.Refuted, s.Backoff, s.Rule = 0, 0, 0, ruleRegrow
		return fmt.Sprintf("healthy, backlog, queue gone at capacity: %.0f%% of the way to earlier capacity %.1f", 100*share, to)
	case s.Capacity == 0 && room >= 0.5 && s.Moved:
		// The last step shows only in part in this period (at a high call
		// rate its evidence is enough at once): ×1.5 on it would compound
		// into an overshoot before the agency could answer the first.
		s.Streak, s.Rule = 0, ruleWaitGrow
		return "hold: capacity not yet seen, waiting for the last increase to show"
	case s.Capacity == 0 && room >= 0.5:
		s.Limit = limit * searchFactor
		s.Streak, s.Rule = 0, ruleSearch
		return fmt.Sprintf("healthy, backlog, capacity not yet seen: x%.1f", searchFactor)
	}
	if taken {
		s.LostAt = 0 // taken again near the earlier capacity: nothing to regrow
	}
	// A small limit is always near: one call more is already a step of
	// more than 10%.
	near := limit <= (1+nearCapacity)*s.Capacity || limit < 1/nearCapacity
	// Far below the ceiling, with the latency clearly at the baseline,
	// the agency has room the limit does not use: a capacity that came
	// back while the limit was held at the lost one (no signal shows it:
	// at its capacity an agency does not queue). The steps double as
	// beyond the last capacity, up to half the way left to the ceiling,
	// without waiting for each to show, until the latency says the
	// capacity is near. Below growBackMin, one call is a quarter of the
	// limit or more: each step still waits for the last. Below the limit
	// of a probe refuted lately (LostAt), a reading anywhere within the
	// growth threshold keeps the steps doubling: that limit is where the
	// capacity's return shows (a reading a few percent above a baseline
	// learnt low held the climb to it at fractions of a call).
	back := s.Ceiling > limit+1 && (room >= 0.5 || room > 0 && s.LostAt > limit && lawHas(sig.law, LawBeforeLostAt)) && limit >= growBackMin &&
		(limit <= growBackFrom*s.Ceiling || lastRule == ruleGrowBack)
	if back {
		near = false
	} else if lastRule == ruleGrowBack {
		// Grow-back has brought the limit to about the ceiling, a limit
		// the agency took before: that is its capacity as far as we know,
		// and growth beyond it starts gently again, as beyond any other
		// capacity seen. The doubled steps toward the ceiling would
		// otherwise carry on past it (from 22 to 26 at a capacity of 20).
		s.Capacity, s.Streak, near = max(s.Capacity, limit), 0, true
	}
	if near && lastRule == ruleGrow && !sig.shown || lastRule == ruleSlowStart {
		// Near capacity one step is enough to make the agency queue; let it
		// show before taking another. So is slow start's last step, a
		// probe from the ceiling: on a small agency a step more on the
		// next period took the limit from 4 to 6 (capacity 4).
		s.Streak, s.Rule = 0, ruleWaitGrow
		return "hold: waiting for the last increase to show"
	}
	// Beyond the last capacity seen, the step doubles with each consecutive
	// increase, so a capacity that grew is found in a few periods. Near it,
	// and as the latency nears the growth threshold, the step stays small:
	// that is where the agency starts to queue, and the limit should
	// approach it gently rather than overshoot while the last increase is
	// still on its way to the statistics.
	step := max(1, minStep*limit)
	if !near {
		step *= float64(int(1) << min(s.Streak, maxStreak))
	}
	if back {
		// Up to the ceiling, not past it: beyond it growth starts gently.
		step = min(step, max(1, maxStep*limit, (s.Ceiling-limit)/2), s.Ceiling-limit)
	} else {
		step = min(step, max(1, maxStep*limit)) * room
	}
	landed := false
	if !back && !near && limit < s.Ceiling-0.5 && limit+step > s.Ceiling {
		// Growth from below reaches the ceiling, the highest limit seen
		// healthy: the last capacity as far as is known. The step lands
		// on it, and growth beyond it starts gently, as after grow-back;
		// the doubled step went from 19 to 22 and on to 23 at a capacity
		// of 20 that had come back.
		step, landed = s.Ceiling-limit, true
		s.Capacity = max(s.Capacity, s.Ceiling)
	}
	if s.Backoff > 0 && roundLimit(limit+step) > roundLimit(s.Good) && s.Good >= s.Ceiling-0.5 {
		// The last probes beyond Good failed: up to Good, not beyond,
		// until the back-off has passed. Below Ceiling, a capacity the
		// agency had before, probing is worth its cost: that is how a
		// capacity that came back is found.
		if limit >= s.Good-0.5 {
			s.Streak, s.Rule = 0, ruleBackoff
			return fmt.Sprintf("hold: probes beyond %.1f refuted %d× in a row, next in %d periods", s.Good, s.Refuted, s.Backoff)
		}
		step = s.Good - limit
	}
	s.Limit = limit + step
	// The periods held at capacity before an increase still count: the
	// queue read at the lower limit and gone at a higher one is a
	// capacity that came back all the more (the regrow's evidence). Reset
	// at each step, a capacity that came back during a noisy small step
	// waited for two more periods held at capacity, read on a queue that
	// was no longer there. A step within the rounding leaves the limit the
	// agency saw: it is still held at capacity.
	s.Saturated = saturated
	if room > 0.5 && !landed {
		s.Streak++
	} else {
		s.Streak = 0
	}
	s.Rule = ruleGrow
	if back {
		s.Rule = ruleGrowBack
	}
	return fmt.Sprintf("healthy, backlog: +%.1f", step)
}

// regrowTo is the capacity a regrow climbs back toward: the highest limit
// seen healthy (Ceiling) if above HighWater. The cuts of a capacity loss
// lower HighWater to the lost capacity itself, so a regrow toward it alone
// could never restore a capacity that came back.
func (s *AgencyState) regrowTo() float64 {
	return max(s.HighWater, s.Ceiling)
}

// slowStartLimit decides whether the limit grows multiplicatively, on this
// period alone: the agency is recovering (see AgencyState.Recovering), is
// just seen to have recovered from a slowdown (faster: its latency well
// below the baseline, beyond its noise, on MinSamples calls) or from an
// incident that cut the limit deep (heldRecovery), nothing
// failed (but for fewer timeouts than successes: those calls were sent a
// client's timeout ago, before the recovery), there is a backlog and the latency is within tolerance (widened
// by the noise of the few calls read). A couple of successful calls are
// evidence enough (an overshoot is cut back by the next periods' latency
// or failures): gathering a full period's evidence at each step of a slow
// agency would take many seconds.
//
// Below the ceiling (the highest limit seen healthy) the first step goes
// to half of it at once and the next ones double toward it. At the
// ceiling it offers one more step of 12.5% (at least a call), a probe from
// the ceiling, which the law before LawBeforeCeilingStop took and slowStart
// now declines: slow start ends there, and the normal rules go on from
// there.
func slowStartLimit(s AgencyState, o Observation, c AgencyConfig, law int) (next float64, why string, faster, ok bool) {
	// A call that timed out was sent a client's timeout ago: fewer of
	// them than successes read now are the outage's tail, not news.
	failures := o.Overload + o.AgencyErrors
	if o.Timeouts >= o.OK {
		failures += o.Timeouts
	}
	lat := o.latency()
	demand := demanded(o, s.inEffect(), c)
	if failures > 0 || !demand || s.BaselinePeriods < warmupPeriods || s.Baseline <= 0 || lat <= 0 || o.OK == 0 {
		return 0, "", false, false
	}
	// The tolerance widens by the noise of the few calls a slow start
	// reads, as every threshold does: one call's latency is within ±60% of
	// the median at jitter 0.25.
	noise := latencyNoise(o)
	ratio := float64(lat) / float64(s.Baseline)
	faster = o.OK >= c.MinSamples && ratio+noise < 2-c.LatencyTolerance
	// At a limit of a few slow calls one success may be all a period sees.
	enough := o.OK >= slowStartSamples || s.Limit < 4
	held := heldRecovery(s, o, ratio, c, law)
	if !s.Recovering && !faster && !held || !enough || ratio > c.LatencyTolerance+noise {
		return 0, "", false, false
	}
	switch {
	case faster:
		why = "latency well below the baseline, "
	case held && !s.Recovering:
		why = fmt.Sprintf("latency back at the baseline at %d, read slow at %d, ", roundLimit(s.Limit), s.Slowed)
	}
	switch {
	case s.Ceiling > (1+regrowMargin)*s.Limit:
		return min(s.Ceiling, max(2*s.Limit, s.Limit+1, s.Ceiling/2)), why + "toward the ceiling", faster, true
	case s.Recovering:
		return s.Limit + max(1, s.Limit*beyondCeiling), why + "one step beyond the ceiling", faster, true
	}
	return 0, "", faster, false
}

// heldRecovery reports whether s, at a third of its ceiling or less
// (heldRecoveryDepth), reads its latency back within the growth threshold
// (ratio, not widened by the reading's noise) on slowStartSamples calls or
// more of the period o (one call of an agency slowed ×2 reads within it by
// chance once in forty or so, in callstats' buckets) at the limit at which
// it was read slow (Slowed) or a higher one, with no latency cut pending:
// the agency has recovered from an incident that cut the limit that deep.
// A capacity merely halved leaves the limit at about half the ceiling; a
// cut that went below a capacity lost reads the baseline at a limit below
// the one read slow, as queueing predicts, and one back at that limit
// reads slow again while the capacity is still lost; a capacity lost
// deeper and come back is a recovery too. Slow start then doubles toward
// the ceiling, and a cut after one of its steps lowers the ceiling to
// where it began (endSlowStart), as after an outage.
func heldRecovery(s AgencyState, o Observation, ratio float64, c AgencyConfig, law int) bool {
	return lawHas(law, LawBeforeHeldRecovery) && s.Slowed > 0 && roundLimit(s.Limit) >= s.Slowed && o.OK >= slowStartSamples && ratio > 0 &&
		s.Ceiling >= heldRecoveryDepth*s.Limit && s.Probe == nil && !s.Moved &&
		ratio <= 1+(c.LatencyTolerance-1)*incFraction
}

// endSlowStart ends a slow start at a cut right after one of its steps
// (the periods between only gathered evidence), and lowers the ceiling: the
// agency could not take that limit. With capacity (the cut is for latency,
// or most failures are overload answers) the agency's capacity is below
// the ceiling now: the ceiling comes down to the limit slow start stepped
// from (or half the refused one), not to a Good learnt before the trouble,
// or every later outage-like period would slow-start into the lost
// capacity again. Otherwise (timeouts: the agency still in trouble) it
// keeps Good, the agency's capacity once the trouble is over. A cut at or
// beyond the ceiling ends it too. A cut while the limit is still low (the
// agency still failing, the slow start not yet begun) leaves it pending.
func (s *AgencyState) endSlowStart(lastRule string, capacity bool) {
	if lastRule == ruleSlowStart {
		floor := s.Good
		if capacity {
			floor = s.SlowFrom
		}
		if lowered := max(floor, s.Limit/2); lowered < s.Ceiling {
			s.Peak = max(s.Peak, s.Ceiling)
			s.Ceiling = lowered
		}
		if !capacity {
			// Timeouts: the agency is still in trouble, and its
			// recovery, still to come, is slow-started toward the
			// ceiling as lowered.
			return
		}
		s.Recovering = false
	}
	if s.Limit >= s.Ceiling-0.5 {
		s.Recovering = false
	}
}

const (
	viaGood     = "last good limit"
	viaEstimate = "goodput×baseline"
)

// backTo returns the target of a cut from limit whose Little's-law target
// is estimate, and what it is: Good instead when the estimate is below Good
// but not far below (see AgencyState.Good), or when the estimate rests on
// too few calls to go further than Good (thin).
func (s *AgencyState) backTo(estimate, limit float64, thin bool) (float64, string) {
	if s.Good > 0 && s.Good < limit-0.5 && estimate < s.Good && (thin || estimate >= goodFloor*s.Good) {
		return s.Good, viaGood
	}
	return estimate, viaEstimate
}

// settle returns the periods to settle after a cut from limit to next, and
// backs off the next probe when the cut refutes one: the limit was beyond
// Good and the cut keeps most of Good, so the agency's capacity is still
// about Good and the increase beyond it was one call too many. The back-off
// doubles with each consecutive refuted probe (probeBackoff, 2×, 4×, at
// most maxBackoff periods). Below a limit of 10, where one call is 10% or more,
// the settling after a cut back to Good doubles too (×2, ×4, at most ×8),
// while Good is the Ceiling: below it the probes seek a capacity the agency
// had before, on the normal settling.
func (s *AgencyState) settle(limit, next float64, via string, law int, c AgencyConfig) int {
	// A cut ends the climb from the warm-up (see baselineNoise).
	s.Averaged = false
	if s.Good > 0 && roundLimit(limit) > roundLimit(s.Good) && next >= goodFloor*s.Good {
		// A probe beyond Good refuted: no other beyond it for
		// probeBackoff periods, twice as many after each further one.
		// Only evidence that the capacity changed clears the back-off (a
		// cut whose check shows the latency fell with it, a relearned
		// baseline, an outage, a capacity that came back): a cut of one
		// call at a capacity of a few is noise, not such evidence.
		bound := maxBackoff
		if !lawHas(law, LawBeforeProbeBound) {
			bound = maxBackoffWas
		}
		s.Backoff = min(probeBackoff<<min(s.Refuted, 6), bound)
		s.Refuted++
		if lawHas(law, LawBeforeLostAt) && s.Good < s.Ceiling-0.5 && (s.LostAt == 0 || limit < s.LostAt) {
			s.LostAt, s.LostRefused = float64(roundLimit(limit)), false
		}
	} else if s.Good > 0 && next < goodFloor*s.Good && roundLimit(next) < roundLimit(s.Good)-1 {
		// A cut far below Good, by more than one call (at a capacity
		// of a few, one call is noise): the agency lost capacity, and
		// the probes refuted at the old one say nothing about what it
		// will have once it is back.
		s.Refuted, s.Backoff = 0, 0
	}
	// A cut from Good or below that keeps most of it is noise at a
	// capacity still about Good: the back-off stands.
	// The longer settling applies where the back-off does: at the Ceiling,
	// probes beyond a capacity the agency keeps confirming. Below it, the
	// probe is toward a capacity the agency had before: held at a lost
	// capacity, the latency does not change when that capacity comes back,
	// and only such a probe finds it.
	if via == viaGood && s.Good < 1/nearCapacity && s.Refuted > 0 && s.Good >= s.Ceiling-0.5 {
		return c.SettlePeriods << min(s.Refuted, maxSettleShift)
	}
	return c.SettlePeriods
}

// spread estimates the lognormal sigma of the calls' latency from p90/p50
// (p90/p50 = e^(1.28σ)).
func spread(o Observation) float64 {
	sigma := defaultSigma
	if o.LatencyP50 > 0 && o.LatencyP90 > o.LatencyP50 {
		sigma = math.Log(float64(o.LatencyP90)/float64(o.LatencyP50)) / 1.2816
	}
	return min(max(sigma, 0.05), 1)
}

// latencyNoise is the sampling noise of o's mean latency, as a fraction:
// noiseSigmas standard errors of its successful calls, spread by spread(o).
func latencyNoise(o Observation) float64 {
	return noiseSigmas * spread(o) / math.Sqrt(float64(max(o.OK, 1)))
}

// enough reports whether o holds enough evidence to decide on: MinSamples
// successful calls, and, once a baseline is known, enough of them for the
// latency's noise to be within the tolerance margin (or half of 1/limit,
// if larger), unless the latency is already above the tolerance beyond its
// noise. With fewer, a reading in the growth or hold band cannot tell one
// call too many from none at a small capacity (one call more than a
// capacity of 4 is 25%).
// need is the number of samples wanted.
func enough(o Observation, s AgencyState, c AgencyConfig, law int) (ok bool, need int64) {
	if o.OK < c.MinSamples {
		return false, c.MinSamples
	}
	lat := o.latency()
	if s.BaselinePeriods < warmupPeriods || s.Baseline <= 0 || lat <= 0 {
		return true, c.MinSamples
	}
	sigma := spread(o)
	noise := noiseSigmas * sigma / math.Sqrt(float64(o.OK))
	margin := EvidenceMargin(c, s.Limit)
	if s.Ceiling > s.Limit+1 && s.Probe == nil && float64(lat) <= float64(s.Baseline)*(1+max((c.LatencyTolerance-1)*incFraction, noise/2)) {
		// Far below the ceiling, a capacity the agency had before, a
		// reading at the baseline need only tell the room the ceiling
		// promises from none: a step toward a limit the agency took
		// before risks a call of queue at most, and at a few calls a
		// second a capacity that came back is regained in fewer, shorter
		// gatherings. "At the baseline" is within the growth threshold
		// or half the reading's noise: the baseline settles a few
		// percent low under demand, and against the fixed threshold
		// alone half the readings of a limit below the capacity waited
		// for the full evidence. A reading elevated beyond that still
		// waits for it.
		margin = max(margin, (s.Ceiling-s.Limit)/max(s.Limit, 1))
	}
	need = samplesWithin(sigma, margin)
	if noise <= margin {
		return true, need
	}
	if s.Probe != nil && !s.Refused && lawHas(law, LawBeforeCheckEvidence) {
		// A latency cut's check compares latencies before and after it,
		// and its verdicts turn on half the fall queueing predicts (see
		// checkLatencyCut): evidence whose noise is within that is enough;
		// noisier evidence passes for a slower agency. Not at an agency
		// that refused calls since it was last healthy (Refused): one
		// that lost capacity too, where a slower agency's verdict restores
		// a limit into the capacity lost (bench large's incident drew 6.1%
		// errors, the oracle's 2.1%, against 5.1% on the full evidence).
		within := max(margin, s.Probe.fall()/2)
		return noise <= within, samplesWithin(sigma, within)
	}
	// A latency cut's check compares latencies before and after it: it
	// needs the full evidence, or noise passes for a slower agency.
	return s.Probe == nil && float64(lat)/float64(s.Baseline) > c.LatencyTolerance+noise, need
}

// EvidenceMargin is the latency change, as a fraction of the baseline,
// that a period's noise must stay within for the law to decide at limit:
// one call beyond a capacity near the limit raises the latency by about
// 1/limit, so the noise must be well within that (half of it), and within
// the tolerance margin.
func EvidenceMargin(c AgencyConfig, limit float64) float64 {
	return max(c.LatencyTolerance-1, 0.5/max(limit, 1))
}

// samplesWithin is the number of successful calls whose mean latency is
// within margin (as a fraction) of the truth at noiseSigmas standard
// errors, for calls whose latency spreads by sigma (lognormal).
func samplesWithin(sigma, margin float64) int64 {
	return int64(math.Ceil(math.Pow(noiseSigmas*sigma/margin, 2)))
}

// EvidenceFloor is the number of successful calls the law needs in a
// period (or in the periods it gathers) to decide on the latency at a
// limit, once it knows the agency's baseline: MinSamples, and enough for
// the noise of their mean latency, for calls spread by sigma (the
// lognormal sigma; the law estimates it from each period's p90/p50), to be
// within the margin the decision turns on (see enough). Fewer are enough
// only when the latency is already above the tolerance beyond their
// noise, or far below a ceiling the agency had before. At a call rate r
// the period's evidence takes EvidenceFloor/r seconds to gather: that is
// the floor under how fast the law can confirm any step of the limit.
func EvidenceFloor(c AgencyConfig, limit, sigma float64) int64 {
	return max(c.MinSamples, samplesWithin(sigma, EvidenceMargin(c, limit)))
}

// inEffect is the limit the period just observed was under: the lower of
// the limit and the one the last step moved it from (the workers follow a
// decision within the period after it).
func (s AgencyState) inEffect() float64 {
	if s.Moved && s.MovedFrom > 0 {
		return min(s.Limit, float64(s.MovedFrom))
	}
	return s.Limit
}

// demanded says whether the period saw demand that the limit held back:
// calls in flight at nearly the whole limit, or tasks waiting in the queue
// while the limit was in use. A queue wait alone is not demand: a task
// queue's own dispatch latency (Temporal's matching on a loaded machine
// takes tens to hundreds of milliseconds) is a wait every task has with
// the slots free, and growing on it raised a limit that a quarter of its
// slots or more never used, period after period, far beyond the capacity
// (as TCP grows its congestion window only while the sender uses it, RFC
// 7661). In use: the period's Little's-law concurrency (successful calls
// × their latency ÷ the period) at inUseFraction of the limit; the calls
// in flight at the period's end are one sample, often a quarter off at
// half load.
func demanded(o Observation, limit float64, c AgencyConfig) bool {
	l := float64(roundLimit(limit))
	if o.InFlight > 0 && float64(o.InFlight) >= busyFraction*l {
		return true
	}
	if o.QueueWaitP90 < c.BacklogQueueWait {
		return false
	}
	return o.Period > 0 && o.concurrency() >= inUseFraction*l
}

// latency is the period's latency signal: the exact mean where it is
// known, else the median.
func (o Observation) latency() time.Duration {
	if o.LatencyMean > 0 {
		return o.LatencyMean
	}
	return o.LatencyP50
}

// concurrency is the period's Little's-law concurrency: its successful
// calls × their latency ÷ its length, the calls in use on average.
func (o Observation) concurrency() float64 {
	if o.Period <= 0 {
		return 0
	}
	return float64(o.OK) * o.latency().Seconds() / o.Period.Seconds()
}

// merge returns the statistics of two consecutive windows, o then n, as
// one window. Counts add up; latency figures are weighted by the successful
// calls (quantiles only approximately); the queue wait is the larger one,
// since there was demand if either window saw it; InFlight and Now are the
// later window's.
func (o Observation) merge(n Observation) Observation {
	w := func(a, b time.Duration) time.Duration {
		if o.OK+n.OK == 0 {
			return max(a, b)
		}
		return time.Duration((float64(a)*float64(o.OK) + float64(b)*float64(n.OK)) / float64(o.OK+n.OK))
	}
	m := Observation{
		Calls: o.Calls + n.Calls, OK: o.OK + n.OK, Overload: o.Overload + n.Overload,
		AgencyErrors: o.AgencyErrors + n.AgencyErrors, Timeouts: o.Timeouts + n.Timeouts, Expired: o.Expired + n.Expired,
		LatencyP50: w(o.LatencyP50, n.LatencyP50), LatencyP90: w(o.LatencyP90, n.LatencyP90),
		LatencyP99: w(o.LatencyP99, n.LatencyP99), QueueWaitP90: max(o.QueueWaitP90, n.QueueWaitP90),
		InFlight: n.InFlight, Period: o.Period + n.Period, Now: n.Now,
	}
	if o.LatencyMean > 0 && n.LatencyMean > 0 || o.OK == 0 || n.OK == 0 {
		m.LatencyMean = w(o.LatencyMean, n.LatencyMean)
	}
	return m
}

func failureKind(o Observation) string {
	switch {
	case o.Overload >= o.AgencyErrors && o.Overload >= o.Timeouts:
		return "overload"
	case o.Timeouts >= o.AgencyErrors:
		return "timeouts"
	}
	return "agency errors"
}

func clamp(l float64, c AgencyConfig) float64 {
	if math.IsNaN(l) {
		return float64(c.InitialLimit)
	}
	return min(max(l, float64(c.MinLimit)), float64(c.MaxLimit))
}

func roundLimit(l float64) int { return int(math.Round(l)) }
