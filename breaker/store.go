package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Entry is the name of the loan product's entry breaker: open while a
// mandatory bureau's breaker is open, so new applications are refused at
// the door instead of waiting on a bureau that has no substitute.
const Entry = "loan_product"

// Status is a breaker as workflows and operators see it.
type Status struct {
	Name  string `json:"name"`
	State State  `json:"state"` // effective: the override's when one is set
	// Machine is the controller's own state, which an override hides, and
	// MachineSince when it entered it.
	Machine       State     `json:"machine"`
	MachineSince  time.Time `json:"machine_since,omitzero"`
	Reason        string    `json:"reason"`
	Since         time.Time `json:"since"`
	Override      *Override `json:"override,omitempty"`
	ProbeFraction float64   `json:"probe_fraction"`
	// Published is the controller's tick that wrote the record and Expires
	// the end of its lease: the Redis key dies with it.
	Published time.Time `json:"published,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	// Held is set by a Reader that found no live record and answers from
	// what it last read or from the fail-safe rule.
	Held string `json:"held,omitempty"`
}

// StatusOf describes machine m of breaker name.
func StatusOf(name string, m Machine, probe float64) Status {
	st := Status{Name: name, State: m.Effective(), Machine: m.State, MachineSince: m.Since, Reason: m.Reason, Since: m.Since, Override: m.Override, ProbeFraction: probe}
	if m.Override != nil {
		st.Reason, st.Since = "operator: "+m.Override.Reason, m.Override.Since
	}
	return st
}

// Store keeps breaker states in Redis, one key per breaker under the
// breaker's own hash tag: "<prefix>breaker:{kcb}".
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a Store writing keys under prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) key(name string) string { return s.prefix + "breaker:{" + name + "}" }

// Write stores the statuses in one pipelined round trip. A positive lease
// makes each record a lease: the key expires unless the controller writes it
// again, so a dead controller's states do not live on as facts.
func (s *Store) Write(ctx context.Context, statuses []Status, lease time.Duration) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, st := range statuses {
			b, err := json.Marshal(st)
			if err != nil {
				return fmt.Errorf("encode breaker %s: %w", st.Name, err)
			}
			p.Set(ctx, s.key(st.Name), b, max(lease, 0))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write breaker states: %w", err)
	}
	return nil
}

// Read returns the live records of the named breakers; a breaker without one
// (never written, lease expired, Redis lost it) is absent from the map, and
// what that means is the Reader's staleness rule.
func (s *Store) Read(ctx context.Context, names []string) (map[string]Status, error) {
	cmds := make([]*redis.StringCmd, len(names))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.Get(ctx, s.key(n))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read breaker states: %w", err)
	}
	out := make(map[string]Status, len(names))
	for i, n := range names {
		b, err := cmds[i].Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read breaker %s: %w", n, err)
		}
		var st Status
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("decode breaker %s: %w", n, err)
		}
		out[n] = st
	}
	return out, nil
}
