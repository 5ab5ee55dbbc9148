package agency

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// typedErr looks like a Temporal application error whose type is a class name.
type typedErr struct{ typ string }

func (e typedErr) Error() string { return "application error" }
func (e typedErr) Type() string  { return e.typ }

func TestClassify(t *testing.T) {
	overload := &CallError{Agency: KCB, Class: ClassOverload, StatusCode: 503}
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassOK},
		{"call error", overload, ClassOverload},
		{"wrapped call error", fmt.Errorf("kcb activity: %w", overload), ClassOverload},
		{"invalid data", &CallError{Class: ClassInvalidData}, ClassInvalidData},
		{"deadline", context.DeadlineExceeded, ClassTimeout},
		{"wrapped deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), ClassTimeout},
		{"canceled", context.Canceled, ClassCanceled},
		{"net timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, ClassTimeout},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, ClassTransport},
		{"typed with class name", typedErr{"agency_error"}, ClassAgencyError},
		{"typed with other name", typedErr{"SomethingElse"}, ClassTransport},
		{"plain", errors.New("boom"), ClassTransport},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %s, want %s", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestClassRetryable(t *testing.T) {
	for _, c := range Classes {
		want := c != ClassClientError && c != ClassInvalidData
		if c.Retryable() != want {
			t.Errorf("%s.Retryable() = %v, want %v", c, c.Retryable(), want)
		}
		if got, ok := ParseClass(string(c)); !ok || got != c {
			t.Errorf("ParseClass(%q) = %q, %v", c, got, ok)
		}
	}
	if _, ok := ParseClass("nope"); ok {
		t.Error("ParseClass(nope) succeeded")
	}
}

func TestClassForStatus(t *testing.T) {
	for code, want := range map[int]Class{400: ClassClientError, 401: ClassClientError, 404: ClassClientError,
		429: ClassOverload, 503: ClassOverload, 500: ClassAgencyError, 502: ClassAgencyError, 504: ClassAgencyError,
		204: ClassAgencyError, 302: ClassAgencyError} {
		if got := classForStatus(code); got != want {
			t.Errorf("classForStatus(%d) = %s, want %s", code, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"2", 2 * time.Second}, {" 1 ", time.Second}, {"0", 0}, {"-5", 0}, {"soon", 0},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{now.Add(-7 * time.Second).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestCallErrorMessage(t *testing.T) {
	err := &CallError{Agency: KCB, Class: ClassOverload, StatusCode: 503, RetryAfter: time.Second, Err: errors.New("queue full")}
	if got, want := err.Error(), "agency kcb: overload: http 503: queue full (retry after 1s)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(&CallError{Err: context.DeadlineExceeded}, context.DeadlineExceeded) {
		t.Error("CallError does not unwrap")
	}
}
