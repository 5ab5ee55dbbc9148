package flowcontrol

import (
	"math"
	"slices"
)

// Level is what an agency answered while its limit stood at one value: the
// calls that ended and how many of them it refused (Overload) or failed
// (AgencyErrors), each count decayed by backgroundDecay a period, and the
// same decayed by recentDecay (Recent), which reads the last few periods
// only. See AgencyState.Levels.
type Level struct {
	Limit  int    `json:"limit"`
	Counts Counts `json:"counts"`
	Recent Counts `json:"recent"`
}

// Counts are a level's decayed counts.
type Counts struct {
	Calls   float64 `json:"calls"`
	Refused float64 `json:"refused,omitempty"`
	Errors  float64 `json:"errors,omitempty"`
}

func (c Counts) decay(f float64) Counts {
	return Counts{Calls: f * c.Calls, Refused: f * c.Refused, Errors: f * c.Errors}
}

func (c Counts) plus(o Counts) Counts {
	return Counts{Calls: c.Calls + o.Calls, Refused: c.Refused + o.Refused, Errors: c.Errors + o.Errors}
}

func (c Counts) add(o Observation) Counts {
	return Counts{Calls: c.Calls + float64(o.Calls), Refused: c.Refused + float64(o.Overload), Errors: c.Errors + float64(o.AgencyErrors)}
}

// LawBeforeBackground pins the control law as it was before an agency's
// background failures were told from its capacity (State.Law): every
// refusal and error counted against the limit.
const LawBeforeBackground = 1

const (
	// backgroundDecay is how much of a level's counts a period keeps:
	// a reading's weight halves in about 23 periods.
	backgroundDecay = 0.97
	// recentDecay is the same for the recent counts: a reading's weight
	// halves in about 3 periods.
	recentDecay = 0.8
	// maxLevels bounds the levels kept; the one with the fewest calls goes.
	maxLevels = 24
	// backgroundPool is how many (decayed) calls of the lowest levels
	// make the background estimate, at least.
	backgroundPool = 200
	// backgroundPrior is the calls without a failure that every estimate
	// starts from: a failure or two in a few dozen calls is not a rate.
	backgroundPrior = 50
	// backgroundSigmas is how far above its expected count (in Poisson
	// standard deviations) a period's failures are still background.
	backgroundSigmas = 2
	// backgroundHealthy is the failure rate above which a period is not
	// read as background: an agency failing that much is in trouble (the
	// breakers' case), or overloaded, and neither is its noise.
	backgroundHealthy = 0.2
)

// record adds the period o, observed at the limit, to the levels, after
// decaying them all. Only a period in which the agency served well counts:
// one that shows a change of the limit in part (Moved) mixes two levels,
// and one in which the agency was in trouble would count an outage as its
// background.
func (s *AgencyState) record(o Observation, limit int) {
	levels := make([]Level, 0, len(s.Levels)+1)
	for _, l := range s.Levels {
		l.Counts, l.Recent = l.Counts.decay(backgroundDecay), l.Recent.decay(recentDecay)
		if l.Counts.Calls >= 1 {
			levels = append(levels, l)
		}
	}
	failed := o.Overload + o.AgencyErrors + o.Timeouts
	if !s.Moved && o.OK > 0 && o.Calls > 0 && float64(failed) <= backgroundHealthy*float64(o.Calls) {
		i, found := slices.BinarySearchFunc(levels, limit, func(l Level, limit int) int { return l.Limit - limit })
		if !found {
			levels = slices.Insert(levels, i, Level{Limit: limit})
		}
		levels[i].Counts, levels[i].Recent = levels[i].Counts.add(o), levels[i].Recent.add(o)
	}
	if len(levels) > maxLevels {
		least := 0
		for i, l := range levels {
			if l.Counts.Calls < levels[least].Counts.Calls {
				least = i
			}
		}
		levels = slices.Delete(levels, least, least+1)
	}
	s.Levels = levels
}

// background is the agency's rates of refusals and errors that do not
// depend on the limit (see rate).
func (s AgencyState) background(limit, law int) (refused, errors float64) {
	return s.rate(limit, refusedCount, law), s.rate(limit, errorCount, law)
}

