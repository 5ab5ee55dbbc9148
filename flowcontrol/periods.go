package flowcontrol

import (
	"maps"
	"slices"
	"time"
)

// StepDue is Step for the agencies in due only, each stepped over its own
// period (Config.PeriodOf): the controller ticks at Config.Period and steps
// an agency on the ticks at which a whole period of its own has been
// observed. The other agencies keep their state untouched, as if no step
// had happened for them: their counters (cooldown, settling, evidence)
// count their own periods, not the controller's ticks. With every agency due
// and one period for all, StepDue is Step.
func StepDue(st State, obs map[string]Observation, cfg Config, due []string) (State, []Decision) {
	byPeriod := map[time.Duration][]string{}
	for _, a := range slices.Compact(slices.Sorted(slices.Values(due))) {
		p := cfg.PeriodOf(a)
		byPeriod[p] = append(byPeriod[p], a)
	}
	next := State{Agencies: make(map[string]AgencyState, len(st.Agencies)+len(due)), Steps: st.Steps + 1, Now: st.Now, Law: st.Law}
	maps.Copy(next.Agencies, st.Agencies)
	decisions := make([]Decision, 0, len(due))
	for _, p := range slices.Sorted(maps.Keys(byPeriod)) {
		names := byPeriod[p]
		sub := Config{Period: p, Agencies: make(map[string]AgencyConfig, len(names))}
		part := State{Agencies: make(map[string]AgencyState, len(names)), Steps: st.Steps, Now: st.Now, Law: st.Law}
		seen := make(map[string]Observation, len(names))
		for _, a := range names {
			if ac, ok := cfg.Agencies[a]; ok {
				sub.Agencies[a] = ac
			}
			if s, ok := st.Agencies[a]; ok {
				part.Agencies[a] = s
			}
			if o, ok := obs[a]; ok {
				seen[a] = o
			}
		}
		stepped, ds := Step(part, seen, sub)
		maps.Copy(next.Agencies, stepped.Agencies)
		if stepped.Now.After(next.Now) {
			next.Now = stepped.Now
		}
		decisions = append(decisions, ds...)
	}
	slices.SortFunc(decisions, func(a, b Decision) int {
		switch {
		case a.Agency < b.Agency:
			return -1
		case a.Agency > b.Agency:
			return 1
		}
		return 0
	})
	return next, decisions
}
