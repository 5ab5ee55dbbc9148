package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"loanflow/agency"
	"loanflow/flowcontrol"
)

// EnvAgenciesFile names the agencies' contract file (TOML), optional.
const EnvAgenciesFile = "LOANFLOW_AGENCIES_FILE"

// Bounds of the contract file's values.
const (
	maxAgencyTPS = 100_000
)

// AgencyContract is what the bank agreed with one agency, read from
// LOANFLOW_AGENCIES_FILE. A zero field keeps today's behaviour.
type AgencyContract struct {
	// Period is the agency's control period (0: the controller's, 1 s). A
	// longer one means fewer, later decisions; the law reads several
	// periods together where one holds too few calls (see the README).
	Period time.Duration
	// MaxConcurrency caps the agency's global concurrency limit, over every
	// worker (0: LOANFLOW_AGENCY_MAX_CONCURRENCY, else flowcontrol's default).
	MaxConcurrency int
	// InitialLimit is where a new controller starts the agency's limit (0:
	// the worker's default, LOANFLOW_AGENCY_CONCURRENCY or 16), capped at its
	// maximum. An agency known to take many calls at once starts near that
	// instead of climbing to it: the climb's steps each wait for the
	// latency, and at calls of a second or more that takes tens of seconds
	// (docs/flow-control-lab.md, held-out set C).
	InitialLimit int
	// TPS is the contracted ceiling of calls per second: Temporal holds the
	// agency's task queue to it (a task-queue rate limit), 0 for none.
	TPS float64
}

// agenciesFile is the file's shape: one [agencies.<name>] table per agency.
type agenciesFile struct {
	Agencies map[string]agencyEntry `toml:"agencies"`
}

type agencyEntry struct {
	Period         *string  `toml:"period"`
	MaxConcurrency *int     `toml:"max_concurrency"`
	InitialLimit   *int     `toml:"initial_limit"`
	TPS            *float64 `toml:"tps"`
}

// LoadAgencies reads and checks the contract file at path. Unknown tables or
// fields are errors, as is any value out of range: each names the field, the
// value and what is accepted.
func LoadAgencies(path string) (map[string]AgencyContract, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", EnvAgenciesFile, path, err)
	}
	out, err := ParseAgencies(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", EnvAgenciesFile, path, err)
	}
	return out, nil
}

// ParseAgencies parses a contract file's text (see LoadAgencies).
func ParseAgencies(text string) (map[string]AgencyContract, error) {
	var f agenciesFile
	md, err := toml.Decode(text, &f)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("not valid TOML: %s", perr.Message)
		}
		return nil, fmt.Errorf("decode: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		if k[0] != "agencies" || len(k) < 3 {
			return nil, fmt.Errorf("unknown table or field %q: accepted [agencies.<name>] tables with period, max_concurrency, initial_limit and tps", k[0])
		}
		return nil, fmt.Errorf("unknown field %q: accepted period, max_concurrency, initial_limit, tps", k.String())
	}
	out := make(map[string]AgencyContract, len(f.Agencies))
	for _, name := range slices.Sorted(maps.Keys(f.Agencies)) {
		e := f.Agencies[name]
		field := func(f string) string { return "agencies." + name + "." + f }
		if n, err := agency.Parse(name); err != nil || string(n) != name {
			return nil, fmt.Errorf("unknown agency [agencies.%s]: accepted %s", name, agencyList())
		}
		var c AgencyContract
		if e.Period != nil {
			d, err := time.ParseDuration(*e.Period)
			if err != nil || d < time.Second || d > flowcontrol.MaxAgencyPeriod || d%time.Second != 0 {
				return nil, fmt.Errorf("%s %q: accepted a whole number of seconds from 1s to %s, e.g. \"3s\"", field("period"), *e.Period, flowcontrol.MaxAgencyPeriod)
			}
			c.Period = d
		}
		if e.MaxConcurrency != nil {
			if n := *e.MaxConcurrency; n < 1 || n > maxAgencyConcurrencyValue {
				return nil, fmt.Errorf("%s %d: accepted a whole number from 1 to %d", field("max_concurrency"), n, maxAgencyConcurrencyValue)
			}
			c.MaxConcurrency = *e.MaxConcurrency
		}
		if e.InitialLimit != nil {
			n, most := *e.InitialLimit, maxAgencyConcurrencyValue
			if c.MaxConcurrency > 0 {
				most = c.MaxConcurrency
			}
			if n < 1 || n > most {
				accepted := fmt.Sprint(most)
				if c.MaxConcurrency > 0 {
					accepted = fmt.Sprintf("the agency's max_concurrency, %d", most)
				}
				return nil, fmt.Errorf("%s %d: accepted a whole number from 1 to %s", field("initial_limit"), n, accepted)
			}
			c.InitialLimit = n
		}
		if e.TPS != nil {
			if v := *e.TPS; !(v > 0) || v > maxAgencyTPS || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s %v: accepted calls per second, more than 0 and at most %d (leave it out for no ceiling)", field("tps"), v, maxAgencyTPS)
			}
			c.TPS = *e.TPS
		}
		out[name] = c
	}
	return out, nil
}

