package app_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"strings"
	"testing"

	"loanflow/app"
)

// setKeys gives the test its own codec and search key rings: without them
// configuration is refused.
func setKeys(t *testing.T) {
	t.Helper()
	key := func(id string) string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return id + ":" + base64.StdEncoding.EncodeToString(b)
	}
	t.Setenv("LOANFLOW_CODEC_KEYS", key("t1"))
	t.Setenv("LOANFLOW_SEARCH_KEYS", key("ts1"))
}

func TestConfigFromEnvFleetSettings(t *testing.T) {
	setKeys(t)
	t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
	t.Setenv("LOANFLOW_AGENCY_CONCURRENCY", "8")
	t.Setenv("LOANFLOW_AGENCY_MAX_CONCURRENCY", "4")
	t.Setenv("LOANFLOW_REDIS_PREFIX", "fleet-a:")
	cfg, err := app.FromEnv(false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisPrefix != "fleet-a:" {
		t.Errorf("redis prefix %q, want fleet-a:", cfg.RedisPrefix)
	}
	if len(cfg.Flow.Agencies) != 4 {
		t.Fatalf("%d agencies in the flow config, want 4", len(cfg.Flow.Agencies))
	}
	for name, ac := range cfg.Flow.Agencies {
		if ac.MaxLimit != 4 || ac.InitialLimit != 4 || ac.MinLimit > 4 {
			t.Errorf("%s: limits min %d initial %d max %d, want initial = max = 4", name, ac.MinLimit, ac.InitialLimit, ac.MaxLimit)
		}
		if err := ac.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, tc := range []struct{ key, val, want string }{
		{"LOANFLOW_REDIS_PREFIX", "a{b}:", "without '{' or '}'"},
		{"LOANFLOW_AGENCY_MAX_CONCURRENCY", "0", "from 1 to 1000"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Setenv(tc.key, tc.val)
			if _, err := app.FromEnv(false); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s=%q: error %v, want one containing %q", tc.key, tc.val, err, tc.want)
			}
		})
	}
}

// Every variable the worker reads is checked at load, before anything is
// connected: the exposure limit used to be read only when the workers
// started, after the migrations had run.
func TestLoadRefusesBadVariablesUpFront(t *testing.T) {
	for _, tc := range []struct{ key, val, want string }{
		{"LOANFLOW_DEFAULT_EXPOSURE_LIMIT", "0x8F0D180", "LOANFLOW_DEFAULT_EXPOSURE_LIMIT=\"0x8F0D180\": accepted a whole number of won"},
		{"LOANFLOW_DEFAULT_EXPOSURE_LIMIT", "0", "accepted a whole number of won, 1 or more"},
		{"LOANFLOW_DEFAULT_EXPOSURE_LIMIT", "+5", "accepted a whole number of won"},
		{"LOANFLOW_AGENCY_CONCURRENCY", "many", "LOANFLOW_AGENCY_CONCURRENCY=\"many\": accepted a whole number from 1 to 1000"},
		{"LOANFLOW_AGENCY_ALLOW_HTTP", "yes", "LOANFLOW_AGENCY_ALLOW_HTTP=\"yes\": accepted 1 or true"},
		{"TEMPORAL_TLS", "maybe", "TEMPORAL_TLS=\"maybe\": accepted true, false, 1 or 0"},
		{"LOANFLOW_CODEC_KEYS", "", "LOANFLOW_CODEC_KEYS"},
	} {
		t.Run(tc.key+"="+tc.val, func(t *testing.T) {
			setKeys(t)
			t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
			// Nothing listens there: an error about the variable proves
			// nothing was dialled first.
			t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none?sslmode=disable")
			t.Setenv(tc.key, tc.val)
			_, err := app.Load(nil, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	setKeys(t)
	t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
	t.Setenv("LOANFLOW_DEFAULT_EXPOSURE_LIMIT", "200000000")
	cfg, err := app.Load([]string{"-metrics-addr", "", "-log-level", "warn"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultExposureLimit != 200_000_000 || cfg.MetricsAddr != "" {
		t.Fatalf("loaded %d, metrics %q", cfg.DefaultExposureLimit, cfg.MetricsAddr)
	}
}

func TestLoadPointsDevUsersAtTheDevCommand(t *testing.T) {
	setKeys(t)
	t.Setenv("AGENCY_BASE_URL", "")
	if _, err := app.Load([]string{"-dev"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "dev/cmd/loanflow-dev") {
		t.Fatalf("-dev: %v, want a pointer to the dev command", err)
	}
	if _, err := app.Load(nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "AGENCY_BASE_URL") {
		t.Fatalf("no agencies: %v, want AGENCY_BASE_URL named", err)
	}
	if _, err := app.Load([]string{"-h"}, &bytes.Buffer{}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
}

// The workers' ledger names each customer's lock by the keyed CustomerRef
// hash of the search key ring the worker loaded, so no customer id reaches
// Redis and the name cannot be tested against a guessed id without the key.
func TestLedgerLockIsNamedByTheSearchKey(t *testing.T) {
	setKeys(t)
	t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
	t.Setenv("LOANFLOW_REDIS_PREFIX", "fleet-a:")
	t.Setenv("LOANFLOW_DEFAULT_EXPOSURE_LIMIT", "200000000")
	cfg, err := app.Load([]string{"-metrics-addr", ""}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.LedgerOptions()
	if o.LockName == nil {
		t.Fatal("the workers' ledger has no LockName: it would fall back to the unkeyed hash")
	}
	const customer = "C00000042"
	ref := cfg.Temporal.Protection.Hasher.CustomerRef(customer)
	if got := o.LockKey(customer); got != "customer:"+ref || strings.Contains(got, customer) {
		t.Errorf("lock key %q, want customer:%s", got, ref)
	}
	if !strings.HasPrefix(ref, "ts1:") {
		t.Errorf("CustomerRef %q is not under the search ring's current key ts1", ref)
	}
	if o.Lock.Prefix != "fleet-a:" || o.DefaultLimit != 200_000_000 {
		t.Errorf("ledger options %+v, want prefix fleet-a: and default limit 200,000,000", o)
	}
}
