package service

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"loanflow/agency"
	"loanflow/config"
	"loanflow/flowcontrol"
)

// ConfigFromEnv reads DATABASE_URL, REDIS_URL, the agency URLs
// (AGENCY_BASE_URL, or AGENCY_<NAME>_URL per agency),
// LOANFLOW_AGENCY_CONCURRENCY, LOANFLOW_AGENCY_MAX_CONCURRENCY,
// LOANFLOW_REDIS_PREFIX and the TEMPORAL_* variables.
func ConfigFromEnv() (Config, error) {
	t, err := config.TemporalFromEnv()
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		Temporal:    t,
		DatabaseURL: config.EnvOr("DATABASE_URL", config.DefaultDatabaseURL),
		RedisURL:    config.EnvOr("REDIS_URL", config.DefaultRedisURL),
	}
	if base := os.Getenv("AGENCY_BASE_URL"); base != "" {
		cfg.AgencyURLs = agency.URLsFromBase(base)
	}
	for _, n := range agency.All {
		key := "AGENCY_" + strings.ToUpper(string(n)) + "_URL"
		if v := os.Getenv(key); v != "" {
			if cfg.AgencyURLs == nil {
				cfg.AgencyURLs = map[agency.Name]string{}
			}
			cfg.AgencyURLs[n] = v
		}
	}
	if cfg.AgencyURLs != nil && len(cfg.AgencyURLs) != len(agency.All) {
		return cfg, fmt.Errorf("agency URLs: got %d of %d; set AGENCY_BASE_URL or all of AGENCY_KCB_URL, AGENCY_NICE_URL, AGENCY_MYDATA_URL, AGENCY_SCRAPING_URL", len(cfg.AgencyURLs), len(agency.All))
	}
	switch v := os.Getenv(agency.AllowHTTPEnv); v {
	case "", "0", "false":
	case "1", "true":
		cfg.AgencyAllowHTTP = true
	default:
		return cfg, fmt.Errorf("%s=%q: accepted 1 or true (allow plain http to agencies off loopback), 0, false or unset", agency.AllowHTTPEnv, v)
	}
	if v := os.Getenv("LOANFLOW_AGENCY_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return cfg, fmt.Errorf("LOANFLOW_AGENCY_CONCURRENCY=%q: accepted a whole number from 1 to 1000", v)
		}
		cfg.AgencyConcurrency = n
	}
	if v := os.Getenv("LOANFLOW_AGENCY_MAX_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return cfg, fmt.Errorf("LOANFLOW_AGENCY_MAX_CONCURRENCY=%q: accepted a whole number from 1 to 1000", v)
		}
		cfg.Flow = cappedFlowConfig(cfg.AgencyConcurrency, n)
	}
	// Processes that share an agency's limits must share the prefix; a
	// separate prefix makes a separate fleet on the same Redis.
	if v := os.Getenv("LOANFLOW_REDIS_PREFIX"); v != "" {
		if strings.ContainsAny(v, "{}") {
			return cfg, fmt.Errorf("LOANFLOW_REDIS_PREFIX=%q: accepted a prefix without '{' or '}' (the agency is the Redis Cluster hash tag)", v)
		}
		cfg.RedisPrefix = v
	}
	return cfg, nil
}

// cappedFlowConfig is the default flow configuration with every agency's
// global limit held at or below maxLimit, starting at initial (default 16),
// capped too: a contract ceiling the controller may not raise past.
func cappedFlowConfig(initial, maxLimit int) flowcontrol.Config {
	if initial <= 0 {
		initial = 16
	}
	cfg := flowConfig(min(initial, maxLimit))
	for name, ac := range cfg.Agencies {
		ac.MaxLimit = maxLimit
		ac.MinLimit = min(ac.MinLimit, maxLimit)
		ac.InitialLimit = min(ac.InitialLimit, maxLimit)
		cfg.Agencies[name] = ac
	}
	return cfg
}