func agencyList() string {
	names := make([]string, len(agency.All))
	for i, n := range agency.All {
		names[i] = string(n)
	}
	return strings.Join(names, ", ")
}

// withContracts applies the contracts to the flow configuration: each
// agency's own period, its concurrency capped at max_concurrency (its floor
// and starting limit capped too), and its starting limit, initial_limit.
func withContracts(flow flowcontrol.Config, contracts map[string]AgencyContract) flowcontrol.Config {
	if len(contracts) == 0 {
		return flow
	}
	agencies := make(map[string]flowcontrol.AgencyConfig, len(flow.Agencies))
	for name, ac := range flow.Agencies {
		c := contracts[name]
		if c.Period > 0 {
			ac.Period = c.Period
		}
		if m := c.MaxConcurrency; m > 0 {
			ac.MaxLimit = m
			ac.MinLimit = min(ac.MinLimit, m)
			ac.InitialLimit = min(ac.InitialLimit, m)
		}
		if n := c.InitialLimit; n > 0 {
			// Within the agency's bounds, whichever set them.
			ac.InitialLimit = min(max(n, ac.MinLimit), ac.MaxLimit)
		}
		agencies[name] = ac
	}
	flow.Agencies = agencies
	return flow
}

// applyCeilings holds each agency's task queue to its contracted TPS
// (UpdateTaskQueueConfig), or removes a ceiling loanflow set earlier that
// the contract no longer has. Every worker does it as it starts, rather
// than the controller: a ceiling is the agency's contract, not a control
// decision, it is read from the worker's own configuration, and Temporal
// enforces it at dispatch whatever runs. ApplyCeiling leaves an equal
// ceiling alone, so a fleet starting together is harmless, and the
// controller's history, which must replay, stays free of it.
func (a *App) applyCeilings(ctx context.Context) error {
	svc := a.client.WorkflowService()
	identity := "loanflow-worker/" + a.cfg.WorkerID
	for _, n := range agency.All {
		tps := a.cfg.Agencies[string(n)].TPS
		why := fmt.Sprintf("%s contracted at %g calls/s (%s)", n, tps, EnvAgenciesFile)
		if tps == 0 {
			why = fmt.Sprintf("%s: no ceiling contracted", n)
		}
		changed, err := flowcontrol.ApplyCeiling(ctx, svc, a.cfg.Temporal.Namespace, n.TaskQueue(), identity, tps, why)
		switch {
		case err != nil && tps > 0:
			return fmt.Errorf("apply the contracted TPS ceiling of %s (%s): %w", n, EnvAgenciesFile, err)
		case err != nil:
			a.log.Warn("cannot check the agency queue's TPS ceiling", "agency", n, "queue", n.TaskQueue(), "error", err)
		case changed && tps > 0:
			a.log.Info("agency queue TPS ceiling set", "agency", n, "queue", n.TaskQueue(), "tps", tps)
		case changed:
			a.log.Info("agency queue TPS ceiling removed: none contracted", "agency", n, "queue", n.TaskQueue())
		}
	}
	return nil
}
