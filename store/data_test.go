package store_test

import (
	"errors"
	"math"
	"testing"

	"loanflow/loan"
	"loanflow/store"
)

// A value the database cannot hold is a final error, never retried: a DSR
// too large for decisions.dsr_bp (what annual_income = 1 once produced),
// and text Postgres refuses (a NUL byte: SQLSTATE 22021).
func TestSaveOutcomeDataErrorsAreFinal(t *testing.T) {
	ctx, s := open(t)
	for _, tc := range []struct {
		name string
		res  func(loan.Result) loan.Result
	}{
		{"dsr beyond int", func(r loan.Result) loan.Result { r.Decision.DSRBasisPoints = 183_224_720_000; return r }},
		{"negative amount", func(r loan.Result) loan.Result { r.Decision.ApprovedAmount = -1; return r }},
		{"rate beyond int", func(r loan.Result) loan.Result { r.Decision.RateBasisPoints = math.MaxInt32 + 1; return r }},
		{"nul byte in detail", func(r loan.Result) loan.Result {
			r.Status, r.Decision, r.StatusReason, r.StatusDetail = loan.StatusFailed, nil, loan.ReasonAgencyFailed, "bad\x00byte"
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "data-" + tc.name
			if err := s.SaveApplication(ctx, application(id), "wf-"+id); err != nil {
				t.Fatal(err)
			}
			err := s.SaveOutcome(ctx, tc.res(approved(id)))
			if !errors.Is(err, store.ErrInvalidResult) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidResult (final)", err)
			}
			if rec := get(t, ctx, s, id); rec.Status != loan.StatusReceived {
				t.Fatalf("stored %s after a refused outcome, want RECEIVED untouched", rec.Status)
			}
		})
	}
}

// An approved application whose disbursement failed for good ends FAILED
// with its reason code: a final row, never left APPROVED.
func TestApprovedMovesToFailedWithReason(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("F-1"), "loan-F-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveOutcome(ctx, approved("F-1")); err != nil {
		t.Fatal(err)
	}
	failed := approved("F-1")
	failed.Status, failed.StatusReason, failed.Error = loan.StatusFailed, loan.ReasonDisbursementFailed, "booked with other terms"
	if err := s.SaveOutcome(ctx, failed); err != nil {
		t.Fatal(err)
	}
	rec := get(t, ctx, s, "F-1")
	if rec.Status != loan.StatusFailed || rec.StatusReason != loan.ReasonDisbursementFailed || rec.Decision == nil {
		t.Fatalf("stored %s/%s (decision %v), want FAILED/%s with the approval kept", rec.Status, rec.StatusReason, rec.Decision, loan.ReasonDisbursementFailed)
	}
}
