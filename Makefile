# Sluice — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Build outputs and downloads live outside the clone so reruns are incremental.
export SLUICE_CACHE ?= $(HOME)/.cache/sluice
export CARGO_TARGET_DIR ?= $(SLUICE_CACHE)/target
CARGO ?= cargo
PHASE := tests/tools/phase.sh
SLUICE_BIN := $(CARGO_TARGET_DIR)/debug/sluice

.PHONY: help run demo build web claim-target deps services services-down services-status test fmt fmt-check clippy test-rust bench deploy-check

help:
	@echo "make run            build and start sluice serve on 127.0.0.1:8080"
	@echo "make web            build the web console (web/dist) and nothing else"
	@echo "make demo           produce the retail example's data into Kafka and register its datasets"
	@echo "make test           start the local services, check formatting and lints, run every test"
	@echo "make services       start PostgreSQL, Redis, Kafka, OpenSearch, Elasticsearch and a Kubernetes API server (reuses running ones)"
	@echo "make services-down  stop them"
	@echo "make bench          run the benchmarks (not part of make test)"
	@echo "make deploy-check   lint the Helm chart, dry-run it and the kustomize base on the test API server"

deps:
	@tests/services/deps.sh

# The shared target dir must build this checkout's code (see the script).
claim-target:
	@tests/tools/claim-target.sh

## The web console's static assets (web/dist), embedded by `sluice serve`.
web: deps
	@web/build.sh

build: deps claim-target web
	$(CARGO) build --bin sluice

## Start sluice serve in the foreground (reads .sluice/services.env when present).
run: build
	$(SLUICE_BIN) serve

## Produce the retail example's data into the services' Kafka and register its datasets with
## the running `sluice serve` (SLUICE_URL, SLUICE_TOKEN). Options: make demo DEMO_ARGS="--orders 100000".
demo: deps claim-target
	SLUICE_KAFKA_BOOTSTRAP="$${SLUICE_KAFKA_BOOTSTRAP:-$$(sed -n 's/^SLUICE_KAFKA_BOOTSTRAP=//p' $${SLUICE_DATA_DIR:-.sluice}/services.env 2>/dev/null)}" \
	$(CARGO) run -p sluice-cli --bin sluice -- demo $(DEMO_ARGS)

services:
	@tests/services/services.sh up

services-down:
	@tests/services/services.sh down

services-status:
	@tests/services/services.sh status

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: claim-target
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust: claim-target
	@CARGO="$(CARGO)" tests/tools/cargo-test.sh

## Everything CI runs: services, formatting, lints and every test, each phase timed.
test:
	@$(PHASE) services tests/services/services.sh up
	@$(PHASE) fmt-check $(MAKE) --no-print-directory fmt-check
	@$(PHASE) clippy $(MAKE) --no-print-directory clippy
	@$(PHASE) web web/build.sh test
	@$(PHASE) deploy tests/tools/deploy-check.sh
	@$(PHASE) tests $(MAKE) --no-print-directory test-rust

## deploy/: helm lint, values schema, and a server-side dry run of the chart and the kustomize
## base against the Kubernetes API server of `make services` (tests/tools/deploy-check.sh).
deploy-check:
	@tests/tools/deploy-check.sh

## Benchmarks: long-running, not part of `make test`. Figures go to docs/benchmarks.md.
bench: services claim-target
	$(CARGO) bench -p sluice-tests --bench api_load
	$(CARGO) bench -p sluice-tests --bench controller_load
	$(CARGO) bench -p sluice-tests --bench job_load
	$(CARGO) bench -p sluice-tests --bench backfill_join
