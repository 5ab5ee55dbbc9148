package activities

import "context"

// NoteProgressInput says why an application in progress is waiting; empty
// Reason and Detail clear it.
type NoteProgressInput struct {
	ApplicationID string `json:"application_id"`
	Reason        string `json:"reason,omitempty"`
	Detail        string `json:"detail,omitempty"`
}

// NoteProgress records in Postgres why an application in progress waits
// (see store.NoteProgress); a final application is left alone.
func (a *LoanActivities) NoteProgress(ctx context.Context, in NoteProgressInput) error {
	_, err := a.Store.NoteProgress(ctx, in.ApplicationID, in.Reason, in.Detail)
	return err
}
