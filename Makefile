# loanflow: the demo and the test suite. See README.md.
GO ?= go

.PHONY: demo test unit services worker starter build vet lint staticcheck errcheck vulncheck deploy-check compose-config

# Linters, pinned; "go run pkg@version" builds each once into the build cache.
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ERRCHECK      := github.com/kisielk/errcheck@v1.30.0
GOVULNCHECK   := golang.org/x/vuln/cmd/govulncheck@v1.9.0
# govulncheck reads a local copy of the Go vulnerability database, built from
# this pinned version of the golang.org/x/vulndb module (its data/osv folder,
# indexed by its own cmd/indexdb), so it needs only the Go module proxy.
# Move the pin forward to pick up newer reports.
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB         := .cache/vulndb/$(VULNDB_VERSION)

# The production commands, and the Go release they are built with (make build,
# the Dockerfile): Go 1.26.8, the machine's, has standard-library
# vulnerabilities fixed in 1.26.9 and 1.26.10 (net/http, crypto/tls,
# crypto/x509, html/template). Keep it in step with the Dockerfile's image.
PRODUCTION := ./worker ./starter ./codec/cmd/codecserver
RELEASE_GO := go1.26.11

## demo: embedded Temporal + Web UI + simulated agencies, local Postgres and Redis; submits a batch and serves the UI until Ctrl-C
demo: services
	$(GO) run ./dev/cmd/loanflow-dev -demo 600 -demo-rate 10 -incident

## test: the linters, then every test, unit and integration (needs Postgres and Redis; started if installed)
test: services lint
	$(GO) test -count=1 -race -timeout 20m $$($(GO) list ./... | grep -v '^loanflow/dev/local$$')
	# The end-to-end tests run a whole Temporal server in process; under the
	# race detector it is several times slower than the timings they model.
	$(GO) test -count=1 -timeout 20m ./dev/local/

## lint: vet, workflowcheck, staticcheck, errcheck, govulncheck, and the deployment files
lint: vet staticcheck errcheck vulncheck deploy-check compose-config
	$(GO) run go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0 ./workflows/...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

errcheck:
	$(GO) run $(ERRCHECK) -exclude .errcheck-excludes ./...

# govulncheck scans what ships (the production commands) with the toolchain it
# ships with: the release Go, which the go command takes from the module proxy.
# The dev area (embedded server, Web UI, simulator, benchmarks) is not shipped.
vulncheck: $(VULNDB)/index/db.json
	GOTOOLCHAIN=$(RELEASE_GO) $(GO) run $(GOVULNCHECK) -db file://$(CURDIR)/$(VULNDB) $(PRODUCTION)

$(VULNDB)/index/db.json:
	@rm -rf $(VULNDB).tmp
	$(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) \
		-vulns "$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')/data/osv" \
		-out $(VULNDB).tmp
	mv $(VULNDB).tmp $(VULNDB)

## deploy-check: the compose file and Kubernetes manifests load and decode strictly (own module: deploy/)
deploy-check:
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 ./...

# docker compose's own check, where the compose plugin is installed.
compose-config:
	@if docker compose version >/dev/null 2>&1; then \
		echo "docker compose config -q"; \
		POSTGRES_PASSWORD=x REDIS_PASSWORD=x GRAFANA_ADMIN_PASSWORD=x LOANFLOW_CODEC_KEYS=x LOANFLOW_SEARCH_KEYS=x LOANFLOW_CODEC_TOKEN=x \
			docker compose --profile monitoring --profile cli config -q; \
	else echo "compose-config: docker compose not installed; skipped (deploy-check loads the file with compose-go)"; fi

## unit: the fast tests only, no services needed
unit:
	$(GO) test -count=1 -short ./...

services:
	@./scripts/services.sh

## build: the production commands with the release toolchain, the dev commands with the machine's Go
build:
	GOTOOLCHAIN=$(RELEASE_GO) $(GO) build -trimpath -o bin/ $(PRODUCTION)
	$(GO) build -o bin/ ./dev/cmd/loanflow-dev ./dev/agencysim/cmd/agencysim

vet:
	$(GO) vet ./...

.PHONY: bench-disburse
## bench-disburse: disbursements/s with and without the Redis lock, many customers vs one hot customer (real Postgres and Redis; own database, dropped after)
bench-disburse: services
	$(GO) run ./dev/bench/disburse

.PHONY: bench-flow
## bench-flow: flow control against fixed pools, unbounded fan-out, failsafe-go's adaptive limiter (tuned) and the oracle, at two agency scales, on embedded Temporal, real Redis and a simulated agency; writes docs/bench-flow.md and docs/bench-flow-<scale>-<scenario>.svg (about 50 min)
bench-flow: services
	$(GO) run ./dev/bench/flow

.PHONY: scorecard
## scorecard: the flow-control lab's scorecard in the simulator, every set of shapes (tuned and held out) on seeds 1-36 and 37-72 at both offsets, and the capacity lost for good; prints the misses per set and kind (about 3 minutes; SCORECARD_ARGS="-law 27 -jitter 0.12" runs the law before change 27 on calls spread by σ 0.12)
scorecard:
	$(GO) run ./dev/bench/scorecard $(SCORECARD_ARGS)

.PHONY: chaos
## chaos: a scripted incident (MyData fails, Redis loses its data, a long KCB outage, the controller terminated) on the embedded stack; prints the invariants table (about 2 minutes; not part of make test)
chaos: services
	$(GO) run ./dev/bench/chaos

.PHONY: bench-throughput
## bench-throughput: loan applications/s against raw Temporal (the same workflow shape with no-op activities), side by side on the embedded stack with agencies that are never busy
bench-throughput: services
	$(GO) run ./dev/bench/throughput -out docs/bench-throughput.md

# The worker tuning the sweep compares, each against raw Temporal in a process of its own.
SWEEP_VARIANTS ?= default,sticky=0,sticky=32,slots=4,slots=32,tuner=resource,tuner=resource+ramp=0s,pg=4,pg=32

.PHONY: bench-throughput-sweep
## bench-throughput-sweep: loanflow's worker tuning (sticky cache, the loan queue's slots and tuner, the Postgres pool), each variant against raw Temporal; rewrites the sweep section of docs/bench-throughput.md (15-25 min)
bench-throughput-sweep: services
	$(GO) run ./dev/bench/throughput -count 200 -rounds 3 -variants $(SWEEP_VARIANTS) -out docs/bench-throughput.md
