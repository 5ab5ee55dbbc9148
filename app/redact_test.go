package app

import (
	"loanflow/config"

	"strings"
	"testing"
)

// A bad connection URL is reported without the password it holds.
func TestBadURLErrorsHideThePassword(t *testing.T) {
	for _, raw := range []string{
		"redis://:s3cretpw@127.0.0.1:notaport/0",
		"redis://user:s3cretpw@127.0.0.1:6379/notadb",
		"rediss://user:s3cretpw@[::1/0",
		"http://user:s3cretpw@127.0.0.1:6379/0",
	} {
		_, err := redisOptions(raw)
		if err == nil {
			t.Fatalf("%s: accepted", raw)
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("error echoes the password: %v", err)
		}
		if !strings.Contains(err.Error(), "REDIS_URL") {
			t.Errorf("error does not name REDIS_URL: %v", err)
		}
	}
	for raw, want := range map[string]string{
		"postgres://u:s3cretpw@h:5432/db": "postgres://u:xxxxx@h:5432/db",
		"redis://:s3cretpw@h:bad/0":       "redis://xxxxx@h:bad/0",
	} {
		if got := config.RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
