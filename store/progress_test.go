package store_test

import (
	"testing"

	"loanflow/loan"
)

// An application in progress says why it waits; a final one keeps its
// outcome's reason.
func TestNoteProgress(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("P-1"), "loan-P-1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.NoteProgress(ctx, "P-1", loan.ReasonWaitingForAgency, "kcb: backlog"); err != nil || !ok {
		t.Fatalf("NoteProgress = %v, %v; want true, nil", ok, err)
	}
	if r := get(t, ctx, s, "P-1"); r.Status != loan.StatusReceived || r.StatusReason != loan.ReasonWaitingForAgency || r.StatusDetail != "kcb: backlog" {
		t.Fatalf("stored %s/%s/%q, want RECEIVED/WAITING_FOR_AGENCY/\"kcb: backlog\"", r.Status, r.StatusReason, r.StatusDetail)
	}
	failed := loan.Result{ApplicationID: "P-1", Status: loan.StatusFailed, StatusReason: loan.ReasonAgencyBacklog}
	if err := s.SaveOutcome(ctx, failed); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.NoteProgress(ctx, "P-1", loan.ReasonWaitingForAgency, "late"); err != nil || ok {
		t.Fatalf("NoteProgress on a final application = %v, %v; want false, nil", ok, err)
	}
	if r := get(t, ctx, s, "P-1"); r.StatusReason != loan.ReasonAgencyBacklog || r.StatusDetail != "" {
		t.Fatalf("final application's reason became %s/%q", r.StatusReason, r.StatusDetail)
	}
}