// rate is the background rate of one kind of failure (count reads it off a
// level's counts) at limit, read at the lowest levels below it: from the
// lowest up, to backgroundPool calls, and up to the first level that fails
// more often than those below it (a capacity: failures that rise with the
// limit; see failsMore), once they hold a quarter of that. Pooled with no
// such stop, the lowest levels took in the level a call beyond a lost
// capacity once the capacity was back (7 at a capacity of 6 back to 12),
// and its refusals passed for background. The rate starts from
// backgroundPrior calls without a failure, and is 0 where the level at
// limit itself failed more often than that over the last few periods (its
// Recent counts): the limit is beyond a capacity, whatever the noise.
func (s AgencyState) rate(limit int, count func(Counts) float64, law int) float64 {
	below := rateOf(s.pool(limit, count, law), count, law)
	i, found := slices.BinarySearchFunc(s.Levels, limit, func(l Level, limit int) int { return l.Limit - limit })
	if found && above(s.Levels[i].Recent, below, count) {
		// The current level fails more often than the background: the
		// limit is beyond a capacity, whatever the noise.
		return 0
	}
	return below
}

// pool merges the levels below limit that give its background rate of one
// kind of failure (count reads it off a level's counts): from the lowest
// up, to backgroundPool calls, and up to the first level that fails more
// often than those below it (failsMore), once they hold a quarter of that
// (see rate).
func (s AgencyState) pool(limit int, count func(Counts) float64, law int) Counts {
	var pool Counts
	for _, l := range s.Levels {
		if l.Limit >= limit || pool.Calls >= backgroundPool {
			break
		}
		if pool.Calls >= backgroundPool/4 && failsMore(l.Counts, pool, count, law) {
			break
		}
		pool = pool.plus(l.Counts)
	}
	return pool
}

// LawBeforeWellReadLevel pins the control law as it was before a level
// read over more calls than the pool below it (and than backgroundPool)
// was tested against the pool's counts, not its rate, to stop the pool
// (failsMore; State.Law): a level of 477 calls with 4 refusals stopped a
// pool of 170 calls with none, whose rate, read as exact, is 0, and the
// background at the limit above it was nothing. At an agency refusing 1%
// of its calls at random, half the periods at the limit then refused more
// than the FailureTarget, and the limit held at 10–12 of a capacity of 20
// (flowsim's TestRandomRefusals).
const LawBeforeWellReadLevel = 28

// failsMore reports whether the level read over c fails more often than the
// pool of the levels below it, in one kind of failure (count): beyond the
// pool's rate as if it were exact (above), or, for a level read over more
// calls than the pool and than backgroundPool, beyond the pool's counts
// (beyond: the two shares compared, the pool's spread with its own). A
// pool of a few hundred calls with no failure has a rate of 0 read as
// exact, and a long-held level's few refusals were beyond it; read as
// counts, 4 refusals in 477 calls against none in 170 are as likely as 3
// in 10 under one rate. A level visited briefly, a probe's or a lost
// capacity's (1 refusal in 46 calls, the capacity halved), is still read
// against the rate: at an agency with no queue its refusals are the
// capacity's, and pooled they passed for background once the capacity was
// back.
func failsMore(c, pool Counts, count func(Counts) float64, law int) bool {
	if lawHas(law, LawBeforeWellReadLevel) && c.Calls >= max(pool.Calls, backgroundPool) {
		return beyond(c, pool, count)
	}
	return above(c, rateOf(pool, count, law), count)
}

// LawBeforeBackgroundTail pins the control law as it was before the
// background's allowance was read off the Poisson tail and its prior faded
// with the failures read (State.Law): a period's refusals were taken out
// up to floor(e + 2√e) for e expected, and every rate started from
// backgroundPrior calls without a failure, however many it had read. At a
// few expected refusals a period that floor is passed by a background
// exactly at its rate in 2–9% of the periods (e = 0.5: 9%), and the prior
// read a pool of a few hundred calls a sixth to a fifth low: at 5% of
// calls refused at random, each such period cut the limit, each cut made a
// new lowest level with nothing below it, and the limit ratcheted down to
// 1–2 calls of 20 on one seed in three (flowsim's TestRandomRefusals).
const LawBeforeBackgroundTail = 29

