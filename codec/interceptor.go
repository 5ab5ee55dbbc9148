package codec

import (
	"context"
	"maps"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// CustomerRefKey is the search attribute that lets operators find a
// customer's runs without the customer id being stored in Temporal's
// visibility store, which no codec covers.
var CustomerRefKey = temporal.NewSearchAttributeKeyKeyword("CustomerRef")

// CustomerTagged is implemented by workflow inputs that belong to a customer;
// starting such a workflow through a client with the search interceptor tags
// the run with the customer's CustomerRef.
type CustomerTagged interface {
	SearchCustomerID() string
}

// ClientInterceptor tags every workflow started with a CustomerTagged first
// argument with CustomerRef, at start: the hash key stays with the clients
// and never enters workflow code or history, and the run is findable from
// its first moment.
func (h *Hasher) ClientInterceptor() interceptor.ClientInterceptor {
	return &refInterceptor{h: h}
}

type refInterceptor struct {
	interceptor.ClientInterceptorBase
	h *Hasher
}

func (i *refInterceptor) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	return &refOutbound{ClientOutboundInterceptorBase: interceptor.ClientOutboundInterceptorBase{Next: next}, h: i.h}
}

type refOutbound struct {
	interceptor.ClientOutboundInterceptorBase
	h *Hasher
}

func (o *refOutbound) ExecuteWorkflow(ctx context.Context, in *interceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	if len(in.Args) > 0 {
		if t, ok := in.Args[0].(CustomerTagged); ok && t.SearchCustomerID() != "" {
			ref := o.h.CustomerRef(t.SearchCustomerID())
			opts := *in.Options
			//lint:ignore SA1019 callers may still set the untyped map
			if opts.SearchAttributes != nil {
				// The untyped map and typed attributes may not be mixed.
				//lint:ignore SA1019 callers may still set the untyped map
				opts.SearchAttributes = maps.Clone(opts.SearchAttributes)
				//lint:ignore SA1019 callers may still set the untyped map
				opts.SearchAttributes[CustomerRefKey.GetName()] = ref
			} else {
				opts.TypedSearchAttributes = temporal.NewSearchAttributes(opts.TypedSearchAttributes.Copy(), CustomerRefKey.ValueSet(ref))
			}
			in = &interceptor.ClientExecuteWorkflowInput{Options: &opts, WorkflowType: in.WorkflowType, Args: in.Args}
		}
	}
	return o.Next.ExecuteWorkflow(ctx, in)
}
