package flowcontrol

import (
	"fmt"
	"math"
)

// LawBeforeFailCheck pins the control law as it was before a failure cut
// made with the agency's background rates unknown was checked against them
// once they were read (AgencyState.FailCheck).
const LawBeforeFailCheck = 4

// failCheckShare is the largest share of its calls a cut's failures may
// be for its check: the agency's background, if it is one, is then at most
// ten times the FailureTarget. Beyond it, the levels below the cut, read
// in the periods that follow it, are the capacity's refusals still
// showing as often as not (a capacity halved at a limit of 20: 15% of the
// calls refused at 20, 9% at the 13 the cut went to), and the check undid
// the cut into them.
const failCheckShare = 0.1

// failCheckPeriods bounds the periods a FailCheck waits for the levels
// below its cut to hold enough calls; then the cut stands.
const failCheckPeriods = 16

// FailCheck records a failure cut made on refusals or errors while the
// levels below the limit held too few calls to give the agency's
// background rates (see AgencyState.Levels): at a cold start, or after a
// climb to limits never read, a period's refusals are counted whole,
// whether the agency answers that many at any load or only beyond its
// capacity. Once the levels below the cut's limit hold as many calls as
// the cut read (and at least a quarter of backgroundPool), the two are
// compared (beyond): a cut that read no more failures than those levels
// account for, where the levels at or below the limit it cut to show the
// same kind of failure (accounts), is undone, and the limit and what the
// cut learnt (the capacity remembered, the ceiling, the probes it refuted)
// go back. At an agency refusing 1% of its calls at random, the first
// period's three refusals in 95 calls cut 10 → 5 and set the capacity
// there; growth was then a call every two periods, and the limit sat at
// half the capacity of 20 for the whole first phase. A cut for refusals
// the agency answers only beyond its capacity stands: below it, they are
// rarer than the cut read.
type FailCheck struct {
	// From is the limit the cut was made at: its failures are tested
	// against the levels below it. To is the limit it cut to: the levels at
	// and below it, where a capacity the cut found would not refuse, must
	// show failures of the kind too before the cut is undone.
	From float64 `json:"from"`
	To   int     `json:"to"`
	// Read is what the cut read: its calls, refusals and errors.
	Read Counts `json:"read"`
	Age  int    `json:"age"`
	// Before is what the cut changed besides the limit, as it was.
	Before FailCut `json:"before"`
}

// FailCut is the part of an AgencyState a failure cut changes besides the
// limit, restored when its FailCheck undoes it.
type FailCut struct {
	Capacity   float64 `json:"capacity,omitempty"`
	HighWater  float64 `json:"high_water,omitempty"`
	Ceiling    float64 `json:"ceiling,omitempty"`
	Peak       float64 `json:"peak,omitempty"`
	Refused    bool    `json:"refused,omitempty"`
	Recovering bool    `json:"recovering,omitempty"`
	WarmCut    bool    `json:"warm_cut,omitempty"`
	Refuted    int     `json:"refuted,omitempty"`
	Backoff    int     `json:"backoff,omitempty"`
}

func failCutOf(s AgencyState) FailCut {
	return FailCut{Capacity: s.Capacity, HighWater: s.HighWater, Ceiling: s.Ceiling, Peak: s.Peak,
		Refused: s.Refused, Recovering: s.Recovering, WarmCut: s.WarmCut, Refuted: s.Refuted, Backoff: s.Backoff}
}

// refusedCount and errorCount read one kind of failure off a level's
// counts.
func refusedCount(c Counts) float64 { return c.Refused }
func errorCount(c Counts) float64   { return c.Errors }

// armFailCheck records the failure cut just made from before (the state
// as the period found it), which read o (takenOut: the refusals and errors the
// background rates took out of this period), for its check, if the cut was
// on refusals or errors alone, at a latency that showed no queue, with the
// levels below the limit too thin to give the background. A check already
// pending is kept: it holds the first of the cuts, which it undoes with
// the rest.
func (s *AgencyState) armFailCheck(before AgencyState, o Observation, takenOut Counts, sig signals, law int) {
	if s.FailCheck != nil || o.Timeouts > 0 || o.OK == 0 || sig.failRate > failCheckShare ||
		sig.latOK && sig.ratio > sig.cutAbove {
		return
	}
	read := Counts{Calls: float64(o.Calls) + takenOut.Calls, Refused: float64(o.Overload) + takenOut.Refused, Errors: float64(o.AgencyErrors) + takenOut.Errors}
	from := roundLimit(before.Limit)
	if s.pool(from, refusedCount, law).Calls >= failCheckCalls(read) && s.pool(from, errorCount, law).Calls >= failCheckCalls(read) {
		return // the background was known: denoise took it out.
	}
	s.FailCheck = &FailCheck{From: before.Limit, To: roundLimit(s.Limit), Read: read, Before: failCutOf(before)}
}

