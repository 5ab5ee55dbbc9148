// Package flowcontrol decides how many calls each external agency may have in
// flight, and holds the workers to it.
//
//   - Step is the control law: a pure function (state, one period's
//     statistics, config) → (state, one Decision per agency), which the
//     controller workflow calls every period.
//   - SlotSupplier, used through NewTuner as an agency worker's
//     worker.Options.Tuner, holds the worker's running activities to a limit
//     that can change while it runs.
//   - Membership registers each worker process in Redis and sets its
//     SlotSupplier to its share of the agency's global limit, which the
//     controller writes with WriteLimits; ReadInFlight sums what the workers
//     report.
//
// # The control law
//
// Signals, per agency and period:
//
//   - Latency against a learned baseline. An agency past its capacity queues
//     before it refuses, and (as agencysim models it) its service time
//     inflates while it is past capacity, so queueing already costs
//     throughput: rising latency is the earliest sign of too much
//     concurrency. The exact mean latency is preferred (LatencyMean): it is
//     the latency of Little's law, and it is not quantised like percentiles
//     read from log buckets; p50 is the fallback.
//   - The failure rate (overload answers, 5xx, timeouts) against
//     FailureTarget: the agency refusing work.
//   - Demand: task-queue wait (p90) of at least BacklogQueueWait, or calls in
//     flight at 90% of the limit. Without demand a larger limit would not be
//     used, so the limit does not drift up.
//   - Little's law: goodput × baseline latency is the concurrency the agency
//     served this period, had no call waited; at saturation it is the
//     agency's capacity. Cuts go to it (× Headroom) in one step instead of by
//     a fixed factor, so they are fast, and repeating one while the last has
//     not yet shown (lag) does not compound.
//
// The rules, first match wins (AgencyState.Rule names the one applied):
//
//  1. Failures above FailureTarget (at least two) caused by load — overload
//     answers, or latency above the growth threshold, or no latency to judge
//     by — cut the limit to max(MinLimit, goodput × baseline × Headroom),
//     and by at least 10% unless a cut is still settling. Failures with
//     normal latency and no overload answers are not load: hold, and leave
//     them to the breakers.
//  2. A latency cut is checked SettlePeriods later. Queueing latency falls
//     with the limit; if the latency stayed put (changed by less than half of
//     what queueing predicts) the agency became slower rather than busier:
//     the baseline is relearned and the cut undone. The relearned baseline is
//     itself checked SettlePeriods later, and reverted if the latency at the
//     restored limit is above tolerance again, so a misread probe cannot
//     ratchet the baseline up.
//  3. Latency above LatencyTolerance × baseline: cut to goodput × baseline ×
//     Headroom, by at most half, and start the check of rule 2.
//  4. Otherwise, with demand and no decrease in the last SettlePeriods, and
//     while the latency is within a third of the tolerance margin (1.05× for
//     1.15), grow as below.
//
// Growth takes one of these forms:
//
//   - back toward the last capacity seen, in one or two steps, when far below
//     it (after a failure cut, e.g. an outage);
//   - halfway back toward the highest capacity seen, when the queue this
//     limit caused for SettlePeriods has vanished without a change of ours:
//     the agency's capacity came back;
//   - ×1.5 while no capacity has been seen yet;
//   - else additive, max(1, 5% of the limit), the step doubling with each
//     consecutive increase once beyond 110% of the last capacity (at most 15%
//     of the limit), and shrinking as the latency nears the growth
//     threshold; within 10% of the last capacity, one increase at a time,
//     each allowed to show before the next.
//
// Between the growth threshold and the tolerance the limit holds: that band
// is the steady state, where the agency is just saturated. Oscillation is
// avoided by that band, by cuts aimed at a model-based target, by the settle
// periods after a cut, and by small, one-at-a-time steps near the last
// capacity. Slow recovery is avoided by remembering capacity (Capacity,
// HighWater) and jumping back toward it, and by the accelerating step beyond
// it.
//
// The baseline starts as the sample-weighted mean latency of three periods
// during which the limit holds at InitialLimit (the very first period is left
// out: after a cold start only calls short enough to end within it are seen),
// so InitialLimit should be at or below the agency's capacity. It then
// follows a significantly lower latency quickly, a higher one slowly and only
// while the agency is far from our limit, and a slowdown through rule 2. All
// thresholds widen by 2.5 standard errors of the period's latency, estimated
// from the spread of the calls (p90/p50), so a slow agency with few calls per
// period is not cut for noise.
//
// LatencyTolerance defaults to 1.15, not 1.5: with agencysim's inflation, a
// latency at 1.5× the baseline means about 30% more concurrency than the
// capacity and 13% of the goodput lost; 1.15 holds the limit within about
// two calls of a bureau's capacity of 20.
//
// # What the statistics should look like
//
// One Observation should cover one control period, ending when the step is
// taken. A new limit reaches the workers within one Membership heartbeat, so
// the next period shows it in part and the one after in full: that is what
// SettlePeriods (2) allows for. A sliding window over several periods adds
// that much lag, and SettlePeriods must grow with it. InFlight should be the
// workers' running calls (SlotSupplier.Running, as Membership publishes), not
// their issued permits, which include idle pollers. Set LatencyMean: with
// only callstats' quantised p50 the limit still protects the agency, but
// wanders within a bucket (~25%) of capacity.
//
// # Simulation
//
// Package flowsim simulates agencysim's agency behind a pool limited by Step,
// without Temporal or Redis, against an oracle pool always sized to the true
// capacity. On the bureau model (capacity 20, 20 ms), with decisions applied
// after 0.5 s, it measures (seed 1):
//
//	scenario                 goodput/oracle  agency errors  converged after step
//	surge 3×                 0.983           0%             4 s
//	capacity 50% at 20–40 s  0.971           0%             2 s, 3 s
//	service time ×2 at 20 s  0.976           0%             4 s
//
// An unbounded pool gets 0.51 of the oracle's goodput with 84% agency errors.
package flowcontrol
