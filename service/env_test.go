package service_test

import (
	"strings"
	"testing"

	"loanflow/service"
)

func TestConfigFromEnvFleetSettings(t *testing.T) {
	t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
	t.Setenv("LOANFLOW_AGENCY_CONCURRENCY", "8")
	t.Setenv("LOANFLOW_AGENCY_MAX_CONCURRENCY", "4")
	t.Setenv("LOANFLOW_REDIS_PREFIX", "fleet-a:")
	cfg, err := service.ConfigFromEnv()
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
			if _, err := service.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s=%q: error %v, want one containing %q", tc.key, tc.val, err, tc.want)
			}
		})
	}
}
