package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/sdk/activity"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// logged is one JSON record of a test handler.
type logged struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Error string `json:"Error"`
}

func records(t *testing.T, b *bytes.Buffer) []logged {
	t.Helper()
	var out []logged
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var r logged
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// TestSDKActivityErrorLevels runs activities through the SDK's own activity
// environment with loanflow's SDK logger, and reads the level of the SDK's
// "Activity error." line: DEBUG for an agency call's failure that Temporal
// retries (the activity logged it at WARN), ERROR for every other failure.
func TestSDKActivityErrorLevels(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"agency error, retried", temporal.NewApplicationError("agency mydata: agency_error: http 500", "agency_error"), "DEBUG"},
		{"overload, retried", temporal.NewApplicationErrorWithOptions("agency kcb: overload: http 503", "overload", temporal.ApplicationErrorOptions{}), "DEBUG"},
		{"agency refusal, final", temporal.NewNonRetryableApplicationError("application 1", "AgencyRejected", nil, "client_error"), "ERROR"},
		{"expired, final", temporal.NewNonRetryableApplicationError("application 1: budget spent", "expired", nil), "ERROR"},
		{"not an agency's", temporal.NewApplicationError("write application: connection refused", "PersistenceError"), "ERROR"},
		{"plain error", errors.New("boom"), "ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var s testsuite.WorkflowTestSuite
			s.SetLogger(sdklog.NewStructuredLogger(SDKLogger(log)))
			env := s.NewTestActivityEnvironment()
			env.RegisterActivityWithOptions(func(context.Context) error { return tc.err }, activity.RegisterOptions{Name: "Call"})
			if _, err := env.ExecuteActivity("Call"); err == nil {
				t.Fatal("the activity succeeded, want its error")
			}
			var levels []string
			for _, r := range records(t, &b) {
				if r.Msg == sdkActivityError {
					levels = append(levels, r.Level)
				}
			}
			if len(levels) != 1 || levels[0] != tc.want {
				t.Fatalf("the SDK's %q lines were logged at %v, want once at %s:\n%s", sdkActivityError, levels, tc.want, b.String())
			}
		})
	}
}

// TestSDKLoggerKeepsLevels: at INFO, the lowered line is left out, the others
// pass at their level, and attributes added with With stay on the records.
func TestSDKLoggerKeepsLevels(t *testing.T) {
	var b bytes.Buffer
	log := sdklog.NewStructuredLogger(SDKLogger(slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	with := sdklog.With(log, "TaskQueue", "agency.kcb")
	with.Error(sdkActivityError, "Error", temporal.NewApplicationError("agency kcb: timeout", "timeout"))
	with.Error(sdkActivityError, "Error", temporal.NewNonRetryableApplicationError("application 1", "AgencyRejected", nil))
	with.Error("Workflow panic", "Error", temporal.NewApplicationError("agency kcb: timeout", "timeout"))
	with.Debug("debug line")
	with.Warn("warn line")
	got := records(t, &b)
	want := []logged{
		{Level: "ERROR", Msg: sdkActivityError, Error: "application 1 (type: AgencyRejected, retryable: false)"},
		{Level: "ERROR", Msg: "Workflow panic", Error: "agency kcb: timeout (type: timeout, retryable: true)"},
		{Level: "WARN", Msg: "warn line"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(got), len(want), b.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if !strings.Contains(b.String(), `"TaskQueue":"agency.kcb"`) {
		t.Errorf("the With attributes are missing:\n%s", b.String())
	}
}
