package store

import (
	"context"
	"fmt"

	"loanflow/breaker"
)

// BreakerEvent is one circuit-breaker transition (the breaker package owns the type).
type BreakerEvent = breaker.Event

// RecordBreakerEvents appends transitions to breaker_events. Recording the
// same transition again (a retried write) is a no-op.
func (s *Store) RecordBreakerEvents(ctx context.Context, events []BreakerEvent) error {
	if len(events) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record breaker events: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op once committed
	for _, e := range events {
		if _, err := tx.Exec(ctx, `INSERT INTO breaker_events (breaker, from_state, to_state, reason, source, at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (breaker, at, to_state) DO NOTHING`,
			e.Breaker, e.From, e.To, e.Reason, e.Source, e.At); err != nil {
			return fmt.Errorf("record breaker event %s %s→%s: %w", e.Breaker, e.From, e.To, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record breaker events: %w", err)
	}
	return nil
}

// BreakerEvents lists a breaker's transitions, oldest first; an empty name lists all.
func (s *Store) BreakerEvents(ctx context.Context, breaker string) ([]BreakerEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT breaker, from_state, to_state, reason, source, at FROM breaker_events
		WHERE $1 = '' OR breaker = $1 ORDER BY at, id`, breaker)
	if err != nil {
		return nil, fmt.Errorf("list breaker events: %w", err)
	}
	defer rows.Close()
	var out []BreakerEvent
	for rows.Next() {
		var e BreakerEvent
		if err := rows.Scan(&e.Breaker, &e.From, &e.To, &e.Reason, &e.Source, &e.At); err != nil {
			return nil, fmt.Errorf("list breaker events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastBreakerEvents returns each breaker's latest transition: what a fresh
// controller rebuilds a breaker from when Redis has no live record of it.
func (s *Store) LastBreakerEvents(ctx context.Context) (map[string]BreakerEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (breaker) breaker, from_state, to_state, reason, source, at
		FROM breaker_events ORDER BY breaker, at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("read last breaker events: %w", err)
	}
	defer rows.Close()
	out := map[string]BreakerEvent{}
	for rows.Next() {
		var e BreakerEvent
		if err := rows.Scan(&e.Breaker, &e.From, &e.To, &e.Reason, &e.Source, &e.At); err != nil {
			return nil, fmt.Errorf("read last breaker events: %w", err)
		}
		out[e.Breaker] = e
	}
	return out, rows.Err()
}
