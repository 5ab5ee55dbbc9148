package workflows

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
)

// The approved path's short Postgres writes run as local activities, inside
// the workflow task, and only the agency calls and Disburse go through task
// queues: that is what brings the loan workflow's task count down to raw
// Temporal's (make bench-throughput).
func TestApprovedPathSavesThroughLocalActivities(t *testing.T) {
	h := newHarness(t, goodCustomer())
	var local, queued []string
	h.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		local = append(local, info.ActivityType.Name)
	})
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		queued = append(queued, info.ActivityType.Name)
	})
	var upserts int
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(mock.Arguments) { upserts++ })
	h.run(t, validApp)
	slices.Sort(local)
	slices.Sort(queued)
	if want := []string{"ReadBreakers", "SaveApplication", "SaveOutcome", "SaveOutcome"}; !slices.Equal(local, want) {
		t.Fatalf("local activities %v, want %v", local, want)
	}
	if want := []string{"Disburse", "FetchCreditScore", "FetchCreditScore", "FetchFinancials"}; !slices.Equal(queued, want) {
		t.Fatalf("activities through task queues %v, want %v", queued, want)
	}
	// RECEIVED with the amount band, CHECKING_CREDIT with the path,
	// APPROVED, DISBURSED.
	if upserts != 4 {
		t.Fatalf("%d search-attribute upserts, want 4", upserts)
	}
}
