package config

import (
	"net/url"
	"strings"
)

// RedactURL hides the password of a connection URL before it reaches a log
// or an error, also when the URL does not parse.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(unparsable URL)"
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://xxxxx@" + rest[at+1:]
	}
	return raw
}

// RedactError is err with raw, and the user info raw holds, taken out of its
// message (url.Parse quotes the whole URL, password included). It still
// unwraps to err for errors.Is and errors.As.
func RedactError(err error, raw string) error {
	if err == nil {
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), raw, RedactURL(raw))
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at > 0 {
			msg = strings.ReplaceAll(msg, rest[:at], "xxxxx")
		}
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