// backgroundTail is the share of a period's failures, under the background
// rate alone, that allowance takes out: the one-sided level of
// backgroundSigmas (2σ) of a normal, read off the Poisson distribution
// itself.
const backgroundTail = 0.977

// backgroundTailMax is the expected count from which allowance keeps the
// normal form: there the two are within a call of each other (e = 50: 64
// and 65), and far beyond it e^-e, the Poisson's first term, underflows.
const backgroundTailMax = 200

// backgroundFade is the failures over which a rate's prior fades out: a
// pool that has read that many is a rate, not noise (see rateOf).
const backgroundFade = 5

// rateOf is the rate of one kind of failure in the counts c, starting from
// backgroundPrior calls without one. From LawBeforeBackgroundTail on, the
// prior fades as the counts hold failures and is gone at backgroundFade:
// a failure or two in a few dozen calls is not a rate, but five in a few
// hundred are one, and the prior read them a sixth to a fifth low.
func rateOf(c Counts, count func(Counts) float64, law int) float64 {
	prior := float64(backgroundPrior)
	if lawHas(law, LawBeforeBackgroundTail) {
		prior *= max(0, 1-count(c)/backgroundFade)
	}
	if c.Calls+prior <= 0 {
		return 0
	}
	return count(c) / (c.Calls + prior)
}

// allowance is how many of a period of n calls' failures of one kind the
// background rate accounts for: their expected count e and backgroundSigmas
// standard deviations, floored; from LawBeforeBackgroundTail on, where that
// is one or more, the Poisson quantile at backgroundTail if higher. At a
// few expected the normal form falls short of the tail it means (e = 0.5:
// 1, where 2 hold 98.6% of the periods). Where it allows none (e below
// about 0.17, a trace of a background), none is allowed still: a lone
// refusal there is a capacity's, at an agency with no queue the only
// answer a probe beyond it gets.
func allowance(n, rate float64, law int) int64 {
	e := n * rate
	normal := int64(math.Floor(e + backgroundSigmas*math.Sqrt(e)))
	if normal < 1 || e >= backgroundTailMax || !lawHas(law, LawBeforeBackgroundTail) {
		return normal
	}
	return max(normal, poissonQuantile(e, backgroundTail))
}

// poissonQuantile is the smallest k with P(X ≤ k) ≥ q for X Poisson with
// mean e, for e well below the 745 at which e^-e underflows (allowance
// reads it below backgroundTailMax).
func poissonQuantile(e, q float64) int64 {
	term := math.Exp(-e)
	cdf, k := term, int64(0)
	for cdf < q && float64(k) < e+50*math.Sqrt(e)+50 {
		k++
		term *= e / float64(k)
		cdf += term
	}
	return k
}

// above reports whether the counts c hold more failures than rate accounts
// for: more than their expected count, its Poisson spread
// (backgroundSigmas) and one call.
func above(c Counts, rate float64, count func(Counts) float64) bool {
	e := c.Calls * rate
	return count(c) > e+backgroundSigmas*math.Sqrt(e)+1
}

// denoise takes out of o the refusals and errors the agency's background
// rates account for at the limit (see background): up to their expected
// count plus backgroundSigmas standard deviations, or the Poisson tail
// (allowance). An agency that refuses or fails a call in a hundred whatever
// the load is not at its capacity at every limit: counted, those answers
// held the limit's growth for good (any refusal holds it) and cut it
// whenever a period's share passed the FailureTarget.
func (s AgencyState) denoise(o Observation, limit, law int) Observation {
	refused, errors := s.background(limit, law)
	n := float64(o.Calls)
	ref := min(o.Overload, allowance(n, refused, law))
	errs := min(o.AgencyErrors, allowance(n, errors, law))
	o.Overload -= ref
	o.AgencyErrors -= errs
	o.Calls -= ref + errs
	return o
}
