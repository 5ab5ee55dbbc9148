package store

import (
	"context"
	"fmt"
)

// NoteProgress records why an application still in progress (RECEIVED,
// CHECKING_CREDIT, UNDERWRITING) is waiting, e.g. status reason
// WAITING_FOR_AGENCY with the agency in detail; empty strings clear it. It
// never touches a final or approved application, whose reason is its
// outcome's, and reports whether a row was updated.
func (s *Store) NoteProgress(ctx context.Context, applicationID, reason, detail string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	names := make([]string, len(progress))
	for i, p := range progress {
		names[i] = string(p)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE applications SET status_reason = $2, status_detail = $3, updated_at = now()
		 WHERE application_id = $1 AND status = ANY($4)`,
		applicationID, nullable(reason), nullable(detail), names)
	if err != nil {
		return false, fmt.Errorf("note progress of application %s: %w", applicationID, err)
	}
	return tag.RowsAffected() == 1, nil
}
