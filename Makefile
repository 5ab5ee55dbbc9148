# loanflow: the demo and the test suite. See README.md.
GO ?= go

.PHONY: demo test unit services worker starter build vet

## demo: embedded Temporal + Web UI + simulated agencies, local Postgres and Redis; submits a batch and serves the UI until Ctrl-C
demo: services
	$(GO) run ./worker -dev -demo 600 -demo-rate 10 -incident

## test: every test, unit and integration (needs Postgres and Redis; started if installed)
test: services
	$(GO) vet ./...
	$(GO) run go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0 ./workflows/...
	$(GO) test -count=1 -race -timeout 20m $$($(GO) list ./... | grep -v '^loanflow/service$$')
	# The end-to-end tests run a whole Temporal server in process; under the
	# race detector it is several times slower than the timings they model.
	$(GO) test -count=1 -timeout 20m ./service/

## unit: the fast tests only, no services needed
unit:
	$(GO) test -count=1 -short ./...

services:
	@./scripts/services.sh

build:
	$(GO) build -o bin/ ./worker ./starter ./agencysim/cmd/agencysim ./codec/cmd/codecserver

vet:
	$(GO) vet ./...

.PHONY: bench-disburse
## bench-disburse: disbursements/s with and without the Redis lock, many customers vs one hot customer (real Postgres and Redis; own database, dropped after)
bench-disburse: services
	$(GO) run ./bench/disburse

.PHONY: bench-flow
## bench-flow: flow control against fixed pools, unbounded fan-out, failsafe-go's adaptive limiter and the oracle, on embedded Temporal, real Redis and a simulated agency; writes docs/bench-flow.md and docs/bench-flow-*.svg
bench-flow: services
	$(GO) run ./bench/flow

.PHONY: chaos
## chaos: a scripted incident (MyData fails, Redis loses its data, a long KCB outage, the controller terminated) on the embedded stack; prints the invariants table (about 2 minutes; not part of make test)
chaos: services
	$(GO) run ./bench/chaos

.PHONY: bench-throughput
## bench-throughput: loan applications/s against raw Temporal (the same workflow shape with no-op activities), side by side on the embedded stack with agencies that are never busy
bench-throughput: services
	$(GO) run ./bench/throughput -out docs/bench-throughput.md
