package service

import (
	"fmt"
	"os"
	"strconv"

	"loanflow/activities"
	"loanflow/dlock"
	"loanflow/ledger"
)

// RedisPrefix is the default start of every Redis key loanflow writes: call
// statistics, limits, worker membership and customer locks
// (e.g. "loanflow:lock:{customer:C00000001}").
const RedisPrefix = "loanflow:"

// EnvDefaultExposureLimit names the variable that sets the exposure limit, in
// won, given to a customer on their first loan (default 150000000).
const EnvDefaultExposureLimit = "LOANFLOW_DEFAULT_EXPOSURE_LIMIT"

// disburseActivities builds the Disburse activity of the loan queue: a
// ledger over the worker's Postgres pool, locking customers in its Redis.
func (e *Env) disburseActivities() (*activities.DisburseActivities, error) {
	opts := ledger.Options{Lock: dlock.Options{Prefix: e.Config.RedisPrefix}}
	if v := os.Getenv(EnvDefaultExposureLimit); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s=%q: accepted a whole number of won, 1 or more (default %d)", EnvDefaultExposureLimit, v, ledger.DefaultLimit)
		}
		opts.DefaultLimit = n
	}
	led, err := ledger.New(e.Store.Pool(), e.Redis, opts)
	if err != nil {
		return nil, fmt.Errorf("set up the disbursement ledger: %w", err)
	}
	return &activities.DisburseActivities{Ledger: led}, nil
}
