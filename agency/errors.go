package agency

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Class is the outcome class of one agency call. Statistics are recorded by
// class, and the class decides whether a retry can help.
type Class string

// Outcome classes.
const (
	ClassOK          Class = "ok"
	ClassOverload    Class = "overload"     // HTTP 429 or 503: the agency is past its capacity
	ClassAgencyError Class = "agency_error" // other 5xx, or a body that cannot be read
	ClassTimeout     Class = "timeout"      // no answer within the call's timeout
	ClassClientError Class = "client_error" // 4xx other than 429: the request itself is wrong
	ClassInvalidData Class = "invalid_data" // a well-formed answer with impossible values
	ClassTransport   Class = "transport"    // connection refused, reset, DNS failure…
	ClassCanceled    Class = "canceled"     // the caller gave up (context canceled); not the agency's fault
	// ClassExpired: the caller's own deadline ended the call before the
	// agency's timeout, or left too little time to send it at all (see
	// activities' admission). Neither the agency's fault nor a sign of its
	// condition: it counts in no failure rate, limit or breaker.
	ClassExpired Class = "expired"
)

// Classes lists every class, ClassOK first.
var Classes = []Class{ClassOK, ClassOverload, ClassAgencyError, ClassTimeout,
	ClassClientError, ClassInvalidData, ClassTransport, ClassCanceled, ClassExpired}

// ParseClass turns a class name back into a Class, e.g. from the type of a
// Temporal application error built with string(class).
func ParseClass(s string) (Class, bool) {
	for _, c := range Classes {
		if string(c) == s {
			return c, true
		}
	}
	return "", false
}

// Retryable reports whether repeating the same call may succeed: false only
// for client errors and invalid data, which the agency would answer again.
func (c Class) Retryable() bool {
	return c != ClassClientError && c != ClassInvalidData
}

// CallError is the error of a failed agency call.
type CallError struct {
	Agency     Name
	Class      Class
	StatusCode int           // HTTP status, 0 when no answer was received
	RetryAfter time.Duration // from the Retry-After header, 0 when absent
	Err        error
}

// Error says which agency failed, how, and why, e.g.
// "agency kcb: overload: http 503: queue full (retry after 1s)".
func (e *CallError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "agency %s: %s", e.Agency, e.Class)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": http %d", e.StatusCode)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *CallError) Unwrap() error { return e.Err }

// Retryable reports whether repeating the call may succeed.
func (e *CallError) Retryable() bool { return e.Class.Retryable() }

// Classify returns the class of an error returned by a Client (nil is
// ClassOK). It looks through wrapping, so an activity may wrap the
// *CallError. An error carrying a Type() string that names a class (such as a
// Temporal application error whose type is string(class)) gets that class.
// Other errors are classed by their cause: deadline exceeded or a network
// timeout is ClassTimeout, context.Canceled is ClassCanceled, and anything
// else is ClassTransport.
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.Class
	}
	var typed interface{ Type() string }
	if errors.As(err, &typed) {
		if c, ok := ParseClass(typed.Type()); ok {
			return c
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTimeout
	}
	if errors.Is(err, context.Canceled) {
		return ClassCanceled
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	return ClassTransport
}

// classForStatus maps a non-200 HTTP status to a class.
func classForStatus(code int) Class {
	switch {
	case code == 429 || code == 503:
		return ClassOverload
	case code >= 500:
		return ClassAgencyError
	case code >= 400:
		return ClassClientError
	default: // 1xx, 2xx other than 200, 3xx: not part of the protocol
		return ClassAgencyError
	}
}
