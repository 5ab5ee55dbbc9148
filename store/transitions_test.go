package store_test

import (
	"errors"
	"testing"
	"time"

	"loanflow/loan"
	"loanflow/store"
)

func disbursed(id string) loan.Result {
	r := approved(id)
	r.Status = loan.StatusDisbursed
	r.Disbursement = &loan.Disbursement{LoanID: 7, Amount: r.Decision.ApprovedAmount,
		MonthlyPayment: r.Decision.MonthlyPayment, DisbursedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	return r
}

func exposureRejected(id string) loan.Result {
	r := approved(id)
	r.Status = loan.StatusRejected
	r.StatusReason = loan.ReasonExposureLimitExceeded
	r.StatusDetail = "exposure 140000000 + 30000000 exceeds limit 150000000"
	return r
}

func cancelled(r loan.Result, why string) loan.Result {
	r.Status = loan.StatusCancelled
	r.StatusReason = loan.ReasonCancelled
	r.StatusDetail = why
	return r
}

// APPROVED moves on to DISBURSED, CANCELLED or REJECTED for the exposure
// limit, and each of those is final.
func TestApprovedMovesOnOnce(t *testing.T) {
	ctx, s := open(t)
	for _, tc := range []struct {
		name string
		next loan.Result
	}{
		{"disbursed", disbursed("T-1")},
		{"cancelled", cancelled(approved("T-2"), "customer changed their mind")},
		{"exposure", exposureRejected("T-3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.next.ApplicationID
			if err := s.SaveApplication(ctx, application(id), "loan-"+id); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveOutcome(ctx, approved(id)); err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // the second is an activity retry
				if err := s.SaveOutcome(ctx, tc.next); err != nil {
					t.Fatalf("SaveOutcome %s #%d: %v", tc.next.Status, i+1, err)
				}
			}
			r := get(t, ctx, s, id)
			if r.Status != tc.next.Status || r.StatusReason != tc.next.StatusReason || r.StatusDetail != tc.next.StatusDetail {
				t.Fatalf("stored %s/%s/%q, want %s/%s/%q", r.Status, r.StatusReason, r.StatusDetail,
					tc.next.Status, tc.next.StatusReason, tc.next.StatusDetail)
			}
			if r.Decision == nil || *r.Decision != *tc.next.Decision {
				t.Fatalf("decision changed: %+v", r.Decision)
			}
			// Nothing leaves a final status.
			for _, other := range []loan.Result{disbursed(id), cancelled(approved(id), "late"), exposureRejected(id)} {
				if other.Status == tc.next.Status {
					continue
				}
				if err := s.SaveOutcome(ctx, other); !errors.Is(err, store.ErrTerminalConflict) {
					t.Fatalf("SaveOutcome %s over %s: got %v, want ErrTerminalConflict", other.Status, tc.next.Status, err)
				}
			}
			if err := s.SetStatus(ctx, id, loan.StatusUnderwriting); err != nil {
				t.Fatalf("late progress update: %v", err)
			}
			if got := get(t, ctx, s, id).Status; got != tc.next.Status {
				t.Fatalf("status %s after a late update, want %s kept", got, tc.next.Status)
			}
		})
	}
}

// A rerun of a disbursed application passes through APPROVED again: that is
// accepted as a step already taken, unless it carries another decision. A
// cancelled or exposure-rejected application refuses it, so a rerun never
// reaches disbursement.
func TestApprovedAgainAfterFinal(t *testing.T) {
	ctx, s := open(t)
	for _, final := range []loan.Result{disbursed("R-1"), cancelled(approved("R-2"), "x"), exposureRejected("R-3")} {
		id := final.ApplicationID
		if err := s.SaveApplication(ctx, application(id), "loan-"+id); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveOutcome(ctx, approved(id)); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveOutcome(ctx, final); err != nil {
			t.Fatal(err)
		}
		err := s.SaveOutcome(ctx, approved(id))
		if final.Status == loan.StatusDisbursed {
			if err != nil {
				t.Fatalf("APPROVED again after DISBURSED: %v", err)
			}
			other := approved(id)
			other.Decision.ApprovedAmount = 10_000_000
			if err := s.SaveOutcome(ctx, other); !errors.Is(err, store.ErrTerminalConflict) {
				t.Fatalf("another approval after DISBURSED: got %v, want ErrTerminalConflict", err)
			}
		} else if !errors.Is(err, store.ErrTerminalConflict) {
			t.Fatalf("APPROVED again after %s: got %v, want ErrTerminalConflict", final.Status, err)
		}
		if got := get(t, ctx, s, id).Status; got != final.Status {
			t.Fatalf("status %s, want %s kept", got, final.Status)
		}
	}
}

// DISBURSED and the exposure rejection only follow APPROVED; a cancel may
// come at any point before.
func TestTransitionsFromProgress(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("P-1"), "loan-P-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveOutcome(ctx, disbursed("P-1")); !errors.Is(err, store.ErrTerminalConflict) {
		t.Fatalf("DISBURSED straight from RECEIVED: got %v, want ErrTerminalConflict", err)
	}
	if err := s.SaveOutcome(ctx, exposureRejected("P-1")); !errors.Is(err, store.ErrTerminalConflict) {
		t.Fatalf("exposure rejection straight from RECEIVED: got %v, want ErrTerminalConflict", err)
	}
	if err := s.SetStatus(ctx, "P-1", loan.StatusDisbursed); !errors.Is(err, store.ErrTerminalConflict) {
		t.Fatalf("SetStatus DISBURSED from RECEIVED: got %v, want ErrTerminalConflict", err)
	}
	early := loan.Result{ApplicationID: "P-1", Status: loan.StatusCancelled, StatusReason: loan.ReasonCancelled, StatusDetail: "duplicate request"}
	if err := s.SaveOutcome(ctx, early); err != nil {
		t.Fatalf("CANCELLED before any decision: %v", err)
	}
	if err := s.SaveOutcome(ctx, approved("P-1")); !errors.Is(err, store.ErrTerminalConflict) {
		t.Fatalf("APPROVED after CANCELLED: got %v, want ErrTerminalConflict", err)
	}
	r := get(t, ctx, s, "P-1")
	if r.Status != loan.StatusCancelled || r.Decision != nil || r.StatusDetail != "duplicate request" {
		t.Fatalf("stored %+v", r)
	}
}

func TestSaveOutcomeRefusesInconsistentNewStatuses(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("I-1"), "loan-I-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveOutcome(ctx, approved("I-1")); err != nil {
		t.Fatal(err)
	}
	noLoan := disbursed("I-1")
	noLoan.Disbursement = nil
	noReason := cancelled(approved("I-1"), "x")
	noReason.StatusReason = ""
	wrongStatus := exposureRejected("I-1")
	wrongStatus.Status = loan.StatusFailed
	for name, r := range map[string]loan.Result{
		"DISBURSED without a disbursement":    noLoan,
		"CANCELLED without its reason":        noReason,
		"exposure reason on a FAILED outcome": wrongStatus,
	} {
		if err := s.SaveOutcome(ctx, r); !errors.Is(err, store.ErrInvalidResult) {
			t.Errorf("%s: got %v, want ErrInvalidResult", name, err)
		}
	}
	if got := get(t, ctx, s, "I-1").Status; got != loan.StatusApproved {
		t.Fatalf("status %s, want APPROVED kept", got)
	}
}
