package loan

import "testing"

func TestFinalStatuses(t *testing.T) {
	for s, want := range map[Status]bool{
		StatusReceived: false, StatusCheckingCredit: false, StatusUnderwriting: false, StatusApproved: false,
		StatusDisbursed: true, StatusRejected: true, StatusFailed: true, StatusCancelled: true,
	} {
		if s.Final() != want {
			t.Errorf("%s.Final() = %v, want %v", s, !want, want)
		}
	}
}

func TestReasonPrefersStatusReason(t *testing.T) {
	approved := &Decision{Approved: true, Reason: ReasonApprovedReduced}
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Result{Status: StatusDisbursed, Decision: approved}, ReasonApprovedReduced},
		{Result{Status: StatusRejected, Decision: approved, StatusReason: ReasonExposureLimitExceeded}, ReasonExposureLimitExceeded},
		{Result{Status: StatusCancelled, StatusReason: ReasonCancelled}, ReasonCancelled},
		{Result{Status: StatusFailed}, ReasonAgencyFailed},
	} {
		if got := tc.r.Reason(); got != tc.want {
			t.Errorf("%+v: Reason() = %s, want %s", tc.r, got, tc.want)
		}
	}
}
