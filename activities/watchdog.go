package activities

import (
	"context"
	"errors"
)

// WatchdogActivities keep the flow controller alive. Ensure is the worker
// process's own check (start the controller if it is gone, replace it if it
// stopped ticking); it is a function because starting a workflow needs the
// Temporal client and the controller's definition, which live above this
// package.
type WatchdogActivities struct {
	Ensure func(ctx context.Context) error
}

// EnsureController runs the check once.
func (a *WatchdogActivities) EnsureController(ctx context.Context) error {
	if a.Ensure == nil {
		return errors.New("ensure controller: no check configured")
	}
	return a.Ensure(ctx)
}
