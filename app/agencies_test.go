package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"loanflow/app"
)

// The sample contract file is valid, and FromEnv applies it: scraping's cap,
// each contract's cap over LOANFLOW_AGENCY_MAX_CONCURRENCY, the TPS ceilings
// kept for the workers to apply, and no period of its own for any agency (a
// longer one served none better in the simulator). A period set in a file
// is the agency's own.
func TestAgenciesFileAppliedToFlowConfig(t *testing.T) {
	setKeys(t)
	t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
	t.Setenv("LOANFLOW_AGENCY_MAX_CONCURRENCY", "20")
	t.Setenv("LOANFLOW_AGENCIES_FILE", filepath.Join("..", "deploy", "agencies.example.toml"))
	cfg, err := app.FromEnv(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Flow.Validate(); err != nil {
		t.Fatal(err)
	}
	sc := cfg.Flow.Agencies["scraping"]
	if sc.Period != 0 || sc.MaxLimit != 8 || sc.InitialLimit > 8 {
		t.Errorf("scraping: period %s, max %d, initial %d; want the controller's period, 8, at most 8", sc.Period, sc.MaxLimit, sc.InitialLimit)
	}
	if kcb := cfg.Flow.Agencies["kcb"]; kcb.Period != 0 || kcb.MaxLimit != 40 {
		t.Errorf("kcb: period %s, max %d; want the controller's period and the contract's 40", kcb.Period, kcb.MaxLimit)
	}
	if my := cfg.Flow.Agencies["mydata"]; my.MaxLimit != 20 {
		t.Errorf("mydata: max %d, want LOANFLOW_AGENCY_MAX_CONCURRENCY's 20 (no cap in its contract)", my.MaxLimit)
	}
	if got := cfg.Flow.PeriodOf("scraping"); got != cfg.Flow.Period {
		t.Errorf("scraping's period %s, want the controller's %s", got, cfg.Flow.Period)
	}
	if cfg.Agencies["scraping"].TPS != 5 || cfg.Agencies["mydata"].TPS != 100 {
		t.Errorf("contracts %+v, want scraping at 5/s and mydata at 100/s", cfg.Agencies)
	}

	path := filepath.Join(t.TempDir(), "agencies.toml")
	if err := os.WriteFile(path, []byte("[agencies.scraping]\nperiod = \"3s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOANFLOW_AGENCIES_FILE", path)
	cfg, err = app.FromEnv(false)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Flow.PeriodOf("scraping"); got != 3*time.Second {
		t.Errorf("scraping's period %s, want the file's 3s", got)
	}
	if got := cfg.Flow.PeriodOf("kcb"); got != cfg.Flow.Period {
		t.Errorf("kcb's period %s, want the controller's %s", got, cfg.Flow.Period)
	}

	// initial_limit is where a new controller starts the agency, within its
	// bounds: the contract's cap, else LOANFLOW_AGENCY_MAX_CONCURRENCY's.
	if err := os.WriteFile(path, []byte("[agencies.kcb]\nmax_concurrency = 64\ninitial_limit = 32\n[agencies.nice]\ninitial_limit = 30\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = app.FromEnv(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Flow.Validate(); err != nil {
		t.Fatal(err)
	}
	if kcb := cfg.Flow.Agencies["kcb"]; kcb.InitialLimit != 32 || kcb.MaxLimit != 64 {
		t.Errorf("kcb: initial %d, max %d; want the file's 32 and 64", kcb.InitialLimit, kcb.MaxLimit)
	}
	if nice := cfg.Flow.Agencies["nice"]; nice.InitialLimit != 20 || nice.MaxLimit != 20 {
		t.Errorf("nice: initial %d, max %d; want 30 capped at LOANFLOW_AGENCY_MAX_CONCURRENCY's 20", nice.InitialLimit, nice.MaxLimit)
	}
	if my := cfg.Flow.Agencies["mydata"]; my.InitialLimit == 32 || my.InitialLimit == 30 {
		t.Errorf("mydata: initial %d, want the default (no initial_limit in its contract)", my.InitialLimit)
	}
}

// Without the file nothing changes: no contracts, no periods of their own.
func TestNoAgenciesFileKeepsDefaults(t *testing.T) {
	setKeys(t)
	t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
	cfg, err := app.FromEnv(false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agencies != nil || cfg.Flow.Agencies != nil {
		t.Fatalf("contracts %v, flow %v: want none without LOANFLOW_AGENCIES_FILE", cfg.Agencies, cfg.Flow)
	}
}

// Every mistake names the field, the value and what is accepted.
func TestAgenciesFileRefusesBadInput(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[agencies.kcb]\ntsp = 5\n", `unknown field "agencies.kcb.tsp": accepted period, max_concurrency, initial_limit, tps`},
		{"[agencies.kcb]\ninitial_limit = 0\n", "agencies.kcb.initial_limit 0: accepted a whole number from 1 to 1000"},
		{"[agencies.kcb]\ninitial_limit = 1001\n", "agencies.kcb.initial_limit 1001: accepted a whole number from 1 to 1000"},
		{"[agencies.kcb]\nmax_concurrency = 40\ninitial_limit = 41\n", "agencies.kcb.initial_limit 41: accepted a whole number from 1 to the agency's max_concurrency, 40"},
		{"[agencies.kcb]\ninitial_limit = 2.5\n", "initial_limit"},
		{"[agency.kcb]\ntps = 5\n", `unknown table or field "agency"`},
		{"[agencies.equifax]\ntps = 5\n", "unknown agency [agencies.equifax]: accepted kcb, nice, mydata, scraping"},
		{"[agencies.KCB]\ntps = 5\n", "unknown agency [agencies.KCB]"},
		{"[agencies.kcb]\ntps = 0\n", "agencies.kcb.tps 0: accepted calls per second, more than 0"},
		{"[agencies.kcb]\ntps = -1.5\n", "agencies.kcb.tps -1.5"},
		{"[agencies.kcb]\ntps = \"5\"\n", "tps"},
		{"[agencies.scraping]\nperiod = \"2.5s\"\n", `agencies.scraping.period "2.5s": accepted a whole number of seconds from 1s to 1m0s`},
		{"[agencies.scraping]\nperiod = \"500ms\"\n", `agencies.scraping.period "500ms"`},
		{"[agencies.scraping]\nperiod = \"3\"\n", `agencies.scraping.period "3"`},
		{"[agencies.scraping]\nperiod = \"2m\"\n", `agencies.scraping.period "2m"`},
		{"[agencies.nice]\nmax_concurrency = 0\n", "agencies.nice.max_concurrency 0: accepted a whole number from 1 to 1000"},
		{"[agencies.nice]\nmax_concurrency = 5000\n", "agencies.nice.max_concurrency 5000"},
		{"[agencies.nice\n", "not valid TOML"},
	} {
		if _, err := app.ParseAgencies(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.want)
		}
	}
	// Through the variable, the error names it and the file.
	setKeys(t)
	t.Setenv("AGENCY_BASE_URL", "http://127.0.0.1:8090")
	path := filepath.Join(t.TempDir(), "agencies.toml")
	if err := os.WriteFile(path, []byte("[agencies.kcb]\ntps = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOANFLOW_AGENCIES_FILE", path)
	if _, err := app.FromEnv(false); err == nil || !strings.Contains(err.Error(), "LOANFLOW_AGENCIES_FILE=") || !strings.Contains(err.Error(), "agencies.kcb.tps 0") {
		t.Fatalf("error %v, want one naming LOANFLOW_AGENCIES_FILE and agencies.kcb.tps", err)
	}
	t.Setenv("LOANFLOW_AGENCIES_FILE", filepath.Join(t.TempDir(), "missing.toml"))
	if _, err := app.FromEnv(false); err == nil || !strings.Contains(err.Error(), "LOANFLOW_AGENCIES_FILE=") {
		t.Fatalf("missing file: error %v, want one naming LOANFLOW_AGENCIES_FILE", err)
	}
}
