# Usher developer tasks. `make` (or `make help`) lists them.
#
# Targets that need a database call scripts/ensure-mariadb.sh, which makes
# sure MariaDB answers on 127.0.0.1:3306 (root, empty password), installing
# and starting it when needed (that part needs root). Set USHER_TEST_MYSQL_DSN
# (tests) or USHER_MYSQL_DSN (`make dev`) to use a database of your own.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
COMPOSE ?= docker-compose
# lint runs staticcheck through `go run`, fetched from the Go module proxy on
# first use (then cached). lint is strict: if staticcheck cannot be fetched or
# built (offline, or a release that needs a newer Go), lint fails. Pin another
# version with e.g. `make lint STATICCHECK_VERSION=2025.1.1`.
STATICCHECK_VERSION ?= latest
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
# Temporal's determinism checker for workflow code.
WORKFLOWCHECK ?= $(GO) run go.temporal.io/sdk/contrib/tools/workflowcheck@latest

.PHONY: help dev test build build-prod lint mariadb compose-check fmt

help: ## List the targets
	@echo "Usage: make <target>"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

dev: ## Run `usher dev` (in-process Temporal + UI); ensures MariaDB unless USHER_MYSQL_DSN is set
	@if [[ -z "$${USHER_MYSQL_DSN:-}" ]]; then scripts/ensure-mariadb.sh; fi
	$(GO) run ./cmd/usher dev

test: ## Run all tests (ensures MariaDB first; USHER_TEST_MYSQL_DSN overrides)
	scripts/ensure-mariadb.sh
	$(GO) test -count=1 -timeout 45m ./...

build: ## Build bin/usher (with the dev command)
	$(GO) build -o bin/usher ./cmd/usher

build-prod: ## Build bin/usher without the dev command (-tags nodev)
	$(GO) build -tags nodev -o bin/usher ./cmd/usher

lint: ## go vet + staticcheck + workflowcheck (fetched via the Go module proxy)
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(WORKFLOWCHECK) ./workflows/...

mariadb: ## Make sure MariaDB runs on 127.0.0.1:3306 (installs/starts it if needed)
	scripts/ensure-mariadb.sh

compose-check: ## Validate docker-compose.yml
	$(COMPOSE) config -q

fmt: ## Format all Go code (gofmt -s)
	gofmt -s -w $$(git ls-files --cached --others --exclude-standard '*.go')

# deploy-check validates the monitoring files in deploy/: the Prometheus config and alert
# rules with promtool (installed by scripts/ensure-promtool.sh when missing), the alerts' unit
# tests, the Grafana dashboard (go test ./deploy), and docker-compose.yml when docker-compose
# is installed.
.PHONY: deploy-check
deploy-check: ## Check deploy/ (promtool config, rules, rule tests, dashboard) and compose
	scripts/ensure-promtool.sh
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml deploy/prometheus/alerts_accept_test.yml
	$(GO) test -count=1 ./deploy/...
	@if command -v $(COMPOSE) >/dev/null 2>&1; then $(COMPOSE) config -q && echo "docker-compose.yml: OK"; \
	else echo "deploy-check: $(COMPOSE) not found; skipped the docker-compose.yml check"; fi

# faults runs the fault-finding jobs one after another: for now each fuzz target for FUZZTIME
# (go test -fuzz takes one target per run; one worker, this machine has 2 cores). Inputs that
# fail are written to <package>/testdata/fuzz/<target>/ and replayed by `go test` from then on.
FUZZTIME ?= 30s
FUZZ_TARGETS ?= ./api:FuzzJSONBodies ./api:FuzzImportCSV
# Then the fault suite (cmd/usher-faults): worker, API and MariaDB killed or stopped under
# load, a Mailgun storm, 20 clients on one link; results in RELIABILITY.md. It takes about
# 15 minutes; pass e.g. FAULTS_FLAGS="-scenarios contest,worker-kill -journeys 100".
FAULTS_FLAGS ?=
.PHONY: faults
faults: ## Fuzz every target for FUZZTIME (default 30s) each, then the fault suite (RELIABILITY.md); needs MariaDB
	@if [[ -z "$${USHER_TEST_MYSQL_DSN:-}" ]]; then scripts/ensure-mariadb.sh; fi
	@for t in $(FUZZ_TARGETS); do \
		echo "== $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -parallel 1 || exit 1; \
	done
	$(GO) run ./cmd/usher-faults $(FAULTS_FLAGS) -write RELIABILITY.md

# bench runs the benchmark suite (cmd/usher-bench -suite) on the whole stack: in-process
# Temporal, a fresh MariaDB database, the Mailgun test server, the API, and the production
# worker (`usher worker`, built with -tags nodev) as a child process. It measures journeys/s,
# API latency, listing over 1,000,000 seeded rows, the worker's idle memory and one bulk
# call of 10,000 people, each against a baseline measured in the same run, prints one table
# and writes the "## Benchmark suite" section of BENCHMARKS.md. About 10 minutes on 2 cores;
# smaller with e.g. `make bench BENCH_FLAGS="-suite-journeys 200 -suite-bulk 1000 -suite-rows 100000"`.
# bench-bulk is the older bulk-vs-single analysis ("## Bulk invitations" section), with
# where the time goes (`make bench-bulk BENCH_BULK_FLAGS="-people 2000 -single 200"`).
BENCH_FLAGS ?=
BENCH_BULK_FLAGS ?=
.PHONY: bench bench-bulk
bench: ## Benchmark suite (journeys, latency, listing, idle memory, bulk) vs baselines; updates BENCHMARKS.md
	@if [[ -z "$${USHER_TEST_MYSQL_DSN:-}" ]]; then scripts/ensure-mariadb.sh; fi
	$(GO) run ./cmd/usher-bench -suite $(BENCH_FLAGS) -write BENCHMARKS.md

bench-bulk: ## Benchmark bulk (CSV import) vs single invitations, with where the time goes; updates BENCHMARKS.md
	@if [[ -z "$${USHER_TEST_MYSQL_DSN:-}" ]]; then scripts/ensure-mariadb.sh; fi
	$(GO) run ./cmd/usher-bench $(BENCH_BULK_FLAGS) -write BENCHMARKS.md
