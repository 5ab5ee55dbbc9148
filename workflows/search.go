package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"loanflow/codec"
	"loanflow/loan"
)

// Search attributes without personal data. Temporal's visibility store is
// not covered by the payload codec, so what goes there must not identify a
// customer or describe their finances:
//   - CustomerRef is a keyed hash (HMAC-SHA256) of the customer id, set when
//     the application starts by the client's search interceptor, which holds
//     the hash key (codec.Hasher); `starter find --customer` recomputes it.
//   - AmountBand replaces the exact requested amount with a coarse band,
//     enough to filter large loans in the Web UI; the exact amount stays in
//     the encrypted payloads and in Postgres.
var (
	CustomerRefKey = codec.CustomerRefKey
	AmountBandKey  = temporal.NewSearchAttributeKeyKeyword("AmountBand")
)

// SearchCustomerID lets the client's search interceptor tag the run with the
// customer's CustomerRef (codec.CustomerTagged).
func (in Input) SearchCustomerID() string { return in.Application.CustomerID }

// amountBands are the AmountBand values: lower bound inclusive, upper bound
// exclusive (the last one includes loan.MaxAmount).
var amountBands = []struct {
	upTo int64
	name string
}{
	{5_000_000, "1M-5M"},
	{10_000_000, "5M-10M"},
	{30_000_000, "10M-30M"},
	{50_000_000, "30M-50M"},
	{loan.MaxAmount + 1, "50M-100M"},
}

// AmountBand is the band of a requested amount in won, e.g. "10M-30M".
func AmountBand(amount int64) string {
	if amount < loan.MinAmount {
		return "UNDER-1M"
	}
	for _, b := range amountBands {
		if amount < b.upTo {
			return b.name
		}
	}
	return "OVER-100M"
}

// searchAttributesChange versions the first search-attribute upsert: runs
// recorded before it upserted CustomerId and RequestedAmount in plaintext.
const searchAttributesChange = "search-attributes-without-personal-data"

// upsertEntrySearchAttributes sets the attributes an application has from
// its start.
func upsertEntrySearchAttributes(ctx workflow.Context, app loan.Application) error {
	if workflow.GetVersion(ctx, searchAttributesChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		// Only replays of histories recorded before the change reach this.
		return workflow.UpsertTypedSearchAttributes(ctx,
			CustomerIDKey.ValueSet(app.CustomerID),
			RequestedAmountKey.ValueSet(app.Amount),
			LoanStatusKey.ValueSet(string(loan.StatusReceived)),
		)
	}
	return workflow.UpsertTypedSearchAttributes(ctx,
		AmountBandKey.ValueSet(AmountBand(app.Amount)),
		LoanStatusKey.ValueSet(string(loan.StatusReceived)),
	)
}