// failCheckCalls is how many calls the levels below a cut must hold, for
// each kind of failure, before its check decides: as many as the cut read,
// and at least a quarter of backgroundPool. With fewer below it when it is
// made, the cut is checked at all.
func failCheckCalls(read Counts) float64 { return max(read.Calls, backgroundPool/4) }

// failCheckLevel is the significance at which a cut's failures are beyond
// the rate below it (see beyond).
const failCheckLevel = 0.05

// beyond reports whether the counts read hold more failures of one kind
// (count) than the pool's rate accounts for, at failCheckLevel: given the
// failures of both, under one rate the share read holds is binomial, with
// the odds of its share of the calls. A one-sided test of the two counts,
// not of read against the pool's rate as known: the pool of a check holds
// about as many calls as the cut read, and none of its failures at 1% of
// 100 calls is as likely as three in the cut (a cut of three refusals in
// 95 calls, none in 99 below, is as likely as 1 in 8 under one rate).
func beyond(read, pool Counts, count func(Counts) float64) bool {
	x, k := math.Round(count(read)), math.Round(count(read)+count(pool))
	if x == 0 {
		return false
	}
	return binomialTail(int(k), int(x), read.Calls/(read.Calls+pool.Calls)) < failCheckLevel
}

// accounts reports whether the pool shows failures of the kind (count)
// that the counts read hold: a pool without one does not account for any,
// however thin it is; the check then waits for more calls below.
func accounts(read, pool Counts, count func(Counts) float64) bool {
	return math.Round(count(read)) == 0 || count(pool) >= 0.5
}

// binomialTail is P(X ≥ x) for X binomial with k trials of odds p.
func binomialTail(k, x int, p float64) float64 {
	tail, term := 0.0, math.Pow(1-p, float64(k)) // P(X = 0)
	for i := 0; i <= k; i++ {
		if i >= x {
			tail += term
		}
		term *= float64(k-i) / float64(i+1) * p / (1 - p)
	}
	return min(tail, 1)
}

// poolRate is the pool's rate of one kind of failure.
func poolRate(pool Counts, kind func(Counts) float64) float64 {
	if pool.Calls == 0 {
		return 0
	}
	return kind(pool) / pool.Calls
}

// checkFailCut decides the pending FailCheck, once the levels below the
// cut's limit hold the calls it needs (and no dip or latency cut is
// pending): the cut stands if it read more refusals or errors than those
// levels account for (beyond); it is undone if the levels at and below the
// limit it cut to show the same kind of failure too (accounts); otherwise
// it waits, for failCheckPeriods at most. Undone, the limit goes back to the cut's
// (or stays, if it has grown past it), and the state the cut changed is
// restored.
func (s *AgencyState) checkFailCut(law int) (string, bool) {
	fc := s.FailCheck
	if fc == nil {
		return "", false
	}
	from := roundLimit(fc.From)
	refused, errs := s.pool(from, refusedCount, law), s.pool(from, errorCount, law)
	need := failCheckCalls(fc.Read)
	ready := refused.Calls >= need && errs.Calls >= need && s.Dip == nil && s.Probe == nil
	if ready && (beyond(fc.Read, refused, refusedCount) || beyond(fc.Read, errs, errorCount)) {
		s.FailCheck = nil // the cut stands
		return "", false
	}
	var low Counts // what the levels at and below the limit cut to read
	for _, l := range s.Levels {
		if l.Limit <= fc.To {
			low = low.plus(l.Counts)
		}
	}
	if !ready || !accounts(fc.Read, low, refusedCount) || !accounts(fc.Read, low, errorCount) {
		if fc.Age >= failCheckPeriods {
			s.FailCheck = nil // the cut stands
		}
		return "", false
	}
	s.FailCheck = nil
	rRate, eRate := poolRate(refused, refusedCount), poolRate(errs, errorCount)
	b := fc.Before
	s.Capacity, s.HighWater, s.Ceiling, s.Peak = b.Capacity, b.HighWater, b.Ceiling, b.Peak
	s.Refused, s.Recovering, s.WarmCut, s.Refuted, s.Backoff = b.Refused, b.Recovering, b.WarmCut, b.Refuted, max(b.Backoff-fc.Age, 0)
	s.Limit = max(s.Limit, fc.From)
	s.Cooldown, s.Streak, s.Evidence, s.Rule = 0, 0, nil, ruleUndoFailure
	return fmt.Sprintf("failure cut from %d undone: %.0f refused and %.0f errors of %.0f calls, background %.1f%% and %.1f%% read below it",
		from, fc.Read.Refused, fc.Read.Errors, fc.Read.Calls, 100*rRate, 100*eRate), true
}
