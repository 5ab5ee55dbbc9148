package config

import (
	"context"
	"errors"
	"log/slog"

	"go.temporal.io/sdk/temporal"

	"loanflow/agency"
)

// sdkActivityError is the message the Temporal SDK logs, at ERROR, for every
// failed attempt of an activity, whether or not it will be retried.
const sdkActivityError = "Activity error."

// sdkHandler is the handler of the logger given to the Temporal SDK. It
// passes every record on, except the SDK's ERROR line for a failed attempt of
// an agency call that Temporal will retry: the agency activity has logged that
// failure already, at WARN, with the agency and the class of the failure
// ("agency call failed; will retry"). The SDK's line repeats it at ERROR, once
// per attempt: during an agency incident hundreds of lines a minute that an
// operator's alert on errors would page for, while the breakers are doing
// their job. It goes to DEBUG instead. Any other activity error (a database
// write, a final agency refusal, a panic) keeps its level.
type sdkHandler struct {
	slog.Handler
}

// SDKLogger is the logger loanflow gives the Temporal SDK: log's handler,
// with the SDK's repeat of a retried agency call's failure at DEBUG (see
// sdkHandler).
func SDKLogger(log *slog.Logger) *slog.Logger {
	return slog.New(sdkHandler{log.Handler()})
}

// Enabled lets the SDK's ERROR records through to Handle, which may lower
// them: the decision needs the record's attributes.
func (h sdkHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level == slog.LevelError || h.Handler.Enabled(ctx, level)
}

func (h sdkHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelError && r.Message == sdkActivityError && retriedAgencyFailure(r) {
		r.Level = slog.LevelDebug
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h sdkHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return sdkHandler{h.Handler.WithAttrs(attrs)}
}

func (h sdkHandler) WithGroup(name string) slog.Handler {
	return sdkHandler{h.Handler.WithGroup(name)}
}

// retriedAgencyFailure reports whether the record's error is an agency call's
// failure that Temporal retries: a retryable application error whose type is
// the failure's class (see activities' activityError).
func retriedAgencyFailure(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		err, ok := a.Value.Resolve().Any().(error)
		if !ok {
			return true
		}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && !appErr.NonRetryable() {
			c, known := agency.ParseClass(appErr.Type())
			found = known && c != agency.ClassOK && c.Retryable()
		}
		return !found
	})
	return found
}
